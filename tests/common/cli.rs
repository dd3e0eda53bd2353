//! What the binary's tests share: the JSON records `sift classify` prints, parsed into types, and a
//! command for the real binary with the settings a test must not inherit from its environment.
//! Included by the test files that run the binary (`#[path]`), not by every test crate.
#![allow(dead_code)]

use std::process::{Command, Output};

use serde::Deserialize;

pub const SIFT: &str = env!("CARGO_BIN_EXE_sift");

#[derive(Debug, Deserialize)]
pub struct SpanOut {
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub score: f32,
}

#[derive(Debug, Deserialize)]
pub struct SentenceOut {
    pub start: usize,
    pub end: usize,
    pub label: String,
    pub score: f32,
}

#[derive(Debug, Deserialize)]
pub struct DocOut {
    pub path: Option<String>,
    pub id: Option<String>,
    pub clean_text: Option<String>,
    #[serde(default)]
    pub spans: Vec<SpanOut>,
    #[serde(default)]
    pub sentences: Vec<SentenceOut>,
    pub error: Option<String>,
}

/// A gold file: the injected spans and the clean text.
#[derive(Deserialize)]
pub struct Expected {
    pub spam: Vec<ExpectedSpan>,
    pub clean_text: String,
}

#[derive(Deserialize)]
pub struct ExpectedSpan {
    pub start: usize,
    pub end: usize,
}

/// The real binary on the CPU, offline and quiet, with no manifest or prompt folder from the
/// environment.
pub fn sift(args: &[&str]) -> Command {
    let mut c = Command::new(SIFT);
    c.args(["--offline", "--device", "cpu", "-q"])
        .args(args)
        .env_remove("SIFT_MANIFESTS")
        .env_remove("SIFT_PROMPTS");
    c
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
