//! Names of countries, regions, cities, bodies, well-known companies and people that Korean and
//! English write differently, for the translations (and, in a Korean translation of an English
//! article, the names it may not make up: [`super::ground::Grounding::check`]).
//!
//! A translation's names are licensed when they sound like a name of the other side ([`super::romanize`]),
//! and that is no help where the names do not sound alike (독일 = Germany, 연준 = Fed) or are too short
//! to be told apart by their sound (서울 = Seoul: s-l). The model knows these, but its knowledge was
//! not trusted: `The US Bitcoin ETF ...` was refused (`name US is not in the article`) for 미국, and an
//! English article's Germany was listed for the Korean translation as `Germany = Germany`. This table,
//! `data/exonyms.tsv`, is general knowledge: each row gives the Korean name and the English ones.

use std::sync::OnceLock;

use super::ground::is_hangul;

/// One place or body: its Korean name and its English names, the usual one first.
#[derive(Debug)]
pub struct Exonym {
    pub korean: &'static str,
    pub english: Vec<&'static str>,
    /// An organisation (the Fed, the WHO), not a place.
    pub body: bool,
}

/// The whole table, read once from the built-in `data/exonyms.tsv`.
pub fn table() -> &'static [Exonym] {
    static TABLE: OnceLock<Vec<Exonym>> = OnceLock::new();
    TABLE.get_or_init(|| parse(include_str!("../../data/exonyms.tsv")))
}

fn parse(text: &'static str) -> Vec<Exonym> {
    rows(text)
        .map(|(korean, english, flag)| Exonym {
            korean,
            english,
            body: flag == Some("body"),
        })
        .collect()
}

/// The rows of a table of Korean and English words (this one, [`super::terms`]): one per line, the
/// Korean, a tab, the English ones separated by `|`, and optionally a tab and a flag; blank lines
/// and lines opening with `#` are left out.
pub fn rows(
    text: &'static str,
) -> impl Iterator<Item = (&'static str, Vec<&'static str>, Option<&'static str>)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut columns = l.split('\t');
            let (korean, english) = (columns.next()?, columns.next()?);
            let english = english.split('|').map(str::trim).collect();
            Some((korean.trim(), english, columns.next().map(str::trim)))
        })
}

/// The rows whose Korean name opens a word of `text` (a particle may follow it: 미국의, 독일은),
/// the longest where two open the same word (인도네시아, not 인도).
pub fn in_korean(text: &str) -> Vec<&'static Exonym> {
    opening_words(text, table(), |e| e.korean)
}

/// The rows of `rows` whose Korean (`korean` of a row) opens a word of `text`, each once, in the
/// order found; the longest where two open the same word. Korean writes particles and endings on
/// the word, so a row names the start of one; inside a word it is another word (무엇이란 is no
/// 이란).
pub fn opening_words<'r, T>(text: &str, rows: &'r [T], korean: impl Fn(&T) -> &str) -> Vec<&'r T> {
    let mut out: Vec<&'r T> = Vec::new();
    let mut prev: Option<char> = None;
    for (at, c) in text.char_indices() {
        let opens = is_hangul(c) && !prev.is_some_and(is_hangul);
        prev = Some(c);
        if !opens {
            continue;
        }
        let rest = &text[at..];
        let found = rows
            .iter()
            .filter(|e| rest.starts_with(korean(e)))
            .max_by_key(|e| korean(e).len());
        if let Some(e) = found {
            if !out.iter().any(|o| std::ptr::eq(*o, e)) {
                out.push(e);
            }
        }
    }
    out
}

/// The rows with an English name that `text` writes as whole words, each with the name found
/// (`U.S.` in `the U.S. Department`; not `US` in `USB`).
pub fn in_english(text: &str) -> Vec<(&'static str, &'static Exonym)> {
    let mut out = Vec::new();
    for e in table() {
        if let Some(name) = e.english.iter().find(|n| writes(text, n)) {
            out.push((*name, e));
        }
    }
    out
}

/// Whether `english`, given as the translation of the Korean name `korean`, opens with a name of
/// the table (`Federal Reserve Board`, `Seoul Tower`) that `korean` does not contain the Korean
/// of: the model listed 금융위원회, Korea's Financial Services Commission, as `Federal Reserve
/// Board`, 금융당국 as `Federal Reserve Bank`, and 수도권 빌라 (villas around the capital) as `Seoul
/// Tower`. A name in Latin letters (an acronym: `KAMA = Korean Automobile Mobility Industry
/// Association`) shows no Korean to hold a place's name, so for it only bodies count. A table name
/// further in (`... of Korea`) is a translation's business.
pub fn misnamed(korean: &str, english: &str) -> bool {
    let opens = |name: &str| {
        english.starts_with(name)
            && !english[name.len()..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
    };
    let hangul = korean.chars().any(is_hangul);
    let rows: Vec<&Exonym> = table()
        .iter()
        .filter(|e| (e.body || hangul) && e.english.iter().any(|n| opens(n)))
        .collect();
    !rows.is_empty() && !rows.iter().any(|e| korean.contains(e.korean))
}

/// The first body of the table (the Fed, 한국은행) that the translated sentence `english` names and
/// its Korean sentence `korean` does not: a translation of one sentence names only what that
/// sentence does. (The mortgage article's banks `KB국민·신한·하나·우리은행` came out as `KB Bank,
/// Shinhan Bank, Bank of Korea, and Woori Bank`; the summary names 한국은행 in another sentence.)
pub fn body_not_in(korean: &str, english: &str) -> Option<&'static str> {
    in_english(english)
        .into_iter()
        .map(|(name, _)| name)
        .find(|name| {
            let rows = table().iter().filter(|e| e.english.contains(name));
            let mut rows = rows.peekable();
            rows.peek().is_some_and(|e| e.body) && !rows.any(|e| korean.contains(e.korean))
        })
}

/// The first place, company or person of the table that the Korean translation `korean` names and
/// the English `article` does not, nor a row its Korean opens with (삼성전자 for an article's
/// Samsung). Bodies are not held to it: Korean names another country's agency by its own (`미국
/// 기상청`).
pub fn unnamed_in(korean: &str, article: &str) -> Option<&'static str> {
    let named = |name: &str| {
        table()
            .iter()
            .any(|e| name.starts_with(e.korean) && e.english.iter().any(|n| writes(article, n)))
    };
    in_korean(korean)
        .into_iter()
        .find(|e| !e.body && !named(e.korean))
        .map(|e| e.korean)
}

/// Whether `text` has `name` with no letter or digit right before or after it.
pub fn writes(text: &str, name: &str) -> bool {
    let inner = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    text.match_indices(name).any(|(at, _)| {
        !inner(text[..at].chars().next_back()) && !inner(text[at + name.len()..].chars().next())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_and_every_row_has_names_on_both_sides() {
        assert!(table().len() > 50);
        for e in table() {
            assert!(e.korean.chars().all(is_hangul), "{e:?}");
            assert!(!e.english.is_empty() && e.english.iter().all(|n| !n.is_empty()));
        }
        let bodies: Vec<&str> = table()
            .iter()
            .filter(|e| e.body)
            .map(|e| e.korean)
            .collect();
        assert!(
            bodies.contains(&"연준") && !bodies.contains(&"미국"),
            "{bodies:?}"
        );
    }

    #[test]
    fn korean_names_open_words_and_the_longest_wins() {
        let names = |t: &str| -> Vec<&str> { in_korean(t).iter().map(|e| e.korean).collect() };
        assert_eq!(names("미국 현물 ETF에 독일은 빠졌다"), ["미국", "독일"]);
        assert_eq!(names("인도네시아 정부가"), ["인도네시아"]);
        // Inside a word it is no name: 무엇이란, 중미국 (no such row).
        assert!(names("무엇이란 말인가").is_empty());
        assert_eq!(names("텍사스주 상원의원은"), ["텍사스", "상원"]);
        // No row opens a common word: 선전했다 (did well), 메타버스, 애플리케이션, 화성시.
        for word in [
            "선전했다",
            "메타버스",
            "애플리케이션",
            "화성시",
            "기아가 심하다",
        ] {
            assert!(names(word).is_empty(), "{word}: {:?}", names(word));
        }
    }

    #[test]
    fn a_famous_name_must_be_the_korean_names_own() {
        assert!(misnamed("금융위원회", "Federal Reserve Board"));
        assert!(misnamed("금융당국", "Fed"));
        assert!(!misnamed("연준", "Federal Reserve"));
        assert!(!misnamed("연방준비제도 이사회", "Federal Reserve Board"));
        assert!(!misnamed("한국은행", "Bank of Korea"));
        assert!(!misnamed("서울시", "Seoul Metropolitan Government"));
        assert!(!misnamed(
            "한국자동차모빌리티산업협회",
            "Korean Automobile Mobility Association"
        ));
        assert!(misnamed("수도권 빌라", "Seoul Tower"));
        // An acronym holds no place's Korean: only a body's name is a claim for it.
        assert!(!misnamed(
            "KAMA",
            "Korean Automobile Mobility Industry Association"
        ));
        assert!(misnamed("KAMA", "Bank of Korea"));
        // Further in, or not the whole word: not this check's to judge.
        assert!(!misnamed(
            "식품의약품안전처",
            "Drug Administration of Korea"
        ));
        assert!(!misnamed("페더럴익스프레스", "FedEx"));
    }

    #[test]
    fn a_sentence_names_only_the_bodies_its_korean_names() {
        let korean = "KB국민·신한·하나·우리은행 등 4대 은행의 금리는 3.12%였다.";
        assert_eq!(
            body_not_in(
                korean,
                "KB Bank, Shinhan Bank, Bank of Korea and Woori Bank"
            ),
            Some("Bank of Korea")
        );
        assert_eq!(
            body_not_in(
                "한국은행의 기준금리 인하 이후",
                "After the Bank of Korea cut"
            ),
            None
        );
        // Places are not held to it (국내 is often `in Korea`).
        assert_eq!(
            body_not_in("국내 판매가 늘었다", "Sales in Korea rose"),
            None
        );
    }

    #[test]
    fn english_names_are_whole_words() {
        let found = |t: &str| -> Vec<&str> { in_english(t).iter().map(|(n, _)| *n).collect() };
        assert_eq!(
            found("the U.S. Department of Transportation"),
            ["U.S.", "Department of Transportation"]
        );
        assert!(found("a USB stick for us").is_empty());
        assert_eq!(found("Germany's GDL union"), ["Germany"]);
        let (_, thai) = in_english("Thai rice prices")[0];
        assert_eq!(thai.korean, "태국");
        // A state's and a body's Korean name the model does not know.
        let korean =
            |t: &str| -> Vec<&str> { in_english(t).iter().map(|(_, e)| e.korean).collect() };
        assert_eq!(korean("700 cases in Texas"), ["텍사스"]);
        assert_eq!(korean("The Senate approved"), ["상원"]);
        // Hawaiian is not Hawaii, nor is the White House the House of Representatives.
        assert!(korean("Hawaiian Holdings Inc.").is_empty());
        assert_eq!(korean("the White House said"), ["백악관"]);
    }
}
