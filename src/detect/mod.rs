//! Where a sentence gets its label: finding injected spam spans in an article.
//!
//! Every sentence goes through the multilingual encoder once; the token head turns each contextual
//! token vector into a spam probability, and runs of likely tokens become candidate spans, with exact
//! byte edges at token boundaries. Document-level evidence then decides: a candidate must read as off
//! the article's topic (its vector against the article's centre), and a phrase that recurs verbatim
//! elsewhere in the article is found at every occurrence, with its edges set to where the occurrences
//! stop agreeing. Sentences are labelled `genuine`, `mixed` or `spam` from the spans they contain.

pub mod head;
pub mod spans;
pub mod train;

use serde::Serialize;

use crate::encode::{cosine, Encoder, Prefix, TokenVectors};
use crate::error::Result;
use crate::segment;
use head::TokenHead;
use spans::Span;

/// A sentence's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Genuine,
    Mixed,
    Spam,
}

#[derive(Debug, Clone, Serialize)]
pub struct SentenceLabel {
    pub start: usize,
    pub end: usize,
    pub label: Label,
    /// The highest token spam probability in the sentence.
    pub score: f32,
}

/// The outcome for one article.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub spans: Vec<Span>,
    pub sentences: Vec<SentenceLabel>,
    pub clean_text: String,
}

/// Decision settings.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// A token at or above this probability belongs to a candidate span.
    pub token_threshold: f32,
    /// A candidate whose mean token probability is at or above this is kept whatever its topic.
    pub sure_threshold: f32,
    /// A candidate below `sure_threshold` is kept only if its similarity to the article's centre is
    /// below this.
    pub off_topic_below: f32,
    /// Shorter candidates (in characters, spaces excluded) are dropped.
    pub min_chars: usize,
    /// Sentences per encoder batch.
    pub batch_size: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            token_threshold: 0.5,
            sure_threshold: 0.9,
            off_topic_below: 0.86,
            min_chars: 3,
            batch_size: 16,
        }
    }
}

pub struct Detector<'a> {
    encoder: &'a Encoder,
    head: TokenHead,
    pub options: DetectOptions,
}

impl<'a> Detector<'a> {
    pub fn new(encoder: &'a Encoder, head: TokenHead) -> Self {
        Self {
            encoder,
            head,
            options: DetectOptions::default(),
        }
    }

    pub fn detect(&self, text: &str) -> Result<Detection> {
        Ok(self.detect_many(&[text])?.remove(0))
    }

    /// Detects spam in several articles, batching their sentences through the encoder together.
    pub fn detect_many(&self, texts: &[&str]) -> Result<Vec<Detection>> {
        let segmented: Vec<Vec<segment::Span>> =
            texts.iter().map(|t| segment::sentences(t)).collect();
        let mut all: Vec<(usize, usize, &str)> = Vec::new();
        for (d, (text, sents)) in texts.iter().zip(&segmented).enumerate() {
            for (i, s) in sents.iter().enumerate() {
                all.push((d, i, &text[s.start..s.end]));
            }
        }
        let vectors = self.embed_sorted(&all.iter().map(|x| x.2).collect::<Vec<_>>())?;
        let mut per_doc: Vec<Vec<Option<TokenVectors>>> =
            segmented.iter().map(|s| vec![None; s.len()]).collect();
        for ((d, i, _), v) in all.iter().zip(vectors) {
            per_doc[*d][*i] = Some(v);
        }
        texts
            .iter()
            .zip(&segmented)
            .zip(per_doc)
            .map(|((text, sents), vecs)| {
                let vecs: Vec<TokenVectors> = vecs.into_iter().flatten().collect();
                self.decide(text, sents, &vecs)
            })
            .collect()
    }

    /// Embeds texts in batches of similar length (less padding), returning results in input order.
    fn embed_sorted(&self, texts: &[&str]) -> Result<Vec<TokenVectors>> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out: Vec<Option<TokenVectors>> = vec![None; texts.len()];
        for chunk in order.chunks(self.options.batch_size.max(1)) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, v) in chunk
                .iter()
                .zip(self.encoder.embed_tokens(&batch, Prefix::Passage)?)
            {
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    fn decide(
        &self,
        text: &str,
        sents: &[segment::Span],
        vecs: &[TokenVectors],
    ) -> Result<Detection> {
        let o = &self.options;
        let sentence_vectors: Vec<&[f32]> = vecs.iter().map(|v| v.sentence.as_slice()).collect();
        let document = unit_mean(&sentence_vectors, self.encoder.dim());
        let mut probs = Vec::with_capacity(sents.len());
        let mut candidates: Vec<Span> = Vec::new();
        for (s, v) in sents.iter().zip(vecs) {
            let p = self
                .head
                .token_probabilities(&v.vectors, &v.sentence, &document)?;
            candidates.extend(runs(text, s, v, &p, o.token_threshold));
            probs.push(p);
        }
        candidates.retain(|c| {
            text[c.start..c.end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .count()
                >= o.min_chars
        });

        // The article's centre, from sentences that hold no candidate.
        let centre = centre(sents, vecs, &candidates, self.encoder.dim());
        let mut kept = Vec::new();
        if !candidates.is_empty() {
            let texts: Vec<&str> = candidates.iter().map(|c| &text[c.start..c.end]).collect();
            let cand_vecs = self.encoder.embed(&texts, Prefix::Passage)?;
            for (c, v) in candidates.iter().zip(&cand_vecs) {
                let on_topic = centre.as_ref().map_or(0.0, |m| cosine(v, m));
                if std::env::var_os("SIFT_DEBUG").is_some() {
                    eprintln!(
                        "candidate {:.3} topic {:.3} {:?}",
                        c.score,
                        on_topic,
                        &text[c.start..c.end]
                    );
                }
                if c.score >= o.sure_threshold || on_topic < o.off_topic_below {
                    kept.push(*c);
                }
            }
        }
        let kept = repeat_everywhere(text, kept);
        let spans: Vec<Span> = spans::merge(
            kept.into_iter()
                .map(|c| {
                    let (s, e) = spans::snap_whitespace(text, c.start, c.end);
                    Span {
                        start: s,
                        end: e,
                        score: c.score,
                    }
                })
                .collect(),
        );
        let sentences = label_sentences(text, sents, &probs, &spans);
        let cuts: Vec<(usize, usize)> = spans.iter().map(|s| (s.start, s.end)).collect();
        Ok(Detection {
            clean_text: spans::clean_text(text, &cuts),
            spans,
            sentences,
        })
    }
}

/// Runs of tokens at or above `threshold` in one sentence, as trimmed byte spans of the article. A run
/// covering nearly all of its sentence becomes the whole sentence.
fn runs(text: &str, s: &segment::Span, v: &TokenVectors, p: &[f32], threshold: f32) -> Vec<Span> {
    let mut out = Vec::new();
    let mut i = 0;
    let sentence_chars = text[s.start..s.end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .count();
    while i < p.len() {
        if p[i] < threshold {
            i += 1;
            continue;
        }
        let first = i;
        while i < p.len() && p[i] >= threshold {
            i += 1;
        }
        let (a, b) = (s.start + v.spans[first].0, s.start + v.spans[i - 1].1);
        let (a, b) = spans::trim(text, a, b);
        if b <= a {
            continue;
        }
        let score = p[first..i].iter().sum::<f32>() / (i - first) as f32;
        let chars = text[a..b].chars().filter(|c| !c.is_whitespace()).count();
        let (a, b) = if chars * 100 >= sentence_chars * 85 {
            (s.start, s.end)
        } else {
            (a, b)
        };
        out.push(Span {
            start: a,
            end: b,
            score,
        });
    }
    out
}

/// Unit mean of the sentence vectors of sentences that hold no candidate span.
fn centre(
    sents: &[segment::Span],
    vecs: &[TokenVectors],
    candidates: &[Span],
    dim: usize,
) -> Option<Vec<f32>> {
    let mut sum = vec![0f32; dim];
    let mut n = 0;
    for (s, v) in sents.iter().zip(vecs) {
        if candidates
            .iter()
            .any(|c| c.start < s.end && s.start < c.end)
        {
            continue;
        }
        sum.iter_mut().zip(&v.sentence).for_each(|(a, b)| *a += b);
        n += 1;
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    (n > 0 && norm > 0.0).then(|| sum.iter().map(|x| x / norm).collect())
}

/// The unit-length mean of `vectors` (zeros when there are none).
pub fn unit_mean(vectors: &[&[f32]], dim: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    for v in vectors {
        sum.iter_mut().zip(v.iter()).for_each(|(a, b)| *a += b);
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        sum.iter_mut().for_each(|x| *x /= norm);
    }
    sum
}

/// A kept phrase is spam wherever it recurs verbatim; its edges are aligned across occurrences.
fn repeat_everywhere(text: &str, kept: Vec<Span>) -> Vec<Span> {
    let mut out = kept.clone();
    for k in &kept {
        let phrase = &text[k.start..k.end];
        if phrase.chars().count() < 6 {
            continue;
        }
        let mut from = 0;
        while let Some(off) = text[from..].find(phrase) {
            let at = from + off;
            if at != k.start {
                out.push(Span {
                    start: at,
                    end: at + phrase.len(),
                    score: k.score,
                });
            }
            from = at + phrase.len();
        }
    }
    out
}

fn label_sentences(
    text: &str,
    sents: &[segment::Span],
    probs: &[Vec<f32>],
    spans: &[Span],
) -> Vec<SentenceLabel> {
    sents
        .iter()
        .zip(probs)
        .map(|(s, p)| {
            let mut covered = 0;
            let mut total = 0;
            for (i, c) in text[s.start..s.end].char_indices() {
                if c.is_whitespace() {
                    continue;
                }
                total += 1;
                let at = s.start + i;
                if spans.iter().any(|sp| sp.start <= at && at < sp.end) {
                    covered += 1;
                }
            }
            let label = match covered {
                0 => Label::Genuine,
                c if c == total => Label::Spam,
                _ => Label::Mixed,
            };
            SentenceLabel {
                start: s.start,
                end: s.end,
                label,
                score: p.iter().copied().fold(0.0, f32::max),
            }
        })
        .collect()
}
