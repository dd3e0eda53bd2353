//! The one resolver for model files, used by every model.
//!
//! A file is looked for, in order, among the user's local copies (`--model-file`, `--model-dir`), then in
//! the cache under `$SIFT_HOME/models/<model>/`, and is fetched (hub, then mirror) when it is in neither
//! and downloading is allowed. Whatever the source, a file is checked against the manifest's size and
//! SHA-256 before it is handed to a loader: a truncated or altered file is refused, never loaded.
//!
//! Hashing the 1.1 GB chat model takes about a second, on every run. So a file of the cache that
//! passed is stamped (`NAME.verified` beside it: its digest, size and modification time), and a
//! later lookup trusts the stamp while the file's size and time are unchanged; anything else about
//! it, or a stamp for another digest, means hashing again. `sift models verify` always hashes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::fetch;
use crate::model::manifest::{Manifest, ModelFile};

/// Where models live and where they may come from.
#[derive(Debug, Clone)]
pub struct ModelStore {
    /// `$SIFT_HOME`; models are cached under `home/models/<name>/`.
    pub home: PathBuf,
    /// Folders holding local copies, looked up by file name.
    pub model_dirs: Vec<PathBuf>,
    /// Individual local copies, matched to manifest files by file name.
    pub model_files: Vec<PathBuf>,
    /// Never download; a missing model is an error.
    pub offline: bool,
    /// Skip the hub and fetch from the mirror.
    pub mirror_only: bool,
    /// Show progress bars on stderr while fetching.
    pub progress: bool,
}

/// The state of one model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    Present,
    Missing,
    Corrupt(String),
}

impl FileStatus {
    pub fn label(&self) -> &'static str {
        match self {
            FileStatus::Present => "present",
            FileStatus::Missing => "missing",
            FileStatus::Corrupt(_) => "corrupt",
        }
    }
}

impl ModelStore {
    /// The store as the environment describes it: `$SIFT_HOME` (default `~/.cache/sift`), and offline
    /// when `HF_HUB_OFFLINE` or `SIFT_OFFLINE` is set to a true value.
    pub fn from_env() -> Self {
        let home = std::env::var_os("SIFT_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let base = std::env::var_os("XDG_CACHE_HOME")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .unwrap_or_else(|| PathBuf::from(".cache"));
                base.join("sift")
            });
        let truthy = |k: &str| {
            std::env::var(k)
                .map(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes" | "on"))
                .unwrap_or(false)
        };
        Self {
            home,
            model_dirs: Vec::new(),
            model_files: Vec::new(),
            offline: truthy("HF_HUB_OFFLINE") || truthy("SIFT_OFFLINE"),
            mirror_only: false,
            progress: true,
        }
    }

    /// Where the cache keeps `file` of `model`.
    pub fn cached_path(&self, model: &Manifest, file: &ModelFile) -> PathBuf {
        self.model_dir(model).join(&file.name)
    }

    pub fn model_dir(&self, model: &Manifest) -> PathBuf {
        self.home.join("models").join(&model.name)
    }

    /// A local copy the user pointed at, if any.
    fn local_copy(&self, file: &ModelFile) -> Option<PathBuf> {
        self.model_files
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == file.name.as_str()))
            .cloned()
            .or_else(|| {
                self.model_dirs
                    .iter()
                    .map(|d| d.join(&file.name))
                    .find(|p| p.exists())
            })
    }

    /// The path that would be used for `file` and its state, with a full hash check.
    pub fn status(&self, model: &Manifest, file: &ModelFile) -> (PathBuf, FileStatus) {
        let path = self
            .local_copy(file)
            .unwrap_or_else(|| self.cached_path(model, file));
        let status = match verify_file(&path, file) {
            Ok(()) => FileStatus::Present,
            Err(Verify::Missing) => FileStatus::Missing,
            Err(Verify::Corrupt(d)) => FileStatus::Corrupt(d),
        };
        (path, status)
    }

    /// Verified paths of every file of `model`, in manifest order, fetching what is missing when allowed.
    pub fn resolve(&self, model: &Manifest) -> Result<Vec<PathBuf>> {
        model
            .files
            .iter()
            .map(|file| self.resolve_file(model, file))
            .collect()
    }

    fn resolve_file(&self, model: &Manifest, file: &ModelFile) -> Result<PathBuf> {
        if let Some(local) = self.local_copy(file) {
            // A local copy the user named is never replaced behind their back.
            return match verify_file(&local, file) {
                Ok(()) => Ok(local),
                Err(Verify::Missing) => Err(Error::io(
                    &local,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                )),
                Err(Verify::Corrupt(detail)) => Err(Error::ModelCorrupt {
                    model: model.name.clone(),
                    path: local,
                    detail: against(model, detail),
                }),
            };
        }
        let path = self.cached_path(model, file);
        match verify_stamped(&path, file) {
            Ok(()) => Ok(path),
            Err(Verify::Corrupt(detail)) => Err(Error::ModelCorrupt {
                model: model.name.clone(),
                path,
                detail: against(model, detail),
            }),
            Err(Verify::Missing) if self.offline => Err(Error::Offline {
                model: model.name.clone(),
            }),
            Err(Verify::Missing) => fetch::fetch_file(self, model, file),
        }
    }
}

/// A verification failure with the manifest it was checked against, so that a wrong manifest can be
/// told from a damaged file.
pub fn against(model: &Manifest, detail: String) -> String {
    format!("{detail} (manifest {})", model.origin.display())
}

/// Why a file failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    Missing,
    Corrupt(String),
}

/// Checks `path` against the manifest's size (first, as it is cheap) and SHA-256.
pub fn verify_file(path: &Path, file: &ModelFile) -> std::result::Result<(), Verify> {
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Err(Verify::Corrupt("it is not a regular file".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Verify::Missing),
        Err(e) => return Err(Verify::Corrupt(format!("cannot be read: {e}"))),
    };
    if meta.len() != file.size {
        return Err(Verify::Corrupt(format!(
            "it has {} bytes where the manifest says {}",
            meta.len(),
            file.size
        )));
    }
    let digest = sha256_file(path).map_err(|e| Verify::Corrupt(format!("cannot be read: {e}")))?;
    if digest != file.sha256 {
        return Err(Verify::Corrupt(format!(
            "its SHA-256 is {digest}, the manifest says {}",
            file.sha256
        )));
    }
    Ok(())
}

/// [`verify_file`], skipped when `path`'s stamp says it passed with the same size and modification
/// time; a file that passes is stamped (when the folder is writable: a stamp saves time, nothing
/// more).
fn verify_stamped(path: &Path, file: &ModelFile) -> std::result::Result<(), Verify> {
    let stamp = stamp_path(path);
    let expected = std::fs::metadata(path)
        .ok()
        .and_then(|m| stamp_line(file, &m));
    if expected.is_some() && std::fs::read_to_string(&stamp).ok() == expected {
        return Ok(());
    }
    verify_file(path, file)?;
    // Stamped only when nothing changed while it was hashed.
    let after = std::fs::metadata(path)
        .ok()
        .and_then(|m| stamp_line(file, &m));
    if let Some(line) = expected.filter(|line| Some(line) == after.as_ref()) {
        let _ = write_whole(&stamp, &line);
    }
    Ok(())
}

/// Writes `text` to `path` whole or not at all: a temporary file beside it, renamed into place.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `NAME.verified` beside `path`.
fn stamp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".verified");
    path.with_file_name(name)
}

/// What a stamp holds for a file with `meta` that matches `file`'s digest.
fn stamp_line(file: &ModelFile, meta: &std::fs::Metadata) -> Option<String> {
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "sha256 {} size {} modified {}.{:09}\n",
        file.sha256,
        meta.len(),
        modified.as_secs(),
        modified.subsec_nanos()
    ))
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
