//! Numbers (and, in Korean text, Latin-script names) may only be copied: a decoding constraint.
//!
//! Checking after the fact throws away a whole sentence for one wrong digit or one name the model
//! spelled in English (`Qualcomm` for 퀄컴); forbidding it while decoding keeps the sentence. Before
//! each token, every token that would write a digit run (or a Latin word) the article does not contain,
//! or cannot grow into one, is masked out, and while a run is unfinished (`15` when the article has
//! `1500`) only a continuation may follow. Digit runs are the groups between separators, so `1,500`,
//! `1500` and `3.5` are all copyable from an article that writes them.
//!
//! An English translation writes no Hangul at all ([`Class::Hangul`]): left free, the model keeps a
//! Korean phrase as it stands (`phrases like '비아그라 정품'`) and the sentence fails its script check.
//!
//! A translation refused after the fact at one word (`20XX`, a name the article lacks) is asked for
//! again with that spot banned ([`Ban`]), so the second answer must take another path there. A month
//! or weekday the article does not name is banned everywhere from the start: the check would refuse
//! it wherever it stood.

use tokenizers::Tokenizer;

use super::ground::Grounding;
use crate::generate::TokenFilter;

/// A kind of run that must be copied from the article, or never written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Digits,
    Latin,
    /// Hangul, which English text never writes: a Korean phrase must be translated.
    Hangul,
}

impl Class {
    pub(crate) fn has(self, c: char) -> bool {
        match self {
            Class::Digits => c.is_ascii_digit(),
            Class::Latin => c.is_ascii_alphabetic(),
            Class::Hangul => super::ground::is_hangul(c),
        }
    }
}

/// The vocabulary's tokens that write digits or Latin letters, with their text, and the bytes of
/// every token (for [`Ban`]).
#[derive(Debug, Clone, Default)]
pub struct ClassTokens {
    digits: Vec<(u32, String)>,
    latin: Vec<(u32, String)>,
    /// Tokens that write Hangul or the first byte of a Hangul syllable.
    hangul: Vec<(u32, String)>,
    /// The bytes each token writes, indexed by token id; empty for special tokens.
    all: Vec<Vec<u8>>,
    /// The most bytes one token writes.
    longest: usize,
    /// The tokens that write a month or weekday whole, after any spaces (`" July"`, `"Monday"`),
    /// with that word in lower case; `may` only as `May` (the verb stays).
    dates: Vec<(usize, String)>,
}

impl ClassTokens {
    pub fn new(tokenizer: &Tokenizer) -> Self {
        let size = tokenizer.get_vocab_size(true) as u32;
        let mut out = Self::default();
        for id in 0..size {
            // Special tokens write no text: `<|im_end|>` read as letters would be a Latin run the
            // article lacks, and Korean text, whose Latin runs are copied, could never end.
            let text = tokenizer.decode(&[id], true).unwrap_or_default();
            if text.chars().any(|c| Class::Digits.has(c)) {
                out.digits.push((id, text.clone()));
            }
            if text.chars().any(|c| Class::Latin.has(c)) {
                out.latin.push((id, text.clone()));
            }
            // A token holding part of a character (byte-level BPE splits Hangul) decodes alone to
            // U+FFFD: its bytes come from its byte-level spelling instead.
            let bytes = match text.contains('\u{FFFD}') {
                true => tokenizer
                    .id_to_token(id)
                    .and_then(|t| byte_level_bytes(&t))
                    .unwrap_or_else(|| text.clone().into_bytes()),
                false => text.clone().into_bytes(),
            };
            if writes_hangul(&text, &bytes) {
                out.hangul.push((id, text));
            }
            out.longest = out.longest.max(bytes.len());
            out.note_date(id as usize, &bytes);
            out.all.push(bytes);
        }
        out
    }

    /// Notes token `id` if its `bytes` write a month or weekday whole.
    fn note_date(&mut self, id: usize, bytes: &[u8]) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        let w = text.trim_start();
        let lower = w.to_lowercase();
        let is_date = match lower.as_str() {
            "may" => w == "May",
            _ => super::ground::is_date_word(&lower),
        };
        if is_date {
            self.dates.push((id, lower));
        }
    }

    /// The tokens whose text passes `keep` (a token holding part of a character reads as U+FFFD;
    /// special tokens read as nothing).
    pub fn writing(&self, keep: impl Fn(&str) -> bool) -> Vec<u32> {
        (0..self.all.len() as u32)
            .filter(|&id| keep(&String::from_utf8_lossy(&self.all[id as usize])))
            .collect()
    }

    fn of(&self, class: Class) -> &[(u32, String)] {
        match class {
            Class::Digits => &self.digits,
            Class::Latin => &self.latin,
            Class::Hangul => &self.hangul,
        }
    }

    #[cfg(test)]
    fn from_pairs(pairs: &[(u32, &str)]) -> Self {
        let mut out = Self::default();
        for &(i, s) in pairs {
            if out.all.len() <= i as usize {
                out.all.resize(i as usize + 1, Vec::new());
            }
            out.all[i as usize] = s.as_bytes().to_vec();
            out.note_date(i as usize, s.as_bytes());
            out.longest = out.longest.max(s.len());
            if s.chars().any(|c| Class::Digits.has(c)) {
                out.digits.push((i, s.to_string()));
            }
            if s.chars().any(|c| Class::Latin.has(c)) {
                out.latin.push((i, s.to_string()));
            }
            if writes_hangul(s, s.as_bytes()) {
                out.hangul.push((i, s.to_string()));
            }
        }
        out
    }
}

/// Whether a token (its text, and the bytes it stands for) writes Hangul: a whole syllable, or the
/// lead byte of one (byte-level BPE splits syllables, U+AC00..U+D7A3, whose lead bytes are EA..ED;
/// nothing else a summary may write starts with those bytes).
fn writes_hangul(text: &str, bytes: &[u8]) -> bool {
    text.chars().any(|c| Class::Hangul.has(c)) || bytes.iter().any(|b| (0xEA..=0xED).contains(b))
}

/// The bytes a byte-level BPE token stands for, from its spelling in GPT-2's byte alphabet (printable
/// bytes are themselves; the others, space included, are shifted to U+0100 and up, in order), or
/// `None` when the spelling is not in that alphabet.
fn byte_level_bytes(spelling: &str) -> Option<Vec<u8>> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let shifted: Vec<u8> = (0..=255u8).filter(|&b| !printable(b)).collect();
    spelling
        .chars()
        .map(|c| match u32::from(c) {
            n if n < 256 && printable(n as u8) => Some(n as u8),
            n if (256..256 + shifted.len() as u32).contains(&n) => {
                Some(shifted[(n - 256) as usize])
            }
            _ => None,
        })
        .collect()
}

/// The mask for one generation.
pub struct CopyFilter<'a> {
    grounding: &'a Grounding,
    tokens: &'a ClassTokens,
    classes: &'a [Class],
    /// For each of `classes`, the tokens forbidden when no run is open (the usual case): the same
    /// at every such step, so worked out once rather than per token generated.
    banned_at_rest: Vec<Vec<usize>>,
    /// Tokens that write, whole, a month or weekday the article does not name: banned everywhere.
    unnamed_dates: Vec<usize>,
    bans: &'a [Ban],
}

/// What a check refused in an earlier answer, so that the answer asked for again takes another path
/// there: while the new text follows the refused one up to the refused word, no token may write
/// that word's first character at its place, in either case. (Regenerating under a tighter
/// constraint: the model wrote `the first half of 20XX` for 1∼6월; banned from `XX` there, it must
/// end the phrase otherwise.)
///
/// A refused month or weekday also bans, there, the others of its kind the article does not name
/// ([`Ban::with_kind`]): banned from `January`, the model wrote `March`, then `September`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    refused: String,
    at: usize,
    /// Words of the refused word's kind that may not be written at its place either.
    kind: Vec<String>,
}

impl Ban {
    /// Bans writing `refused[at..]`'s first character after `refused[..at]`.
    pub fn new(refused: &str, at: usize) -> Self {
        Self {
            refused: refused.to_string(),
            at,
            kind: Vec::new(),
        }
    }

    /// Also bans starting any of `words` (in either case) at the refused word's place.
    pub fn with_kind(self, words: Vec<String>) -> Self {
        Self {
            kind: words,
            ..self
        }
    }

    fn apply(&self, tokens: &ClassTokens, generated: &str, logits: &mut [f32]) {
        if generated.len() > self.at || !self.refused.starts_with(generated) {
            return;
        }
        let Some(first) = self.refused.get(self.at..).and_then(|r| r.chars().next()) else {
            return;
        };
        let gap = self.at - generated.len();
        // Far before the refused word no token reaches it: nothing to scan.
        if gap >= tokens.longest {
            return;
        }
        let rest = &self.refused.as_bytes()[generated.len()..];
        let reach = gap + first.len_utf8();
        // The words of its kind, each as the text would go on to write it: the gap, then the word.
        let kind: Vec<Vec<u8>> = self
            .kind
            .iter()
            .map(|w| rest[..gap].iter().chain(w.as_bytes()).copied().collect())
            .collect();
        for (id, bytes) in tokens.all.iter().enumerate() {
            // A token is banned when it writes, as the refused text did, a byte of that character (and
            // nothing else where it ends sooner): the first bytes of a Hangul syllable are a token of
            // their own as often as not.
            let same = agreeing(bytes, rest);
            let refused = same > gap && (same >= reach || same == bytes.len());
            // Or when it begins a word of the kind there: a prefix of the word, or the whole word
            // and no letter after it (`March`, not `Marching`).
            let of_kind = || {
                kind.iter().any(|path| {
                    let same = agreeing(bytes, path);
                    same > gap
                        && (same == bytes.len()
                            || (same == path.len() && !bytes[same].is_ascii_alphabetic()))
                })
            };
            if refused || of_kind() {
                if let Some(v) = logits.get_mut(id) {
                    *v = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// How many leading bytes of `token` agree with `path`, ASCII case ignored.
fn agreeing(token: &[u8], path: &[u8]) -> usize {
    token
        .iter()
        .zip(path)
        .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
        .count()
}

impl<'a> CopyFilter<'a> {
    /// Constrains the runs of each of `classes` to those the article writes.
    pub fn new(grounding: &'a Grounding, tokens: &'a ClassTokens, classes: &'a [Class]) -> Self {
        let mut filter = Self {
            grounding,
            tokens,
            classes,
            banned_at_rest: Vec::new(),
            unnamed_dates: unnamed_date_tokens(tokens, &grounding.unnamed_dates()),
            bans: &[],
        };
        filter.banned_at_rest = classes
            .iter()
            .map(|&class| {
                tokens
                    .of(class)
                    .iter()
                    .filter(|(_, text)| class == Class::Hangul || !filter.allows(class, "", text))
                    .map(|&(id, _)| id as usize)
                    .collect()
            })
            .collect();
        filter
    }

    /// The same filter, keeping the answer from repeating what `bans` point at.
    pub fn banning(self, bans: &'a [Ban]) -> Self {
        Self { bans, ..self }
    }

    /// Whether writing `piece` after a text ending in the run `run` of `class` keeps every run of
    /// that class copyable.
    fn allows(&self, class: Class, run: &str, piece: &str) -> bool {
        let mut current = run.to_string();
        for c in piece.chars() {
            if class.has(c) {
                current.push(c);
                if !self.grounding.is_prefix(class, &current) {
                    return false;
                }
            } else {
                if !current.is_empty() && !self.grounding.is_whole(class, &current) {
                    return false;
                }
                current.clear();
            }
        }
        true
    }
}

impl CopyFilter<'_> {
    /// Digit runs are copied group by group, so `554,174` and `4,174` license `554,4174`; the
    /// translation of `55만4,174명` wrote it, and asked again, wrote it again. A number written with
    /// grouping commas must, as a whole, grow into a number the article states: once the text ends
    /// in one (`554,`), a token that would go on with digits or a comma and digits is banned unless
    /// the digits so far, commas dropped, open such a number.
    fn keep_grouped_numbers(&self, generated: &str, logits: &mut [f32]) {
        let grouped = |c: char| c.is_ascii_digit() || c == ',';
        let head = &generated[generated.trim_end_matches(grouped).len()..];
        let head = head.trim_start_matches(',');
        if head.is_empty() {
            return;
        }
        for (id, text) in self.tokens.of(Class::Digits) {
            let more = &text[..text.len() - text.trim_start_matches(grouped).len()];
            if !more.contains(|c: char| c.is_ascii_digit()) {
                continue;
            }
            let number = format!("{head}{more}");
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            if number.contains(',') && !self.grounding.is_number_prefix(&digits) {
                if let Some(v) = logits.get_mut(*id as usize) {
                    *v = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// The tokens that write one of `words` (months and weekdays, in lower case) whole, in either case,
/// but for `may`, which is only the month as `May`. Tokens that only begin such a word (`" Mar"` of
/// `Mark`) stay.
fn unnamed_date_tokens(tokens: &ClassTokens, words: &[&str]) -> Vec<usize> {
    tokens
        .dates
        .iter()
        .filter(|(_, w)| words.contains(&w.as_str()))
        .map(|&(id, _)| id)
        .collect()
}

impl TokenFilter for CopyFilter<'_> {
    fn filter(&mut self, generated: &str, logits: &mut [f32]) {
        for &id in &self.unnamed_dates {
            if let Some(v) = logits.get_mut(id) {
                *v = f32::NEG_INFINITY;
            }
        }
        for ban in self.bans {
            ban.apply(self.tokens, generated, logits);
        }
        if self.classes.contains(&Class::Digits) {
            self.keep_grouped_numbers(generated, logits);
        }
        for (k, &class) in self.classes.iter().enumerate() {
            let start = generated.trim_end_matches(|c: char| class.has(c)).len();
            let run = &generated[start..];
            if run.is_empty() {
                for &id in &self.banned_at_rest[k] {
                    if let Some(v) = logits.get_mut(id) {
                        *v = f32::NEG_INFINITY;
                    }
                }
                continue;
            }
            let unfinished = !run.is_empty() && !self.grounding.is_whole(class, run);
            let tokens = self.tokens.of(class);
            if unfinished {
                // Only a continuation may follow: keep the tokens that continue the run.
                let mut keep = Vec::new();
                for (id, text) in tokens {
                    let continues = text.starts_with(|c: char| class.has(c));
                    if continues && self.allows(class, run, text) {
                        if let Some(&v) = logits.get(*id as usize) {
                            keep.push((*id as usize, v));
                        }
                    }
                }
                logits.fill(f32::NEG_INFINITY);
                for (i, v) in keep {
                    logits[i] = v;
                }
                return;
            }
            for (id, text) in tokens {
                if !self.allows(class, run, text) {
                    if let Some(v) = logits.get_mut(*id as usize) {
                        *v = f32::NEG_INFINITY;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(filter: &mut CopyFilter, generated: &str, vocab: usize) -> Vec<usize> {
        let mut logits = vec![0.0; vocab];
        filter.filter(generated, &mut logits);
        (0..vocab).filter(|&i| logits[i].is_finite()).collect()
    }

    #[test]
    fn only_the_articles_digit_runs_can_be_written() {
        let g = Grounding::new("투자액은 1,500억 달러이며 금리는 3.5%다.");
        // Tokens 0-9 are the digits, 10 is "a", 11 is "," and 12 is "15" (a two-digit token).
        let mut pairs: Vec<(u32, String)> = (0..10).map(|d| (d, d.to_string())).collect();
        pairs.push((12, "15".into()));
        let refs: Vec<(u32, &str)> = pairs.iter().map(|(i, s)| (*i, s.as_str())).collect();
        let tokens = ClassTokens::from_pairs(&refs);
        let mut f = CopyFilter::new(&g, &tokens, &[Class::Digits]);
        // Runs: 1, 500, 1500, 150 (billion), 0.15 → 0 and 15, 3, 5, and their conversions.
        let free = allowed(&mut f, "금리는 ", 13);
        assert!(free.contains(&1) && free.contains(&3) && free.contains(&5) && free.contains(&10));
        assert!(!free.contains(&2) && !free.contains(&4), "{free:?}");
        // After "15" (a prefix of 150 and 1500) only a digit that continues it may follow... but 15
        // is itself a whole run (0.15), so text may follow too.
        let after15 = allowed(&mut f, "금리는 15", 13);
        assert!(after15.contains(&0) && after15.contains(&10));
        // After "150" the run is whole (150 billion) and "1500" continues: both allowed; "1501" not.
        let after150 = allowed(&mut f, "금리는 150", 13);
        assert!(after150.contains(&0) && after150.contains(&10) && !after150.contains(&1));
        // "50" is a prefix of 500 but not a run: only digits may follow, and only 0.
        assert_eq!(allowed(&mut f, "금리는 50", 13), vec![0]);
    }

    #[test]
    fn english_text_writes_no_hangul_not_even_a_syllables_first_bytes() {
        let g = Grounding::new("식약처는 ‘비아그라 정품’ 광고 1,428건을 적발했다.");
        let mut tokens = ClassTokens::from_pairs(&[
            (0, " genuine"),
            (1, " 정품"),
            (2, "’"),
            (3, "Viagra"),
            (4, "㎍"),
        ]);
        // Token 5 holds the first two bytes of 정 (EC A0), token 6 the last byte of ㎍'s three.
        let (lead, tail) = ("정".as_bytes()[..2].to_vec(), "㎍".as_bytes()[2..].to_vec());
        tokens.all.extend([lead.clone(), tail.clone()]);
        tokens.hangul.extend(
            [(5, lead), (6, tail)]
                .into_iter()
                .filter(|(_, b)| writes_hangul(&String::from_utf8_lossy(b), b))
                .map(|(i, b)| (i, String::from_utf8_lossy(&b).into_owned())),
        );
        let mut f = CopyFilter::new(&g, &tokens, &[Class::Hangul]);
        assert_eq!(allowed(&mut f, "They advertised ‘", 7), vec![0, 2, 3, 4, 6]);
        // Korean text keeps them all.
        let mut f = CopyFilter::new(&g, &tokens, &[Class::Digits]);
        assert_eq!(allowed(&mut f, "이들은 ‘", 7), vec![0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_number_with_grouping_commas_must_be_one_the_article_states() {
        let g = Grounding::new("지원자는 55만4,174명이다.");
        let mut pairs: Vec<(u32, String)> = (0..10).map(|d| (d, d.to_string())).collect();
        pairs.push((10, ",".into()));
        pairs.push((11, " to".into()));
        let refs: Vec<(u32, &str)> = pairs.iter().map(|(i, s)| (*i, s.as_str())).collect();
        let tokens = ClassTokens::from_pairs(&refs);
        let mut f = CopyFilter::new(&g, &tokens, &[Class::Digits]);
        // 554,174 (55만4,174) is the article's; after `554,` only its 1 may follow, though 4 opens
        // the article's run 4,174.
        assert_eq!(allowed(&mut f, "from 554,", 12), vec![1, 10, 11]);
        // A comma ending a clause, then a space, starts afresh.
        assert!(allowed(&mut f, "In 554, ", 12).contains(&4));
    }

    #[test]
    fn months_and_weekdays_the_article_does_not_name_are_never_written() {
        // The article names Friday (금요일) and July (7월), no other month or weekday.
        let g = Grounding::new("환경부는 7월 4일 금요일에 발표했다.");
        let pairs = [
            (0, " July"),
            (1, " Friday"),
            (2, " June"),
            (3, " monday"),
            (4, " May"),
            (5, " may"),
            (6, " Mar"),
            (7, "Monday"),
            (8, " Junes"),
        ];
        let tokens = ClassTokens::from_pairs(&pairs);
        let mut f = CopyFilter::new(&g, &tokens, &[]);
        // June, Monday (in either case) and the month May are banned; the verb may, a token that
        // only begins a month, and a longer word stay.
        assert_eq!(
            allowed(&mut f, "The ministry said on", 9),
            vec![0, 1, 5, 6, 8]
        );
    }

    #[test]
    fn a_ban_keeps_the_refused_word_from_its_place_and_nowhere_else() {
        let g = Grounding::new("Sales rose in 2020.");
        let pairs = [
            (0, " X"),
            (1, "XX"),
            (2, " the"),
            (3, " year"),
            (4, "x"),
            (5, "20"),
        ];
        let tokens = ClassTokens::from_pairs(&pairs);
        let refused = "Sales rose in the first half of 20XX.";
        let bans = [Ban::new(refused, refused.find("XX").unwrap())];
        let mut f = CopyFilter::new(&g, &tokens, &[]).banning(&bans);
        // At the refused word's place neither `XX` nor `x` may follow.
        assert_eq!(
            allowed(&mut f, "Sales rose in the first half of 20", 6),
            vec![0, 2, 3, 5]
        );
        // Before it, and once the text has left the refused answer's path, nothing is banned.
        assert_eq!(
            allowed(&mut f, "Sales rose in the", 6),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(
            allowed(&mut f, "Sales rose in the year 20", 6),
            vec![0, 1, 2, 3, 4, 5]
        );
        // A token that starts before the word and writes its first letter is banned too.
        let refused = "Sales rose in Xmas.";
        let bans = [Ban::new(refused, refused.find("Xmas").unwrap())];
        let mut f = CopyFilter::new(&g, &tokens, &[]).banning(&bans);
        assert_eq!(allowed(&mut f, "Sales rose in", 6), vec![1, 2, 3, 4, 5]);
        // A token holding only the first bytes of the refused syllable is banned too.
        let refused = "비트코인은 금요일에 올랐다.";
        let mut tokens = ClassTokens::from_pairs(&[(0, "금"), (1, "목"), (2, " ")]);
        tokens.all.push("금".as_bytes()[..2].to_vec());
        let bans = [Ban::new(refused, refused.find("금요일").unwrap())];
        let mut f = CopyFilter::new(&g, &tokens, &[]).banning(&bans);
        assert_eq!(allowed(&mut f, "비트코인은 ", 4), vec![1, 2]);
    }

    #[test]
    fn a_ban_of_a_month_bans_the_other_months_there() {
        // The article names these months (others it does not name are banned everywhere).
        let g = Grounding::new("Sales rose on the 19th, as in January, March and May.");
        let pairs = [
            (0, " January"),
            (1, " March"),
            (2, " Mar"),
            (3, " Many"),
            (4, " the"),
            (5, " may"),
            (6, " Marching"),
        ];
        let tokens = ClassTokens::from_pairs(&pairs);
        let refused = "Sales rose on January 19th.";
        let kind: Vec<String> = ["January", "March", "May"].map(String::from).to_vec();
        let bans = [Ban::new(refused, refused.find("January").unwrap()).with_kind(kind)];
        let mut f = CopyFilter::new(&g, &tokens, &[]).banning(&bans);
        // `Many` and `Marching` are other words; every month token, in either case, is banned.
        assert_eq!(allowed(&mut f, "Sales rose on", 7), vec![3, 4, 6]);
        // Elsewhere nothing is.
        assert_eq!(
            allowed(&mut f, "Sales rose on the", 7),
            vec![0, 1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn byte_level_spellings_give_their_bytes() {
        assert_eq!(byte_level_bytes("Ġthe"), Some(b" the".to_vec()));
        // 금 is EA B8 88: ê, ¸ and U+012A (0x88 is not printable: the 43rd byte shifted).
        assert_eq!(byte_level_bytes("ê¸Ī"), Some("금".as_bytes().to_vec()));
        assert_eq!(byte_level_bytes("ê¸"), Some("금".as_bytes()[..2].to_vec()));
        assert_eq!(byte_level_bytes("中"), None);
    }

    #[test]
    fn only_capitalised_latin_words_are_names_to_copy() {
        let g = Grounding::new("Freddie Mac said the fixed rate fell.");
        let pairs = [
            (0, "Fred"),
            (1, "die"),
            (2, "fixed"),
            (3, " Mac"),
            (4, "rate"),
        ];
        let tokens = ClassTokens::from_pairs(&pairs);
        let mut f = CopyFilter::new(&g, &tokens, &[Class::Latin]);
        assert_eq!(allowed(&mut f, "금리 ", 5), vec![0, 3]);
        assert_eq!(allowed(&mut f, "금리 Fred", 5), vec![1]);
    }

    #[test]
    fn latin_names_can_only_be_copied() {
        let g = Grounding::new("이 회장은 Qualcomm 과 AI 협력을 논의했다.");
        let pairs = [
            (0, "Qual"),
            (1, "comm"),
            (2, "Apple"),
            (3, "AI"),
            (4, " 과"),
            (5, "Q"),
        ];
        let tokens = ClassTokens::from_pairs(&pairs);
        let mut f = CopyFilter::new(&g, &tokens, &[Class::Digits, Class::Latin]);
        assert_eq!(allowed(&mut f, "이 회장은 ", 6), vec![0, 3, 4, 5]);
        // Half a name must be finished before anything else.
        assert_eq!(allowed(&mut f, "이 회장은 Qual", 6), vec![1]);
        assert_eq!(allowed(&mut f, "이 회장은 Qualcomm", 6), vec![4]);
    }
}
