//! The one generation loop for causal models.
//!
//! Prompt tokens in, tokens out: the KV cache is cleared before each document, the prompt is prefilled in
//! one pass, then tokens are chosen one at a time (greedy by default, or seeded sampling) until a stop
//! token of the model's, the token budget, or the caller's callback ends it. Text is streamed to the
//! callback as soon as it decodes to whole characters (byte-level BPE splits Hangul across tokens).

pub mod chat;

use std::ops::ControlFlow;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use chat::{ChatTemplate, Message};

/// A causal language model as the loop sees it. Architectures plug in here.
pub trait CausalLm: Send {
    /// Runs `input` (shape `[1, n]`) at positions `pos..pos + n`, extending the KV cache, and returns the
    /// logits for the last position (shape `[1, vocab]` or `[vocab]`).
    fn forward(&mut self, input: &Tensor, pos: usize) -> candle_core::Result<Tensor>;
    /// Forgets everything cached from earlier calls.
    fn reset(&mut self);
}

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// Always the most likely token: the same input gives the same output.
    Greedy,
    /// Temperature (and optional nucleus) sampling from a fixed seed: reproducible too.
    Seeded {
        temperature: f64,
        top_p: Option<f64>,
        seed: u64,
    },
}

/// Settings for one generation.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Keep going through stop tokens (benchmarks decode an exact number of tokens).
    pub ignore_stop_tokens: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            sampling: Sampling::Greedy,
            ignore_stop_tokens: false,
        }
    }
}

/// Narrows the choice of the next token: called before every choice with the text generated so far
/// and the logits, it may set any logit to `f32::NEG_INFINITY` to forbid that token.
pub trait TokenFilter {
    fn filter(&mut self, generated: &str, logits: &mut [f32]);
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced this stop token (not included in the output).
    StopToken(u32),
    /// `max_new_tokens` were produced.
    MaxTokens,
    /// The callback asked to stop.
    Callback,
}

/// What one generation produced, with its timings.
#[derive(Debug, Clone)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub text: String,
    pub stop: StopReason,
    pub prompt_tokens: usize,
    /// Seconds to run the prompt and choose the first token.
    pub prefill_s: f64,
    /// Seconds for every later token.
    pub decode_s: f64,
}

/// A loaded chat model: network, tokenizer, stop tokens and chat template.
pub struct TextModel {
    lm: Box<dyn CausalLm>,
    /// Special-token matching is off: text is always text (see [`chat`]).
    tokenizer: Tokenizer,
    stop_tokens: Vec<u32>,
    chat: ChatTemplate,
    device: Device,
}

impl TextModel {
    pub fn new(
        lm: Box<dyn CausalLm>,
        mut tokenizer: Tokenizer,
        stop_tokens: Vec<u32>,
        chat: ChatTemplate,
        device: Device,
    ) -> Self {
        tokenizer.set_encode_special_tokens(true);
        Self {
            lm,
            tokenizer,
            stop_tokens,
            chat,
            device,
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop_tokens
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Tokens of `text`, as text (special-token strings are not recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        chat::plain_tokens(&self.tokenizer, text)
    }

    /// Tokens of a chat, ending with the opening of the assistant's turn.
    pub fn chat_prompt(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.chat.render(&self.tokenizer, messages)
    }

    pub fn decode(&self, tokens: &[u32]) -> Result<String> {
        Ok(self.tokenizer.decode(tokens, true)?)
    }

    /// Generates from `prompt`, calling `on_text` with each newly decoded piece of text.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        self.generate_filtered(prompt, opts, None, on_text)
    }

    /// [`generate`](Self::generate), with `filter` narrowing every choice of token.
    pub fn generate_filtered(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut filter: Option<&mut dyn TokenFilter>,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        if prompt.is_empty() {
            return Err(Error::Input("cannot generate from an empty prompt".into()));
        }
        let mut logits_processor = match opts.sampling {
            Sampling::Greedy => LogitsProcessor::new(0, None, None),
            Sampling::Seeded {
                temperature,
                top_p,
                seed,
            } => LogitsProcessor::new(seed, Some(temperature), top_p),
        };
        self.lm.reset();
        let start = Instant::now();
        let input = Tensor::new(prompt, &self.device)?.unsqueeze(0)?;
        let mut logits = last_logits(self.lm.forward(&input, 0)?)?;
        let mut pos = prompt.len();
        let mut stream = TextStream::default();
        let mut tokens = Vec::new();
        let mut prefill_s = None;
        let stop = loop {
            if tokens.len() >= opts.max_new_tokens {
                break StopReason::MaxTokens;
            }
            if let Some(f) = filter.as_deref_mut() {
                let mut values = logits.to_vec1::<f32>()?;
                f.filter(&stream.text, &mut values);
                logits = Tensor::new(values, &self.device)?;
            }
            let next = logits_processor.sample(&logits)?;
            prefill_s.get_or_insert_with(|| start.elapsed().as_secs_f64());
            if !opts.ignore_stop_tokens && self.stop_tokens.contains(&next) {
                break StopReason::StopToken(next);
            }
            tokens.push(next);
            if let Some(piece) = stream.push(&self.tokenizer, &tokens)? {
                if on_text(&piece).is_break() {
                    break StopReason::Callback;
                }
            }
            if tokens.len() >= opts.max_new_tokens {
                break StopReason::MaxTokens;
            }
            let input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
            logits = last_logits(self.lm.forward(&input, pos)?)?;
            pos += 1;
        };
        let prefill_s = prefill_s.unwrap_or_else(|| start.elapsed().as_secs_f64());
        let total_s = start.elapsed().as_secs_f64();
        let text = self.decode(&tokens)?;
        if stop != StopReason::Callback {
            // Bytes held back waiting for the rest of a character will not get it: hand them over.
            if let Some(rest) = text.get(stream.emitted..).filter(|r| !r.is_empty()) {
                let _ = on_text(rest);
            }
        }
        Ok(Generation {
            tokens,
            text,
            stop,
            prompt_tokens: prompt.len(),
            prefill_s,
            decode_s: (total_s - prefill_s).max(0.0),
        })
    }
}

/// Logits of the last position as a flat f32 vector tensor.
fn last_logits(logits: Tensor) -> Result<Tensor> {
    let logits = logits.to_dtype(DType::F32)?;
    let logits = match logits.rank() {
        1 => logits,
        2 => logits.get(logits.dim(0)? - 1)?,
        3 => logits.get(0)?.get(logits.dim(1)? - 1)?,
        r => {
            return Err(Error::Candle(candle_core::Error::Msg(format!(
                "logits of rank {r}"
            ))))
        }
    };
    Ok(logits)
}

/// Emits text as soon as the generated tokens decode to whole characters.
#[derive(Default)]
struct TextStream {
    emitted: usize,
    /// Everything decoded so far (possibly ending in U+FFFD while a character is incomplete).
    text: String,
}

impl TextStream {
    fn push(&mut self, tokenizer: &Tokenizer, tokens: &[u32]) -> Result<Option<String>> {
        let text = tokenizer.decode(tokens, true)?;
        self.text.clone_from(&text);
        // A multi-byte character cut between tokens decodes to U+FFFD until its last byte arrives.
        if text.ends_with('\u{FFFD}')
            || text.len() <= self.emitted
            || !text.is_char_boundary(self.emitted)
        {
            return Ok(None);
        }
        let piece = text[self.emitted..].to_string();
        self.emitted = text.len();
        Ok(Some(piece))
    }
}
