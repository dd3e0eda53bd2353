//! The token head: a small network on the encoder's contextual token vectors that says, for every
//! token, how likely it is to belong to injected text.
//!
//! Its input is the token's vector beside the mean of its neighbours', its sentence's vector and the
//! document's centre, so it can weigh a token against the words around it, its sentence, and what the
//! whole article is about. Two linear tests ride along on a text's own vector: the phrase test (does it
//! read as a spam phrase) and the instruction test (does it address a model that reads the article).
//! All weights are data (`models/spam-head.safetensors`, compiled in), produced by `sift train` from the
//! corpus in `data/train/`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};

use crate::error::{Error, Result};

/// The weights that ship with sift.
const BUILTIN: &[u8] = include_bytes!("../../models/spam-head.safetensors");

/// Per-token spam probabilities from token and sentence vectors.
#[derive(Debug, Clone)]
pub struct TokenHead {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    /// The phrase test: logistic regression on a candidate span's own sentence vector.
    span_w: Tensor,
    span_b: Tensor,
    /// The instruction test: logistic regression on a text's own sentence vector, saying whether it
    /// addresses a reader model (override, role change, prompt leak, planted claim) rather than people.
    instr_w: Tensor,
    instr_b: Tensor,
}

impl TokenHead {
    /// The head compiled into sift.
    pub fn builtin(device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(BUILTIN, device)?;
        Self::from_tensors(tensors, Path::new("models/spam-head.safetensors"))
    }

    /// A head saved by `sift train`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let tensors =
            candle_core::safetensors::load(path, device).map_err(|e| Error::format(path, e))?;
        Self::from_tensors(tensors, path)
    }

    fn from_tensors(mut t: HashMap<String, Tensor>, origin: &Path) -> Result<Self> {
        let mut take = |name: &str| {
            t.remove(name)
                .ok_or_else(|| Error::format(origin, format!("no tensor `{name}`")))?
                .to_dtype(DType::F32)
                .map_err(Error::from)
        };
        let head = Self {
            w1: take("w1")?,
            b1: take("b1")?,
            w2: take("w2")?,
            b2: take("b2")?,
            span_w: take("span_w")?,
            span_b: take("span_b")?,
            instr_w: take("instr_w")?,
            instr_b: take("instr_b")?,
        };
        let (hidden, input) = head.w1.dims2()?;
        let dim = input / 4;
        if head.b1.dims() != [hidden]
            || head.w2.dims() != [1, hidden]
            || head.b2.dims() != [1]
            || head.span_w.dims() != [1, dim]
            || head.span_b.dims() != [1]
            || head.instr_w.dims() != [1, dim]
            || head.instr_b.dims() != [1]
        {
            return Err(Error::format(
                origin,
                format!("inconsistent shapes for input {input}"),
            ));
        }
        Ok(head)
    }

    /// Width of the input: token, local context, sentence and document vectors side by side.
    pub fn input_dim(&self) -> usize {
        self.w1.dim(1).unwrap_or(0)
    }

    /// Logits for a `[n, input_dim]` matrix of features.
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        Ok(forward(&self.w1, &self.b1, &self.w2, &self.b2, features)?)
    }

    /// Spam probability of each token of one sentence of a document whose centre is `document`.
    pub fn token_probabilities(
        &self,
        tokens: &[Vec<f32>],
        sentence: &[f32],
        document: &[f32],
    ) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let device = self.w1.device();
        let features = features(tokens, sentence, document, device)?;
        let p = candle_nn::ops::sigmoid(&self.logits(&features)?)?;
        Ok(p.to_vec1::<f32>()?)
    }

    /// How much a text, embedded on its own, reads like a spam phrase (0 to 1).
    pub fn phrase_probabilities(&self, vectors: &[&[f32]]) -> Result<Vec<f32>> {
        linear_probabilities(&self.span_w, &self.span_b, vectors)
    }

    /// How much a text, embedded on its own, reads like an instruction to a model (0 to 1).
    pub fn instruction_probabilities(&self, vectors: &[&[f32]]) -> Result<Vec<f32>> {
        linear_probabilities(&self.instr_w, &self.instr_b, vectors)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: HashMap<&str, Tensor> = [
            ("w1", self.w1.clone()),
            ("b1", self.b1.clone()),
            ("w2", self.w2.clone()),
            ("b2", self.b2.clone()),
            ("span_w", self.span_w.clone()),
            ("span_b", self.span_b.clone()),
            ("instr_w", self.instr_w.clone()),
            ("instr_b", self.instr_b.clone()),
        ]
        .into_iter()
        .collect();
        candle_core::safetensors::save(&tensors, path).map_err(|e| Error::format(path, e))
    }

    pub(crate) fn from_vars(token: [&Var; 4], span: [&Var; 2], instr: [&Var; 2]) -> Self {
        let t = |v: &Var| v.as_tensor().detach();
        Self {
            w1: t(token[0]),
            b1: t(token[1]),
            w2: t(token[2]),
            b2: t(token[3]),
            span_w: t(span[0]),
            span_b: t(span[1]),
            instr_w: t(instr[0]),
            instr_b: t(instr[1]),
        }
    }
}

/// `sigmoid(w · v + b)` for each vector: the phrase and instruction tests.
fn linear_probabilities(w: &Tensor, b: &Tensor, vectors: &[&[f32]]) -> Result<Vec<f32>> {
    if vectors.is_empty() {
        return Ok(Vec::new());
    }
    let dim = w.dim(1)?;
    let flat: Vec<f32> = vectors.iter().flat_map(|v| v.iter().copied()).collect();
    let x = Tensor::from_vec(flat, (vectors.len(), dim), w.device())?;
    let logits = x.matmul(&w.t()?)?.broadcast_add(b)?.squeeze(D::Minus1)?;
    Ok(candle_nn::ops::sigmoid(&logits)?.to_vec1::<f32>()?)
}

/// The network: `w2 · gelu(w1 · x + b1) + b2`, one logit per row.
pub(crate) fn forward(
    w1: &Tensor,
    b1: &Tensor,
    w2: &Tensor,
    b2: &Tensor,
    x: &Tensor,
) -> candle_core::Result<Tensor> {
    let h = x.matmul(&w1.t()?)?.broadcast_add(b1)?.gelu_erf()?;
    h.matmul(&w2.t()?)?.broadcast_add(b2)?.squeeze(D::Minus1)
}

/// Tokens on each side averaged into a token's local context.
const WINDOW: usize = 2;

/// Rows of `[token | local context | sentence | document]`: the token's unit vector, the mean of the
/// unit vectors within `WINDOW` tokens of it, the sentence vector, and the document's centre (the unit
/// mean of its sentence vectors), so that the head can tell a phrase that is off the article's topic
/// from the same words in an article about them.
pub(crate) fn features(
    tokens: &[Vec<f32>],
    sentence: &[f32],
    document: &[f32],
    device: &Device,
) -> Result<Tensor> {
    let dim = sentence.len();
    let unit: Vec<Vec<f32>> = tokens
        .iter()
        .map(|t| {
            let norm = t.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            t.iter().map(|x| x / norm).collect()
        })
        .collect();
    let mut flat = Vec::with_capacity(tokens.len() * dim * 4);
    for i in 0..unit.len() {
        flat.extend_from_slice(&unit[i]);
        let (a, b) = (i.saturating_sub(WINDOW), (i + WINDOW + 1).min(unit.len()));
        let mut local = vec![0f32; dim];
        for u in &unit[a..b] {
            local.iter_mut().zip(u).for_each(|(l, x)| *l += x);
        }
        flat.extend(local.iter().map(|x| x / (b - a) as f32));
        flat.extend_from_slice(sentence);
        flat.extend_from_slice(document);
    }
    Ok(Tensor::from_vec(flat, (tokens.len(), dim * 4), device)?)
}
