//! The main job: `sift ARTICLE` / `sift summarize ARTICLE`. Clean the article, then write checked
//! Korean and English summaries; results on stdout, progress and timings on stderr.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde_json::json;

use sift::model::manifest::Role;
use sift::summarize::prompts::Prompts;
use sift::summarize::{Event, Lang, Method, Summarizer};
use sift::Result;

use super::{Format, GlobalArgs};

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// Summary languages: ko, en or ko,en.
    #[arg(long, default_value = "ko,en")]
    pub lang: String,

    /// Read prompt templates from this folder (files missing there use the built-in ones).
    #[arg(long, value_name = "DIR", env = "SIFT_PROMPTS")]
    pub prompts: Option<PathBuf>,
}

pub fn run(
    global: &GlobalArgs,
    args: &SummarizeArgs,
    article: &Path,
    format: Format,
) -> Result<bool> {
    let total = Instant::now();
    let langs = Lang::parse_list(&args.lang)?;
    let prompts = Prompts::load(args.prompts.as_deref())?;
    let text = sift::input::read_article(article)?;
    let store = global.store();
    let catalog = global.catalog()?;
    let device = global.device()?;

    // The chat model loads on its own thread while the encoder loads and finds the spam: on 2 cores
    // that hides most of a second. An article refused below (nothing left to summarize, another
    // language) is refused without waiting for it, and errors keep their order: the encoder's
    // first, the chat model's where it is needed.
    let enc_manifest = catalog.for_role(Role::Encoder)?;
    let chat = catalog.for_role(Role::Summarizer).map(|manifest| {
        let (store, device, manifest) = (store.clone(), device.clone(), manifest.clone());
        let name = manifest.name.clone();
        let loading = std::thread::spawn(move || -> Result<_> {
            let mut model = sift::model::load_summarizer(&store, &manifest, &device)?;
            let summarizer = Summarizer::new(&mut model, prompts)?;
            Ok((model, summarizer))
        });
        (name, loading)
    });

    let t = Instant::now();
    let encoder = sift::model::load_encoder(&store, enc_manifest, &device)?;
    let mut load_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let detector = sift::detect::Detector::new(&encoder, global.head(&device)?);
    let detection = detector.detect(&text)?;
    let classify_s = t.elapsed().as_secs_f64();
    let name = article.display().to_string();
    if detection.clean_text.trim().is_empty() {
        return Err(sift::Error::Input(format!(
            "{name}: all of it is spam ({} span(s)), nothing is left to summarize; `sift classify {name}` shows the spans",
            detection.spans.len()
        )));
    }
    sift::summarize::article_language(&detection.clean_text)
        .map_err(|e| sift::Error::Input(format!("{name}: {e}")))?;

    // Counted as load time: only what the wait for the chat model adds.
    let t = Instant::now();
    let (chat_name, loading) = chat?;
    // Waiting, this thread (one of the pool's) runs the pool's pending work: the loader's
    // parallel parts must not wait on it.
    while !loading.is_finished() {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    let (mut model, summarizer) = loading.join().expect("the chat model's loader panicked")?;
    load_s += t.elapsed().as_secs_f64();
    eprintln!(
        "sift: loaded {} and {chat_name} in {load_s:.2}s",
        enc_manifest.name
    );

    let stream = format == Format::Text && std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout().lock();
    let summaries = summarizer.summarize(
        &mut model,
        &encoder,
        &detection.clean_text,
        &langs,
        &mut |event| {
            if !stream {
                return;
            }
            let _ = match event {
                Event::Begin(lang) => write!(stdout, "{}\n  ", heading(lang)),
                Event::Sentence(_, s) => write!(stdout, "{s} "),
                Event::End(s) => writeln!(stdout, "{}\n", footnote(s.method)),
            };
            let _ = stdout.flush();
        },
    )?;
    drop(stdout);
    let total_s = total.elapsed().as_secs_f64();
    let peak = sift::metrics::peak_rss_bytes();

    match format {
        Format::Text => {
            if !stream {
                for s in &summaries.summaries {
                    println!("{}\n  {}{}\n", heading(s.lang), s.text, footnote(s.method));
                }
            }
            print!(
                "{}",
                sift::output::render_text(&name, &text, &detection, stream)
            );
        }
        Format::Json => {
            let record = sift::output::DocumentRecord::new(&name, false, &text, &detection);
            let mut out = serde_json::to_value(&record).expect("serialisable");
            let mut summary = serde_json::Map::new();
            for s in &summaries.summaries {
                summary.insert(s.lang.code().into(), json!(s.text));
            }
            out["summary"] = summary.into();
            out["summary_details"] = json!({
                "article_lang": summaries.article_lang,
                "summaries": summaries.summaries,
                "glossary": summaries.glossary,
                "sources": summaries.sources,
                "prompt_tokens": summaries.prompt_tokens,
                "generated_tokens": summaries.generated_tokens,
            });
            out["timings"] = json!({
                "load": load_s,
                "classify": classify_s,
                "prefill": summaries.prefill_s,
                "decode": summaries.decode_s,
                "total": total_s,
            });
            out["peak_rss_bytes"] = json!(peak);
            println!(
                "{}",
                serde_json::to_string_pretty(&out).expect("serialisable")
            );
        }
    }
    for s in &summaries.summaries {
        for r in &s.rejected {
            eprintln!(
                "sift: {} summary: refused \"{}\": {}",
                s.lang.code(),
                r.sentence,
                r.reason
            );
        }
    }
    eprintln!(
        "sift: load {load_s:.1}s, classify {classify_s:.1}s, prefill {:.1}s ({} tokens), decode {:.1}s ({} tokens), total {total_s:.1}s, peak memory {}",
        summaries.prefill_s,
        summaries.prompt_tokens,
        summaries.decode_s,
        summaries.generated_tokens,
        peak.map(|b| format!("{:.2} GB", b as f64 / 1e9))
            .unwrap_or_else(|| "unknown".into())
    );
    // The process ends after this: the models are not taken apart first, piece by piece (the
    // encoder's vocabulary alone is hundreds of thousands of allocations).
    std::mem::forget((encoder, model, summarizer));
    Ok(true)
}

fn heading(lang: Lang) -> &'static str {
    match lang {
        Lang::Ko => "한국어 요약:",
        Lang::En => "English summary:",
    }
}

fn footnote(method: Method) -> &'static str {
    match method {
        Method::Generated | Method::Translated => "",
        Method::Mixed => "\n  (the model's sentences with the article's own: its lead, central sentences where the model's were too few, or joined to the last where characters were left)",
        Method::Extractive => {
            "\n  (the article's own sentences: the model wrote none that passed its checks)"
        }
        Method::Unavailable => "(none: no sentence passed the checks; see stderr)",
    }
}
