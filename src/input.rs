//! Reading articles: files, folders walked recursively, standard input, or JSON Lines records, as
//! UTF-8 text.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Reads the article at `path` (`-` is standard input) and checks that it is text worth reading: see
/// [`decode`].
pub fn read_article(path: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("<stdin>", e))?;
    } else {
        if path.is_dir() {
            return Err(Error::Input(format!(
                "{}: is a folder, not an article (`sift classify` walks folders)",
                path.display()
            )));
        }
        bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    }
    decode(bytes, &path.display().to_string())
}

/// Turns the bytes of the article called `name` into text, or says why they are not an article.
///
/// UTF-16 (told by its byte-order mark) is named as such; otherwise a NUL byte marks a binary file (the
/// test `grep` uses). Text that is not UTF-8 is an error naming the
/// first bad byte, rather than a lossy guess that would shift every offset after it. A file with no
/// text, or only whitespace, is an error too: in a batch of scraped pages it means the scrape failed,
/// and an empty result would hide that.
pub fn decode(bytes: Vec<u8>, name: &str) -> Result<String> {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(Error::Input(format!(
            "{name}: UTF-16 text (it opens with a byte-order mark), not UTF-8; convert it first, e.g. `iconv -f UTF-16 -t UTF-8`"
        )));
    }
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(Error::Input(format!(
            "{name}: a binary file, not text (NUL byte at offset {at})"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Input(format!(
            "{name}: not UTF-8 text (invalid byte at offset {}); convert it first, e.g. `iconv -f EUC-KR -t UTF-8`",
            e.utf8_error().valid_up_to()
        ))
    })?;
    check_text(&text, name)?;
    Ok(text)
}

/// Refuses text that holds nothing to read: empty, only whitespace, or with NUL characters.
pub fn check_text(text: &str, name: &str) -> Result<()> {
    if text.trim().is_empty() {
        let what = if text.is_empty() {
            "empty"
        } else {
            "only whitespace"
        };
        return Err(Error::Input(format!("{name}: {what}, no text to check")));
    }
    if let Some(at) = text.find('\0') {
        return Err(Error::Input(format!(
            "{name}: a binary file, not text (NUL byte at offset {at})"
        )));
    }
    Ok(())
}

/// The files directly in `dir` whose extension is `ext`, sorted by name.
pub fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    paths.sort();
    Ok(paths)
}

/// One document to process in a batch.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file on disk.
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
    /// An article given inline (a JSON Lines record).
    Inline { id: String, text: String },
}

impl Source {
    /// How the document is named in results: its path, `-`, or its id.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "-".to_string(),
            Source::Inline { id, .. } => id.clone(),
        }
    }

    /// The document's text.
    pub fn read(&self) -> Result<String> {
        match self {
            Source::File(p) => read_article(p),
            Source::Stdin => read_article(Path::new("-")),
            Source::Inline { id, text } => {
                check_text(text, id)?;
                Ok(text.clone())
            }
        }
    }
}

/// Expands the command line's paths: files as given, directories recursively (sorted, hidden entries
/// skipped), `-` as standard input. A path that cannot be listed becomes a source whose read fails, so a
/// batch reports it and goes on.
pub fn collect(paths: &[PathBuf]) -> Vec<Source> {
    let mut out = Vec::new();
    for p in paths {
        if p == Path::new("-") {
            out.push(Source::Stdin);
        } else if p.is_dir() {
            let walk = walkdir::WalkDir::new(p)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
                });
            for entry in walk {
                match entry {
                    Ok(e) if e.file_type().is_file() => out.push(Source::File(e.into_path())),
                    Ok(_) => {}
                    Err(e) => out.push(Source::File(
                        e.path().map(Path::to_path_buf).unwrap_or_else(|| p.clone()),
                    )),
                }
            }
        } else {
            out.push(Source::File(p.clone()));
        }
    }
    out
}

/// A JSON Lines record of `--input-format jsonl`.
#[derive(Debug, serde::Deserialize)]
struct Record {
    id: serde_json::Value,
    text: String,
}

/// Reads JSON Lines (`{"id": ..., "text": ...}` per line) from `reader`. A malformed line becomes an
/// error entry named by its line number, and reading goes on.
pub fn jsonl_sources(
    reader: impl std::io::BufRead,
    origin: &str,
) -> Vec<std::result::Result<Source, (String, String)>> {
    reader
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(i, line)| {
            let name = format!("{origin}:{}", i + 1);
            let line = line.map_err(|e| (name.clone(), e.to_string()))?;
            let rec: Record = serde_json::from_str(&line).map_err(|e| {
                (
                    name.clone(),
                    format!("not a {{\"id\", \"text\"}} record: {e}"),
                )
            })?;
            let id = match rec.id {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Ok(Source::Inline { id, text: rec.text })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_an_article_is_refused_by_name() {
        let err = |b: &[u8]| decode(b.to_vec(), "f.txt").unwrap_err().to_string();
        assert!(err(b"").contains("f.txt: empty"));
        assert!(err(b" \n\t\r\n").contains("only whitespace"));
        assert!(err(b"abc\0def").contains("binary file") && err(b"abc\0").contains("offset 3"));
        let e = err(b"ok \xff");
        assert!(e.contains("not UTF-8") && e.contains("offset 3"), "{e}");
        assert!(err(&[0xff, 0xfe, b'a', 0]).contains("UTF-16"));
        assert_eq!(decode("삼성 text\n".into(), "f").unwrap(), "삼성 text\n");
        assert!(check_text("a\u{0}", "id").is_err() && check_text("a", "id").is_ok());
    }
}
