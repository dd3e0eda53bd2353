//! What a sentence can lose and still stand: its trailing clauses, and a phrase the checks refuse.
//!
//! The small model's translations are often right but for one phrase: a bank it cannot spell inside
//! a parenthesised list (`four banks (KB Bank, Shinhan Bank, Hanjin Bank, and Woori Bank)`), a team
//! it renames (`against the Bears`), a place it guesses (`190 houses in Seoul` for 수도권). Asked
//! again, it often garbles something else, and the sentence was dropped with all it said right. Cut
//! at the refused phrase instead, the rest still says what the article says: only whole units go
//! (a parenthesis, a prepositional phrase around a name, a list item, a trailing clause), and what
//! is left is checked again like any answer. Cutting never adds a word.

use super::Lang;

/// The words that open a clause an English sentence can end before (`..., which ...`,
/// `..., including ...`). Not `according`: a claim without its source would be the summary's own.
const CLAUSE_OPENERS: [&str; 11] = [
    "and",
    "but",
    "while",
    "whereas",
    "which",
    "with",
    "including",
    "as",
    "after",
    "before",
    "amid",
];

/// Prepositions whose phrase around a name can go: `against the Bears`, `in Seoul`, `on Friday`.
const PREPOSITIONS: [&str; 17] = [
    "in",
    "at",
    "on",
    "from",
    "against",
    "with",
    "by",
    "for",
    "to",
    "of",
    "near",
    "including",
    "like",
    "across",
    "into",
    "over",
    "via",
];

/// Words that may follow a prepositional phrase and open something else: a preposition, a
/// conjunction, a word of time (`by the Bank of Korea last month`).
const PHRASE_ENDS: [&str; 13] = [
    "and", "or", "but", "that", "which", "who", "as", "last", "this", "next", "earlier", "later",
    "since",
];

/// Words that may stand between a preposition and its name (`against the Bears`).
const DETERMINERS: [&str; 3] = ["the", "a", "an"];

/// The shortest sentence a cut may leave, in characters and in words: Korean says as much in
/// half the characters and fewer, longer words.
fn least(lang: Lang) -> (usize, usize) {
    match lang {
        Lang::En => (30, 5),
        Lang::Ko => (15, 3),
    }
}

/// `sentence` ended before each of its trailing clauses (`X rose, while Y fell.` gives `X rose.`),
/// longest first, each of forty characters or more: what a summary at its length limit can still
/// say of its last sentence. A clause inside the subject (`The bill, which passed 71-27, would
/// ...`) is no trailing one: every comma after the cut must open another clause. English only: a
/// Korean clause ends in a connective (`늘었고`) that would have to be rewritten.
pub fn clause_cuts(sentence: &str, lang: Lang) -> Vec<String> {
    if lang != Lang::En {
        return Vec::new();
    }
    let opens_clause = |at: usize| {
        let next = sentence[at + 2..].split(' ').next().unwrap_or_default();
        CLAUSE_OPENERS.contains(&next)
    };
    let commas: Vec<usize> = sentence.match_indices(", ").map(|(at, _)| at).collect();
    let mut cuts: Vec<String> = commas
        .iter()
        .enumerate()
        .filter(|&(i, _)| commas[i..].iter().all(|&at| opens_clause(at)))
        .map(|(_, &at)| format!("{}.", sentence[..at].trim_end()))
        .filter(|cut| cut.chars().count() >= 40)
        .collect();
    cuts.reverse();
    cuts
}

/// `sentence` without the smallest whole unit that holds byte `at`, where the checks refused a
/// word: the parenthesis around it; in English also, for a name (`name` true; a number is left in
/// place, as `fell from 3% to 4%` without `to 4%` would say something else), its prepositional
/// phrase or its list item; failing those, the trailing clause it stands in. `None` when no unit
/// holds it, or what is left would be too short to say anything.
pub fn without(sentence: &str, at: usize, lang: Lang, name: bool) -> Option<String> {
    if at >= sentence.len() || !sentence.is_char_boundary(at) {
        return None;
    }
    let cut = parenthesis(sentence, at)
        .or_else(|| {
            (lang == Lang::En && name)
                .then(|| phrase(sentence, at))
                .flatten()
        })
        .or_else(|| {
            clause_cuts(sentence, lang)
                .into_iter()
                .find(|c| c.len() - 1 <= at)
        })?;
    let cut = tidy(&cut);
    let (chars, words) = least(lang);
    let long_enough = cut.chars().count() >= chars && cut.split_whitespace().count() >= words;
    (long_enough && cut != sentence).then_some(cut)
}

/// `sentence` without the parenthesis that holds `at`, and the space before it.
fn parenthesis(sentence: &str, at: usize) -> Option<String> {
    let open = sentence[..at].rfind(['(', '（'])?;
    if sentence[open..at].contains([')', '）']) {
        return None;
    }
    let close = at + sentence[at..].find([')', '）'])?;
    if sentence[at..close].contains(['(', '（']) {
        return None;
    }
    let close_len = sentence[close..].chars().next()?.len_utf8();
    let start = sentence[..open].trim_end().len();
    Some(format!(
        "{}{}",
        &sentence[..start],
        &sentence[close + close_len..]
    ))
}

/// A word of `sentence`: where it starts and ends, without the punctuation around it.
#[derive(Clone, Copy)]
struct Word<'s> {
    start: usize,
    end: usize,
    text: &'s str,
    /// Punctuation right after it (`,` of `Daegu,`).
    trail: &'s str,
}

/// The words of `sentence`. A full stop inside the sentence belongs to its word, an abbreviation
/// (`U.S.`, `Inc.`): cut as punctuation, `in the U.S. market` had lost `in the U.S` and left `. market`.
fn words(sentence: &str) -> Vec<Word<'_>> {
    let pieces: Vec<&str> = sentence.split(' ').filter(|w| !w.is_empty()).collect();
    let last = pieces.len().saturating_sub(1);
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let start = w.as_ptr() as usize - sentence.as_ptr() as usize;
            let lead = w.len() - w.trim_start_matches(['(', '"', '\'', '‘', '“']).len();
            let mut body = w[lead..].trim_end_matches(|c: char| ",.;:)\"'’”!?".contains(c));
            if i < last && w[lead + body.len()..].starts_with('.') {
                body = &w[lead..lead + body.len() + 1];
            }
            Word {
                start: start + lead,
                end: start + lead + body.len(),
                text: body,
                trail: &w[lead + body.len()..],
            }
        })
        .collect()
}

/// Whether `word` can be part of a name: capitalised, or digits (`Shinhan SOL Bank`, `LG Twins`).
fn name_like(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `sentence` without the name that holds `at` and what ties it in: its preposition (and article),
/// `against the Bears`; or, in a list, the item and one comma or `and` (`Seoul, Daegu, Gwangju`).
fn phrase(sentence: &str, at: usize) -> Option<String> {
    let words = words(sentence);
    let i = words
        .iter()
        .position(|w| w.start <= at && at < w.end.max(w.start + 1))?;
    if !name_like(words[i].text) {
        return None;
    }
    // The whole name: capitalised words next to each other, `of` between two of them (`Bank of
    // Korea`), none across punctuation.
    let mut first = i;
    while first > 0 {
        let before = &words[first - 1];
        if !before.trail.is_empty() {
            break;
        }
        if name_like(before.text) {
            first -= 1;
        } else if before.text == "of"
            && first >= 2
            && words[first - 2].trail.is_empty()
            && name_like(words[first - 2].text)
        {
            first -= 2;
        } else {
            break;
        }
    }
    let mut last = i;
    while last + 1 < words.len() && words[last].trail.is_empty() {
        let next = &words[last + 1];
        if name_like(next.text) {
            last += 1;
        } else if next.text == "of"
            && next.trail.is_empty()
            && last + 2 < words.len()
            && name_like(words[last + 2].text)
        {
            last += 2;
        } else {
            break;
        }
    }
    let (start, end) = (words[first].start, words[last].end);
    let trail = words[last].trail;
    // A list item: `A, X, B` loses `X, `; `A, B and X` loses ` and X`; `A, X and B` loses `, X`.
    let before = first.checked_sub(1).map(|b| &words[b]);
    let in_list = before.is_some_and(|b| b.trail == "," || b.text == "and");
    if in_list {
        let before = before?;
        let next = words.get(last + 1);
        // Of three items, the middle one: `A, X, and B` leaves `A and B`, not `A, and B`.
        let first_of_three = before.trail == ","
            && (first < 2 || words[first - 2].trail != ",")
            && next.is_some_and(|w| w.text == "and");
        if trail == "," && first_of_three {
            return Some(format!(
                "{} {}",
                &sentence[..before.end],
                &sentence[words[last + 1].start..]
            ));
        }
        if trail == "," && last + 1 < words.len() {
            return Some(format!(
                "{}{}",
                &sentence[..start],
                &sentence[words[last + 1].start..]
            ));
        }
        if before.text == "and" {
            let and_start = sentence[..before.start].trim_end().len();
            return Some(format!("{}{}", &sentence[..and_start], &sentence[end..]));
        }
        if trail.is_empty() && words.get(last + 1).is_some_and(|w| w.text == "and") {
            let comma = sentence[..start].trim_end().len() - 1;
            return Some(format!("{}{}", &sentence[..comma], &sentence[end..]));
        }
        return None;
    }
    // The first item of a list: `for Seoul, Daegu and Busan` loses `Seoul, `.
    if trail == "," && words.get(last + 1).is_some_and(|w| name_like(w.text)) {
        return Some(format!(
            "{}{}",
            &sentence[..start],
            &sentence[words[last + 1].start..]
        ));
    }
    // A prepositional phrase: `in Seoul`, `against the Bears`.
    let mut p = first.checked_sub(1)?;
    if DETERMINERS.contains(&words[p].text) && words[p].trail.is_empty() {
        p = p.checked_sub(1)?;
    }
    let prep = &words[p];
    if !prep.trail.is_empty() || !PREPOSITIONS.contains(&prep.text) {
        return None;
    }
    // After an article, a name going on into a common noun names its kind (`against the South
    // Korean team`): the noun would be left behind.
    let modifies = p + 1 < first
        && trail.is_empty()
        && words.get(last + 1).is_some_and(|w| {
            w.text.starts_with(char::is_lowercase)
                && !PHRASE_ENDS.contains(&w.text)
                && !PREPOSITIONS.contains(&w.text)
        });
    if modifies {
        return None;
    }
    let from = sentence[..prep.start].trim_end().len();
    Some(format!("{}{}", &sentence[..from], &sentence[end..]))
}

/// A cut sentence mended where the cut left marks: doubled spaces, a space or comma before the
/// end, an empty parenthesis.
fn tidy(s: &str) -> String {
    let mut out = s
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    for (from, to) in [
        (" ,", ","),
        (" .", "."),
        (",.", "."),
        (",,", ","),
        ("()", ""),
        (" )", ")"),
    ] {
        while out.contains(from) {
            out = out.replace(from, to);
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(sentence: &str, word: &str) -> Option<String> {
        let at = sentence.find(word).expect("the word is in the sentence");
        without(sentence, at, Lang::En, true)
    }

    #[test]
    fn a_long_last_sentence_gives_its_main_clause() {
        let cuts = clause_cuts(
            "Deutsche Bahn offered a 37-hour week from 2026, with wage increases of up to 13%, while the union wants 35 hours.",
            Lang::En,
        );
        assert_eq!(
            cuts,
            [
                "Deutsche Bahn offered a 37-hour week from 2026, with wage increases of up to 13%.",
                "Deutsche Bahn offered a 37-hour week from 2026.",
            ]
        );
        // Not before its source, nor inside the subject, nor to a stub, nor in Korean.
        assert!(clause_cuts(
            "The rate is the lowest in a year, according to the bank.",
            Lang::En
        )
        .is_empty());
        assert!(clause_cuts(
            "The infrastructure package approved by the Senate, which passed 71-27, would direct money to states.",
            Lang::En
        )
        .is_empty());
        assert!(clause_cuts("Prices rose, and fell.", Lang::En).is_empty());
        assert!(clause_cuts("매출은 늘었고, 이익은 줄었다.", Lang::Ko).is_empty());
    }

    #[test]
    fn a_refused_name_goes_with_its_parenthesis_phrase_or_list_item() {
        let banks = "The fixed rates of four banks (KB Bank, Shinhan Bank, Hanjin Bank, and Woori Bank) were 3.12% to 5.43% on the 20th.";
        assert_eq!(
            cut(banks, "Hanjin").as_deref(),
            Some("The fixed rates of four banks were 3.12% to 5.43% on the 20th.")
        );
        assert_eq!(
            cut(
                "LG Twins won the game against the Bears at the Jamsil Baseball Stadium.",
                "Bears"
            )
            .as_deref(),
            Some("LG Twins won the game at the Jamsil Baseball Stadium.")
        );
        assert_eq!(
            cut(
                "The ring bought 190 houses in Seoul and took 30 billion won in deposits.",
                "Seoul"
            )
            .as_deref(),
            Some("The ring bought 190 houses and took 30 billion won in deposits.")
        );
        // The whole name, `of` inside it included.
        assert_eq!(
            cut(
                "Rates fell after a cut by the Bank of Korea last month, the banks said.",
                "Korea"
            )
            .as_deref(),
            Some("Rates fell after a cut last month, the banks said.")
        );
        // List items: in the middle, last after `and`, before `and`.
        let cities = "Heat warnings were issued for Seoul, Daegu, Gwangju, and Busan on Monday.";
        assert_eq!(
            cut(cities, "Daegu").as_deref(),
            Some("Heat warnings were issued for Seoul, Gwangju, and Busan on Monday.")
        );
        assert_eq!(
            cut(
                "Heat warnings were issued for Seoul, Daegu and Busan on Monday.",
                "Busan"
            )
            .as_deref(),
            Some("Heat warnings were issued for Seoul, Daegu on Monday.")
        );
        assert_eq!(
            cut(
                "Heat warnings were issued for Seoul, Daegu and Busan on Monday.",
                "Daegu"
            )
            .as_deref(),
            Some("Heat warnings were issued for Seoul and Busan on Monday.")
        );
        assert_eq!(
            cut(
                "Heat warnings were issued for Seoul, Daegu and Busan on Monday.",
                "Seoul"
            )
            .as_deref(),
            Some("Heat warnings were issued for Daegu and Busan on Monday.")
        );
        // Not a name that goes on into its kind, which would be left behind.
        assert_eq!(
            cut(
                "LG won the game against the South Korean team in the ninth inning.",
                "South"
            ),
            None
        );
        assert_eq!(
            cut(
                "Heat warnings were issued for Seoul, Daegu, and Busan on Monday.",
                "Daegu"
            )
            .as_deref(),
            Some("Heat warnings were issued for Seoul and Busan on Monday.")
        );
        // An abbreviation keeps its full stop: the whole `U.S.` goes, or nothing.
        assert_eq!(
            cut(
                "Sales of the new phones rose in the U.S. this year.",
                "U.S."
            )
            .as_deref(),
            Some("Sales of the new phones rose this year.")
        );
        assert_eq!(
            cut("Prices rose in the U.S. market this year.", "U.S."),
            None
        );
        // A date with its preposition.
        assert_eq!(
            cut("The festival opens on Friday in the old town.", "Friday").as_deref(),
            Some("The festival opens in the old town.")
        );
    }

    #[test]
    fn what_a_cut_cannot_take_stays() {
        // The subject has no preposition to go with.
        assert_eq!(
            cut(
                "Hanjin Bank cut its mortgage rates by 0.2 points.",
                "Hanjin"
            ),
            None
        );
        // A number is not cut out of its phrase: `fell from 3%` would say something else.
        let rates = "Mortgage rates at the commercial banks fell from 3% to 4% this year.";
        assert_eq!(
            without(rates, rates.find("4%").unwrap(), Lang::En, false),
            None
        );
        // Nor to a stub.
        assert_eq!(cut("Sales rose in Texas.", "Texas"), None);
        // A trailing clause goes when nothing smaller holds the number.
        let clause = "The interest rate of the Bank of Korea fell after its cut, and the rate of commercial banks fell from 3% to 4%.";
        assert_eq!(
            without(clause, clause.find("4%").unwrap(), Lang::En, false).as_deref(),
            Some("The interest rate of the Bank of Korea fell after its cut.")
        );
        // Korean: a parenthesis only.
        let korean = "4대 은행(KB국민·신한·하나·우리은행)의 금리는 연 3.12%로 집계됐다.";
        assert_eq!(
            without(korean, korean.find("하나").unwrap(), Lang::Ko, true).as_deref(),
            Some("4대 은행의 금리는 연 3.12%로 집계됐다.")
        );
        let no_parenthesis = "서울 아파트 매매가격이 3주 연속 하락했다고 밝혔다.";
        assert_eq!(
            without(
                no_parenthesis,
                no_parenthesis.find("3주").unwrap(),
                Lang::Ko,
                false
            ),
            None
        );
    }
}
