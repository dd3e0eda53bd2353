//! From token probabilities to candidate spans, and from candidates to their exact edges.
//!
//! A candidate grows from a token the head is sure of (hysteresis: seeds at `high`, growth while
//! neighbours stay above `low`), so scattered, mildly odd tokens never start a span. Its edges are then
//! set by the text: a Latin, Thai or other spaced-script word is not cut in two unless the head is sure
//! its other part is genuine (or a `.` glues two sentences), while Hangul, which spammers glue straight
//! onto the next word (`통계퀄컴`), keeps the encoder's token edges. A phrase that
//! recurs verbatim is aligned across its occurrences: its edges are where the occurrences stop agreeing.

use crate::detect::spans::{self, Span};
use crate::error::Result;
use crate::segment;

/// Hysteresis thresholds for growing candidates.
#[derive(Debug, Clone, Copy)]
pub struct Growth {
    pub high: f32,
    pub low: f32,
    /// The rest of a spaced-script word joins a candidate unless its probability is below this.
    pub snap: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Hangul,
    Cjk,
    /// Latin, Cyrillic, Thai, digits and the rest of the spaced scripts.
    Word,
    Space,
    Punct,
}

fn script(c: char) -> Script {
    match c {
        c if c.is_whitespace() => Script::Space,
        '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}' => {
            Script::Hangul
        }
        '\u{3040}'..='\u{30FF}' | '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' => Script::Cjk,
        c if c.is_alphanumeric() || is_mark(c) => Script::Word,
        _ => Script::Punct,
    }
}

/// Hangul and CJK characters, which carry a syllable or a word each.
pub(crate) fn is_syllabic(c: char) -> bool {
    matches!(script(c), Script::Hangul | Script::Cjk)
}

/// Combining marks (Thai vowels and tones, Vietnamese diacritics) belong to their word.
fn is_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{0E31}' | '\u{0E34}'..='\u{0E3A}' | '\u{0E47}'..='\u{0E4E}')
}

/// Whether `c`, between two word characters, joins them (`t.me/xyz`, `casino77.com`, `e-mail`).
fn is_joiner(c: char) -> bool {
    matches!(
        c,
        '.' | '-' | '_' | '/' | '@' | ':' | '%' | '&' | '=' | '?' | '+' | '\''
    )
}

/// Whether tokens `a` and `b` (byte ranges in the sentence, `a` before `b`) meet at a glued change of
/// script, such as Thai running straight into Hangul.
fn script_seam(sentence: &str, a: (usize, usize), b: (usize, usize)) -> bool {
    let last = sentence[a.0..a.1].chars().next_back().map(script);
    let first = sentence[b.0..b.1].chars().next().map(script);
    match (last, first) {
        (Some(x), Some(y)) => {
            x != y
                && ![x, y]
                    .iter()
                    .any(|s| matches!(s, Script::Space | Script::Punct))
        }
        _ => false,
    }
}

/// Whether a `.` at or next to byte `at` of `s` glues two sentences (`country.instant cash`) rather
/// than joining the parts of a name (`casino77.com`, `t.me`): both sides are words longer than four
/// letters.
fn sentence_glue(s: &str, at: usize) -> bool {
    let dot = if s[at..].starts_with('.') {
        at
    } else if s[..at].ends_with('.') {
        at - 1
    } else {
        return false;
    };
    let left = s[..dot]
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric())
        .count();
    let right = s[dot + 1..]
        .chars()
        .take_while(|c| c.is_alphanumeric())
        .count();
    left > 4 && right > 4
}

/// Candidate spans (article byte offsets) in one sentence.
pub fn candidates(
    text: &str,
    sentence: &segment::Span,
    tokens: &[(usize, usize)],
    p: &[f32],
    growth: Growth,
) -> Vec<Span> {
    let s_text = &text[sentence.start..sentence.end];
    let n = p.len();
    let mut taken = vec![false; n];
    let mut out = Vec::new();
    let mut seeds: Vec<usize> = (0..n).filter(|&i| p[i] >= growth.high).collect();
    seeds.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    for seed in seeds {
        if taken[seed] {
            continue;
        }
        let (mut a, mut b) = (seed, seed);
        let grows = |from: usize, to: usize| {
            let bar = if script_seam(s_text, tokens[from.min(to)], tokens[from.max(to)]) {
                growth.high
            } else {
                growth.low
            };
            p[to] >= bar
        };
        loop {
            if a > 0 && !taken[a - 1] && grows(a, a - 1) {
                a -= 1;
            } else if a > 1
                && !taken[a - 2]
                && p[a - 2] >= growth.high
                && p[a - 1] >= growth.low / 2.0
            {
                // Bridge one weak token between two strong runs (`맨유 대 리버풀`).
                a -= 2;
            } else {
                break;
            }
        }
        loop {
            if b + 1 < n && !taken[b + 1] && grows(b, b + 1) {
                b += 1;
            } else if b + 2 < n
                && !taken[b + 2]
                && p[b + 2] >= growth.high
                && p[b + 1] >= growth.low / 2.0
            {
                b += 2;
            } else {
                break;
            }
        }
        // A spaced-script word is not cut in two, unless the head is sure its other part is genuine
        // (`ago.www.example.com` glued after a period).
        let glued_word = |x: usize, y: usize| {
            let (l, r) = (
                &s_text[tokens[x].0..tokens[x].1],
                &s_text[tokens[y].0..tokens[y].1],
            );
            tokens[x].1 == tokens[y].0
                && !r.starts_with(char::is_whitespace)
                && l.chars()
                    .next_back()
                    .is_some_and(|c| script(c) == Script::Word || is_joiner(c))
                && r.chars()
                    .next()
                    .is_some_and(|c| script(c) == Script::Word || is_joiner(c))
                && !sentence_glue(s_text, tokens[x].1)
        };
        while a > 0 && !taken[a - 1] && p[a - 1] >= growth.snap && glued_word(a - 1, a) {
            a -= 1;
        }
        while b + 1 < n && !taken[b + 1] && p[b + 1] >= growth.snap && glued_word(b, b + 1) {
            b += 1;
        }
        taken[a..=b].iter_mut().for_each(|t| *t = true);
        let score = p[a..=b].iter().sum::<f32>() / (b - a + 1) as f32;
        let (start, end) = edges(text, sentence, tokens[a].0, tokens[b].1);
        if end > start {
            out.push(Span { start, end, score });
        }
    }
    out
}

/// Sets a candidate's edges from its token range (sentence-relative) and returns article offsets.
fn edges(text: &str, sentence: &segment::Span, a: usize, b: usize) -> (usize, usize) {
    let (mut start, mut end) = spans::trim(text, sentence.start + a, sentence.start + b);
    if end <= start {
        return (start, start);
    }
    (start, end) = strip_separators(text, start, end);
    // Nearly the whole sentence: the whole sentence.
    let weight = |s: &str| s.chars().filter(|c| !c.is_whitespace()).count();
    if end > start
        && weight(&text[start..end]) * 100 >= weight(&text[sentence.start..sentence.end]) * 85
    {
        return (sentence.start, sentence.end);
    }
    (start, end)
}

/// Shrinks `[start, end)` past whitespace and separating punctuation at either edge: a span never
/// starts or ends on a comma or a dash (`,arsenal vs chelsea`).
fn strip_separators(text: &str, mut start: usize, mut end: usize) -> (usize, usize) {
    let sep = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';' | ':' | '·' | '、' | '，' | '|' | '/' | '-' | '–' | '—' | '.'
            )
    };
    while let Some(c) = text[start..end].chars().next().filter(|&c| sep(c)) {
        start += c.len_utf8();
    }
    while let Some(c) = text[start..end]
        .chars()
        .next_back()
        .filter(|&c| sep(c) && c != '.')
    {
        end -= c.len_utf8();
    }
    (start, end)
}

/// Longest substring of `core` (at least `min` characters, on character boundaries) that occurs at
/// least twice in `text`.
fn longest_repeated(text: &str, core: &str, min: usize) -> Option<String> {
    let bounds: Vec<usize> = core
        .char_indices()
        .map(|(i, _)| i)
        .chain([core.len()])
        .collect();
    let chars = bounds.len() - 1;
    for len in (min..=chars).rev() {
        for i in 0..=chars - len {
            let sub = &core[bounds[i]..bounds[i + len]];
            if sub.trim() != sub {
                continue;
            }
            if text.matches(sub).nth(1).is_some() {
                return Some(sub.to_string());
            }
        }
    }
    None
}

/// Every occurrence of `phrase`, grown left and right while all occurrences agree and stay inside
/// their sentences, as byte ranges.
fn maximal_repeat(text: &str, phrase: &str, sentences: &[segment::Span]) -> Vec<(usize, usize)> {
    let mut occ: Vec<(usize, usize)> = text
        .match_indices(phrase)
        .map(|(i, m)| (i, i + m.len()))
        .collect();
    let bounds: Vec<(usize, usize)> = occ
        .iter()
        .map(|&(s, e)| {
            sentences
                .iter()
                .find(|x| x.start <= s && e <= x.end)
                .map_or((s, e), |x| (x.start, x.end))
        })
        .collect();
    if occ.len() < 2 {
        return occ;
    }
    loop {
        let prev: Vec<Option<char>> = occ
            .iter()
            .zip(&bounds)
            .map(|(&(s, _), &(lo, _))| {
                if s > lo {
                    text[..s].chars().next_back()
                } else {
                    None
                }
            })
            .collect();
        match prev[0] {
            Some(c) if prev.iter().all(|&p| p == Some(c)) => {
                occ.iter_mut().for_each(|o| o.0 -= c.len_utf8())
            }
            _ => break,
        }
    }
    loop {
        let next: Vec<Option<char>> = occ
            .iter()
            .zip(&bounds)
            .map(|(&(_, e), &(_, hi))| {
                if e < hi {
                    text[e..].chars().next()
                } else {
                    None
                }
            })
            .collect();
        match next[0] {
            Some(c) if next.iter().all(|&n| n == Some(c)) => {
                occ.iter_mut().for_each(|o| o.1 += c.len_utf8())
            }
            _ => break,
        }
    }
    occ.into_iter()
        .map(|(s, e)| strip_separators(text, s, e))
        .filter(|(s, e)| e > s)
        .collect()
}

/// Phrases glued straight after a comma or a period (`강서구,무직자 대출 당일 승인인천`) at two
/// or more places, the spammer's seam: each as its occurrences (byte ranges), grown right while they
/// agree and kept inside their sentences. Only phrases of at least `min_chars` characters count; the
/// phrase test decides whether one is spam (a name a story repeats after commas is not).
pub fn glued_repeats(
    text: &str,
    sentences: &[segment::Span],
    min_chars: usize,
) -> Vec<Vec<(usize, usize)>> {
    let seams: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| {
            matches!(c, ',' | '.')
                && text[..i]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_alphanumeric)
                && text[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphanumeric)
        })
        .map(|(i, _)| i + 1)
        .collect();
    // What follows each seam, up to the end of its sentence or line.
    let tails: Vec<&str> = seams
        .iter()
        .map(|&at| {
            let end = sentences
                .iter()
                .find(|x| x.start <= at && at < x.end)
                .map_or(text.len(), |x| x.end)
                .min(text[at..].find('\n').map_or(text.len(), |n| at + n));
            &text[at..end.max(at)]
        })
        .collect();
    // Seams compared only with those whose tail opens with the same character.
    let mut by_first: std::collections::HashMap<char, Vec<usize>> = Default::default();
    for (k, tail) in tails.iter().enumerate() {
        if let Some(c) = tail.chars().next() {
            by_first.entry(c).or_default().push(k);
        }
    }
    let mut out: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut taken = vec![false; seams.len()];
    for k in 0..seams.len() {
        if taken[k] {
            continue;
        }
        let Some(first) = tails[k].chars().next() else {
            continue;
        };
        for &j in by_first[&first].iter().filter(|&&j| j > k) {
            let common: usize = tails[k]
                .chars()
                .zip(tails[j].chars())
                .take_while(|(x, y)| x == y)
                .map(|(x, _)| x.len_utf8())
                .sum();
            let (s, e) = strip_separators(text, seams[k], seams[k] + common);
            if e <= s || text[s..e].chars().count() < min_chars {
                continue;
            }
            let phrase = &text[s..e];
            let occ: Vec<usize> = by_first[&first]
                .iter()
                .copied()
                .filter(|&x| tails[x].starts_with(phrase))
                .collect();
            occ.iter().for_each(|&x| taken[x] = true);
            out.push(
                occ.into_iter()
                    .map(|x| (seams[x], seams[x] + phrase.len()))
                    .collect(),
            );
            break;
        }
    }
    out
}

/// Aligns kept spans with the phrases they repeat. When part of a kept span recurs verbatim elsewhere,
/// the repeat is grown to where its occurrences stop agreeing; if two occurrences hold kept spans, or
/// one does and `confirm` (the phrase test) accepts the repeat, every occurrence becomes a span with
/// the repeat's edges. A kept span that is a whole sentence keeps its own edges.
pub fn align_repeats(
    text: &str,
    kept: Vec<Span>,
    sentences: &[segment::Span],
    min_chars: usize,
    confirm: &mut dyn FnMut(&str) -> Result<bool>,
) -> Result<Vec<Span>> {
    let whole = |s: &Span| {
        sentences
            .iter()
            .any(|x| x.start == s.start && x.end == s.end)
    };
    let mut out: Vec<Span> = Vec::new();
    let mut replaced = vec![false; kept.len()];
    for (i, k) in kept.iter().enumerate() {
        if replaced[i] {
            continue;
        }
        let Some(core) = longest_repeated(text, &text[k.start..k.end], min_chars) else {
            continue;
        };
        let occ = maximal_repeat(text, &core, sentences);
        let overlaps = |o: &(usize, usize), s: &Span| o.0 < s.end && s.start < o.1;
        let holders: Vec<usize> = (0..kept.len())
            .filter(|&j| occ.iter().any(|o| overlaps(o, &kept[j])))
            .collect();
        let confirmed = occ
            .iter()
            .filter(|o| kept.iter().any(|s| overlaps(o, s)))
            .count();
        let Some(&(a, b)) = occ.first() else { continue };
        if confirmed < 2 && !(confirmed == 1 && confirm(&text[a..b])?) {
            continue;
        }
        let score = holders.iter().map(|&j| kept[j].score).fold(0.0, f32::max);
        for &j in &holders {
            replaced[j] = !whole(&kept[j]);
        }
        out.extend(occ.iter().map(|&(start, end)| Span { start, end, score }));
    }
    out.extend(
        kept.iter()
            .zip(&replaced)
            .filter(|(_, r)| !**r)
            .map(|(s, _)| *s),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_spaced_scripts_are_kept_whole_unless_the_head_objects() {
        let t = "said ago.www.casino77.com now";
        // Tokens: "said", " ago", ".", "www", ".", "casino", "77", ".", "com", " now"
        let cuts = [0, 4, 8, 9, 12, 13, 19, 21, 22, 25, 29];
        let tokens: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        let s = segment::Span {
            start: 0,
            end: t.len(),
        };
        let g = Growth {
            high: 0.85,
            low: 0.5,
            snap: 0.15,
        };
        let p = [0.0, 0.05, 0.3, 0.2, 0.9, 0.95, 0.9, 0.3, 0.3, 0.0];
        let c = candidates(t, &s, &tokens, &p, g);
        assert_eq!(&t[c[0].start..c[0].end], "www.casino77.com");
        let k = "통계퀄컴 등";
        let tk = [(0, 6), (6, 9), (9, 12), (12, 16)];
        let c = candidates(
            k,
            &segment::Span {
                start: 0,
                end: k.len(),
            },
            &tk,
            &[0.9, 0.3, 0.3, 0.0],
            g,
        );
        assert_eq!(&k[c[0].start..c[0].end], "통계", "Hangul keeps token edges");
    }

    #[test]
    fn phrases_glued_after_commas_at_two_places_are_found() {
        let t = "A씨는 서울 강서구,무직자 대출 당일 승인인천 미추홀구에서 빌라를 샀다.\n\
                 피해자들은 약자였고,무직자 대출 당일 승인전 재산을 잃었다. 이 회장은,삼성 등과 만났다.";
        let sentences = segment::sentences(t);
        let found = glued_repeats(t, &sentences, 6);
        let phrases: Vec<Vec<&str>> = found
            .iter()
            .map(|o| o.iter().map(|&(s, e)| &t[s..e]).collect())
            .collect();
        assert_eq!(
            phrases,
            vec![vec!["무직자 대출 당일 승인", "무직자 대출 당일 승인"]]
        );
        // One glued phrase alone, or repeats shorter than the minimum, are not found.
        assert!(glued_repeats(
            "가,나다라마바사 아.",
            &segment::sentences("가,나다라마바사 아."),
            6
        )
        .is_empty());
        let short = "서울,인천 가. 부산,인천 나.";
        assert!(glued_repeats(short, &segment::sentences(short), 6).is_empty());
    }

    #[test]
    fn repeats_are_aligned_to_where_occurrences_disagree() {
        let t = "메타,아마존,비셀 고베 대 fc 통계퀄컴 등. 그리고,비셀 고베 대 fc 통계삼성은 갔다.";
        let s1 = t.find("고베 대").unwrap();
        let s2 = t.rfind("고베 대").unwrap();
        let kept = vec![
            Span {
                start: s1,
                end: s1 + "고베 대 fc".len(),
                score: 0.9,
            },
            Span {
                start: s2,
                end: s2 + "고베 대 fc 통계삼".len(),
                score: 0.8,
            },
        ];
        let sents = segment::sentences(t);
        let out = spans::merge(align_repeats(t, kept, &sents, 6, &mut |_| Ok(false)).unwrap());
        let texts: Vec<&str> = out.iter().map(|s| &t[s.start..s.end]).collect();
        assert_eq!(texts, ["비셀 고베 대 fc 통계", "비셀 고베 대 fc 통계"]);
    }

    #[test]
    fn growth_needs_a_sure_seed_and_bridges_one_weak_token() {
        let t = "aa bb cc dd ee";
        let s = segment::Span {
            start: 0,
            end: t.len(),
        };
        let tokens: Vec<(usize, usize)> = (0..5).map(|i| (i * 3, i * 3 + 2)).collect();
        let g = Growth {
            high: 0.85,
            low: 0.35,
            snap: 0.15,
        };
        assert!(candidates(t, &s, &tokens, &[0.6, 0.7, 0.8, 0.6, 0.5], g).is_empty());
        let c = candidates(t, &s, &tokens, &[0.1, 0.9, 0.2, 0.95, 0.1], g);
        assert_eq!(c.len(), 1);
        assert_eq!(&t[c[0].start..c[0].end], "bb cc dd");
    }
}
