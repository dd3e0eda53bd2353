//! Numbers (and, in Korean text, Latin-script names) may only be copied: a decoding constraint.
//!
//! Checking after the fact throws away a whole sentence for one wrong digit or one name the model
//! spelled in English (`Qualcomm` for 퀄컴); forbidding it while decoding keeps the sentence. Before
//! each token, every token that would write a digit run (or a Latin word) the article does not contain,
//! or cannot grow into one, is masked out, and while a run is unfinished (`15` when the article has
//! `1500`) only a continuation may follow. Digit runs are the groups between separators, so `1,500`,
//! `1500` and `3.5` are all copyable from an article that writes them.

use tokenizers::Tokenizer;

use super::ground::Grounding;
use crate::generate::TokenFilter;

/// A kind of run that must be copied from the article.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Digits,
    Latin,
}

impl Class {
    pub(crate) fn has(self, c: char) -> bool {
        match self {
            Class::Digits => c.is_ascii_digit(),
            Class::Latin => c.is_ascii_alphabetic(),
        }
    }
}

/// The vocabulary's tokens that write digits or Latin letters, with their text.
#[derive(Debug, Clone, Default)]
pub struct ClassTokens {
    digits: Vec<(u32, String)>,
    latin: Vec<(u32, String)>,
}

impl ClassTokens {
    pub fn new(tokenizer: &Tokenizer) -> Self {
        let size = tokenizer.get_vocab_size(true) as u32;
        let mut out = Self::default();
        for id in 0..size {
            let Ok(text) = tokenizer.decode(&[id], false) else {
                continue;
            };
            if text.chars().any(|c| Class::Digits.has(c)) {
                out.digits.push((id, text.clone()));
            }
            if text.chars().any(|c| Class::Latin.has(c)) {
                out.latin.push((id, text));
            }
        }
        out
    }

    fn of(&self, class: Class) -> &[(u32, String)] {
        match class {
            Class::Digits => &self.digits,
            Class::Latin => &self.latin,
        }
    }

    #[cfg(test)]
    fn from_pairs(pairs: &[(u32, &str)]) -> Self {
        let mut out = Self::default();
        for &(i, s) in pairs {
            if s.chars().any(|c| Class::Digits.has(c)) {
                out.digits.push((i, s.to_string()));
            }
            if s.chars().any(|c| Class::Latin.has(c)) {
                out.latin.push((i, s.to_string()));
            }
        }
        out
    }
}

/// The mask for one generation.
pub struct CopyFilter<'a> {
    grounding: &'a Grounding,
    tokens: &'a ClassTokens,
    classes: &'a [Class],
    /// For each of `classes`, the tokens forbidden when no run is open (the usual case): the same
    /// at every such step, so worked out once rather than per token generated.
    banned_at_rest: Vec<Vec<usize>>,
}

impl<'a> CopyFilter<'a> {
    /// Constrains the runs of each of `classes` to those the article writes.
    pub fn new(grounding: &'a Grounding, tokens: &'a ClassTokens, classes: &'a [Class]) -> Self {
        let mut filter = Self {
            grounding,
            tokens,
            classes,
            banned_at_rest: Vec::new(),
        };
        filter.banned_at_rest = classes
            .iter()
            .map(|&class| {
                tokens
                    .of(class)
                    .iter()
                    .filter(|(_, text)| !filter.allows(class, "", text))
                    .map(|&(id, _)| id as usize)
                    .collect()
            })
            .collect();
        filter
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

impl TokenFilter for CopyFilter<'_> {
    fn filter(&mut self, generated: &str, logits: &mut [f32]) {
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
