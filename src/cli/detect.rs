//! `sift eval` and `sift train`.

use std::path::Path;
use std::time::Instant;

use sift::detect::train::{self, TrainOptions};
use sift::detect::Detector;
use sift::summarize::prompts::Prompts;
use sift::summarize::{Lang, Summarizer};
use sift::Result;

use super::{Format, GlobalArgs};

/// What `sift eval` scores.
pub struct EvalOptions {
    pub per_document: bool,
    pub summaries: bool,
    pub only: Option<String>,
    /// Summary languages, as `--lang` takes them (`ko,en`).
    pub langs: String,
    /// A folder of prompt templates overriding the built-in ones.
    pub prompts: Option<std::path::PathBuf>,
}

pub fn eval(g: &GlobalArgs, dir: &Path, format: Format, opts: &EvalOptions) -> Result<bool> {
    let per_document = opts.per_document;
    let mut set = sift::eval::load_set(dir)?;
    if let Some(only) = &opts.only {
        set.retain(|d| d.name.contains(only.as_str()));
    }
    let device = g.device()?;
    let encoder = g.encoder(&device)?;
    let detector = Detector::new(&encoder, g.head(&device)?);
    let mut writer = match opts.summaries {
        true => {
            let catalog = g.catalog()?;
            let manifest = catalog.for_role(sift::model::manifest::Role::Summarizer)?;
            let mut model = sift::model::load_summarizer(&g.store(), manifest, &device)?;
            let summarizer = Summarizer::new(&mut model, Prompts::load(opts.prompts.as_deref())?)?;
            Some((model, summarizer))
        }
        false => None,
    };
    let langs = Lang::parse_list(&opts.langs)?;
    let t = Instant::now();
    let mut scores = Vec::with_capacity(set.len());
    let mut summary_scores = Vec::new();
    for doc in &set {
        let d = detector.detect(&doc.text)?;
        scores.push(sift::eval::score(doc, &d));
        if let Some((model, summarizer)) = writer.as_mut() {
            let started = Instant::now();
            let out = summarizer.summarize(model, &encoder, &d.clean_text, &langs, &mut |_| {})?;
            for s in &out.summaries {
                let score = sift::eval::score_summary(doc, s);
                eprintln!(
                    "sift: {} {}: {:.1}s, facts {:.2}, forbidden {:?}, {:?}: {}",
                    doc.name,
                    s.lang.code(),
                    started.elapsed().as_secs_f64(),
                    score.coverage,
                    score.forbidden_hits,
                    s.method,
                    s.text
                );
                for r in &s.rejected {
                    eprintln!("sift:   refused \"{}\": {}", r.sentence, r.reason);
                }
                summary_scores.push(score);
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let report = sift::eval::report(scores);
    let summary_report =
        (!summary_scores.is_empty()).then(|| sift::eval::summary_report(summary_scores));
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "detection": report,
                "summaries": summary_report,
            }))
            .expect("serialisable")
        ),
        Format::Text => {
            if per_document {
                println!(
                    "{:<56} {:>6} {:>6} {:>6} {:>5} {:>7}",
                    "document", "tp", "fp", "fn", "clean", "labels"
                );
                for d in &report.per_document {
                    println!(
                        "{:<56} {:>6} {:>6} {:>6} {:>5} {:>3}/{:<3}",
                        d.name,
                        d.true_positive_bytes,
                        d.false_positive_bytes,
                        d.false_negative_bytes,
                        if d.clean_text_exact { "yes" } else { "no" },
                        d.sentences_correct,
                        d.sentences
                    );
                }
                println!();
            }
            println!("documents                 {}", report.documents);
            println!("byte precision            {:.4}", report.precision);
            println!("byte recall               {:.4}", report.recall);
            println!("byte F1                   {:.4}", report.f1);
            println!(
                "false-positive bytes      {} (on {} clean documents)",
                report.false_positive_bytes_on_clean, report.clean_documents
            );
            println!(
                "exact clean text          {:.4}",
                report.clean_text_exact_rate
            );
            println!("sentence-label accuracy   {:.4}", report.sentence_accuracy);
            if let Some(r) = &summary_report {
                for l in &r.languages {
                    println!(
                        "summary {}: key facts {:.3}, forbidden hits {}, purity mean {:.3} (min {:.3}), within limits {}/{}, empty {}",
                        l.lang.code(),
                        l.coverage,
                        l.forbidden_hits,
                        l.purity_mean,
                        l.purity_min,
                        l.within_limits,
                        l.summaries,
                        l.empty
                    );
                }
            }
        }
    }
    eprintln!("sift: scored {} documents in {secs:.1}s", report.documents);
    Ok(true)
}

pub fn train(g: &GlobalArgs, data: &Path, out: &Path) -> Result<bool> {
    let device = g.device()?;
    let encoder = g.encoder(&device)?;
    let (articles, phrases) = train::read_corpus(data)?;
    let instructions = train::read_instructions(data)?;
    let opts = TrainOptions::default();
    let examples = train::make_examples(&articles, &phrases, &opts);
    eprintln!(
        "sift: {} genuine articles, {} spam phrases, {} instructions, {} hard negatives for them, {} examples",
        articles.len(),
        phrases.len(),
        instructions.positive.len(),
        instructions.hard_negative.len(),
        examples.len()
    );
    let quiet = g.quiet;
    let (head, report) = train::train(&encoder, &examples, &phrases, &instructions, &opts, &|m| {
        if !quiet {
            eprintln!("sift: {m}");
        }
    })?;
    head.save(out)?;
    println!(
        "phrase test: held-out accuracy {:.3}",
        report.phrase_test_accuracy
    );
    println!(
        "instruction test: held-out accuracy {:.3}",
        report.instruction_test_accuracy
    );
    println!(
        "trained on {} tokens from {} examples; held-out articles ({} tokens): precision {:.3}, recall {:.3}",
        report.tokens, report.examples, report.held_out_tokens, report.held_out_precision, report.held_out_recall
    );
    println!("wrote {}", out.display());
    Ok(true)
}
