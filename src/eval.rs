//! `sift eval`: scoring detection against a labelled set (`docs/NAME.txt` with `gold/NAME.json`).
//!
//! Byte-level precision, recall and F1 of the detected spam, micro-averaged over documents; the spam
//! bytes claimed in documents that have none; how many cleaned texts match the gold exactly; and how
//! many sentences get the label the gold spans imply (`spam` when gold covers every non-space byte of the
//! sentence, `mixed` when it covers some, `genuine` when none).
//!
//! With summaries (`sift eval --summaries`): per language, the share of the gold's key facts a summary
//! states (a fact counts when any of its surface forms appears), the forbidden terms it uses (the
//! spam's words and plausible inventions), its language purity (Hangul share of the letters in Korean,
//! ASCII share in English) and whether it keeps the length limits. Forms and terms match without case;
//! one made only of ASCII must not touch an ASCII letter or digit on either side (`Intel` is not in
//! `intelligence`), while Korean forms match inside words (`퀄컴과`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::detect::{Detection, Label};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GoldSpan {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Gold {
    pub spam: Vec<GoldSpan>,
    pub clean_text: String,
    /// Five facts a Korean summary should state, each as its acceptable surface forms.
    #[serde(default)]
    pub key_facts_ko: Vec<Vec<String>>,
    #[serde(default)]
    pub key_facts_en: Vec<Vec<String>>,
    /// Terms no summary may contain: the spam's words and plausible inventions.
    #[serde(default)]
    pub forbidden: Vec<String>,
}

/// One labelled document.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub name: String,
    pub path: PathBuf,
    pub text: String,
    pub gold: Gold,
}

/// Reads every `docs/*.txt` under `dir` with its `gold/*.json`, checking the gold against the text.
pub fn load_set(dir: &Path) -> Result<Vec<Labelled>> {
    let paths = crate::input::files_with_extension(&dir.join("docs"), "txt")?;
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let gold_path = dir.join("gold").join(format!("{name}.json"));
        let text = crate::input::read_article(&path)?;
        let gold_text =
            std::fs::read_to_string(&gold_path).map_err(|e| Error::io(&gold_path, e))?;
        let gold: Gold = serde_json::from_str(&gold_text)
            .map_err(|e| Error::Input(format!("{}: {e}", gold_path.display())))?;
        for s in &gold.spam {
            if text.get(s.start..s.end) != Some(s.text.as_str()) {
                return Err(Error::Input(format!(
                    "{}: span {}..{} does not hold {:?}",
                    gold_path.display(),
                    s.start,
                    s.end,
                    s.text
                )));
            }
        }
        out.push(Labelled {
            name,
            path,
            text,
            gold,
        });
    }
    Ok(out)
}

/// The scores of one document.
#[derive(Debug, Clone, Serialize)]
pub struct DocScore {
    pub name: String,
    pub true_positive_bytes: usize,
    pub false_positive_bytes: usize,
    pub false_negative_bytes: usize,
    /// The gold marks no spam in this document.
    pub clean_document: bool,
    pub clean_text_exact: bool,
    pub sentences: usize,
    pub sentences_correct: usize,
}

/// The scores of a set.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub documents: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub clean_documents: usize,
    pub false_positive_bytes_on_clean: usize,
    pub clean_text_exact_rate: f64,
    pub sentence_accuracy: f64,
    pub per_document: Vec<DocScore>,
}

/// Scores `detection` of `doc`.
pub fn score(doc: &Labelled, detection: &Detection) -> DocScore {
    let n = doc.text.len();
    let mut gold = vec![false; n];
    for s in &doc.gold.spam {
        gold[s.start..s.end].iter_mut().for_each(|b| *b = true);
    }
    let mut pred = vec![false; n];
    for s in &detection.spans {
        pred[s.start.min(n)..s.end.min(n)]
            .iter_mut()
            .for_each(|b| *b = true);
    }
    let (mut tp, mut fp, mut fneg) = (0, 0, 0);
    for (g, p) in gold.iter().zip(&pred) {
        match (g, p) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            _ => {}
        }
    }
    let correct = detection
        .sentences
        .iter()
        .filter(|s| gold_label(&doc.text, &gold, s.start, s.end) == s.label)
        .count();
    DocScore {
        name: doc.name.clone(),
        true_positive_bytes: tp,
        false_positive_bytes: fp,
        false_negative_bytes: fneg,
        clean_document: doc.gold.spam.is_empty(),
        clean_text_exact: detection.clean_text == doc.gold.clean_text,
        sentences: detection.sentences.len(),
        sentences_correct: correct,
    }
}

fn gold_label(text: &str, gold: &[bool], start: usize, end: usize) -> Label {
    let (mut covered, mut total) = (0, 0);
    for (i, c) in text[start..end].char_indices() {
        if !c.is_whitespace() {
            total += 1;
            covered += usize::from(gold[start + i]);
        }
    }
    match covered {
        0 => Label::Genuine,
        c if c == total => Label::Spam,
        _ => Label::Mixed,
    }
}

/// Micro-averages document scores.
pub fn report(per_document: Vec<DocScore>) -> Report {
    let sum = |f: fn(&DocScore) -> usize| per_document.iter().map(f).sum::<usize>();
    let tp = sum(|d| d.true_positive_bytes) as f64;
    let fp = sum(|d| d.false_positive_bytes) as f64;
    let fneg = sum(|d| d.false_negative_bytes) as f64;
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 1.0 };
    let recall = if tp + fneg > 0.0 {
        tp / (tp + fneg)
    } else {
        1.0
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let docs = per_document.len().max(1) as f64;
    let sentences = sum(|d| d.sentences).max(1) as f64;
    Report {
        documents: per_document.len(),
        precision,
        recall,
        f1,
        clean_documents: per_document.iter().filter(|d| d.clean_document).count(),
        false_positive_bytes_on_clean: per_document
            .iter()
            .filter(|d| d.clean_document)
            .map(|d| d.false_positive_bytes)
            .sum(),
        clean_text_exact_rate: per_document.iter().filter(|d| d.clean_text_exact).count() as f64
            / docs,
        sentence_accuracy: sum(|d| d.sentences_correct) as f64 / sentences,
        per_document,
    }
}

/// How one summary measures up against the gold.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryScore {
    pub name: String,
    pub lang: crate::summarize::Lang,
    /// Share of the key facts stated (1.0 when the gold lists none).
    pub coverage: f64,
    pub missing_facts: Vec<String>,
    pub forbidden_hits: Vec<String>,
    pub purity: f64,
    pub chars: usize,
    pub sentences: usize,
    pub within_limits: bool,
    /// The summary scored, so a report can be read back without running the model again.
    pub text: String,
}

/// Whether `form` occurs in `text` under the matching rule in the module header.
pub fn mentions(text: &str, form: &str) -> bool {
    let hay = text.to_lowercase();
    let needle = form.to_lowercase();
    if needle.is_empty() {
        return false;
    }
    let ascii = needle.is_ascii();
    let mut from = 0;
    while let Some(at) = hay[from..].find(&needle) {
        let start = from + at;
        let end = start + needle.len();
        if !ascii {
            return true;
        }
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        let touches = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !touches(before) && !touches(after) {
            return true;
        }
        from = start + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Scores one summary of `doc`.
pub fn score_summary(doc: &Labelled, summary: &crate::summarize::Summary) -> SummaryScore {
    use crate::summarize::{ground::script_share, Lang, Limits};
    let facts = match summary.lang {
        Lang::Ko => &doc.gold.key_facts_ko,
        Lang::En => &doc.gold.key_facts_en,
    };
    let text = &summary.text;
    let missing: Vec<String> = facts
        .iter()
        .filter(|forms| !forms.iter().any(|f| mentions(text, f)))
        .map(|forms| forms.join(" | "))
        .collect();
    let coverage = if facts.is_empty() {
        1.0
    } else {
        (facts.len() - missing.len()) as f64 / facts.len() as f64
    };
    let limits = Limits::for_lang(summary.lang);
    let chars = text.chars().count();
    let sentences = crate::segment::sentences(text).len();
    SummaryScore {
        name: doc.name.clone(),
        lang: summary.lang,
        coverage,
        missing_facts: missing,
        forbidden_hits: doc
            .gold
            .forbidden
            .iter()
            .filter(|t| mentions(text, t))
            .cloned()
            .collect(),
        purity: if text.is_empty() {
            1.0
        } else {
            script_share(text, summary.lang)
        },
        chars,
        sentences,
        within_limits: chars <= limits.max_chars && sentences <= limits.max_sentences,
        text: text.clone(),
    }
}

/// One language's summary scores over a set.
#[derive(Debug, Clone, Serialize)]
pub struct LanguageReport {
    pub lang: crate::summarize::Lang,
    pub summaries: usize,
    /// Mean key-fact coverage.
    pub coverage: f64,
    pub forbidden_hits: usize,
    pub purity_mean: f64,
    pub purity_min: f64,
    pub within_limits: usize,
    /// Summaries left empty because no sentence passed the checks.
    pub empty: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SummaryReport {
    pub languages: Vec<LanguageReport>,
    pub per_summary: Vec<SummaryScore>,
}

/// Averages summary scores per language.
pub fn summary_report(per_summary: Vec<SummaryScore>) -> SummaryReport {
    use crate::summarize::Lang;
    let mut languages = Vec::new();
    for lang in [Lang::Ko, Lang::En] {
        let these: Vec<&SummaryScore> = per_summary.iter().filter(|s| s.lang == lang).collect();
        if these.is_empty() {
            continue;
        }
        let n = these.len() as f64;
        languages.push(LanguageReport {
            lang,
            summaries: these.len(),
            coverage: these.iter().map(|s| s.coverage).sum::<f64>() / n,
            forbidden_hits: these.iter().map(|s| s.forbidden_hits.len()).sum(),
            purity_mean: these.iter().map(|s| s.purity).sum::<f64>() / n,
            purity_min: these.iter().map(|s| s.purity).fold(1.0, f64::min),
            within_limits: these.iter().filter(|s| s.within_limits).count(),
            empty: these.iter().filter(|s| s.chars == 0).count(),
        });
    }
    SummaryReport {
        languages,
        per_summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_forms_match_whole_words_korean_forms_inside_words() {
        assert!(mentions("Intel said", "intel"));
        assert!(!mentions("artificial intelligence", "Intel"));
        assert!(!mentions("prosecutors said", "SEC"));
        assert!(mentions("the SEC, and", "SEC"));
        assert!(mentions("BYD도 참여했다", "BYD"));
        assert!(mentions("퀄컴과 만났다", "퀄컴"));
        assert!(mentions("rate of 3.5%", "3.5"));
        assert!(!mentions("rate of 13.5%", "3.5"));
    }
}
