//! `sift eval` and `sift train`.

use std::path::Path;
use std::time::Instant;

use sift::detect::train::{self, TrainOptions};
use sift::detect::Detector;
use sift::Result;

use super::{Format, GlobalArgs};

pub fn eval(g: &GlobalArgs, dir: &Path, format: Format, per_document: bool) -> Result<bool> {
    let set = sift::eval::load_set(dir)?;
    let device = g.device()?;
    let encoder = g.encoder(&device)?;
    let detector = Detector::new(&encoder, g.head(&device)?);
    let t = Instant::now();
    let mut scores = Vec::with_capacity(set.len());
    for doc in &set {
        let d = detector.detect(&doc.text)?;
        scores.push(sift::eval::score(doc, &d));
    }
    let secs = t.elapsed().as_secs_f64();
    let report = sift::eval::report(scores);
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialisable")
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
        }
    }
    eprintln!("sift: scored {} documents in {secs:.1}s", report.documents);
    Ok(true)
}

pub fn train(g: &GlobalArgs, data: &Path, out: &Path) -> Result<bool> {
    let device = g.device()?;
    let encoder = g.encoder(&device)?;
    let (articles, phrases) = train::read_corpus(data)?;
    let opts = TrainOptions::default();
    let examples = train::make_examples(&articles, &phrases, &opts);
    eprintln!(
        "sift: {} genuine articles, {} spam phrases, {} examples",
        articles.len(),
        phrases.len(),
        examples.len()
    );
    let quiet = g.quiet;
    let (head, report) = train::train(&encoder, &examples, &phrases, &opts, &|m| {
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
        "trained on {} tokens from {} examples; held-out articles ({} tokens): precision {:.3}, recall {:.3}",
        report.tokens, report.examples, report.held_out_tokens, report.held_out_precision, report.held_out_recall
    );
    println!("wrote {}", out.display());
    Ok(true)
}
