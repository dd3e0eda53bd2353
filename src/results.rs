//! One result file per input (`sift classify --output-dir DIR`), written so that a batch of thousands
//! of files loses nothing when it is killed, and can be resumed.
//!
//! A result is written to a temporary file inside DIR (`.sift-XXXXXX.tmp`), flushed to disk, and
//! renamed into place: a result file either holds a whole result or does not exist, so "the file
//! exists and parses" is what "this input is done" means for `--resume`.
//!
//! File names come from the input's name (its path as given, or its JSON Lines id), which the user
//! does not control when the inputs are scraped: the name is reduced to letters, digits, `-`, `_` and
//! `.` (anything else, `/` included, becomes `_`; leading dots are dropped; at most 60 characters),
//! followed by `-` and the first 12 hex digits of the SHA-256 of the whole name. The result has no
//! path separator and cannot be `.` or `..`, so it always lands directly in DIR; the hash keeps apart
//! names that reduce to the same text (`a/b.txt` and `a_b.txt`).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The most characters of the input's name kept in its result file's name.
const NAME_CHARS: usize = 60;

/// The result file name for the input called `name`: `<reduced name>-<hash>.json`.
pub fn file_name(name: &str) -> String {
    let mut reduced: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .chars()
        .take(NAME_CHARS)
        .collect();
    if reduced.is_empty() {
        reduced.push_str("input");
    }
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{reduced}-{}.json", &hash[..12])
}

/// Where results go.
#[derive(Debug, Clone)]
pub struct ResultDir {
    dir: PathBuf,
}

impl ResultDir {
    /// Opens (creating it when needed) the folder `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The result file of the input called `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(file_name(name))
    }

    /// The file that records why the input called `name` failed; `--resume` tries such inputs again.
    pub fn error_path(&self, name: &str) -> PathBuf {
        let mut p = self.path(name);
        p.set_extension("error.json");
        p
    }

    /// Whether the input called `name` already has a complete result: a regular file (not a link)
    /// holding a JSON object that is not an error record.
    pub fn is_complete(&self, name: &str) -> bool {
        let path = self.path(name);
        let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        regular
            && std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v.is_object() && v.get("error").is_none())
    }

    /// Writes `contents` as the result of the input called `name`, atomically, and removes any error
    /// record an earlier run left for it.
    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let dest = self.path(name);
        self.write_atomic(&dest, contents)?;
        let _ = std::fs::remove_file(self.error_path(name));
        Ok(dest)
    }

    /// Writes `contents` as the error record of the input called `name`, atomically.
    pub fn write_error(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let dest = self.error_path(name);
        self.write_atomic(&dest, contents)?;
        Ok(dest)
    }

    fn write_atomic(&self, dest: &Path, contents: &str) -> Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".sift-")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        tmp.write_all(contents.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_the_folder_and_apart() {
        for name in [
            "../../etc/passwd",
            "/abs/path.txt",
            "..",
            ".",
            "",
            "a/b.txt",
            "a_b.txt",
            "C:\\x\\y",
            "기사/삼성.txt",
            "\u{0}\n",
        ] {
            let f = file_name(name);
            assert!(
                !f.contains('/') && !f.contains('\\') && !f.starts_with('.'),
                "{f}"
            );
            assert_eq!(Path::new(&f).components().count(), 1, "{f}");
            assert!(f.len() < 255);
        }
        assert_ne!(file_name("a/b.txt"), file_name("a_b.txt"));
        assert!(file_name("기사/삼성.txt").starts_with("기사_삼성.txt-"));
        assert!(file_name(&"x".repeat(10_000)).len() < 100);
    }

    #[test]
    fn writes_are_complete_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        let out = ResultDir::create(&dir.path().join("new")).unwrap();
        assert!(!out.is_complete("doc"));
        out.write_error("doc", "{\"path\": \"doc\", \"error\": \"x\"}")
            .unwrap();
        assert!(!out.is_complete("doc"));
        std::fs::write(out.path("doc"), "{\"path\": \"doc\", \"clean").unwrap();
        assert!(!out.is_complete("doc"), "a cut-off file is not complete");
        out.write("doc", "{\"path\": \"doc\", \"clean_text\": \"\"}")
            .unwrap();
        assert!(out.is_complete("doc"));
        assert!(!out.error_path("doc").exists());
        let names: Vec<_> = std::fs::read_dir(dir.path().join("new"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
