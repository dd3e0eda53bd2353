//! `sift bench`: the chat model's prefill and decode speed on one prompt, or the encoder's batch speed,
//! as one JSON object (or a line of text) for side-by-side comparisons (`scripts/bench-vs-llamacpp`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde_json::json;

use sift::generate::{GenerateOptions, TextModel};
use sift::model::manifest::Role;
use sift::summarize::prompts::Prompts;
use sift::Result;

use super::{Format, GlobalArgs};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A prompt fed to the model verbatim, already in its chat format (special tokens such as
    /// `<|im_start|>` are recognised). Default: the seed article's Korean summary prompt.
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,

    /// Tokens to decode, greedily, stop tokens ignored.
    #[arg(long, default_value_t = 64)]
    pub decode_tokens: usize,

    /// Guess up to N tokens ahead by prompt lookup (0: plain one-token-at-a-time decoding, the
    /// like-for-like comparison with llama.cpp).
    #[arg(long, default_value_t = 0)]
    pub lookahead: usize,

    /// Print the default prompt (in chat format) and exit, to feed another program the same text.
    #[arg(long)]
    pub print_prompt: bool,

    /// Measure the encoder instead: spam detection over every `.txt` in this folder, as a batch.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "data/dev/docs")]
    pub encoder: Option<PathBuf>,

    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

/// The seed article (cleaned) in the Korean summary prompt: the main job's biggest prompt.
fn default_prompt(model: &TextModel) -> Result<String> {
    let seed: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/article.expected.json"))
            .expect("the seed's expected output is valid JSON");
    let article = seed["clean_text"].as_str().unwrap_or_default();
    let prompt = Prompts::builtin()?
        .summarize_ko
        .render(&[("article", article)]);
    let tokens = model.chat_prompt(&prompt)?;
    // Decoding with special tokens kept gives the prompt in its chat format.
    Ok(model.tokenizer().decode(&tokens, false)?)
}

pub fn run(global: &GlobalArgs, args: &BenchArgs) -> Result<bool> {
    if let Some(dir) = &args.encoder {
        return encoder(global, dir, args.format);
    }
    let store = global.store();
    let catalog = global.catalog()?;
    let device = global.device()?;
    let manifest = catalog.for_role(Role::Summarizer)?;
    let t = Instant::now();
    let mut model = sift::model::load_summarizer(&store, manifest, &device)?;
    let load_s = t.elapsed().as_secs_f64();
    let text = match &args.prompt_file {
        Some(path) => sift::input::read_article(path)?,
        None => default_prompt(&model)?,
    };
    if args.print_prompt {
        print!("{text}");
        return Ok(true);
    }
    let prompt = model.encode_verbatim(&text)?;
    let opts = GenerateOptions {
        max_new_tokens: args.decode_tokens,
        ignore_stop_tokens: true,
        lookahead: args.lookahead,
        ..GenerateOptions::default()
    };
    let g = model.generate(&prompt, &opts, &mut |_| std::ops::ControlFlow::Continue(()))?;
    // The first token is chosen from the prefill's logits; the rest are decode steps.
    let decode_steps = g.tokens.len().saturating_sub(1);
    let out = json!({
        "model": manifest.name,
        "threads": rayon::current_num_threads(),
        "prompt_tokens": g.prompt_tokens,
        "load_s": load_s,
        "prefill_s": g.prefill_s,
        "prefill_tok_s": g.prompt_tokens as f64 / g.prefill_s,
        "decode_tokens": g.tokens.len(),
        "decode_tok_s": decode_steps as f64 / g.decode_s,
        "ttft_s": g.ttft_s,
        "confirmed_guesses": g.confirmed_guesses,
        "peak_rss_bytes": sift::metrics::peak_rss_bytes(),
    });
    match args.format {
        Format::Json => println!("{out}"),
        Format::Text => println!(
            "{}: {} threads, prefill {} tokens at {:.1} tok/s, decode {} tokens at {:.1} tok/s, ttft {:.2}s, load {load_s:.1}s",
            manifest.name,
            out["threads"],
            g.prompt_tokens,
            out["prefill_tok_s"].as_f64().unwrap_or(0.0),
            g.tokens.len(),
            out["decode_tok_s"].as_f64().unwrap_or(0.0),
            g.ttft_s
        ),
    }
    Ok(true)
}

/// Spam detection over a folder as one batch: the encoder's sentences per second.
fn encoder(global: &GlobalArgs, dir: &Path, format: Format) -> Result<bool> {
    let device = global.device()?;
    let t = Instant::now();
    let encoder = global.encoder(&device)?;
    let detector = sift::detect::Detector::new(&encoder, global.head(&device)?);
    let load_s = t.elapsed().as_secs_f64();
    let paths = sift::input::files_with_extension(dir, "txt")?;
    let texts = paths
        .iter()
        .map(|p| sift::input::read_article(p))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = Instant::now();
    let detections = detector.detect_many(&refs)?;
    let secs = t.elapsed().as_secs_f64();
    let sentences: usize = detections.iter().map(|d| d.sentences.len()).sum();
    let out = json!({
        "model": "encoder",
        "forward": encoder.forward_name(),
        "threads": rayon::current_num_threads(),
        "documents": texts.len(),
        "sentences": sentences,
        "load_s": load_s,
        "seconds": secs,
        "sentences_per_s": sentences as f64 / secs,
        "documents_per_s": texts.len() as f64 / secs,
        "peak_rss_bytes": sift::metrics::peak_rss_bytes(),
    });
    match format {
        Format::Json => println!("{out}"),
        Format::Text => println!(
            "encoder: {sentences} sentences of {} documents in {secs:.2}s: {:.1} sentences/s",
            texts.len(),
            sentences as f64 / secs
        ),
    }
    Ok(true)
}
