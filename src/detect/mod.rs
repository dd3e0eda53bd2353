//! Where a sentence gets its label: finding injected spam spans in an article.
//!
//! Every sentence goes through the multilingual encoder once. The token head reads each contextual
//! token vector beside its neighbours, its sentence and the article's centre (so the same words are
//! judged differently in an article about them), and gives each token a spam probability; candidate
//! spans grow from tokens it is sure of, with byte edges at token boundaries (see [`decode`]). Each
//! candidate must then pass the phrase test: embedded on its own, it must read as a spam phrase. A
//! phrase that recurs verbatim elsewhere in the article is found at every occurrence, its edges set to
//! where the occurrences stop agreeing, and a line mostly covered by spam that passes the phrase test
//! as a whole is spam as a whole. Instructions planted for a model that reads the article advertise
//! nothing, so the phrase test misses them: the instruction test (a third head) judges every sentence,
//! every tail after a glued comma and every candidate, and a text it is sure of that names what it
//! addresses ([`cues`]) is injected too. Sentences are labelled `genuine`, `mixed` or `spam` from the
//! spans they contain. `SIFT_DEBUG=1` prints each candidate's scores on stderr.

pub mod cues;
pub mod decode;
pub mod head;
pub mod spans;
pub mod train;

use rayon::prelude::*;
use serde::Serialize;

use crate::encode::{Encoder, Prefix, TokenVectors};
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
    /// A candidate grows from a token at or above this probability...
    pub seed_threshold: f32,
    /// ...over neighbours at or above this one.
    pub grow_threshold: f32,
    /// The rest of a spaced-script word joins a candidate unless its probability is below this.
    pub snap_threshold: f32,
    /// A candidate must read as a spam phrase on its own at least this much (the phrase test).
    pub phrase_threshold: f32,
    /// A candidate is kept when its mean token probability times its phrase probability reaches this.
    pub keep_threshold: f32,
    /// A sentence, or a candidate, that reads as an instruction to a model at least this much, and
    /// carries a word that addresses one ([`cues`]), is injected (the instruction test stands in for
    /// the phrase test then).
    pub instruction_threshold: f32,
    /// Lighter candidates are dropped (see `weight`: characters, Hangul and CJK counting double).
    pub min_weight: usize,
    /// A phrase must have this many characters to be aligned across repeats.
    pub min_repeat_chars: usize,
    /// A line this much covered by spans (by weight) is tested as a whole.
    pub line_coverage: f32,
    /// Sentences per encoder batch (a GPU gets [`GPU_BATCH`]).
    pub batch_size: usize,
    /// A sentence longer than this many characters is cut into pieces (at whitespace) that are judged
    /// apart: e5 reads 512 tokens, a token covers at least one character, and what lies past the limit
    /// would otherwise never be looked at.
    pub max_piece_chars: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            seed_threshold: 0.85,
            grow_threshold: 0.45,
            snap_threshold: 0.15,
            phrase_threshold: 0.6,
            keep_threshold: 0.55,
            instruction_threshold: 0.85,
            min_weight: 5,
            min_repeat_chars: 6,
            line_coverage: 0.4,
            batch_size: 16,
            max_piece_chars: MAX_PIECE_CHARS,
        }
    }
}

/// Sentences per encoder batch on a GPU: enough rows to keep its matrix units busy, while padding stays
/// bounded because batches hold sentences of similar length.
pub const GPU_BATCH: usize = 256;

/// A text must weigh this much (eight Hangul syllables or sixteen letters) to count as an instruction:
/// an instruction is a clause, and on a word or two the instruction test is guessing.
const MIN_INSTRUCTION_WEIGHT: usize = 16;

/// See [`DetectOptions::max_piece_chars`]; the summaries cut the article the same way.
pub const MAX_PIECE_CHARS: usize = 400;

pub struct Detector<'a> {
    encoder: &'a Encoder,
    head: TokenHead,
    pub options: DetectOptions,
}

impl<'a> Detector<'a> {
    pub fn new(encoder: &'a Encoder, head: TokenHead) -> Self {
        let mut options = DetectOptions::default();
        if encoder.device().is_cuda() {
            options.batch_size = GPU_BATCH;
        }
        Self {
            encoder,
            head,
            options,
        }
    }

    pub fn detect(&self, text: &str) -> Result<Detection> {
        Ok(self.detect_many(&[text])?.remove(0))
    }

    /// Detects spam in several articles, batching their sentences through the encoder together.
    pub fn detect_many(&self, texts: &[&str]) -> Result<Vec<Detection>> {
        let segmented: Vec<Vec<segment::Span>> = texts
            .iter()
            .map(|t| segment::pieces(t, self.options.max_piece_chars))
            .collect();
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
        // The documents' decisions side by side: each runs a few small encoder batches (its
        // candidate phrases) that alone leave a core idle, and each depends on its own text only.
        texts
            .par_iter()
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
        let dim = self.encoder.dim();
        let sentence_vectors: Vec<&[f32]> = vecs.iter().map(|v| v.sentence.as_slice()).collect();
        let document = unit_mean(&sentence_vectors, dim);
        let growth = decode::Growth {
            high: o.seed_threshold,
            low: o.grow_threshold,
            snap: o.snap_threshold,
        };
        let mut probs = Vec::with_capacity(sents.len());
        let mut candidates: Vec<Span> = Vec::new();
        for (s, v) in sents.iter().zip(vecs) {
            let p = self
                .head
                .token_probabilities(&v.vectors, &v.sentence, &document)?;
            candidates.extend(decode::candidates(text, s, &v.spans, &p, growth));
            probs.push(p);
        }
        candidates.retain(|c| weight(&text[c.start..c.end]) >= o.min_weight);

        let debug = std::env::var_os("SIFT_DEBUG").is_some();
        let mut kept = Vec::new();
        if !candidates.is_empty() {
            let texts: Vec<&str> = candidates.iter().map(|c| &text[c.start..c.end]).collect();
            let vectors = self.encoder.embed(&texts, Prefix::Passage)?;
            let vectors: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
            let phrase = self.head.phrase_probabilities(&vectors)?;
            let instruction = self.head.instruction_probabilities(&vectors)?;
            for ((c, p), i) in candidates.iter().zip(&phrase).zip(&instruction) {
                let q = if self.is_instruction(&text[c.start..c.end], *i) {
                    p.max(*i)
                } else {
                    *p
                };
                let keep = q >= o.phrase_threshold && c.score * q >= o.keep_threshold;
                if debug {
                    eprintln!(
                        "sift: {} candidate: token {:.3}, phrase {p:.3}, instruction {i:.3}: {:?}",
                        if keep { "kept" } else { "dropped" },
                        c.score,
                        &text[c.start..c.end]
                    );
                }
                if keep {
                    kept.push(Span {
                        score: c.score * q,
                        ..*c
                    });
                }
            }
        }
        kept.extend(self.instructions(text, sents, &sentence_vectors)?);
        kept.extend(self.glued_repeats(text, sents, &kept)?);
        let mut confirm = |phrase: &str| -> Result<bool> {
            Ok(self.phrase_test(&[phrase])?[0] >= o.phrase_threshold)
        };
        // Merged first, so that overlapping spans do not count twice towards a line's coverage.
        let mut kept = spans::merge(decode::align_repeats(
            text,
            kept,
            sents,
            o.min_repeat_chars,
            &mut confirm,
        )?);
        kept.extend(self.whole_lines(text, &kept)?);
        let spans: Vec<Span> = spans::merge(
            kept.into_iter()
                .map(|c| {
                    let (s, e) = spans::trim(text, c.start, c.end);
                    let (s, e) = spans::snap_whitespace(text, s, e);
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

impl Detector<'_> {
    /// Injected instructions to a model, whatever the token head made of them: sentences that read
    /// as one as a whole, and the tail of a sentence after a glued comma (`…확정했다,<instruction>.`,
    /// the spammer's favourite seam), each tested on its own vector and confirmed by a cue word.
    fn instructions(
        &self,
        text: &str,
        sents: &[segment::Span],
        sentence_vectors: &[&[f32]],
    ) -> Result<Vec<Span>> {
        let mut found = Vec::new();
        let mut judge = |(a, b): (usize, usize), p: f32| {
            if std::env::var_os("SIFT_DEBUG").is_some() && p >= 0.5 {
                eprintln!("sift: instruction {p:.3}: {:?}", &text[a..b]);
            }
            let (start, end) = spans::trim(text, a, b);
            if self.is_instruction(&text[start..end], p) {
                found.push(Span {
                    start,
                    end,
                    score: p,
                });
            }
        };
        let whole = self.head.instruction_probabilities(sentence_vectors)?;
        for (s, p) in sents.iter().zip(whole) {
            judge((s.start, s.end), p);
        }
        let tails: Vec<(usize, usize)> = sents
            .iter()
            .flat_map(|s| {
                text[s.start..s.end]
                    .match_indices([',', '，'])
                    .map(move |(i, c)| (s.start + i + c.len(), s.end))
            })
            // Only tails that could pass are embedded: the cue word costs nothing to check first.
            .filter(|&(a, b)| {
                text[a..b]
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_whitespace())
                    && weight(&text[a..b]) >= MIN_INSTRUCTION_WEIGHT
                    && cues::addresses_a_model(&text[a..b])
            })
            .collect();
        if !tails.is_empty() {
            let texts: Vec<&str> = tails.iter().map(|&(a, b)| &text[a..b]).collect();
            let vectors = self.encoder.embed(&texts, Prefix::Passage)?;
            let vectors: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
            for (t, p) in tails
                .into_iter()
                .zip(self.head.instruction_probabilities(&vectors)?)
            {
                judge(t, p);
            }
        }
        Ok(found)
    }

    /// Whether `text`, which the instruction test gave `p`, counts as an injected instruction: the test
    /// is sure, the text is a clause, and it carries a word that addresses a model.
    fn is_instruction(&self, text: &str, p: f32) -> bool {
        p >= self.options.instruction_threshold
            && weight(text) >= MIN_INSTRUCTION_WEIGHT
            && cues::addresses_a_model(text)
    }

    /// Phrases glued after a comma or period at two or more places ([`decode::glued_repeats`]) that
    /// no kept span covers yet and that pass the phrase test on their own: every occurrence is a
    /// span. The head may miss a phrase inside a sentence (its tokens read as the sentence's own);
    /// the same phrase spliced in at several seams is the injection's signature, and the phrase test
    /// says whether it is spam.
    fn glued_repeats(
        &self,
        text: &str,
        sents: &[segment::Span],
        kept: &[Span],
    ) -> Result<Vec<Span>> {
        let groups: Vec<Vec<(usize, usize)>> =
            decode::glued_repeats(text, sents, self.options.min_repeat_chars)
                .into_iter()
                .filter(|occ| {
                    let (a, b) = occ[0];
                    weight(&text[a..b]) >= self.options.min_weight
                        && !occ
                            .iter()
                            .any(|o| kept.iter().any(|k| o.0 < k.end && k.start < o.1))
                })
                .collect();
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let phrases: Vec<&str> = groups.iter().map(|o| &text[o[0].0..o[0].1]).collect();
        let scores = self.phrase_test(&phrases)?;
        let mut out = Vec::new();
        for ((occ, phrase), p) in groups.iter().zip(&phrases).zip(scores) {
            let keep = p >= self.options.phrase_threshold;
            if std::env::var_os("SIFT_DEBUG").is_some() {
                let verdict = if keep { "kept" } else { "dropped" };
                eprintln!("sift: {verdict} glued repeat: phrase {p:.3}: {phrase:?}");
            }
            if keep {
                out.extend(occ.iter().map(|&(start, end)| Span {
                    start,
                    end,
                    score: p,
                }));
            }
        }
        Ok(out)
    }

    /// The phrase test: how much each text, embedded on its own, reads like a spam phrase.
    fn phrase_test(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let vectors = self.encoder.embed(texts, Prefix::Passage)?;
        let vectors: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        self.head.phrase_probabilities(&vectors)
    }

    /// Lines that are spam as a whole: spans already cover a good part of them (`line_coverage`) and
    /// the whole line passes the phrase test (a spam title line with its tail: `… - 2024년 실시간
    /// 업데이트`).
    fn whole_lines(&self, text: &str, kept: &[Span]) -> Result<Vec<Span>> {
        let mut lines = Vec::new();
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            let (a, b) = spans::trim(text, start, start + line.len());
            start += line.len();
            if b <= a || kept.iter().any(|k| k.start == a && k.end == b) {
                continue;
            }
            let covered: usize = kept
                .iter()
                .filter(|k| k.start < b && a < k.end)
                .map(|k| weight(&text[k.start.max(a)..k.end.min(b)]))
                .sum();
            if covered as f32 >= self.options.line_coverage * weight(&text[a..b]) as f32 {
                lines.push((a, b));
            }
        }
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<&str> = lines.iter().map(|&(a, b)| &text[a..b]).collect();
        let q = self.phrase_test(&texts)?;
        Ok(lines
            .into_iter()
            .zip(q)
            .filter(|(_, q)| *q >= self.options.phrase_threshold)
            .map(|((start, end), q)| Span {
                start,
                end,
                score: q,
            })
            .collect())
    }
}

/// Size of a text for the minimum-span rule: characters without spaces, Hangul and CJK counting
/// double (one syllable carries about what two Latin letters do).
fn weight(s: &str) -> usize {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if decode::is_syllabic(c) { 2 } else { 1 })
        .sum()
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
