//! The one generation loop for causal models.
//!
//! Prompt tokens in, tokens out: the prompt is prefilled in one pass (on request, only what follows the
//! part of it that opened the previous prompt too and is still in the KV cache), then tokens are
//! chosen one at a time (greedy by default, or seeded sampling) until a stop token of the model's, the
//! token budget, or the caller's callback ends it. Text is streamed to the callback as soon as it
//! decodes to whole characters (byte-level BPE splits Hangul across tokens).
//!
//! Several prompts can be decoded together ([`TextModel::generate_batch`]): one token of each per
//! pass, each sequence in a cache of its own, because a decoding step is bound by reading the weights
//! and the rows of a pass share that read. A cache can also be kept aside ([`TextModel::park`]) for a
//! later prompt that opens like it, whatever runs in between.

pub mod attention;
pub mod chat;
pub mod openings;
pub mod qwen2;

use std::ops::ControlFlow;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use chat::{ChatTemplate, Message};
use openings::OpeningStore;

/// A causal language model as the loop sees it. Architectures plug in here.
pub trait CausalLm: Send {
    /// Runs `input` (shape `[1, n]`) at positions `pos..pos + n`, extending the KV cache, and returns the
    /// logits for the last position (shape `[1, vocab]` or `[vocab]`).
    fn forward(&mut self, input: &Tensor, pos: usize) -> candle_core::Result<Tensor>;
    /// Like [`forward`](Self::forward), but the logits of every position (`[n, vocab]`); `None` when
    /// the architecture cannot (then guessed tokens are not verified in batches).
    fn forward_all(&mut self, _input: &Tensor, _pos: usize) -> candle_core::Result<Option<Tensor>> {
        Ok(None)
    }
    /// Keeps only the first `len` cached positions (needed with [`forward_all`](Self::forward_all)).
    fn truncate(&mut self, _len: usize) -> candle_core::Result<()> {
        candle_core::bail!("this model cannot truncate its cache")
    }
    /// Forgets everything cached from earlier calls (in the sequence in use).
    fn reset(&mut self);
    /// Whether the model can hold several sequences and decode them together ([`fork`](Self::fork),
    /// [`select`](Self::select), [`forward_batch`](Self::forward_batch)).
    fn batches(&self) -> bool {
        false
    }
    /// Makes sequence `to` (created if needed) hold the first `len` positions of the sequence in
    /// use, in a cache of its own.
    fn fork(&mut self, _to: usize, _len: usize) -> candle_core::Result<()> {
        candle_core::bail!("this model holds one sequence")
    }
    /// The sequence that `forward`, `forward_all`, `truncate` and `reset` act on from now on
    /// (sequence 0 until told otherwise).
    fn select(&mut self, seq: usize) -> candle_core::Result<()> {
        match seq {
            0 => Ok(()),
            _ => candle_core::bail!("this model holds one sequence"),
        }
    }
    /// Runs one token for each of the distinct sequences `seqs`, each at the position its cache has
    /// reached, extending each cache by one; returns their logits, `[seqs.len(), vocab]`.
    fn forward_batch(&mut self, _tokens: &[u32], _seqs: &[usize]) -> candle_core::Result<Tensor> {
        candle_core::bail!("this model decodes one sequence at a time")
    }
    /// The keys and values cached for the first `len` positions of the sequence in use, as bytes
    /// that [`restore_cache`](Self::restore_cache) reads back in a model loaded from the same file;
    /// `None` when the architecture or device cannot.
    fn cache_bytes(&self, _len: usize) -> Option<Vec<u8>> {
        None
    }
    /// Makes the sequence in use hold the `len` positions of `bytes` (from
    /// [`cache_bytes`](Self::cache_bytes)); `false` (and an empty sequence) when they do not fit.
    fn restore_cache(&mut self, _len: usize, _bytes: &[u8]) -> candle_core::Result<bool> {
        Ok(false)
    }
    /// Computes the logits of the tokens `ids` only (sorted, distinct); every other token's logit
    /// is minus infinity from then on. `false` when the architecture cannot.
    fn keep_outputs(&mut self, _ids: &[u32]) -> candle_core::Result<bool> {
        Ok(false)
    }
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
    /// Greedy decoding only: how many tokens to guess ahead by copying what followed the latest
    /// tokens earlier in the prompt or output (prompt-lookup decoding). The model checks the guesses
    /// in one pass and keeps those it would have chosen itself, so the output is the same; 0 is off.
    /// How many are guessed at a time depends on how many of the latest tokens match: one for
    /// three, one more for each token beyond, at most this many.
    pub lookahead: usize,
    /// Start from what the cache still holds of the previous generation: the part of this prompt that
    /// opened the previous one too (several steps' prompts that begin alike) is not run again. Off, the
    /// cache is emptied first. Running a prefix again gives the same numbers only up to float
    /// summation order, so a caller that turns this on calls [`TextModel::forget`] at the start of each
    /// document, and a document's results stay the same whatever ran before it.
    pub reuse_cache: bool,
    /// How many of the prompt's first tokens are the same on every document (a template's
    /// instructions and worked examples). On a model that holds several sequences (the CPU
    /// forward) they are run on their own, and with a store ([`TextModel::keep_openings`]) read
    /// from it instead when it holds them; elsewhere this is ignored. 0: none.
    pub opening: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            sampling: Sampling::Greedy,
            ignore_stop_tokens: false,
            // With the token chosen, 8 rows: one pass of the products' row tile.
            lookahead: 7,
            reuse_cache: false,
            opening: 0,
        }
    }
}

/// Tokens that must match before the tokens after them are guessed. (Falling back to one token
/// seen once before, so that a list of names copied from the prompt is guessed from each name's
/// first piece, doubled the guesses confirmed in the seed's name list, 12 to 23 of 98, and made
/// it slower, 7.9 s against 7.1-7.4 s: the wrong guesses cost more than the right ones save.)
const LOOKUP_MATCH: usize = 3;
/// How far back a match is followed to measure it (see [`lookup_draft`]).
const LOOKUP_LONGEST: usize = 32;

/// Tokens guessed to follow `context`: what followed the earlier place whose tokens match the most
/// of `context`'s ending (at least [`LOOKUP_MATCH`]; the latest of equal matches), one token for a
/// match of [`LOOKUP_MATCH`] and one more for each token matched beyond it, at most `k`.
///
/// Checking a guess is not free on a CPU: each guessed token is one more row through every
/// product, about 18 ms on 2 Zen 3 cores beside 42 ms for the step itself (`examples/decode_bench`
/// with `SIFT_STEP_TOKENS`), so a guess pays only when it is right more often than not. A long
/// match (a sentence being copied) predicts a long copy; three tokens that recur (a name in a list)
/// predict little. Over the decoding of six development articles (31 generations) this guessed
/// 1,032 tokens where a flat 8 guessed 1,511, and the cost model built from those timings put it
/// at 67.0 s against 78.0 s for a flat 8 and 77.5 s for no guessing.
fn lookup_draft(context: &[u32], k: usize) -> Vec<u32> {
    let n = LOOKUP_MATCH;
    let last = context.len();
    if k == 0 || last <= n {
        return Vec::new();
    }
    let tail = &context[last - n..];
    // (where the guess starts, how many tokens matched)
    let mut best: Option<(usize, usize)> = None;
    for i in (0..last - n).rev() {
        if context[i..i + n] != *tail {
            continue;
        }
        let mut m = n;
        while m < LOOKUP_LONGEST && i > m - n && context[i - (m - n) - 1] == context[last - m - 1] {
            m += 1;
        }
        if best.is_none_or(|(_, longest)| m > longest) {
            best = Some((i + n, m));
        }
    }
    best.map(|(from, m)| {
        let len = k.min(m + 1 - n);
        context[from..(from + len).min(last)].to_vec()
    })
    .unwrap_or_default()
}

/// The rest of the word that the last line of `generated` is copying from `source`, when no token
/// match guesses ([`lookup_draft`]): the line so far must start a word of `source` (the first place
/// where it does), and the guess runs to the end of that word.
///
/// A list copied from the prompt (`이재용 = Lee Jae-Young` per line, from a Korean summary that
/// writes ` 이재용` mid-sentence) starts each line with a token the prompt never has (`삼` where
/// it has ` 삼`), so the three matching tokens a token lookup needs come too late or never. Replayed
/// on the token streams of six development articles (31 generations) with the step costs of
/// [`lookup_draft`]'s notes, this guessed the seed's name list 41 tokens of which 31 held, against
/// 24 and 10, and cut that list's modelled decoding 4.20 → 3.63 s; all 31 together 67.3 → 65.7 s,
/// no generation slower by more than 0.01 s.
fn copied_word<'a>(source: &'a str, generated: &str) -> &'a str {
    let line = generated.rsplit('\n').next().unwrap_or_default();
    let Some(first) = line.chars().next() else {
        return "";
    };
    let mut from = 0;
    while let Some(at) = source[from..].find(line).map(|at| from + at) {
        let starts_word = source[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if starts_word {
            let rest = &source[at + line.len()..];
            let end = rest
                .find(|c: char| !c.is_alphanumeric())
                .unwrap_or(rest.len());
            return &rest[..end];
        }
        from = at + first.len_utf8();
    }
    ""
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
    /// Prompt tokens run through the model (those the cache held already are not counted).
    pub prompt_tokens: usize,
    /// Seconds to run the prompt through the model.
    pub prefill_s: f64,
    /// Seconds until the first token was chosen (the prefill and one choice).
    pub ttft_s: f64,
    /// Seconds for every later token.
    pub decode_s: f64,
    /// Tokens that were guessed ahead and confirmed by the model (see [`GenerateOptions::lookahead`]).
    pub confirmed_guesses: usize,
}

/// A loaded chat model: network, tokenizer, stop tokens and chat template.
pub struct TextModel {
    lm: Box<dyn CausalLm>,
    /// Special-token matching is off: text is always text (see [`chat`]).
    tokenizer: Tokenizer,
    stop_tokens: Vec<u32>,
    chat: ChatTemplate,
    device: Device,
    /// The tokens whose keys and values the cache holds, in order, when the model can cut its cache
    /// back; a prompt that starts with some of them is prefilled from where they end.
    cached: Vec<u32>,
    /// Earlier caches kept aside ([`Self::park`]): the sequence holding each and its tokens.
    parked: Vec<(usize, Vec<u32>)>,
    /// Where prompt openings are kept ([`GenerateOptions::opening`]).
    openings: Option<OpeningStore>,
}

/// Sequences from this one on hold parked caches; a batch uses those below it.
const PARKED_FROM: usize = 16;
/// How many caches are kept aside at most (the oldest goes first).
const PARKED_MAX: usize = 2;

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
            cached: Vec::new(),
            parked: Vec::new(),
            openings: None,
        }
    }

    /// Keeps prompt openings ([`GenerateOptions::opening`]) in `store`, and reads them from it.
    pub fn keep_openings(&mut self, store: OpeningStore) {
        self.openings = Some(store);
    }

    /// Empties the KV cache, so the next prompt is prefilled whole even with
    /// [`GenerateOptions::reuse_cache`]. Callers that reuse the cache do this before each document.
    pub fn forget(&mut self) {
        let _ = self.lm.select(0);
        self.lm.reset();
        self.cached.clear();
        self.parked.clear();
    }

    /// Keeps what the cache holds now aside, so that a later prompt that opens like it (with
    /// [`GenerateOptions::reuse_cache`]) runs only what follows that opening, whatever ran in
    /// between. At most two are kept (the oldest goes); [`Self::forget`] drops them.
    /// Returns `false` when the model holds one sequence only (nothing is kept).
    pub fn park(&mut self) -> Result<bool> {
        if !self.lm.batches() || self.cached.is_empty() {
            return Ok(false);
        }
        let slot = match self.parked.len() {
            n if n < PARKED_MAX => PARKED_FROM + n,
            _ => self.parked.remove(0).0,
        };
        self.lm.select(0)?;
        self.lm.fork(slot, self.cached.len())?;
        self.parked.push((slot, self.cached.clone()));
        Ok(true)
    }

    /// Limits what the model can write to the tokens whose text passes `keep` (special tokens are
    /// always kept). Their logits alone are computed, which makes each decoding step read less of
    /// the output matrix. Returns how many tokens are kept, or `None` when the model cannot.
    pub fn keep_tokens(&mut self, keep: impl Fn(&str) -> bool) -> Result<Option<usize>> {
        let size = self.tokenizer.get_vocab_size(true) as u32;
        let ids: Vec<u32> = (0..size)
            .filter(|&id| {
                self.tokenizer.id_to_token(id).is_some()
                    && self
                        .tokenizer
                        .decode(&[id], false)
                        .is_ok_and(|text| keep(&text))
            })
            .collect();
        self.keep_token_ids(ids)
    }

    /// [`Self::keep_tokens`] for a caller that has chosen the tokens itself (the stop tokens are
    /// always added).
    pub fn keep_token_ids(&mut self, mut ids: Vec<u32>) -> Result<Option<usize>> {
        ids.extend(&self.stop_tokens);
        ids.sort_unstable();
        ids.dedup();
        self.forget();
        Ok(self.lm.keep_outputs(&ids)?.then_some(ids.len()))
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

    /// Tokens of a text already in the model's chat format: special-token strings such as
    /// `<|im_start|>` become their tokens (for benchmarks; never use this on untrusted text). It
    /// copies the tokenizer, tens of milliseconds: not for a loop.
    pub fn encode_verbatim(&self, text: &str) -> Result<Vec<u32>> {
        let mut tokenizer = self.tokenizer.clone();
        tokenizer.set_encode_special_tokens(false);
        Ok(tokenizer.encode(text, false)?.get_ids().to_vec())
    }

    /// Tokens of a chat, ending with the opening of the assistant's turn.
    pub fn chat_prompt(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.chat.render(&self.tokenizer, messages)
    }

    pub fn decode(&self, tokens: &[u32]) -> Result<String> {
        Ok(self.tokenizer.decode(tokens, true)?)
    }

    /// The logits that follow `prompt` (a fresh cache; for checks and benchmarks).
    pub fn prompt_logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        self.forget();
        let input = Tensor::new(prompt, &self.device)?.unsqueeze(0)?;
        Ok(last_logits(self.lm.forward(&input, 0)?)?.to_vec1::<f32>()?)
    }

    /// The logits after `prompt` (prefilled in one pass) and after each token of `then`, fed one
    /// at a time as decoding would (for checks: the one-token path against a reference).
    pub fn stepwise_logits(&mut self, prompt: &[u32], then: &[u32]) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![self.prompt_logits(prompt)?];
        for (i, &t) in then.iter().enumerate() {
            let input = Tensor::new(&[t], &self.device)?.unsqueeze(0)?;
            let logits = last_logits(self.lm.forward(&input, prompt.len() + i)?)?;
            out.push(logits.to_vec1::<f32>()?);
        }
        Ok(out)
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
        let mut speculate = opts.lookahead > 0 && opts.sampling == Sampling::Greedy;
        // What the prompt says, for guesses that copy a word from it (`copied_word`).
        let source = match speculate {
            true => self.tokenizer.decode(prompt, false).unwrap_or_default(),
            false => String::new(),
        };
        let start = Instant::now();
        let (mut logits, held) = self.prefill(prompt, opts.reuse_cache, opts.opening)?;
        let prefill_s = start.elapsed().as_secs_f64();
        let mut seq = Decoding::new(prompt, opts.sampling);
        // Guessed tokens already run through the model, each with the logits that follow it.
        let mut guessed: std::collections::VecDeque<(u32, Tensor)> = Default::default();
        let mut confirmed = 0;
        while let Some(next) = self.choose(
            &mut seq,
            logits,
            opts,
            filter.as_deref_mut(),
            on_text,
            start,
        )? {
            // The model chose what was guessed: its logits are already computed.
            if guessed.front().is_some_and(|(t, _)| *t == next) {
                logits = guessed.pop_front().expect("checked").1;
                confirmed += 1;
                continue;
            }
            // Everything cached is right up to the token before `next`.
            let pos = seq.context.len() - 1;
            if !guessed.is_empty() {
                self.lm.truncate(pos)?;
                guessed.clear();
            }
            let draft = match speculate {
                true => self.draft(&seq, &source, opts.lookahead),
                false => Vec::new(),
            };
            let mut input = vec![next];
            input.extend(&draft);
            let input = Tensor::new(input.as_slice(), &self.device)?.unsqueeze(0)?;
            let rows = match speculate {
                true => self.lm.forward_all(&input, pos)?,
                false => None,
            };
            match rows {
                Some(rows) => {
                    let rows = rows.to_dtype(DType::F32)?;
                    logits = rows.get(0)?;
                    for (i, t) in draft.into_iter().enumerate() {
                        guessed.push_back((t, rows.get(i + 1)?));
                    }
                }
                None => {
                    // The model cannot check guesses (or guessing is off): one token at a time.
                    speculate = false;
                    let one = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
                    logits = last_logits(self.lm.forward(&one, pos)?)?;
                }
            }
        }
        self.keep_cached(seq.context.clone());
        let decode_s = (start.elapsed().as_secs_f64() - seq.ttft(start)).max(0.0);
        let mut generation = self.finish(seq, start, on_text)?;
        generation.prompt_tokens = prompt.len() - held;
        generation.prefill_s = prefill_s;
        generation.decode_s = decode_s;
        generation.confirmed_guesses = confirmed;
        Ok(generation)
    }

    /// Tokens guessed to follow `seq`: a token match ([`lookup_draft`]), or else the rest of a word
    /// the current line copies from the prompt's text `source` ([`copied_word`]), at most `k`.
    fn draft(&self, seq: &Decoding, source: &str, k: usize) -> Vec<u32> {
        let draft = lookup_draft(&seq.context, k);
        if !draft.is_empty() {
            return draft;
        }
        let word = copied_word(source, &seq.stream.text);
        if word.is_empty() {
            return draft;
        }
        match self.tokenizer.encode(word, false) {
            Ok(encoding) => encoding.get_ids().iter().take(k).copied().collect(),
            Err(_) => draft,
        }
    }

    /// Several generations decoded together, one token of each per pass through the model, so
    /// the weights are read once for all of them (decoding one token is bound by reading the
    /// weights: three sequences together cost little more than one). Each request keeps its own
    /// filter, callback, stop and budget; the answers are what [`generate_filtered`](Self::generate_filtered)
    /// gives each alone, up to float summation order (the rows share products). Prompts are
    /// prefilled one after the other, each running only what follows the opening it shares with
    /// the first (and, with [`GenerateOptions::reuse_cache`], the first only what the cache does not
    /// hold). No tokens are guessed ahead. Afterwards the cache holds the first request's prompt and
    /// answer, as after [`generate_filtered`](Self::generate_filtered). A model that cannot batch
    /// runs the requests one after the other.
    pub fn generate_batch(
        &mut self,
        requests: Vec<Request<'_>>,
        opts: &GenerateOptions,
    ) -> Result<Vec<Generation>> {
        if requests.iter().any(|r| r.prompt.is_empty()) {
            return Err(Error::Input("cannot generate from an empty prompt".into()));
        }
        if requests.len() > PARKED_FROM {
            let mut requests = requests;
            let mut out = Vec::new();
            while !requests.is_empty() {
                let rest = requests.split_off(PARKED_FROM.min(requests.len()));
                out.extend(self.generate_batch(requests, opts)?);
                requests = rest;
            }
            return Ok(out);
        }
        if requests.len() < 2 || !self.lm.batches() {
            let single = GenerateOptions {
                lookahead: 0,
                ..opts.clone()
            };
            return requests
                .into_iter()
                .map(|r| self.generate_filtered(&r.prompt, &single, r.filter, r.on_text))
                .collect();
        }
        let start = Instant::now();
        let first = requests[0].prompt.clone();
        let mut seqs = Vec::with_capacity(requests.len());
        let mut prefilled = Vec::with_capacity(requests.len());
        let mut all_logits = Vec::with_capacity(requests.len());
        for (i, request) in requests.iter().enumerate() {
            let began = Instant::now();
            let prompt = &request.prompt;
            let (logits, held) = match i {
                0 => self.prefill(prompt, opts.reuse_cache, opts.opening)?,
                _ => {
                    // The opening shared with the first prompt is copied from its cache.
                    let shared = common_prefix(prompt, &first).min(prompt.len() - 1);
                    self.lm.select(0)?;
                    self.lm.fork(i, shared)?;
                    self.lm.select(i)?;
                    let input = Tensor::new(&prompt[shared..], &self.device)?.unsqueeze(0)?;
                    (last_logits(self.lm.forward(&input, shared)?)?, shared)
                }
            };
            prefilled.push((prompt.len() - held, began.elapsed().as_secs_f64()));
            all_logits.push(Some(logits));
            seqs.push(Decoding::new(prompt, opts.sampling));
        }
        let decoding = Instant::now();
        let mut requests = requests;
        loop {
            let (mut tokens, mut rows) = (Vec::new(), Vec::new());
            for (i, (seq, request)) in seqs.iter_mut().zip(&mut requests).enumerate() {
                let Some(logits) = all_logits[i].take() else {
                    continue;
                };
                let filter = request.filter.as_deref_mut();
                if let Some(next) =
                    self.choose(seq, logits, opts, filter, request.on_text, start)?
                {
                    tokens.push(next);
                    rows.push(i);
                }
            }
            if rows.is_empty() {
                break;
            }
            let logits = self
                .lm
                .forward_batch(&tokens, &rows)?
                .to_dtype(DType::F32)?;
            for (r, &i) in rows.iter().enumerate() {
                all_logits[i] = Some(logits.get(r)?);
            }
        }
        let decode_s = decoding.elapsed().as_secs_f64();
        self.lm.select(0)?;
        self.keep_cached(seqs[0].context.clone());
        let total: usize = seqs.iter().map(|s| s.tokens.len()).sum::<usize>().max(1);
        let mut out = Vec::with_capacity(seqs.len());
        for ((seq, request), (prompt_tokens, prefill_s)) in
            seqs.into_iter().zip(requests).zip(prefilled)
        {
            let share = seq.tokens.len() as f64 / total as f64;
            let mut generation = self.finish(seq, start, request.on_text)?;
            generation.prompt_tokens = prompt_tokens;
            generation.prefill_s = prefill_s;
            // The passes were shared: each generation is charged its share of them.
            generation.decode_s = decode_s * share;
            out.push(generation);
        }
        Ok(out)
    }

    /// Runs `prompt` through the model and returns the logits after it, with how many of its
    /// tokens the cache already held (`reuse`: the part that opened the previous prompt too; at
    /// least the last token is run, for the logits after it). The first `opening` tokens, when the
    /// cache does not hold them, run on their own or come from the store (see
    /// [`GenerateOptions::opening`]); read from the store, they count as held.
    fn prefill(&mut self, prompt: &[u32], reuse: bool, opening: usize) -> Result<(Tensor, usize)> {
        let mut shared = match reuse {
            true => common_prefix(&self.cached, prompt),
            false => 0,
        }
        .min(prompt.len() - 1);
        // Whatever happens below, the cache is cut back before it is trusted again.
        self.cached.clear();
        // A parked cache that shares more of the prompt is copied in first.
        let parked = self
            .parked
            .iter()
            .map(|(slot, tokens)| (*slot, common_prefix(tokens, prompt).min(prompt.len() - 1)))
            .max_by_key(|&(_, len)| len);
        if let Some((slot, len)) = parked.filter(|&(_, len)| reuse && len > shared) {
            self.lm.select(slot)?;
            self.lm.fork(0, len)?;
            shared = len;
        }
        self.lm.select(0)?;
        let mut from = if shared > 0 && self.lm.truncate(shared).is_ok() {
            shared
        } else {
            self.lm.reset();
            0
        };
        let mut held = from;
        // The opening every document shares runs on its own (or comes from the store), so what
        // follows it gets the same numbers whether the store held it or not.
        let opening = opening.min(prompt.len() - 1);
        if from < opening && self.lm.batches() {
            let tokens = &prompt[..opening];
            let stored = self
                .openings
                .as_ref()
                .is_some_and(|store| store.load(&mut *self.lm, tokens));
            if stored {
                held = opening;
            } else {
                self.lm.reset();
                let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
                self.lm.forward(&input, 0)?;
                if let Some(store) = &self.openings {
                    static WARNED: std::sync::Once = std::sync::Once::new();
                    if let Err(e) = store.save(&*self.lm, tokens) {
                        WARNED.call_once(|| {
                            eprintln!("sift: warning: cannot keep prompt openings on disk (each run computes them again): {e}");
                        });
                    }
                }
            }
            from = opening;
        }
        let input = Tensor::new(&prompt[from..], &self.device)?.unsqueeze(0)?;
        Ok((last_logits(self.lm.forward(&input, from)?)?, held))
    }

    /// Chooses `seq`'s next token from `logits` (narrowed by `filter`) and streams its text.
    /// Returns the token to run next, or `None` once the sequence has ended (`seq.stop` says why).
    fn choose(
        &self,
        seq: &mut Decoding,
        logits: Tensor,
        opts: &GenerateOptions,
        filter: Option<&mut (dyn TokenFilter + '_)>,
        on_text: &mut (dyn FnMut(&str) -> ControlFlow<()> + '_),
        start: Instant,
    ) -> Result<Option<u32>> {
        if seq.tokens.len() >= opts.max_new_tokens {
            seq.stop = StopReason::MaxTokens;
            return Ok(None);
        }
        let logits = match filter {
            Some(f) => {
                let mut values = logits.to_vec1::<f32>()?;
                f.filter(&seq.stream.text, &mut values);
                Tensor::new(values, &self.device)?
            }
            None => logits,
        };
        let next = seq.processor.sample(&logits)?;
        seq.ttft_s
            .get_or_insert_with(|| start.elapsed().as_secs_f64());
        if !opts.ignore_stop_tokens && self.stop_tokens.contains(&next) {
            seq.stop = StopReason::StopToken(next);
            return Ok(None);
        }
        seq.tokens.push(next);
        seq.context.push(next);
        if let Some(piece) = seq.stream.push(&self.tokenizer, &seq.tokens)? {
            if on_text(&piece).is_break() {
                seq.stop = StopReason::Callback;
                return Ok(None);
            }
        }
        if seq.tokens.len() >= opts.max_new_tokens {
            seq.stop = StopReason::MaxTokens;
            return Ok(None);
        }
        Ok(Some(next))
    }

    /// After a generation whose prompt and tokens are `context`: every token but the last chosen
    /// one has been run in the sequence in use (guesses past it may have been too), so the cache
    /// keeps exactly those for the next prompt.
    fn keep_cached(&mut self, mut context: Vec<u32>) {
        let run = context.len() - 1;
        if self.lm.truncate(run).is_ok() {
            context.truncate(run);
            self.cached = context;
        }
    }

    /// The generation `seq` made; its prompt and timing fields are the caller's to fill.
    fn finish(
        &self,
        seq: Decoding,
        start: Instant,
        on_text: &mut (dyn FnMut(&str) -> ControlFlow<()> + '_),
    ) -> Result<Generation> {
        let text = self.decode(&seq.tokens)?;
        if seq.stop != StopReason::Callback {
            // Bytes held back waiting for the rest of a character will not get it: hand them over.
            if let Some(rest) = text.get(seq.stream.emitted..).filter(|r| !r.is_empty()) {
                let _ = on_text(rest);
            }
        }
        Ok(Generation {
            ttft_s: seq.ttft(start),
            tokens: seq.tokens,
            text,
            stop: seq.stop,
            prompt_tokens: 0,
            prefill_s: 0.0,
            decode_s: 0.0,
            confirmed_guesses: 0,
        })
    }
}

/// One generation of a batch ([`TextModel::generate_batch`]).
pub struct Request<'a> {
    pub prompt: Vec<u32>,
    /// Narrows every choice of this generation's tokens.
    pub filter: Option<&'a mut dyn TokenFilter>,
    /// Called with each newly decoded piece of this generation's text; `Break` ends it alone.
    pub on_text: &'a mut dyn FnMut(&str) -> ControlFlow<()>,
}

/// One sequence being decoded: what it has chosen and streamed, and why it ended.
struct Decoding {
    processor: LogitsProcessor,
    stream: TextStream,
    tokens: Vec<u32>,
    /// The prompt and the tokens chosen.
    context: Vec<u32>,
    ttft_s: Option<f64>,
    stop: StopReason,
}

impl Decoding {
    fn new(prompt: &[u32], sampling: Sampling) -> Self {
        let processor = match sampling {
            Sampling::Greedy => LogitsProcessor::new(0, None, None),
            Sampling::Seeded {
                temperature,
                top_p,
                seed,
            } => LogitsProcessor::new(seed, Some(temperature), top_p),
        };
        Self {
            processor,
            stream: TextStream::default(),
            tokens: Vec::new(),
            context: prompt.to_vec(),
            ttft_s: None,
            stop: StopReason::MaxTokens,
        }
    }

    /// Seconds from `start` to the first choice (to now when there was none).
    fn ttft(&self, start: Instant) -> f64 {
        self.ttft_s.unwrap_or_else(|| start.elapsed().as_secs_f64())
    }
}

/// How many tokens `a` and `b` open with alike.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_follow_the_longest_match_and_grow_with_it() {
        // The last three tokens (7 8 9) were seen twice; both times only those three match, so the
        // latest is followed, one token guessed.
        assert_eq!(
            lookup_draft(&[7, 8, 9, 1, 4, 7, 8, 9, 2, 3, 5, 7, 8, 9], 4),
            vec![2]
        );
        // The earlier place matches five tokens (4 6 7 8 9): three guessed, from there.
        assert_eq!(
            lookup_draft(&[4, 6, 7, 8, 9, 1, 2, 3, 5, 7, 8, 9, 0, 4, 6, 7, 8, 9], 4),
            vec![1, 2, 3]
        );
        // ... at most k.
        assert_eq!(
            lookup_draft(&[4, 6, 7, 8, 9, 1, 2, 3, 5, 7, 8, 9, 0, 4, 6, 7, 8, 9], 2),
            vec![1, 2]
        );
        // A match that reaches the start of the context (1 2 3 4: four tokens) guesses two.
        assert_eq!(lookup_draft(&[1, 2, 3, 4, 5, 1, 2, 3, 4], 7), vec![5, 1]);
        // A guess stops at the end of the context.
        let copied: Vec<u32> = (0..12).chain(0..10).collect();
        assert_eq!(lookup_draft(&copied, 7), vec![10, 11, 0, 1, 2, 3, 4]);
        assert_eq!(lookup_draft(&[1, 2, 3, 1, 2, 3], 7), vec![1]);
        // Only the last token was seen before: no guess.
        assert_eq!(lookup_draft(&[1, 5, 6, 7, 2, 5], 4), Vec::<u32>::new());
        // Guessing off.
        assert_eq!(lookup_draft(&[7, 8, 9, 7, 8, 9], 0), Vec::<u32>::new());
    }

    #[test]
    fn a_line_that_starts_a_word_of_the_source_is_guessed_to_finish_it() {
        let source = "Korean text: 이재용 삼성전자 회장은 미국 출장 중 Samsung's Lee";
        assert_eq!(copied_word(source, "이재용 = Lee\n삼"), "성전자");
        assert_eq!(copied_word(source, "미국 출"), "장");
        // The first place where the line starts a word (not `전회`).
        assert_eq!(copied_word("전회 회의 회장", "회"), "의");
        // Only the current line counts, and the word ends at punctuation.
        assert_eq!(copied_word(source, "x\nSam"), "sung");
        // Inside a word (`장` of 출장) is no start; a line found nowhere, a finished word or an
        // empty line guesses nothing.
        assert_eq!(copied_word(source, "장"), "");
        assert_eq!(copied_word(source, "Lee Jae"), "");
        assert_eq!(copied_word(source, "회장은"), "");
        assert_eq!(copied_word(source, "a\n"), "");
    }
}
