//! sift: find SEO spam injected into scraped news articles, remove it, and summarize what the article
//! really says, with small transformer models run locally through candle.
//!
//! The modules follow the pipeline: [`segment`] cuts an article into sentences with byte offsets;
//! [`model`] finds, verifies and loads weights; [`encode`] turns text
//! into sentence vectors; [`detect`] labels sentences and finds injected spans; [`eval`] scores that
//! against gold; [`generate`] runs the chat model; [`summarize`] writes the checked Korean and English
//! summaries of the cleaned article (the main job); [`results`] writes a batch's results one file per
//! input, atomically. The `sift` binary is a thin layer over this library.

pub mod detect;
pub mod device;
pub mod encode;
pub mod error;
pub mod eval;
pub mod generate;
pub mod input;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod output;
pub mod results;
pub mod segment;
pub mod summarize;

pub use error::{Error, Result};
