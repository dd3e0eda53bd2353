//! Byte spans of injected text: how they meet the whitespace around them, and what the article is
//! once they are removed.
//!
//! The convention (the one the development set's gold follows): a span is what the spammer inserted.
//! Glued into text it carries no whitespace; standing between two spaces it carries the one after it,
//! so removal leaves single spacing; appended after a line's last word it carries the space before it.
//! Removing a span that is a whole line also removes that line's break.

use serde::Serialize;

/// An injected span: `text[start..end]`, UTF-8 byte offsets, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub score: f32,
}

/// Applies the whitespace convention to a span of non-space text `[start, end)`.
pub fn snap_whitespace(text: &str, start: usize, end: usize) -> (usize, usize) {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let line_start = before.is_none_or(|c| c == '\n');
    let line_end = after.is_none_or(|c| c == '\n' || c == '\r');
    match (before, after) {
        // `word SPAM word` or `SPAM word` at a line's start: take the space after.
        (_, Some(' ')) if before == Some(' ') || line_start => (start, end + 1),
        // `word SPAM` at a line's end: take the space before.
        (Some(' '), _) if line_end => (start - 1, end),
        _ => (start, end),
    }
}

/// Shrinks `[start, end)` to exclude surrounding whitespace.
pub fn trim(text: &str, start: usize, end: usize) -> (usize, usize) {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    if lead + trail >= s.len() {
        return (start, start);
    }
    (start + lead, end - trail)
}

/// Sorts spans and merges those that overlap or touch, keeping the higher score.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| s.end > s.start);
    spans.sort_by_key(|s| (s.start, s.end));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start <= last.end => {
                last.end = last.end.max(s.end);
                last.score = last.score.max(s.score);
            }
            _ => out.push(s),
        }
    }
    out
}

/// The article without the spans (sorted, disjoint); a span that is a whole line takes its line
/// break with it (the one after it, or before it on the last line).
pub fn clean_text(text: &str, spans: &[(usize, usize)]) -> String {
    let bytes = text.as_bytes();
    let mut cut: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for &(start, end) in spans {
        let line_start = start == 0 || bytes[start - 1] == b'\n';
        let (mut s, mut e) = (start, end);
        if line_start && bytes.get(end) == Some(&b'\n') {
            e += 1;
        } else if line_start && end == bytes.len() && start > 0 {
            s -= 1;
        }
        cut.push((s, e));
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (s, e) in cut {
        if s > pos {
            out.push_str(&text[pos..s]);
        }
        pos = pos.max(e);
    }
    out.push_str(&text[pos.min(text.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(text: &str, needle: &str) -> String {
        let start = text.find(needle).unwrap();
        let (s, e) = snap_whitespace(text, start, start + needle.len());
        text[s..e].to_string()
    }

    #[test]
    fn whitespace_convention() {
        assert_eq!(snap("메타,아마존,SPAM퀄컴 등", "SPAM"), "SPAM");
        assert_eq!(snap("a word SPAM word b", "SPAM"), "SPAM ");
        assert_eq!(snap("SPAM word\nnext", "SPAM"), "SPAM ");
        assert_eq!(snap("ends with SPAM\nnext", "SPAM"), " SPAM");
        assert_eq!(snap("ends with SPAM", "SPAM"), " SPAM");
        assert_eq!(snap("first\nSPAM\nlast", "SPAM"), "SPAM");
        assert_eq!(snap("said.SPAM The", "SPAM"), "SPAM");
    }

    #[test]
    fn cleaning_removes_whole_lines_with_their_break() {
        let t = "SPAM LINE\nbody,GLUEDtext\nmiddle\nSPAM2\nend\nLAST";
        let find = |n: &str| {
            let s = t.find(n).unwrap();
            (s, s + n.len())
        };
        let spans = [
            find("SPAM LINE"),
            find("GLUED"),
            find("SPAM2"),
            find("LAST"),
        ];
        assert_eq!(clean_text(t, &spans), "body,text\nmiddle\nend");
        assert_eq!(clean_text(t, &[]), t);
        assert_eq!(clean_text("only", &[(0, 4)]), "");
    }

    #[test]
    fn merging_sorts_and_joins() {
        let s = |a, b, c| Span {
            start: a,
            end: b,
            score: c,
        };
        let merged = merge(vec![
            s(10, 12, 0.5),
            s(0, 3, 0.9),
            s(2, 5, 0.7),
            s(5, 6, 0.2),
            s(8, 8, 1.0),
        ]);
        assert_eq!(merged, vec![s(0, 6, 0.9), s(10, 12, 0.5)]);
    }
}
