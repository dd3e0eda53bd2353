//! Prompt openings kept on disk: the keys and values of the tokens a step's prompt opens with on
//! every document (its instructions and worked example), computed once and read back after.
//!
//! Why this exists: a summary runs three prompt templates, and their fixed openings are about a
//! fifth of the tokens the seed prefills; on 2 cores each token costs 14 ms of arithmetic that
//! gives the same keys and values every time. Reading them back costs 28 KB per token from a file.
//!
//! An opening is always run on its own, from position 0, whether its file exists or not, so the
//! numbers that follow it are the same either way. A file is named by a hash of the tokens and of
//! everything that decides the numbers: the model file (path, size, modification time), the sift
//! build (the executable's size and modification time) and the CPU kernels in use. It holds the
//! tokens too, checked on reading. Files are written whole under a temporary name and renamed; one
//! that cannot be read or does not match is a miss, never an error, and a store that cannot be
//! written is only slower. The oldest files go once a model has more than 32.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::CausalLm;

/// The first bytes of a file; the digit is the layout's version.
const MAGIC: &[u8; 8] = b"SIFTKV1\n";

/// Where openings are kept, for one model as loaded.
#[derive(Debug, Clone)]
pub struct OpeningStore {
    dir: PathBuf,
    identity: String,
}

impl OpeningStore {
    /// A store in `dir` for the model loaded from `model_file`.
    pub fn new(dir: PathBuf, model_file: &Path) -> Self {
        let mut identity = format!("model {}", stamp(model_file));
        if let Ok(exe) = std::env::current_exe() {
            identity.push_str(&format!("; sift {}", stamp(&exe)));
        }
        identity.push_str(&format!("; kernels {:?}", crate::kernels::level()));
        Self { dir, identity }
    }

    fn path(&self, tokens: &[u32]) -> PathBuf {
        let mut hash = Sha256::new();
        hash.update(self.identity.as_bytes());
        for t in tokens {
            hash.update(t.to_le_bytes());
        }
        let digest = hash.finalize();
        let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.kv"))
    }

    /// Makes `lm`'s sequence in use hold `tokens` from the store; `false` when it has no (good)
    /// file for them.
    pub fn load(&self, lm: &mut dyn CausalLm, tokens: &[u32]) -> bool {
        let Ok(bytes) = std::fs::read(self.path(tokens)) else {
            return false;
        };
        let Some(body) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return false;
        };
        let Some((count, body)) = body.split_first_chunk::<4>() else {
            return false;
        };
        let count = u32::from_le_bytes(*count) as usize;
        if count != tokens.len() || body.len() < 4 * count {
            return false;
        }
        let (held, kv) = body.split_at(4 * count);
        let same = held
            .chunks_exact(4)
            .zip(tokens)
            .all(|(b, t)| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == *t);
        same && lm.restore_cache(count, kv).unwrap_or(false)
    }

    /// Keeps what `lm`'s sequence in use holds for `tokens` (its first positions). Errors are
    /// returned for the caller to report; nothing half-written is left under the file's name.
    pub fn save(&self, lm: &dyn CausalLm, tokens: &[u32]) -> std::io::Result<()> {
        let Some(kv) = lm.cache_bytes(tokens.len()) else {
            return Ok(());
        };
        std::fs::create_dir_all(&self.dir)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(MAGIC)?;
        file.write_all(&(tokens.len() as u32).to_le_bytes())?;
        let ids: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        file.write_all(&ids)?;
        file.write_all(&kv)?;
        file.persist(self.path(tokens)).map_err(|e| e.error)?;
        self.prune();
        Ok(())
    }

    /// Deletes the oldest files past [`MAX_FILES`]: each new sift build or model file names its
    /// openings anew, and the old ones would otherwise stay for good.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "kv"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .collect();
        if files.len() <= MAX_FILES {
            return;
        }
        files.sort();
        for (_, path) in &files[..files.len() - MAX_FILES] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Files kept per model (a summary of either language uses three or four openings; a few MB each).
const MAX_FILES: usize = 32;

/// A file's path, size and modification time, as text.
fn stamp(path: &Path) -> String {
    let meta = std::fs::metadata(path).ok();
    let size = meta.as_ref().map_or(0, |m| m.len());
    let modified = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{} {size} {modified}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_files_go_past_the_limit_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let store = OpeningStore::new(dir.path().to_path_buf(), Path::new("no-such-model.gguf"));
        let base = std::time::SystemTime::now() - std::time::Duration::from_secs(10_000);
        let file = |i: usize| dir.path().join(format!("{i:03}.kv"));
        for i in 0..MAX_FILES + 5 {
            let f = std::fs::File::create(file(i)).unwrap();
            f.set_modified(base + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "kept").unwrap();
        store.prune();
        let left: Vec<bool> = (0..MAX_FILES + 5).map(|i| file(i).exists()).collect();
        // The five oldest are gone, the newest MAX_FILES stay; other files are not the store's.
        assert!(left[..5].iter().all(|&e| !e));
        assert!(left[5..].iter().all(|&e| e));
        assert!(dir.path().join("notes.txt").exists());
    }
}
