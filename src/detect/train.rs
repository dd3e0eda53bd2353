//! `sift train`: reproduces the token head from the corpus in `data/train/`.
//!
//! Genuine sentences come from the articles in `data/train/genuine/`, spam phrases from
//! `data/train/spam.tsv`. Each genuine sentence is used as it is (every token genuine) and with a phrase
//! injected the ways spammers inject them (glued after a comma, glued to the next sentence, between
//! spaces, appended, or standing alone as a line); a token is spam when most of its bytes are injected.
//! The encoder turns every example into contextual token vectors once, and the head is fitted on them
//! with AdamW. The phrase test is fitted on phrases against genuine text, and the instruction test on
//! `instructions.tsv` against genuine sentences and `imperatives.txt`, both on texts' own vectors.
//! Everything is seeded, so the same corpus gives the same weights. The development set in `data/dev/`
//! and the injected-instruction set in `data/injections/` are never read here: they stay fair measures.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use crate::detect::head::{self, TokenHead};
use crate::encode::{Encoder, Prefix};
use crate::error::{Error, Result};
use crate::segment;

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub seed: u64,
    pub hidden: usize,
    pub epochs: usize,
    pub batch_tokens: usize,
    pub learning_rate: f64,
    /// Injected variants made from each genuine sentence.
    pub variants: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            seed: 20261128,
            hidden: 96,
            epochs: 30,
            batch_tokens: 512,
            learning_rate: 1e-3,
            variants: 3,
        }
    }
}

/// One training sentence and the byte range injected into it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Index of the article the sentence comes from (its centre is the document context).
    pub article: usize,
    pub text: String,
    pub spam: Option<(usize, usize)>,
    /// Held out from fitting, to report how the head does on articles it did not see.
    pub held_out: bool,
}

/// What training reports.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub examples: usize,
    pub tokens: usize,
    pub held_out_tokens: usize,
    /// Token-level precision and recall of spam on held-out articles, at probability 0.5.
    pub held_out_precision: f64,
    pub held_out_recall: f64,
    /// Accuracy of the phrase test on held-out phrases and fragments.
    pub phrase_test_accuracy: f64,
    /// Accuracy of the instruction test on held-out instructions, sentences and fragments.
    pub instruction_test_accuracy: f64,
}

/// SplitMix64: a small, well-known, seedable generator, so examples do not depend on a crate's
/// stream staying the same across versions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Reads the corpus: genuine sentences per article, and spam phrases.
pub fn read_corpus(dir: &Path) -> Result<(Vec<Vec<String>>, Vec<String>)> {
    let paths = crate::input::files_with_extension(&dir.join("genuine"), "txt")?;
    let mut articles = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let sents: Vec<String> = segment::sentences(&text)
            .iter()
            .map(|s| text[s.start..s.end].to_string())
            .collect();
        articles.push(sents);
    }
    let tsv = dir.join("spam.tsv");
    let phrases = std::fs::read_to_string(&tsv)
        .map_err(|e| Error::io(&tsv, e))?
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, p)| p.trim().to_string()))
        .filter(|p| !p.is_empty())
        .collect();
    Ok((articles, phrases))
}

/// The instruction test's own material (`instructions.tsv`, `imperatives.txt`).
#[derive(Debug, Clone, Default)]
pub struct Instructions {
    /// Instructions addressed to a model that reads the article.
    pub positive: Vec<String>,
    /// Genuine sentences that give orders to people or report on AI.
    pub hard_negative: Vec<String>,
}

/// Reads `instructions.tsv` (`KIND<TAB>INSTRUCTION` per line) and `imperatives.txt` (one sentence per
/// line).
pub fn read_instructions(dir: &Path) -> Result<Instructions> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))
    };
    let positive = read("instructions.tsv")?
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, p)| p.trim().to_string()))
        .filter(|p| !p.is_empty())
        .collect();
    let hard_negative = read("imperatives.txt")?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    Ok(Instructions {
        positive,
        hard_negative,
    })
}

/// Builds the examples: each genuine sentence as it is, plus `variants` injected copies.
pub fn make_examples(
    articles: &[Vec<String>],
    phrases: &[String],
    opts: &TrainOptions,
) -> Vec<Example> {
    let mut rng = Rng::new(opts.seed);
    let mut out = Vec::new();
    if phrases.is_empty() {
        return out;
    }
    for (a, sents) in articles.iter().enumerate() {
        let held_out = a % 5 == 4;
        let example = |text: String, spam| Example {
            article: a,
            text,
            spam,
            held_out,
        };
        for (i, s) in sents.iter().enumerate() {
            out.push(example(s.clone(), None));
            for _ in 0..opts.variants {
                let p = &phrases[rng.below(phrases.len())];
                let next = sents.get(i + 1).map(String::as_str).unwrap_or("");
                let (text, span) = inject(s, next, p, &mut rng);
                out.push(example(text, Some(span)));
            }
        }
    }
    // Phrases standing alone, as whole spam lines of some article.
    for p in phrases {
        let article = rng.below(articles.len());
        out.push(Example {
            article,
            text: p.clone(),
            spam: Some((0, p.len())),
            held_out: article % 5 == 4,
        });
    }
    out
}

/// Injects `phrase` into `sentence` in one of the ways spammers do; returns the text and the
/// injected byte range.
fn inject(sentence: &str, next: &str, phrase: &str, rng: &mut Rng) -> (String, (usize, usize)) {
    let commas: Vec<usize> = sentence.match_indices(',').map(|(i, _)| i + 1).collect();
    let spaces: Vec<usize> = sentence.match_indices(' ').map(|(i, _)| i).collect();
    let glue = |at: usize, sep_before: &str| {
        let text = format!("{}{sep_before}{phrase}{}", &sentence[..at], &sentence[at..]);
        let start = at + sep_before.len();
        (text, (start, start + phrase.len()))
    };
    match rng.below(6) {
        // `아마존,SPAM퀄컴`: glued after a comma.
        0 | 1 if !commas.is_empty() => glue(commas[rng.below(commas.len())], ""),
        // `word SPAM word`: between spaces.
        2 if !spaces.is_empty() => glue(spaces[rng.below(spaces.len())], " "),
        // `했다.SPAM다음 문장`: glued to the start of the next sentence.
        3 if !next.is_empty() => (format!("{phrase}{next}"), (0, phrase.len())),
        // `… 했다. SPAM`: appended at the end.
        4 => {
            let text = format!("{sentence} {phrase}");
            let span = (sentence.len() + 1, text.len());
            (text, span)
        }
        // Any other word boundary, glued on the left.
        _ if !spaces.is_empty() => glue(spaces[rng.below(spaces.len())] + 1, ""),
        _ => (format!("{phrase} {sentence}"), (0, phrase.len())),
    }
}

/// Whether a token covering `[a, b)` of the example is mostly injected text.
fn token_label(ex: &Example, a: usize, b: usize) -> f32 {
    let Some((s, e)) = ex.spam else { return 0.0 };
    let text = &ex.text[a..b];
    let inside = text
        .char_indices()
        .filter(|(_, c)| !c.is_whitespace())
        .filter(|(i, _)| (s..e).contains(&(a + i)))
        .count();
    let total = text.chars().filter(|c| !c.is_whitespace()).count();
    if total > 0 && inside * 2 > total {
        1.0
    } else {
        0.0
    }
}

/// The phrase test's data: spam phrases and fragments of them (1) against genuine sentences and
/// fragments of them (0).
pub fn train_phrase_test(
    encoder: &Encoder,
    examples: &[Example],
    phrases: &[String],
    opts: &TrainOptions,
    progress: &dyn Fn(&str),
) -> Result<(Var, Var, f64)> {
    let mut rng = Rng::new(opts.seed ^ 0xF4A5E);
    // (text, label, held out)
    let mut data: Vec<(String, f32, bool)> = Vec::new();
    for (i, p) in phrases.iter().enumerate() {
        let held = i % 5 == 4;
        data.push((p.clone(), 1.0, held));
        if let Some(f) = fragment(p, &mut rng) {
            data.push((f, 1.0, held));
        }
    }
    for ex in examples.iter().filter(|e| e.spam.is_none()) {
        let words: Vec<&str> = ex.text.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if rng.below(2) == 0 {
            data.push((ex.text.clone(), 0.0, ex.held_out));
        }
        for _ in 0..2 {
            let len = 1 + rng.below(6.min(words.len()));
            let from = rng.below(words.len() - len + 1);
            data.push((words[from..from + len].join(" "), 0.0, ex.held_out));
        }
    }
    fit_linear(encoder, &data, Fit::PHRASE, "phrase test", progress)
}

/// The instruction test's data: instructions addressed to a model, whole and as fragments (1),
/// against every genuine sentence, the genuine sentences that give orders or report on AI
/// (`imperatives.txt`, its hard negatives), and fragments of both (0).
pub fn train_instruction_test(
    encoder: &Encoder,
    examples: &[Example],
    instructions: &Instructions,
    opts: &TrainOptions,
    progress: &dyn Fn(&str),
) -> Result<(Var, Var, f64)> {
    let data = instruction_test_data(examples, instructions, opts);
    fit_linear(
        encoder,
        &data,
        Fit::INSTRUCTION,
        "instruction test",
        progress,
    )
}

/// The instruction test's rows: (text, label, held out).
pub fn instruction_test_data(
    examples: &[Example],
    instructions: &Instructions,
    opts: &TrainOptions,
) -> Vec<(String, f32, bool)> {
    let mut rng = Rng::new(opts.seed ^ 0x1457);
    let mut data: Vec<(String, f32, bool)> = Vec::new();
    let mut both = |text: &str, label: f32, held: bool, rng: &mut Rng| {
        data.push((text.to_string(), label, held));
        if let Some(f) = fragment(text, rng) {
            data.push((f, label, held));
        }
    };
    for (i, p) in instructions.positive.iter().enumerate() {
        both(p, 1.0, i % 5 == 4, &mut rng);
    }
    for (i, p) in instructions.hard_negative.iter().enumerate() {
        both(p, 0.0, i % 5 == 4, &mut rng);
    }
    for ex in examples.iter().filter(|e| e.spam.is_none()) {
        both(&ex.text, 0.0, ex.held_out, &mut rng);
    }
    data
}

/// A run of at least half the words of `text` (when it has three or more), as a detector's
/// candidate span often is.
fn fragment(text: &str, rng: &mut Rng) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < 3 {
        return None;
    }
    let len = words.len().div_ceil(2) + rng.below(words.len() / 2);
    let from = rng.below(words.len() - len + 1);
    Some(words[from..from + len].join(" "))
}

/// `sum(w * bce(z, y))` in the stable form `max(z, 0) - z y + ln(1 + e^-|z|)`; `w` sums to one.
fn weighted_bce_with_logits(z: &Tensor, y: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let bce = ((z.relu()? - (z * y)?)? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    (bce * w)?.sum_all()
}

/// How a linear test is fitted.
struct Fit {
    steps: usize,
    /// Weigh the classes equally (the positives are few beside every genuine sentence).
    balanced: bool,
}

impl Fit {
    const PHRASE: Fit = Fit {
        steps: 400,
        balanced: false,
    };
    /// About 190 instructions against 1,200 genuine texts: unweighted, every instruction scored near
    /// 0.5 and the test could not be trusted at any threshold.
    const INSTRUCTION: Fit = Fit {
        steps: 2000,
        balanced: true,
    };
}

/// Logistic regression on the encoder's vectors of `data` (text, label, held out): fitted on the rest,
/// scored on the held-out rows (accuracy at 0.5).
fn fit_linear(
    encoder: &Encoder,
    data: &[(String, f32, bool)],
    fit: Fit,
    name: &str,
    progress: &dyn Fn(&str),
) -> Result<(Var, Var, f64)> {
    let device = Device::Cpu;
    progress(&format!("{name}: encoding {} texts", data.len()));
    let mut vectors = Vec::with_capacity(data.len());
    for chunk in data.chunks(64) {
        let texts: Vec<&str> = chunk.iter().map(|d| d.0.as_str()).collect();
        vectors.extend(encoder.embed(&texts, Prefix::Passage)?);
    }
    let dim = encoder.dim();
    let pick = |held: bool| {
        let idx: Vec<usize> = (0..data.len()).filter(|&i| data[i].2 == held).collect();
        let x: Vec<f32> = idx
            .iter()
            .flat_map(|&i| vectors[i].iter().copied())
            .collect();
        let y: Vec<f32> = idx.iter().map(|&i| data[i].1).collect();
        (
            Tensor::from_vec(x, (idx.len(), dim), &device),
            Tensor::from_vec(y, idx.len(), &device),
        )
    };
    let (x, y) = pick(false);
    let (x, y) = (x?, y?);
    let w = Var::zeros((1, dim), DType::F32, &device)?;
    let b = Var::zeros(1, DType::F32, &device)?;
    let mut opt = AdamW::new(
        vec![w.clone(), b.clone()],
        ParamsAdamW {
            lr: 0.02,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;
    let logits_of = |x: &Tensor| -> candle_core::Result<Tensor> {
        x.matmul(&w.as_tensor().t()?)?
            .broadcast_add(b.as_tensor())?
            .squeeze(1)
    };
    // Per-row weights: with `balanced`, the positives together weigh what the negatives do.
    let labels = y.to_vec1::<f32>()?;
    let positives = labels.iter().filter(|&&l| l > 0.5).count().max(1) as f32;
    let negatives = (labels.len() as f32 - positives).max(1.0);
    let weights: Vec<f32> = labels
        .iter()
        .map(|&l| match (fit.balanced, l > 0.5) {
            (true, true) => negatives / positives,
            _ => 1.0,
        })
        .collect();
    let total: f32 = weights.iter().sum();
    let weights =
        Tensor::from_vec(weights, labels.len(), &device)?.affine(1.0 / total as f64, 0.0)?;
    for _ in 0..fit.steps {
        let loss = if fit.balanced {
            weighted_bce_with_logits(&logits_of(&x)?, &y, &weights)?
        } else {
            candle_nn::loss::binary_cross_entropy_with_logit(&logits_of(&x)?, &y)?
        };
        opt.backward_step(&loss)?;
    }
    let (hx, hy) = pick(true);
    let (hx, hy) = (hx?, hy?.to_vec1::<f32>()?);
    let p = candle_nn::ops::sigmoid(&logits_of(&hx)?)?.to_vec1::<f32>()?;
    let correct = p
        .iter()
        .zip(&hy)
        .filter(|(p, y)| (**p >= 0.5) == (**y > 0.5))
        .count();
    let wrong_positive = p
        .iter()
        .zip(&hy)
        .filter(|(p, y)| **p >= 0.5 && **y < 0.5)
        .count();
    let acc = correct as f64 / hy.len().max(1) as f64;
    progress(&format!(
        "{name}: held-out accuracy {acc:.3} on {} texts ({wrong_positive} negatives called positive)",
        hy.len()
    ));
    Ok((w, b, acc))
}

pub fn train(
    encoder: &Encoder,
    examples: &[Example],
    phrases: &[String],
    instructions: &Instructions,
    opts: &TrainOptions,
    progress: &dyn Fn(&str),
) -> Result<(TokenHead, TrainReport)> {
    let device = Device::Cpu;
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].text.len());
    let dim = encoder.dim();
    let mut encoded = vec![None; examples.len()];
    for (n, chunk) in order.chunks(32).enumerate() {
        let texts: Vec<&str> = chunk.iter().map(|&i| examples[i].text.as_str()).collect();
        for (&i, v) in chunk
            .iter()
            .zip(encoder.embed_tokens(&texts, Prefix::Passage)?)
        {
            encoded[i] = Some(v);
        }
        if n % 10 == 0 {
            progress(&format!(
                "encoded {} of {} examples",
                ((n + 1) * 32).min(examples.len()),
                examples.len()
            ));
        }
    }
    let encoded: Vec<_> = encoded.into_iter().flatten().collect();
    // Each article's centre, from its genuine sentences, as the detector computes it from an article.
    let articles = examples.iter().map(|e| e.article + 1).max().unwrap_or(0);
    let centres: Vec<Vec<f32>> = (0..articles)
        .map(|a| {
            let vs: Vec<&[f32]> = examples
                .iter()
                .zip(&encoded)
                .filter(|(e, _)| e.article == a && e.spam.is_none())
                .map(|(_, v)| v.sentence.as_slice())
                .collect();
            crate::detect::unit_mean(&vs, dim)
        })
        .collect();
    let mut rows: Vec<f32> = Vec::new();
    let mut labels: Vec<f32> = Vec::new();
    let mut held_rows: Vec<f32> = Vec::new();
    let mut held_labels: Vec<f32> = Vec::new();
    for (ex, v) in examples.iter().zip(&encoded) {
        let feats = head::features(&v.vectors, &v.sentence, &centres[ex.article], &device)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let (r, l) = if ex.held_out {
            (&mut held_rows, &mut held_labels)
        } else {
            (&mut rows, &mut labels)
        };
        r.extend(feats);
        l.extend(v.spans.iter().map(|&(a, b)| token_label(ex, a, b)));
    }
    let width = dim * 4;
    let n = labels.len();
    let x = Tensor::from_vec(rows, (n, width), &device)?;
    let y = Tensor::from_vec(labels, n, &device)?;

    let mut rng = Rng::new(opts.seed ^ 0x5EED);
    let mut init = |shape: (usize, usize), fan_in: usize| -> Result<Var> {
        let scale = (1.0 / fan_in as f32).sqrt();
        let v: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| (rng.unit() * 2.0 - 1.0) * scale)
            .collect();
        Ok(Var::from_tensor(&Tensor::from_vec(v, shape, &device)?)?)
    };
    let w1 = init((opts.hidden, width), width)?;
    let w2 = init((1, opts.hidden), opts.hidden)?;
    let b1 = Var::zeros(opts.hidden, DType::F32, &device)?;
    let b2 = Var::zeros(1, DType::F32, &device)?;
    let mut opt = AdamW::new(
        vec![w1.clone(), b1.clone(), w2.clone(), b2.clone()],
        ParamsAdamW {
            lr: opts.learning_rate,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;
    let mut perm: Vec<usize> = (0..n).collect();
    for epoch in 0..opts.epochs {
        for i in (1..n).rev() {
            perm.swap(i, rng.below(i + 1));
        }
        let mut total = 0.0;
        for batch in perm.chunks(opts.batch_tokens) {
            let idx = Tensor::from_vec(
                batch.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                batch.len(),
                &device,
            )?;
            let xb = x.index_select(&idx, 0)?;
            let yb = y.index_select(&idx, 0)?;
            let logits = head::forward(&w1, &b1, &w2, &b2, &xb)?;
            let loss = candle_nn::loss::binary_cross_entropy_with_logit(&logits, &yb)?;
            opt.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()? as f64 * batch.len() as f64;
        }
        progress(&format!(
            "epoch {}: loss {:.4}",
            epoch + 1,
            total / n as f64
        ));
    }
    let (span_w, span_b, phrase_acc) =
        train_phrase_test(encoder, examples, phrases, opts, progress)?;
    let (instr_w, instr_b, instr_acc) =
        train_instruction_test(encoder, examples, instructions, opts, progress)?;
    let head = TokenHead::from_vars(
        [&w1, &b1, &w2, &b2],
        [&span_w, &span_b],
        [&instr_w, &instr_b],
    );

    let held_n = held_labels.len();
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    if held_n > 0 {
        let hx = Tensor::from_vec(held_rows, (held_n, width), &device)?;
        let p = candle_nn::ops::sigmoid(&head.logits(&hx)?)?.to_vec1::<f32>()?;
        for (p, y) in p.iter().zip(&held_labels) {
            match (*p >= 0.5, *y > 0.5) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fneg += 1,
                _ => {}
            }
        }
    }
    let ratio = |a: usize, b: usize| {
        if a + b == 0 {
            0.0
        } else {
            a as f64 / (a + b) as f64
        }
    };
    Ok((
        head,
        TrainReport {
            examples: examples.len(),
            tokens: n,
            held_out_tokens: held_n,
            held_out_precision: ratio(tp, fp),
            held_out_recall: ratio(tp, fneg),
            phrase_test_accuracy: phrase_acc,
            instruction_test_accuracy: instr_acc,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injections_mark_exactly_the_phrase() {
        let articles = vec![vec![
            "이 회장은 아마존,퀄컴 등과 만났다.".to_string(),
            "Shares rose, traders said on Monday.".to_string(),
        ]];
        let phrases = vec!["SPAM PHRASE".to_string(), "토토사이트".to_string()];
        let opts = TrainOptions {
            variants: 6,
            ..TrainOptions::default()
        };
        let examples = make_examples(&articles, &phrases, &opts);
        assert_eq!(
            examples,
            make_examples(&articles, &phrases, &opts),
            "not deterministic"
        );
        let mut injected = 0;
        for ex in &examples {
            if let Some((s, e)) = ex.spam {
                assert!(phrases.contains(&ex.text[s..e].to_string()), "{ex:?}");
                injected += 1;
            }
        }
        assert_eq!(injected, 2 * 6 + 2);
    }
}
