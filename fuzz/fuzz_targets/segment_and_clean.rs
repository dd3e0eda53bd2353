//! Fuzz target over segmentation and span cleaning, the code every untrusted byte goes through before
//! any model: sentence and piece offsets must be in bounds, ordered, trimmed and on character
//! boundaries; span edges from `trim` and `snap_whitespace` must stay on boundaries; and the cleaned
//! text must be the input minus the spans.
//!
//! The input's first bytes choose span cut points; the rest, read as lossy UTF-8, is the article.
//!
//! The two source files are compiled in directly (`#[path]`): they depend on nothing but `serde`, and
//! building the whole `sift` crate (candle, tokenizers, the hub client) with sanitizers would take most
//! of an hour on a small machine. They are the very files the library uses.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/segment/mod.rs"]
mod segment;

#[allow(dead_code)]
#[path = "../../src/detect/spans.rs"]
mod spans;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (cuts, body) = data.split_at(8);
    let text = String::from_utf8_lossy(body);
    let text = text.as_ref();

    let mut last = 0;
    for s in segment::sentences(text) {
        assert!(s.start >= last && s.start < s.end && s.end <= text.len());
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        let piece = &text[s.start..s.end];
        assert_eq!(piece, piece.trim());
        last = s.end;
    }
    let max = 2 + usize::from(cuts[0] % 64);
    let mut last = 0;
    let mut kept = 0;
    for p in segment::pieces(text, max) {
        assert!(p.start >= last && p.start < p.end && p.end <= text.len());
        assert!(text.is_char_boundary(p.start) && text.is_char_boundary(p.end));
        let piece = &text[p.start..p.end];
        assert_eq!(piece, piece.trim());
        assert!(piece.chars().count() <= max);
        kept += piece.chars().filter(|c| !c.is_whitespace()).count();
        last = p.end;
    }
    // Pieces lose no character that is not whitespace.
    assert_eq!(kept, text.chars().filter(|c| !c.is_whitespace()).count());

    // Span cut points on character boundaries, chosen by the first bytes.
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let mut points: Vec<usize> = cuts[1..]
        .iter()
        .map(|&c| bounds[usize::from(c) * bounds.len() / 256])
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut pairs = Vec::new();
    for w in points.chunks_exact(2) {
        let (s, e) = spans::trim(text, w[0], w[1]);
        assert!(w[0] <= s && s <= e && e <= w[1]);
        if e > s {
            let (s2, e2) = spans::snap_whitespace(text, s, e);
            assert!(s2 <= s && e <= e2 && e2 <= text.len());
            assert!(text.is_char_boundary(s2) && text.is_char_boundary(e2));
            pairs.push((s2, e2));
        }
    }
    let merged: Vec<(usize, usize)> = spans::merge(
        pairs
            .iter()
            .map(|&(start, end)| spans::Span {
                start,
                end,
                score: 1.0,
            })
            .collect(),
    )
    .iter()
    .map(|s| (s.start, s.end))
    .collect();
    let cleaned = spans::clean_text(text, &merged);
    // The input minus the spans, exactly.
    let mut minus = String::new();
    let mut pos = 0;
    for &(s, e) in &merged {
        minus.push_str(&text[pos..s]);
        pos = e;
    }
    minus.push_str(&text[pos..]);
    // A span that is a whole line also takes one line break; nothing else may differ.
    let bytes = text.as_bytes();
    let whole_lines = merged
        .iter()
        .filter(|&&(s, e)| {
            (s == 0 || bytes[s - 1] == b'\n') && (e == text.len() || bytes[e] == b'\n')
        })
        .count();
    if whole_lines == 0 {
        assert_eq!(cleaned, minus);
    } else {
        let mut want = minus.chars().peekable();
        let mut dropped = 0;
        for c in cleaned.chars() {
            loop {
                match want.next() {
                    Some(w) if w == c => break,
                    Some('\n') => dropped += 1,
                    other => panic!("cleaned text differs from the input minus spans at {other:?}"),
                }
            }
        }
        dropped += want.inspect(|&w| assert_eq!(w, '\n')).count();
        assert!(dropped <= whole_lines);
        assert_eq!(cleaned.len() + dropped, minus.len());
    }
});
