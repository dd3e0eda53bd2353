//! The main job on one article: load both models, show what they see.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde_json::json;

use sift::model::manifest::Role;
use sift::Result;

use super::{Format, GlobalArgs};

pub fn run(global: &GlobalArgs, article: &Path, format: Format) -> Result<bool> {
    let text = sift::input::read_article(article)?;
    let store = global.store();
    let catalog = global.catalog()?;
    let device = global.device()?;

    let t = Instant::now();
    let enc_manifest = catalog.for_role(Role::Encoder)?;
    let encoder = sift::model::load_encoder(&store, enc_manifest, &device)?;
    let encoder_load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let sum_manifest = catalog.for_role(Role::Summarizer)?;
    let mut summarizer = sift::model::load_summarizer(&store, sum_manifest, &device)?;
    let summarizer_load_s = t.elapsed().as_secs_f64();
    eprintln!(
        "sift: loaded {} in {encoder_load_s:.2}s and {} in {summarizer_load_s:.2}s",
        enc_manifest.name, sum_manifest.name
    );

    let streaming = format == Format::Text;
    if streaming {
        println!("draft gist (unchecked; faithful summaries are not built yet):");
    }
    let mut stdout = std::io::stdout();
    let detector = sift::detect::Detector::new(&encoder, global.head(&device)?);
    let inspection =
        sift::inspect::inspect(&text, &detector, &encoder, &mut summarizer, &mut |piece| {
            if streaming {
                let _ = write!(stdout, "{piece}");
                let _ = stdout.flush();
            }
        })?;
    let peak = sift::metrics::peak_rss_bytes();
    match format {
        Format::Text => {
            let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
            let name = article.display().to_string();
            println!("\n");
            print!(
                "{}",
                sift::output::render_text(&name, &text, &inspection.detection, color)
            );
            println!(
                "\nthe cleaned article:\n{:>4} {:>10} {:>6} {:>6}  sentence",
                "#", "centrality", "qwen", "e5"
            );
            for (i, s) in inspection.sentences.iter().enumerate() {
                let shown: String = s.text.chars().take(60).collect();
                let more = if shown.len() < s.text.len() {
                    "…"
                } else {
                    ""
                };
                println!(
                    "{i:>4} {:>10.3} {:>6} {:>6}  {shown}{more}",
                    s.centrality, s.summarizer_tokens, s.encoder_tokens
                );
            }
            println!(
                "\n{} sentences; the article is {} summarizer tokens",
                inspection.sentences.len(),
                inspection.article_summarizer_tokens
            );
        }
        Format::Json => {
            let out = json!({
                "path": article.display().to_string(),
                "inspection": inspection,
                "models": {"encoder": enc_manifest.name, "summarizer": sum_manifest.name},
                "timings": {"encoder_load": encoder_load_s, "summarizer_load": summarizer_load_s,
                            "detect": inspection.detect_s, "encode": inspection.encode_s,
                            "generate": inspection.generate_s},
                "peak_rss_bytes": peak,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).expect("serialisable")
            );
        }
    }
    eprintln!(
        "sift: detect {:.2}s, encode {:.2}s, generate {:.2}s, peak memory {}",
        inspection.detect_s,
        inspection.encode_s,
        inspection.generate_s,
        peak.map(|b| format!("{:.2} GB", b as f64 / 1e9))
            .unwrap_or_else(|| "unknown".into())
    );
    Ok(true)
}
