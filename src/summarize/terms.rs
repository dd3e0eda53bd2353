//! Words of the news that the small model translates wrong, with the translation newsrooms use.
//!
//! The translations' names are listed beside each sentence (see [`super::exonyms`]), and the
//! model copies them; the words around them it translates on its own, and a 1.5B model gets the
//! terms of a beat wrong: 폭염특보 (a heat-wave advisory) came out as `epidemic warning`, 전세 (a
//! Korean lump-sum lease) as `pre-sale`, rice as 빵 (bread), measles as 코로나. This table,
//! `data/terms.tsv`, lists such terms of the common beats (economy, housing, weather, health,
//! courts, politics, education, transport, sport, culture, science) with the rendering the news
//! uses, and the terms a summary holds go into the list beside its sentences. It is general
//! knowledge of the two languages, like the table of names; nothing checks a translation against
//! it.

use std::sync::OnceLock;

use super::exonyms::{opening_words, rows, writes};
use super::ground::is_hangul;

/// One term: its Korean and its English renderings, the usual one first.
#[derive(Debug)]
pub struct Term {
    pub korean: &'static str,
    pub english: Vec<&'static str>,
    /// Which ways it is listed.
    pub way: Way,
}

/// The translations a term is listed for: an English word with other senses (`strike`, `fine`)
/// is listed only from Korean, a Korean word that is also a name (화성, Mars and Hwaseong) only
/// from English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Both,
    FromKorean,
    FromEnglish,
}

/// The whole table, read once from the built-in `data/terms.tsv`.
pub fn table() -> &'static [Term] {
    static TABLE: OnceLock<Vec<Term>> = OnceLock::new();
    TABLE.get_or_init(|| parse(include_str!("../../data/terms.tsv")))
}

fn parse(text: &'static str) -> Vec<Term> {
    rows(text)
        .map(|(korean, english, flag)| Term {
            korean,
            english,
            way: match flag {
                Some("ko") => Way::FromKorean,
                Some("en") => Way::FromEnglish,
                _ => Way::Both,
            },
        })
        .collect()
}

/// The terms whose Korean opens a word of the Korean `text` (전세보증금 opens with 전세), the
/// longest where two open the same word (전세사기, not 전세), each as `(Korean, English)`.
pub fn in_korean(text: &str) -> Vec<(&'static str, &'static str)> {
    opening_words(text, table(), |t| t.korean)
        .into_iter()
        .filter(|t| t.way != Way::FromEnglish)
        .map(|t| (t.korean, t.english[0]))
        .collect()
}

/// The terms the English `text` writes as whole words, case aside, an ending allowed on the last
/// word (`harvests`, `reopened`), each as `(the term as the table gives it, Korean)`; a term inside
/// a longer one found (`interest rates` in `mortgage interest rates`) is left out.
pub fn in_english(text: &str) -> Vec<(&'static str, &'static str)> {
    let lower = text.to_lowercase();
    let mut found: Vec<(&'static str, &'static str)> = Vec::new();
    for t in table().iter().filter(|t| t.way != Way::FromKorean) {
        if let Some(english) = t.english.iter().find(|e| writes_inflected(&lower, e)) {
            found.push((english, t.korean));
        }
    }
    let lowered: Vec<String> = found.iter().map(|(e, _)| e.to_lowercase()).collect();
    found
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            !lowered.iter().enumerate().any(|(j, other)| {
                j != *i && other.len() > lowered[*i].len() && other.contains(&lowered[*i])
            })
        })
        .map(|(_, f)| f)
        .collect()
}

/// Whether the lower-cased `text` writes `term` as whole words, with an English ending allowed on
/// its last word.
fn writes_inflected(text: &str, term: &str) -> bool {
    let term = term.to_lowercase();
    ["", "s", "es", "d", "ed", "ing"]
        .iter()
        .any(|ending| writes(text, &format!("{term}{ending}")))
}

/// Whether the model's name-list entry `korean = english` is a description it glossed wrong: a
/// phrase of common words (no capital letter) that holds a term of `terms` its English does not
/// say (`전세사기 일당 = real estate agency` for a jeonse-fraud ring).
pub fn misglossed(korean: &str, english: &str, terms: &[(&str, &str)]) -> bool {
    let lower = english.to_lowercase();
    english == lower
        && korean.chars().any(is_hangul)
        && terms
            .iter()
            .any(|(k, e)| korean.contains(k) && !lower.contains(&e.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_and_every_row_has_both_sides() {
        assert!(table().len() > 150);
        for t in table() {
            assert!(t.korean.chars().any(is_hangul), "{t:?}");
            assert!(
                !t.english.is_empty() && t.english.iter().all(|e| !e.is_empty()),
                "{t:?}"
            );
        }
        // Each Korean term once: a second row would never be found.
        let mut seen = std::collections::HashSet::new();
        for t in table() {
            assert!(seen.insert(t.korean), "{} twice", t.korean);
        }
    }

    #[test]
    fn korean_terms_open_words_and_the_longest_wins() {
        let terms =
            in_korean("수도권 빌라를 사들여 전세보증금을 가로챈 전세사기 일당에게 폭염특보가");
        let korean: Vec<&str> = terms.iter().map(|(k, _)| *k).collect();
        assert!(korean.contains(&"전세보증금"), "{korean:?}");
        assert!(korean.contains(&"전세사기"), "{korean:?}");
        assert!(korean.contains(&"폭염특보"), "{korean:?}");
        assert!(!korean.contains(&"전세"), "{korean:?}");
        // Inside a word it is another word.
        assert!(in_korean("그는 이를 가짜라고 했다")
            .iter()
            .any(|(k, _)| *k == "가짜"));
        assert!(!in_korean("진가짜").iter().any(|(k, _)| *k == "가짜"));
    }

    #[test]
    fn english_terms_are_whole_words_with_their_endings() {
        let found = in_english("Thai rice prices fell as large harvests swelled supplies.");
        let korean: Vec<&str> = found.iter().map(|(_, k)| *k).collect();
        assert!(korean.contains(&"쌀"), "{found:?}");
        assert!(korean.contains(&"수확"), "{found:?}");
        // Not inside another word.
        assert!(in_english("The priceless ricebowl").is_empty());
        // Terms that are only listed from Korean are not found in English.
        assert!(table()
            .iter()
            .filter(|t| t.way == Way::FromKorean)
            .all(|t| in_english(t.english[0]).iter().all(|(_, k)| *k != t.korean)));
    }

    #[test]
    fn a_common_word_gloss_without_the_term_is_misglossed() {
        let terms = in_korean("전세사기 일당");
        assert!(misglossed("전세사기 일당", "real estate agency", &terms));
        assert!(!misglossed("전세사기 일당", "jeonse fraud ring", &terms));
        // A name is the model's business.
        assert!(!misglossed("전세사기 일당", "Seoul Tower", &terms));
    }
}
