//! What the models see in an article: the main job until summaries land.
//!
//! The article is cleaned of injected spam first; each sentence of the cleaned text then gets its token counts under both models and its cosine similarity to the
//! article's mean vector (sentences far from the article's centre are the candidates the detection work
//! will examine); the chat model then writes a one-line Korean draft gist from the most central sentences,
//! which shows the generation loop at work on the real model. The draft is labelled unchecked: the
//! faithfulness checks belong to the summary work.

use std::ops::ControlFlow;
use std::time::Instant;

use serde::Serialize;

use crate::detect::{unit_mean, Detection, Detector};
use crate::encode::{cosine, Encoder, Prefix};
use crate::error::{Error, Result};
use crate::generate::chat::{Message, Role};
use crate::generate::{GenerateOptions, TextModel};
use crate::segment;

#[derive(Debug, Clone, Serialize)]
pub struct SentenceView {
    /// UTF-8 byte offsets into the cleaned text, end exclusive.
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub summarizer_tokens: usize,
    pub encoder_tokens: usize,
    /// Cosine similarity to the mean of all sentence vectors.
    pub centrality: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Spam found in the article, with sentence labels and the cleaned text.
    pub detection: Detection,
    pub detect_s: f64,
    /// The sentences of the cleaned text (offsets into `detection.clean_text`).
    pub sentences: Vec<SentenceView>,
    pub article_summarizer_tokens: usize,
    pub gist_prompt_tokens: usize,
    pub draft_gist: String,
    pub encode_s: f64,
    pub generate_s: f64,
}

/// How many central sentences the draft gist is grounded on.
const GIST_SOURCES: usize = 3;

pub fn inspect(
    text: &str,
    detector: &Detector,
    encoder: &Encoder,
    summarizer: &mut TextModel,
    on_gist: &mut dyn FnMut(&str),
) -> Result<Inspection> {
    let t0 = Instant::now();
    let detection = detector.detect(text)?;
    let detect_s = t0.elapsed().as_secs_f64();
    // What the models see is the article without its spam.
    let clean = detection.clean_text.as_str();
    let spans: Vec<(usize, usize)> = segment::sentences(clean)
        .iter()
        .map(|s| (s.start, s.end))
        .collect();
    if spans.is_empty() {
        return Err(Error::Input("the article has no genuine text".into()));
    }
    let t0 = Instant::now();
    let texts: Vec<&str> = spans.iter().map(|&(s, e)| &clean[s..e]).collect();
    let vectors = encoder.embed(&texts, Prefix::Passage)?;
    let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
    let centroid = unit_mean(&refs, encoder.dim());
    let mut sentences = Vec::with_capacity(spans.len());
    for (&(start, end), v) in spans.iter().zip(&vectors) {
        let s = &clean[start..end];
        sentences.push(SentenceView {
            start,
            end,
            text: s.to_string(),
            summarizer_tokens: summarizer.encode(s)?.len(),
            encoder_tokens: encoder.tokens(s, Prefix::Passage)?.len(),
            centrality: cosine(v, &centroid),
        });
    }
    let encode_s = t0.elapsed().as_secs_f64();

    let mut order: Vec<usize> = (0..sentences.len()).collect();
    order.sort_by(|&a, &b| sentences[b].centrality.total_cmp(&sentences[a].centrality));
    let mut sources: Vec<usize> = order.into_iter().take(GIST_SOURCES).collect();
    sources.sort_unstable();
    let excerpt: Vec<&str> = sources
        .iter()
        .map(|&i| sentences[i].text.as_str())
        .collect();
    let messages = [
        Message::new(
            Role::System,
            "당신은 신중한 뉴스 편집자입니다. 주어진 문장에 있는 내용만 씁니다.",
        ),
        Message::new(
            Role::User,
            format!(
                "다음은 한 뉴스 기사의 문장들입니다.\n\"\"\"\n{}\n\"\"\"\n이 문장들이 전하는 내용을 한국어 한 문장으로 요약하세요.",
                excerpt.join("\n")
            ),
        ),
    ];
    let t1 = Instant::now();
    let prompt = summarizer.chat_prompt(&messages)?;
    let opts = GenerateOptions {
        max_new_tokens: 96,
        ..GenerateOptions::default()
    };
    let generation = summarizer.generate(&prompt, &opts, &mut |piece| {
        on_gist(piece);
        ControlFlow::Continue(())
    })?;
    Ok(Inspection {
        article_summarizer_tokens: summarizer.encode(clean)?.len(),
        detect_s,
        detection,
        sentences,
        gist_prompt_tokens: prompt.len(),
        draft_gist: generation.text.trim().to_string(),
        encode_s,
        generate_s: t1.elapsed().as_secs_f64(),
    })
}
