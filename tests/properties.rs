//! Properties of segmentation and span cleaning on arbitrary text: offsets in bounds and on character
//! boundaries, segments trimmed and in order, long segments cut into bounded pieces that lose no
//! character, and clean text equal to the input minus the spans. `fuzz/` holds a `cargo fuzz` target
//! for the same properties on arbitrary bytes.

use proptest::prelude::*;
use sift::detect::spans;

/// Text drawn from the characters scraped news is made of, Korean and English, with the punctuation
/// and whitespace the segmenter cares about.
fn article() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "삼성",
        "전자",
        "회장",
        "이",
        "다",
        "는",
        ".",
        ",",
        "…",
        "“",
        "”",
        "\"",
        "'",
        "(",
        ")",
        " ",
        "  ",
        "\n",
        "\r\n",
        "U.S.",
        "3.5%",
        "005930",
        "Dr.",
        "said",
        "The",
        "a",
        "?",
        "!",
        "fc",
        "통계",
        "t.me/x",
        "แทง",
        "\t",
        "。",
    ]);
    prop::collection::vec(pieces, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn segments_are_ordered_trimmed_char_boundaries(text in article()) {
        let mut last = 0;
        for s in sift::segment::sentences(&text) {
            prop_assert!(s.start >= last && s.start < s.end && s.end <= text.len());
            prop_assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            let piece = &text[s.start..s.end];
            prop_assert_eq!(piece, piece.trim());
            last = s.end;
        }
    }

    #[test]
    fn pieces_are_bounded_and_lose_nothing(text in article(), max in 2usize..40) {
        let mut last = 0;
        let mut kept = String::new();
        for p in sift::segment::pieces(&text, max) {
            prop_assert!(p.start >= last && p.start < p.end && p.end <= text.len());
            prop_assert!(text.is_char_boundary(p.start) && text.is_char_boundary(p.end));
            let piece = &text[p.start..p.end];
            prop_assert_eq!(piece, piece.trim());
            prop_assert!(piece.chars().count() <= max);
            kept.extend(piece.chars().filter(|c| !c.is_whitespace()));
            last = p.end;
        }
        let all: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        prop_assert_eq!(kept, all);
    }

    #[test]
    fn snapped_spans_stay_on_boundaries(text in article(), a in 0usize..400, b in 0usize..400) {
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        let (a, b) = (bounds[a % bounds.len()], bounds[b % bounds.len()]);
        let (a, b) = (a.min(b), a.max(b));
        let (s, e) = spans::trim(&text, a, b);
        prop_assert!(s <= e && a <= s && e <= b);
        if e > s {
            let (s2, e2) = spans::snap_whitespace(&text, s, e);
            prop_assert!(s2 <= s && e <= e2 && e2 <= text.len());
            prop_assert!(text.is_char_boundary(s2) && text.is_char_boundary(e2));
        }
    }

    #[test]
    fn clean_text_is_the_input_minus_the_spans(text in article(), cuts in prop::collection::vec(0usize..400, 0..8)) {
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| bounds[c % bounds.len()]).collect();
        points.sort_unstable();
        points.dedup();
        let mut pairs: Vec<(usize, usize)> = points.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        // Whole-line spans also take their line break; the others are removed exactly.
        let whole_line = |&(s, e): &(usize, usize)| {
            (s == 0 || text.as_bytes()[s - 1] == b'\n') && (e == text.len() || text.as_bytes()[e] == b'\n')
        };
        pairs.retain(|p| !whole_line(p));
        let cleaned = spans::clean_text(&text, &pairs);
        let mut expect = String::new();
        let mut pos = 0;
        for &(s, e) in &pairs {
            expect.push_str(&text[pos..s]);
            pos = e;
        }
        expect.push_str(&text[pos..]);
        prop_assert_eq!(cleaned, expect);
    }
}
