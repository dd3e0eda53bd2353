//! The encoder path: a batch of texts in, one L2-normalised mean-pooled vector per text out.
//!
//! e5 models are trained with a role prefix (`query: ` or `passage: `) and read up to their position
//! limit; longer inputs are cut at the limit. Texts are batched with padding and an attention mask, so
//! padding never leaks into the mean.
//!
//! One model, two forwards: on a CPU with AVX-512 VNNI or AVX2 the encoder runs its own forward
//! ([`cpu`]: int8 products on the Q4_0 weights, no padding computed); elsewhere (CUDA, other CPUs, or
//! `SIFT_NO_FAST_KERNELS` set) candle's `BertModel`, which is also the reference the fast one is
//! tested against.

pub mod cpu;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;

use crate::error::{Error, Result};
use crate::model::e5s1::{self, E5Tokenizer};

/// The prefix e5 expects before a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Query,
    Passage,
}

impl Prefix {
    fn as_str(self) -> &'static str {
        match self {
            Prefix::Query => "query: ",
            Prefix::Passage => "passage: ",
        }
    }
}

/// Which forward pass computes the hidden states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardKind {
    /// [`cpu::CpuBert`] where the device is the CPU and the CPU has the features, candle otherwise.
    Auto,
    /// candle's `BertModel`, always.
    Reference,
}

enum Forward {
    Candle(BertModel),
    Cpu(cpu::CpuBert),
}

/// A loaded sentence encoder.
pub struct Encoder {
    model: Forward,
    tokenizer: E5Tokenizer,
    pad_id: u32,
    max_tokens: usize,
    hidden: usize,
    device: Device,
}

impl Encoder {
    /// Loads an E5S1 image onto `device`, with the fastest forward this machine has. Candle's
    /// computes in f32 on every device: in bf16 (tried on the CPU) the token head found none of the
    /// seed's five spans, and candle's BERT cannot run in f16 (its attention mask is built from
    /// `f32::MIN`, which is `-inf` in f16).
    pub fn load_e5s1(path: &std::path::Path, device: &Device) -> Result<Self> {
        Self::load_e5s1_with(path, device, ForwardKind::Auto)
    }

    /// Loads an E5S1 image with the forward `kind` asks for.
    pub fn load_e5s1_with(
        path: &std::path::Path,
        device: &Device,
        kind: ForwardKind,
    ) -> Result<Self> {
        let image = e5s1::load(path)?;
        let fast = kind == ForwardKind::Auto && device.is_cpu() && cpu::available();
        // An image this forward cannot run (not Q4_0, another head width) goes to candle.
        let model = match fast.then(|| cpu::CpuBert::new(&image)) {
            Some(Ok(bert)) => Forward::Cpu(bert),
            _ => {
                let tensors = image
                    .candle_tensors(device)
                    .map_err(|e| Error::format(path, e))?;
                let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
                Forward::Candle(
                    BertModel::load(vb, &image.config).map_err(|e| Error::format(path, e))?,
                )
            }
        };
        Ok(Self {
            model,
            tokenizer: image.tokenizer,
            pad_id: image.pad_id,
            max_tokens: image.config.max_position_embeddings,
            hidden: image.config.hidden_size,
            device: device.clone(),
        })
    }

    /// Which forward runs: `"cpu-int8"` (this crate's, [`cpu`]) or `"candle"`.
    pub fn forward_name(&self) -> &'static str {
        match self.model {
            Forward::Cpu(_) => "cpu-int8",
            Forward::Candle(_) => "candle",
        }
    }

    /// The device the encoder runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.hidden
    }

    /// Token ids for `text` with its prefix and the `<s> … </s>` frame, cut at the position limit.
    pub fn tokens(&self, text: &str, prefix: Prefix) -> Result<Vec<u32>> {
        Ok(self.tokenize(text, prefix)?.ids)
    }

    fn tokenize(&self, text: &str, prefix: Prefix) -> Result<Tokenized> {
        let p = prefix.as_str();
        let enc = self.tokenizer.encode(format!("{p}{text}"), true)?;
        let mut ids = enc.get_ids().to_vec();
        let special = enc.get_special_tokens_mask();
        // Byte offsets into `text` of the tokens that cover it (not the prefix, not the frame).
        let mut spans: Vec<Option<(usize, usize)>> = enc
            .get_offsets()
            .iter()
            .zip(special)
            .map(|(&(a, b), &sp)| {
                (sp == 0 && b > p.len()).then(|| (a.max(p.len()) - p.len(), b - p.len()))
            })
            .collect();
        if ids.len() > self.max_tokens {
            let last = *ids.last().unwrap_or(&self.pad_id);
            ids.truncate(self.max_tokens - 1);
            ids.push(last);
            spans.truncate(self.max_tokens - 1);
            spans.push(None);
        }
        Ok(Tokenized { ids, spans })
    }

    /// Runs a batch through the encoder: each text's tokens, the hidden state of each of its tokens
    /// (`rows`: only when asked for), and its sentence vector.
    fn forward(&self, texts: &[&str], prefix: Prefix, rows: bool) -> Result<Forwarded> {
        let toks = texts
            .iter()
            .map(|t| self.tokenize(t, prefix))
            .collect::<Result<Vec<_>>>()?;
        let h = self.hidden;
        match &self.model {
            Forward::Candle(model) => {
                let width = toks.iter().map(|t| t.ids.len()).max().unwrap_or(0);
                let mut flat = Vec::with_capacity(toks.len() * width);
                let mut mask = Vec::with_capacity(toks.len() * width);
                for t in &toks {
                    flat.extend(t.ids.iter().copied());
                    flat.extend(std::iter::repeat_n(self.pad_id, width - t.ids.len()));
                    mask.extend(std::iter::repeat_n(1u32, t.ids.len()));
                    mask.extend(std::iter::repeat_n(0u32, width - t.ids.len()));
                }
                let shape = (toks.len(), width);
                let input = Tensor::from_vec(flat, shape, &self.device)?;
                let mask = Tensor::from_vec(mask, shape, &self.device)?;
                let types = input.zeros_like()?;
                let hidden = model.forward(&input, &types, Some(&mask))?;
                let pooled = mean_pool(&hidden, &mask)?.to_vec2::<f32>()?;
                let rows = if rows {
                    hidden
                        .to_vec3::<f32>()?
                        .into_iter()
                        .zip(&toks)
                        .map(|(mut r, t)| {
                            r.truncate(t.ids.len());
                            r
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Ok(Forwarded { toks, rows, pooled })
            }
            Forward::Cpu(bert) => {
                // Packed without padding: each text's rows one after another.
                let seqs: Vec<&[u32]> = toks.iter().map(|t| t.ids.as_slice()).collect();
                let packed = bert.forward(&seqs);
                let mut at = 0;
                let mut all_rows = Vec::with_capacity(if rows { toks.len() } else { 0 });
                let mut pooled = Vec::with_capacity(toks.len());
                for t in &toks {
                    let mine = &packed[at * h..(at + t.ids.len()) * h];
                    at += t.ids.len();
                    pooled.push(unit_mean_of_rows(mine, h));
                    if rows {
                        all_rows.push(mine.chunks_exact(h).map(<[f32]>::to_vec).collect());
                    }
                }
                Ok(Forwarded {
                    toks,
                    rows: all_rows,
                    pooled,
                })
            }
        }
    }

    /// One unit vector per text, in order.
    pub fn embed(&self, texts: &[&str], prefix: Prefix) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.forward(texts, prefix, false)?.pooled)
    }

    /// The sentence vector and the contextual vector of every token, with the byte range each token
    /// covers in its text. One pass of the encoder serves both.
    pub fn embed_tokens(&self, texts: &[&str], prefix: Prefix) -> Result<Vec<TokenVectors>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let Forwarded { toks, rows, pooled } = self.forward(texts, prefix, true)?;
        Ok(toks
            .into_iter()
            .zip(rows)
            .zip(pooled)
            .map(|((t, rows), sentence)| {
                let mut spans = Vec::new();
                let mut vectors = Vec::new();
                for (span, row) in t.spans.iter().zip(rows) {
                    if let Some(span) = span {
                        spans.push(*span);
                        vectors.push(row);
                    }
                }
                TokenVectors {
                    sentence,
                    spans,
                    vectors,
                }
            })
            .collect())
    }
}

/// What one pass of the encoder gives for a batch.
struct Forwarded {
    toks: Vec<Tokenized>,
    /// Per text, its tokens' hidden states (empty when not asked for).
    rows: Vec<Vec<Vec<f32>>>,
    /// Per text, the L2-normalised mean of its tokens' states.
    pooled: Vec<Vec<f32>>,
}

/// What [`Encoder::embed_tokens`] returns for one text.
#[derive(Debug, Clone)]
pub struct TokenVectors {
    /// The L2-normalised mean of all token states (the sentence vector).
    pub sentence: Vec<f32>,
    /// Byte range of each token in the text.
    pub spans: Vec<(usize, usize)>,
    /// The token's last hidden state.
    pub vectors: Vec<Vec<f32>>,
}

struct Tokenized {
    ids: Vec<u32>,
    /// Per token: its byte range in the text, or `None` for prefix and special tokens.
    spans: Vec<Option<(usize, usize)>>,
}

/// Mean of the hidden states over real tokens, then unit length.
fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask_f = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?;
    let counts = mask_f.sum(1)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
    Ok(mean.broadcast_div(&norm)?)
}

/// The mean of `rows` (each `h` wide, at least one), then unit length; as [`mean_pool`] computes it.
fn unit_mean_of_rows(rows: &[f32], h: usize) -> Vec<f32> {
    let mut mean = vec![0f32; h];
    for row in rows.chunks_exact(h) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    let n = (rows.len() / h).max(1) as f32;
    mean.iter_mut().for_each(|m| *m /= n);
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    mean.iter_mut().for_each(|m| *m /= norm);
    mean
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
