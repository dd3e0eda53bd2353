//! `sift classify` and `sift clean`: detection over one article or thousands.
//!
//! A batch runs unattended over thousands of scraped files, so it goes on past a bad one (reporting
//! it), can write one result file per input (`--output-dir`, see [`sift::results`]) and skip finished
//! ones on a re-run (`--resume`), and stops cleanly on Ctrl-C: the flag is checked between batches,
//! every finished result is kept, and the exit status is 130.

use std::collections::HashSet;
use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use sift::detect::{Detection, Detector};
use sift::input::Source;
use sift::output::{self, DocumentRecord, ErrorRecord};
use sift::results::ResultDir;
use sift::{Error, Result};

use super::GlobalArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassifyFormat {
    Text,
    Json,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Each path is an article (folders are walked).
    Files,
    /// Each path (or standard input) holds JSON Lines: `{"id": ..., "text": ...}` per line.
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Files, folders (walked recursively) or `-` for standard input (the default).
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = ClassifyFormat::Text)]
    pub format: ClassifyFormat,
    #[arg(long, value_enum, default_value_t = InputFormat::Files)]
    pub input_format: InputFormat,
    /// Highlight spans in colour (text format).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Exit with status 3 when any document holds spam.
    #[arg(long)]
    pub fail_on_spam: bool,
    /// Documents per batch through the encoder.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Write each input's result to its own JSON file in DIR (created if needed) instead of stdout;
    /// a failed input gets a `.error.json` file instead.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Skip inputs whose result file in --output-dir is already complete (failed ones are retried).
    #[arg(long, requires = "output_dir")]
    pub resume: bool,
}

/// How a batch ended.
pub struct Outcome {
    pub failed: usize,
    pub with_spam: usize,
    /// Stopped by Ctrl-C before every input was done.
    pub interrupted: bool,
}

type Entry = std::result::Result<Source, (String, String)>;

/// Sets a flag on the first Ctrl-C (the batch stops after the documents in hand); a second one ends
/// the process at once.
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nsift: stopping after the documents in hand (Ctrl-C again to stop at once)");
    });
    if let Err(e) = installed {
        eprintln!("sift: warning: Ctrl-C will not stop cleanly: {e}");
    }
    flag
}

/// With `--output-dir`: drops the inputs `--resume` finds done (returning how many), and turns an
/// input whose result file an earlier input already claimed into an error rather than overwrite it.
fn plan(dir: &ResultDir, resume: bool, sources: Vec<Entry>) -> (Vec<Entry>, usize) {
    let mut claimed = HashSet::new();
    let mut skipped = 0;
    let mut out = Vec::with_capacity(sources.len());
    for s in sources {
        let Ok(src) = &s else {
            out.push(s);
            continue;
        };
        let name = src.name();
        if !claimed.insert(dir.path(&name)) {
            out.push(Err((
                name.clone(),
                format!("{name}: another input of this batch has the same name; its result would be overwritten"),
            )));
        } else if resume && dir.is_complete(&name) {
            skipped += 1;
        } else {
            out.push(s);
        }
    }
    (out, skipped)
}

pub fn classify(g: &GlobalArgs, args: &ClassifyArgs) -> Result<Outcome> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.paths.clone()
    };
    let sources: Vec<Entry> = match args.input_format {
        InputFormat::Files => sift::input::collect(&paths).into_iter().map(Ok).collect(),
        InputFormat::Jsonl => paths.iter().flat_map(|p| jsonl(p)).collect(),
    };
    let results = args
        .output_dir
        .as_deref()
        .map(ResultDir::create)
        .transpose()?;
    let (sources, skipped) = match &results {
        Some(dir) => plan(dir, args.resume, sources),
        None => (sources, 0),
    };
    if skipped > 0 {
        eprintln!("sift: {skipped} input(s) already have a complete result; skipped");
    } else if sources.is_empty() {
        eprintln!("sift: warning: no files found in the paths given");
    }
    let stop = stop_flag();
    let device = g.device()?;
    let encoder = g.encoder(&device)?;
    let detector = Detector::new(&encoder, g.head(&device)?);
    let is_id = args.input_format == InputFormat::Jsonl;
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal(),
    };
    let single_object =
        results.is_some() || (args.format == ClassifyFormat::Json && sources.len() == 1);

    let bar = if g.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(sources.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} {wide_bar} {pos}/{len} documents, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut out = std::io::stdout().lock();
    let mut printed = 0usize;
    let (mut failed, mut with_spam, mut sentences, mut done) = (0, 0, 0, 0);
    let started = Instant::now();
    if args.format == ClassifyFormat::Json && !single_object {
        emit(&mut out, "[")?;
    }
    for chunk in sources.chunks(args.batch.max(1)) {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let read: Vec<std::result::Result<(String, String), (String, String)>> = chunk
            .iter()
            .map(|s| match s {
                Ok(src) => src
                    .read()
                    .map(|t| (src.name(), t))
                    .map_err(|e| (src.name(), e.to_string())),
                Err(e) => Err(e.clone()),
            })
            .collect();
        let texts: Vec<&str> = read
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(_, t)| t.as_str())
            .collect();
        let mut detections = detector.detect_many(&texts)?.into_iter();
        for r in &read {
            done += 1;
            bar.inc(1);
            let line = match r {
                Ok((name, text)) => {
                    let d: Detection = detections.next().expect("one detection per text");
                    sentences += d.sentences.len();
                    with_spam += usize::from(!d.spans.is_empty());
                    let record = DocumentRecord::new(name, is_id, text, &d);
                    if let Some(dir) = &results {
                        dir.write(name, &(to_json(&record, true) + "\n"))?;
                        continue;
                    }
                    match args.format {
                        ClassifyFormat::Text => output::render_text(name, text, &d, color),
                        ClassifyFormat::Json => to_json(&record, true),
                        ClassifyFormat::Jsonl => to_json(&record, false),
                    }
                }
                Err((name, error)) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("sift: {error}"));
                    // For JSON Lines input the name is `FILE:LINE`, which locates the bad record.
                    let rec = ErrorRecord {
                        path: name.as_str(),
                        error: error.clone(),
                    };
                    if let Some(dir) = &results {
                        dir.write_error(name, &(to_json(&rec, true) + "\n"))?;
                        continue;
                    }
                    match args.format {
                        ClassifyFormat::Text => format!("== {name}: error: {error}\n"),
                        ClassifyFormat::Json => to_json(&rec, true),
                        ClassifyFormat::Jsonl => to_json(&rec, false),
                    }
                }
            };
            let sep = if args.format == ClassifyFormat::Json && !single_object && printed > 0 {
                ","
            } else {
                ""
            };
            bar.suspend(|| emit(&mut out, &format!("{sep}{}", line.trim_end())))?;
            printed += 1;
        }
    }
    if args.format == ClassifyFormat::Json && !single_object {
        emit(&mut out, "]")?;
    }
    bar.finish_and_clear();
    let interrupted = done < sources.len();
    if interrupted {
        let hint = if results.is_some() {
            "; run the same command with --resume to go on"
        } else {
            ""
        };
        eprintln!(
            "sift: interrupted: {done} of {} documents done, every finished result kept{hint}",
            sources.len()
        );
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let peak = sift::metrics::peak_rss_bytes().map_or("unknown".to_string(), |b| {
        format!("{:.2} GB", b as f64 / 1e9)
    });
    eprintln!(
        "sift: {done} documents ({failed} failed, {with_spam} with spam), {sentences} sentences in {secs:.1}s: {:.1} sentences/s, {:.2} documents/s, peak memory {peak}",
        sentences as f64 / secs,
        (done - failed) as f64 / secs
    );
    Ok(Outcome {
        failed,
        with_spam,
        interrupted,
    })
}

/// `sift clean PATH`: the cleaned text only.
pub fn clean(g: &GlobalArgs, path: &std::path::Path) -> Result<bool> {
    let text = sift::input::read_article(path)?;
    let device = g.device()?;
    let encoder = g.encoder(&device)?;
    let detector = Detector::new(&encoder, g.head(&device)?);
    let d = detector.detect(&text)?;
    let mut out = std::io::stdout().lock();
    out.write_all(d.clean_text.as_bytes())
        .map_err(|e| Error::io("<stdout>", e))?;
    if !d.clean_text.ends_with('\n') {
        out.write_all(b"\n").map_err(|e| Error::io("<stdout>", e))?;
    }
    Ok(true)
}

fn jsonl(path: &std::path::Path) -> Vec<std::result::Result<Source, (String, String)>> {
    if path == std::path::Path::new("-") {
        return sift::input::jsonl_sources(std::io::stdin().lock(), "-");
    }
    match std::fs::File::open(path) {
        Ok(f) => sift::input::jsonl_sources(BufReader::new(f), &path.display().to_string()),
        Err(e) => vec![Err((
            path.display().to_string(),
            format!("{}: {e}", path.display()),
        ))],
    }
}

fn to_json<T: serde::Serialize>(value: &T, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(value).expect("serialisable")
    } else {
        serde_json::to_string(value).expect("serialisable")
    }
}

fn emit(out: &mut impl Write, s: &str) -> Result<()> {
    writeln!(out, "{s}").map_err(|e| Error::io("<stdout>", e))
}
