//! Result records: what `sift classify` prints for a document, in JSON or as text for a terminal.

use serde::Serialize;

use crate::detect::{Detection, Label};

#[derive(Debug, Serialize)]
pub struct SpanRecord<'a> {
    pub start: usize,
    pub end: usize,
    pub text: &'a str,
    pub score: f32,
}

#[derive(Debug, Serialize)]
pub struct SentenceRecord {
    pub start: usize,
    pub end: usize,
    pub label: Label,
    pub score: f32,
}

/// One document's result. Offsets are UTF-8 byte offsets into the input, end exclusive.
#[derive(Debug, Serialize)]
pub struct DocumentRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    pub clean_text: &'a str,
    pub spans: Vec<SpanRecord<'a>>,
    pub sentences: Vec<SentenceRecord>,
}

impl<'a> DocumentRecord<'a> {
    /// `name` goes to `path`, or to `id` for JSON Lines input.
    pub fn new(name: &'a str, is_id: bool, text: &'a str, d: &'a Detection) -> Self {
        Self {
            path: (!is_id).then_some(name),
            id: is_id.then_some(name),
            clean_text: &d.clean_text,
            spans: d
                .spans
                .iter()
                .map(|s| SpanRecord {
                    start: s.start,
                    end: s.end,
                    text: &text[s.start..s.end],
                    score: s.score,
                })
                .collect(),
            sentences: d
                .sentences
                .iter()
                .map(|s| SentenceRecord {
                    start: s.start,
                    end: s.end,
                    label: s.label,
                    score: s.score,
                })
                .collect(),
        }
    }
}

/// A document that could not be processed.
#[derive(Debug, Serialize)]
pub struct ErrorRecord<'a> {
    pub path: &'a str,
    pub error: String,
}

const RED: &str = "\x1b[1;31m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Text view: each sentence on a line with its label; spans highlighted in colour when `color`, else
/// bracketed with `[[` and `]]`.
pub fn render_text(name: &str, text: &str, d: &Detection, color: bool) -> String {
    let mut out = format!("== {name}: {} spam span(s)\n", d.spans.len());
    for s in &d.sentences {
        let label = match s.label {
            Label::Genuine => "genuine",
            Label::Mixed => "mixed  ",
            Label::Spam => "spam   ",
        };
        let mut line = String::new();
        let mut pos = s.start;
        for sp in d
            .spans
            .iter()
            .filter(|sp| sp.start < s.end && s.start < sp.end)
        {
            let (a, b) = (sp.start.max(s.start), sp.end.min(s.end));
            line.push_str(&text[pos..a]);
            let (open, close) = if color { (RED, RESET) } else { ("[[", "]]") };
            line.push_str(open);
            line.push_str(&text[a..b]);
            line.push_str(close);
            pos = b;
        }
        line.push_str(&text[pos..s.end]);
        let tag = if color && s.label == Label::Genuine {
            format!("{DIM}{label}{RESET}")
        } else {
            label.to_string()
        };
        out.push_str(&format!("{tag} {:.2}  {line}\n", s.score));
    }
    out
}
