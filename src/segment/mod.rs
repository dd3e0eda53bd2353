//! Sentence segmentation with byte offsets into the input exactly as read.
//!
//! Scraped Korean news breaks the usual rules: a sentence's period is often glued to the next sentence
//! (`만났다.이 회장은`), headlines and bylines end without punctuation, `…` separates clauses in
//! headlines, and numbers (`3.5%`), codes (`005930`) and abbreviations (`U.S.`) carry dots that end
//! nothing. Every line break ends a segment; inside a line, a segment ends after `.`, `?`, `!` or `…`
//! (with any closing quotes or brackets) when what follows starts a new sentence. Offsets are UTF-8 byte
//! offsets, end exclusive, always on character boundaries, with surrounding whitespace trimmed.
//!
//! Scraped pages also hold lines of tens of thousands of characters with no sentence end (keyword
//! stuffing, pasted tables). A model reads a bounded number of tokens, so [`pieces`] cuts such segments
//! at whitespace into pieces a model can read whole; every character of the text stays in some piece.

/// One segment: `text[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// Words whose trailing dot does not end a sentence (compared without case).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "inc", "ltd", "corp", "co", "vs",
    "etc", "e.g", "i.e", "no", "gov", "gen", "sen", "rep", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "e.u", "a.m", "p.m",
    "approx", "est",
];

/// Splits `text` into sentence spans.
pub fn sentences(text: &str) -> Vec<Span> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c == '\n' || c == '\r' {
            push_trimmed(text, start, at, &mut out);
            start = at + c.len_utf8();
            i += 1;
            continue;
        }
        if matches!(c, '.' | '?' | '!' | '…' | '。') {
            // Runs like `?!` or `...` end together.
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j].1, '.' | '?' | '!' | '…') {
                j += 1;
            }
            let mut closed = false;
            while j < chars.len() && is_closing(chars[j].1) {
                j += 1;
                closed = true;
            }
            if ends_sentence(text, &chars, i, j, closed) {
                let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
                push_trimmed(text, start, end, &mut out);
                start = end;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

/// Sentences, with any longer than `max_chars` characters cut into pieces of at most `max_chars`: at
/// the last whitespace in the second half of the window, or at the window's end when there is none.
pub fn pieces(text: &str, max_chars: usize) -> Vec<Span> {
    let max_chars = max_chars.max(2);
    let mut out = Vec::new();
    for s in sentences(text) {
        let mut start = s.start;
        loop {
            let rest = &text[start..s.end];
            let Some(limit) = rest.char_indices().nth(max_chars).map(|(i, _)| start + i) else {
                push_trimmed(text, start, s.end, &mut out);
                break;
            };
            let half = rest
                .char_indices()
                .nth(max_chars / 2)
                .map_or(limit, |(i, _)| start + i);
            let cut = text[half..limit]
                .char_indices()
                .rev()
                .find(|(_, c)| c.is_whitespace())
                .map_or(limit, |(i, _)| half + i);
            push_trimmed(text, start, cut, &mut out);
            start = cut;
        }
    }
    out
}

fn is_closing(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '”' | '’' | ')' | ']' | '」' | '』' | '》' | '〉'
    )
}

/// Whether the punctuation at `chars[i]`, with the run up to `chars[j]`, ends a sentence.
fn ends_sentence(text: &str, chars: &[(usize, char)], i: usize, j: usize, closed: bool) -> bool {
    let Some(&(_, next)) = chars.get(j) else {
        return true;
    };
    let mark = chars[i].1;
    if mark == '.' && j == i + 1 && !closed {
        let prev = i.checked_sub(1).map(|p| chars[p].1);
        // 3.5%, 1.200, v2.0: a dot between digits.
        if prev.is_some_and(|p| p.is_ascii_digit()) && next.is_ascii_digit() {
            return false;
        }
        if is_abbreviation(text, chars, i) {
            return false;
        }
    }
    if next.is_whitespace() {
        // After a space, a lower-case Latin word continues the sentence (`approx. five`).
        let after = chars[j..]
            .iter()
            .map(|&(_, c)| c)
            .find(|c| !c.is_whitespace());
        return !after.is_some_and(|c| c.is_lowercase());
    }
    if closed {
        // `"…하자."고 말했다`: a quote closed and glued to the next word is reported speech.
        return false;
    }
    // Glued to the next sentence: `만났다.이 회장은`, `said.The`. Not `U.S` or `e.g`.
    let continues = next.is_ascii_punctuation() || next.is_lowercase() || next.is_ascii_digit();
    let initial = mark == '.' && next.is_ascii_uppercase() && single_letter_before(chars, i);
    !(continues || initial)
}

/// The word before the dot at `chars[i]` (letters and inner dots) is a known abbreviation or an
/// initial.
fn is_abbreviation(text: &str, chars: &[(usize, char)], i: usize) -> bool {
    // The longest abbreviation is a few letters: looking further back would make a run like
    // `a.a.a.a…` cost time quadratic in its length.
    const LONGEST: usize = 8;
    let mut k = i;
    while k > 0
        && i - k <= LONGEST
        && (chars[k - 1].1.is_alphabetic() || chars[k - 1].1 == '.')
        && chars[k - 1].1.is_ascii()
    {
        k -= 1;
    }
    if i - k > LONGEST {
        return false;
    }
    if k == i {
        return false;
    }
    let word = text[chars[k].0..chars[i].0].to_ascii_lowercase();
    let initial = word.len() == 1
        && word.chars().all(|c| c.is_ascii_alphabetic())
        && chars[k].1.is_ascii_uppercase();
    initial || ABBREVIATIONS.contains(&word.as_str())
}

fn single_letter_before(chars: &[(usize, char)], i: usize) -> bool {
    i >= 1 && chars[i - 1].1.is_ascii_uppercase() && (i < 2 || !chars[i - 2].1.is_alphanumeric())
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<Span>) {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    if lead + trail < s.len() {
        out.push(Span {
            start: start + lead,
            end: end - trail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(t: &str) -> Vec<&str> {
        sentences(t).iter().map(|s| &t[s.start..s.end]).collect()
    }

    #[test]
    fn korean_scraped_news_quirks() {
        let cases: &[(&str, &[&str])] = &[
            (
                "다시 만났다.이 회장은 이외에도 아마존,퀄컴 등과 만났다.",
                &["다시 만났다.", "이 회장은 이외에도 아마존,퀄컴 등과 만났다."],
            ),
            (
                "저커버크 메타 CEO 자택 초대받아…아마존·퀄컴 CEO와도 회동\n이재용,이달 말 글로벌전략회의",
                &["저커버크 메타 CEO 자택 초대받아…", "아마존·퀄컴 CEO와도 회동", "이재용,이달 말 글로벌전략회의"],
            ),
            (
                "(서울=뉴스1) 홍길동 기자 =\n삼성전자(005930) 주가는 3.5% 올랐다. 거래량은 1.2배였다.",
                &["(서울=뉴스1) 홍길동 기자 =", "삼성전자(005930) 주가는 3.5% 올랐다.", "거래량은 1.2배였다."],
            ),
            (
                "그는 “삼성답게 미래를 개척하자.”고 말했다. 이어 “감사합니다.” 다음 문장.",
                &["그는 “삼성답게 미래를 개척하자.”고 말했다.", "이어 “감사합니다.”", "다음 문장."],
            ),
            (
                "정말일까?그렇다!  끝…",
                &["정말일까?", "그렇다!", "끝…"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(split(input), *want, "{input}");
        }
    }

    #[test]
    fn english_prose_and_abbreviations() {
        let cases: &[(&str, &[&str])] = &[
            (
                "SEOUL, June 3 (Reuters) - U.S. officials met Dr. Kim at 9 a.m. on Monday. Shares rose 2.5%.",
                &["SEOUL, June 3 (Reuters) - U.S. officials met Dr. Kim at 9 a.m. on Monday.", "Shares rose 2.5%."],
            ),
            (
                "He said \"no.\" Then he left... Was it over? Yes!",
                &["He said \"no.\"", "Then he left...", "Was it over?", "Yes!"],
            ),
            (
                "J. Smith of Acme Inc. spoke. It ended.The next one began.",
                &["J. Smith of Acme Inc. spoke.", "It ended.", "The next one began."],
            ),
            ("Version 2.0 shipped on Jan. 5 in the U.S.", &["Version 2.0 shipped on Jan. 5 in the U.S."]),
        ];
        for (input, want) in cases {
            assert_eq!(split(input), *want, "{input}");
        }
    }

    #[test]
    fn offsets_are_trimmed_char_boundaries_covering_all_text() {
        let t = "  첫 문장.둘째 문장!\r\n\n 셋째 “인용.” \t";
        let spans = sentences(t);
        let mut covered = String::new();
        for s in &spans {
            assert!(t.is_char_boundary(s.start) && t.is_char_boundary(s.end));
            let piece = &t[s.start..s.end];
            assert_eq!(piece, piece.trim());
            covered.push_str(piece);
        }
        let non_space: String = t.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(
            covered
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>(),
            non_space
        );
        assert!(sentences("").is_empty() && sentences(" \n\t ").is_empty());
    }

    #[test]
    fn long_segments_are_cut_at_whitespace_and_lose_nothing() {
        let t = format!("짧은 문장.\n{}끝", "가나다 라마 ".repeat(50));
        let ps = pieces(&t, 40);
        assert_eq!(&t[ps[0].start..ps[0].end], "짧은 문장.");
        let mut covered = String::new();
        for p in &ps {
            let piece = &t[p.start..p.end];
            assert!(piece.chars().count() <= 40, "{piece}");
            assert_eq!(piece, piece.trim());
            covered.push_str(piece);
        }
        let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        assert_eq!(strip(&covered), strip(&t));
        // No whitespace at all: cut at the window's end, still on character boundaries.
        let t = "가".repeat(101);
        let ps = pieces(&t, 50);
        assert_eq!(ps.len(), 3);
        assert_eq!((ps[0].start, ps[0].end, ps[2].end), (0, 150, 303));
        // Short sentences are left alone.
        assert_eq!(pieces("One. Two.", 400), sentences("One. Two."));
    }

    #[test]
    fn long_dotted_runs_are_linear() {
        let t = "a.".repeat(200_000);
        let started = std::time::Instant::now();
        let n = sentences(&t).len();
        assert!(n >= 1);
        assert!(
            started.elapsed().as_secs_f64() < 5.0,
            "{:?}",
            started.elapsed()
        );
    }
}
