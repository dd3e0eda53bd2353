//! Qwen2 on quantized GGUF weights, with a KV cache the generation loop can cut back.
//!
//! candle's `quantized_qwen2` returns logits for the last position only and its cache can only grow or
//! restart, which rules out checking several guessed tokens in one pass. This forward returns the logits
//! of every position it is given and lets the caller truncate the cache, so the loop can verify a run
//! of tokens copied from the prompt (prompt-lookup decoding) and drop the ones the model disagrees
//! with. The arithmetic is the same as candle's: quantized matrix products, RMS norm, rotary embedding,
//! grouped-query attention; `tests/tiny_model.rs` and `tests/real_models.rs` hold it to candle's path.
//! On the CPU the cache is plain slices and attention (with the rotary embedding) runs in
//! [`super::attention`], one pass over the cached keys and values per token; elsewhere it is
//! candle's tensor ops on a tensor cache. On the CPU the model holds several sequences, each with its
//! own cache ([`CausalLm::fork`], [`CausalLm::select`]), and runs one token of each in one pass
//! ([`CausalLm::forward_batch`]): the products are shared, and each row attends to its own cache.
//! When every product runs on the fast kernels, the CPU pass keeps the rows as plain values from
//! the embedding to the final norm (`Qwen2::hidden_plain`): norms, biases, residual sums and the
//! gating are loops with candle's float operations, bit for bit the same logits
//! (`tests/real_models.rs`), without a fresh tensor and a hand-off to candle's thread pool each.

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::Embedding;
use candle_transformers::quantized_nn::RmsNorm;
use rayon::prelude::*;

use super::attention::{self, KvCache};
use super::CausalLm;
use crate::kernels::{Blocks, QLinear};

type QMatMul = QLinear;

/// The token embedding: rows decoded from the quantized table as tokens come (Q4_K and Q6_K,
/// the table stays a fifth of its f32 size in memory), or the table decoded once (other types).
enum Embed {
    Quantized(Blocks),
    Dense(Embedding),
}

impl Embed {
    fn new(table: Blocks, hidden: usize, device: &Device) -> Result<Self> {
        use candle_core::quantized::GgmlDType;
        match (table.dtype(), device) {
            (GgmlDType::Q4K | GgmlDType::Q6K, Device::Cpu) => Ok(Self::Quantized(table)),
            _ => Ok(Self::Dense(Embedding::new(
                table.to_qtensor(device)?.dequantize(device)?,
                hidden,
            ))),
        }
    }

    /// The rows of `ids`, `[n * hidden]`.
    fn rows(&self, ids: &[u32]) -> Result<Vec<f32>> {
        match self {
            Self::Dense(e) => {
                let ids = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
                e.forward(&ids)?.flatten_all()?.to_vec1::<f32>()
            }
            Self::Quantized(t) => {
                let hidden = t.shape()[1];
                let mut out = vec![0f32; ids.len() * hidden];
                for (row, &id) in out.chunks_exact_mut(hidden).zip(ids) {
                    t.dequantize_row(id as usize, row)?;
                }
                Ok(out)
            }
        }
    }

    /// `ids [1, n]` to `[1, n, hidden]`.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::Dense(e) => e.forward(ids),
            Self::Quantized(t) => {
                let ids = ids.flatten_all()?.to_vec1::<u32>()?;
                let rows = self.rows(&ids)?;
                Tensor::from_vec(rows, (1, ids.len(), t.shape()[1]), &Device::Cpu)
            }
        }
    }
}

struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    bq: Tensor,
    bk: Tensor,
    bv: Tensor,
    wo: QMatMul,
    attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
    /// One cache per sequence the model holds (see [`CausalLm::fork`]); sequence 0 is the usual one.
    caches: Vec<Cache>,
    /// The norms' scales and the biases as plain values, for the CPU pass on plain rows.
    values: LayerValues,
}

/// A layer's norm scales and biases as values.
struct LayerValues {
    attn_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    bq: Vec<f32>,
    bk: Vec<f32>,
    bv: Vec<f32>,
}

/// Where the rows of a pass on plain rows attend.
enum Rows<'a> {
    /// Positions `pos..pos + n` of sequence `seq`.
    Run { seq: usize, pos: usize },
    /// Row `i` is the next token of sequence `seqs[i]`, at position `positions[i]`.
    Each {
        seqs: &'a [usize],
        positions: &'a [usize],
    },
}

/// A layer's keys and values, valid up to the model's `len`, written in place (a decode step
/// stores one position, not the whole cache).
enum Cache {
    /// On the CPU: plain slices, attended by [`attention::attend`].
    Cpu(KvCache),
    /// Elsewhere: tensors `[1, kv_heads, capacity, head_dim]`, attended by candle's ops.
    Tensors(Option<(Tensor, Tensor)>),
}

/// A Qwen2 network with its KV cache.
pub struct Qwen2 {
    embed: Embed,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    /// When the output is restricted to some tokens ([`CausalLm::keep_outputs`]), `output` holds
    /// their rows only: their ids and the full vocabulary size.
    kept: Option<(Vec<u32>, usize)>,
    /// Rotary tables `[context, head_dim / 2]` for the tensor path (devices other than the CPU).
    rope_tables: Option<(Tensor, Tensor)>,
    /// The rotary frequencies, `base^(-2j / head_dim)`.
    inv_freq: Vec<f32>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Positions held in each sequence's cache.
    lens: Vec<usize>,
    /// The final norm's scales, when the CPU pass runs on plain rows (every product on the fast
    /// kernels): the norms, biases, residual sums and gating are then plain loops on the rayon
    /// pool, with the same float operations as candle's element-wise ops, instead of a candle
    /// op each (a fresh tensor, a hand-off to candle's own thread pool).
    plain: Option<Vec<f32>>,
    /// The norms' epsilon, as candle's RMS norm takes it.
    eps: f32,
    /// The sequence that [`CausalLm::forward`], `truncate` and `reset` act on.
    active: usize,
}

impl Qwen2 {
    pub fn from_gguf<R: Read + Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        Self::from_tensors(
            ct,
            &mut |name| Blocks::of_tensor(&ct.tensor(reader, name, device)?),
            device,
        )
    }

    /// The network of `ct`'s metadata, each tensor's blocks given by `tensor` from its name.
    pub fn from_tensors(
        ct: &gguf_file::Content,
        tensor: &mut dyn FnMut(&str) -> Result<Blocks>,
        device: &Device,
    ) -> Result<Self> {
        let md = |key: &str| match ct.metadata.get(key) {
            Some(v) => Ok(v),
            None => candle_core::bail!("the GGUF has no `{key}`"),
        };
        let heads = md("qwen2.attention.head_count")?.to_u32()? as usize;
        let kv_heads = md("qwen2.attention.head_count_kv")?.to_u32()? as usize;
        let hidden = md("qwen2.embedding_length")?.to_u32()? as usize;
        let context = md("qwen2.context_length")?.to_u32()? as usize;
        let blocks = md("qwen2.block_count")?.to_u32()? as usize;
        let eps = md("qwen2.attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let rope_base = md("qwen2.rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        let head_dim = hidden / heads;

        let embed = Embed::new(tensor("token_embd.weight")?, hidden, device)?;
        let output_norm = tensor("output_norm.weight")?;
        let norm = RmsNorm::from_qtensor(output_norm.to_qtensor(device)?, eps)?;
        // Models with tied embeddings have no output matrix of their own.
        let output = match tensor("output.weight") {
            Ok(w) => QMatMul::from_blocks(w, device)?,
            Err(_) => QMatMul::from_blocks(tensor("token_embd.weight")?, device)?,
        };
        let mut layers: Vec<Layer> = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let mut t = |part: &str| tensor(&format!("blk.{i}.{part}"));
            let q = |w: Blocks| QMatMul::from_blocks(w, device);
            let v = |w: Blocks| w.to_qtensor(device)?.dequantize(device);
            let norm = |w: Blocks| RmsNorm::from_qtensor(w.to_qtensor(device)?, eps);
            let (bq, bk, bv) = (t("attn_q.bias")?, t("attn_k.bias")?, t("attn_v.bias")?);
            let (attn_norm, ffn_norm) = (t("attn_norm.weight")?, t("ffn_norm.weight")?);
            let values = LayerValues {
                attn_norm: values(&attn_norm)?,
                ffn_norm: values(&ffn_norm)?,
                bq: values(&bq)?,
                bk: values(&bk)?,
                bv: values(&bv)?,
            };
            layers.push(Layer {
                wq: q(t("attn_q.weight")?)?,
                wk: q(t("attn_k.weight")?)?,
                wv: q(t("attn_v.weight")?)?,
                bq: v(bq)?,
                bk: v(bk)?,
                bv: v(bv)?,
                wo: q(t("attn_output.weight")?)?,
                attn_norm: norm(attn_norm)?,
                ffn_norm: norm(ffn_norm)?,
                gate: q(t("ffn_gate.weight")?)?,
                up: q(t("ffn_up.weight")?)?,
                down: q(t("ffn_down.weight")?)?,
                caches: vec![match device {
                    Device::Cpu => Cache::Cpu(KvCache::new(kv_heads, head_dim)),
                    _ => Cache::Tensors(None),
                }],
                values,
            });
        }
        let plain = match device {
            Device::Cpu if layers.iter().all(Layer::products_fast) => Some(values(&output_norm)?),
            _ => None,
        };
        let inv_freq: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / rope_base.powf(i as f32 / head_dim as f32))
            .collect();
        let rope_tables = match device {
            Device::Cpu => None,
            _ => Some(rope_tables(&inv_freq, context, device)?),
        };
        Ok(Self {
            embed,
            layers,
            norm,
            output,
            kept: None,
            rope_tables,
            inv_freq,
            heads,
            kv_heads,
            head_dim,
            lens: vec![0],
            active: 0,
            plain,
            eps: eps as f32,
        })
    }

    /// Runs `input` (`[1, n]`) at positions `pos..pos + n` and returns the hidden states after the
    /// final norm, `[n, hidden]`. The cache must hold exactly `pos` positions.
    fn hidden(&mut self, input: &Tensor, pos: usize) -> Result<Tensor> {
        let seq = self.active;
        if pos != self.lens[seq] {
            candle_core::bail!("the cache holds {} positions, not {pos}", self.lens[seq]);
        }
        let (_, n) = input.dims2()?;
        if self.plain.is_some() {
            let ids = input.flatten_all()?.to_vec1::<u32>()?;
            let h = self.hidden_plain(&ids, Rows::Run { seq, pos })?;
            self.lens[seq] += n;
            return Ok(h);
        }
        // The CPU path masks by position itself.
        let mask = (n > 1 && self.rope_tables.is_some())
            .then(|| causal_mask(n, pos, input.device()))
            .transpose()?;
        let tables = match &self.rope_tables {
            Some((cos, sin)) => Some((cos.narrow(0, pos, n)?, sin.narrow(0, pos, n)?)),
            None => None,
        };
        let rope = Rope {
            tables: tables.as_ref().map(|(c, s)| (c, s)),
            inv_freq: &self.inv_freq,
        };
        let mut x = self.embed.forward(input)?;
        for layer in &mut self.layers {
            let h = layer.attn_norm.forward(&x)?;
            let a = layer.attention(
                &h,
                seq,
                pos,
                &rope,
                mask.as_ref(),
                self.heads,
                self.kv_heads,
                self.head_dim,
            )?;
            x = layer.feed_forward(&x, a)?;
        }
        self.lens[seq] += n;
        self.norm.forward(&x)?.squeeze(0)
    }

    /// One token for each of the sequences `seqs` (distinct, CPU caches), each at the position its
    /// cache has reached: the hidden states after the final norm, `[seqs.len(), hidden]`. The rows
    /// share every matrix product, so the weights are read once for all of them.
    fn hidden_rows(&mut self, tokens: &[u32], seqs: &[usize]) -> Result<Tensor> {
        let positions: Vec<usize> = seqs.iter().map(|&s| self.lens[s]).collect();
        if self.plain.is_some() {
            let h = self.hidden_plain(
                tokens,
                Rows::Each {
                    seqs,
                    positions: &positions,
                },
            )?;
            for &s in seqs {
                self.lens[s] += 1;
            }
            return Ok(h);
        }
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let mut x = self.embed.forward(&input)?;
        for layer in &mut self.layers {
            let h = layer.attn_norm.forward(&x)?;
            let a = layer.attention_rows(
                &h,
                seqs,
                &positions,
                &self.inv_freq,
                self.heads,
                self.kv_heads,
                self.head_dim,
            )?;
            x = layer.feed_forward(&x, a)?;
        }
        for &s in seqs {
            self.lens[s] += 1;
        }
        self.norm.forward(&x)?.squeeze(0)
    }
}

impl Qwen2 {
    /// The hidden states after the final norm, `[n, hidden]`, of the tokens `ids` placed as `rows`
    /// says, on plain rows (see [`Qwen2::plain`]). The caller counts the positions in.
    fn hidden_plain(&mut self, ids: &[u32], rows: Rows) -> Result<Tensor> {
        let Some(norm) = &self.plain else {
            candle_core::bail!("the pass on plain rows needs every product on the fast kernels");
        };
        let n = ids.len();
        let hidden = self.heads * self.head_dim;
        let mut x = self.embed.rows(ids)?;
        let shape = (self.heads, self.kv_heads, self.head_dim);
        for layer in &mut self.layers {
            layer.forward_plain(&mut x, n, &rows, self.eps, shape, &self.inv_freq)?;
        }
        let mut out = vec![0f32; n * hidden];
        rms_norm_rows(&x, norm, self.eps, &mut out);
        Tensor::from_vec(out, (n, hidden), &Device::Cpu)
    }

    /// For tests: the CPU pass through candle's element-wise ops, as on other devices.
    pub fn use_tensor_ops(&mut self) {
        self.plain = None;
    }
}

impl Layer {
    /// Whether every product of the layer runs on the fast kernels.
    fn products_fast(&self) -> bool {
        [
            &self.wq, &self.wk, &self.wv, &self.wo, &self.gate, &self.up, &self.down,
        ]
        .iter()
        .all(|w| w.is_fast())
    }

    /// The layer on `n` plain rows: `x` (`[n, hidden]`, the residual stream) becomes the stream
    /// after it. The same float operations as [`Self::attention`] and [`Self::feed_forward`] with
    /// candle's ops, in the same order within each value.
    fn forward_plain(
        &mut self,
        x: &mut [f32],
        n: usize,
        rows: &Rows,
        eps: f32,
        (heads, kv_heads, head_dim): (usize, usize, usize),
        inv_freq: &[f32],
    ) -> Result<()> {
        let hidden = heads * head_dim;
        let mut h = vec![0f32; n * hidden];
        rms_norm_rows(x, &self.values.attn_norm, eps, &mut h);
        let [mut q, mut k, mut v] =
            QLinear::forward_rows_each([&self.wq, &self.wk, &self.wv], &h, n)?;
        add_bias(&mut q, &self.values.bq);
        add_bias(&mut k, &self.values.bk);
        add_bias(&mut v, &self.values.bv);
        let mut y = vec![0f32; n * hidden];
        let shape = (heads, kv_heads, head_dim);
        match *rows {
            Rows::Run { seq, pos } => {
                let Cache::Cpu(cache) = &mut self.caches[seq] else {
                    candle_core::bail!("the pass on plain rows needs CPU caches");
                };
                attend_cpu(cache, &mut q, &mut k, &v, pos, n, shape, inv_freq, &mut y);
            }
            Rows::Each { seqs, positions } => {
                self.attend_rows(&mut q, &mut k, &v, seqs, positions, shape, inv_freq, &mut y)?
            }
        }
        let a = self.wo.forward_rows(&y, n)?;
        // x1 = a + x
        combine(x, &a, |x, a| a + x);
        rms_norm_rows(x, &self.values.ffn_norm, eps, &mut h);
        let [mut gate, up] = QLinear::forward_rows_each([&self.gate, &self.up], &h, n)?;
        // candle's silu, then the product with `up`.
        combine(&mut gate, &up, |g, u| (g / (1.0 + (-g).exp())) * u);
        let down = self.down.forward_rows(&gate, n)?;
        // down + x1
        combine(x, &down, |x1, d| d + x1);
        Ok(())
    }

    /// Attention for `x` at positions `pos..pos + n`, with grouped-query heads: the query heads that
    /// share a key/value head are stacked along the sequence axis, so keys and values are never
    /// repeated per head.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &mut self,
        x: &Tensor,
        seq: usize,
        pos: usize,
        rope: &Rope,
        mask: Option<&Tensor>,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
    ) -> Result<Tensor> {
        let (b, n, hidden) = x.dims3()?;
        let (q, k, v) = self.qkv(x)?;
        if let Cache::Cpu(cache) = &mut self.caches[seq] {
            let (mut q, mut k, v) = plain(q, k, v)?;
            let mut y = vec![0f32; n * hidden];
            let shape = (heads, kv_heads, head_dim);
            attend_cpu(
                cache,
                &mut q,
                &mut k,
                &v,
                pos,
                n,
                shape,
                rope.inv_freq,
                &mut y,
            );
            return self
                .wo
                .forward(&Tensor::from_vec(y, (b, n, hidden), x.device())?);
        }
        let Some((cos, sin)) = rope.tables else {
            candle_core::bail!("rotary tables are built for devices other than the CPU");
        };
        let split = |t: Tensor, h: usize| -> Result<Tensor> {
            t.reshape((b, n, h, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(q, heads)?;
        let k = split(k, kv_heads)?;
        let v = split(v, kv_heads)?;
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let total = pos + n;
        let (ck, cv) = self.cache_with_room(seq, total, &k)?;
        ck.slice_set(&k, 2, pos)?;
        cv.slice_set(&v, 2, pos)?;
        let k = ck.narrow(2, 0, total)?;
        let v = cv.narrow(2, 0, total)?;
        let group = heads / kv_heads;
        let q = q.reshape((b, kv_heads, group * n, head_dim))?;
        let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(&m.repeat((group, 1))?)?,
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let y = weights
            .matmul(&v)?
            .reshape((b, heads, n, head_dim))?
            .transpose(1, 2)?
            .reshape((b, n, hidden))?;
        self.wo.forward(&y)
    }

    /// The biased query, key and value projections of `x`.
    fn qkv(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        Ok((
            self.wq.forward(x)?.broadcast_add(&self.bq)?,
            self.wk.forward(x)?.broadcast_add(&self.bk)?,
            self.wv.forward(x)?.broadcast_add(&self.bv)?,
        ))
    }

    /// Attention for rows `x` (`[1, rows, hidden]`) where row `i` is the next token of sequence
    /// `seqs[i]` at position `positions[i]` (CPU caches only): the projections are shared, and
    /// each row attends to its own sequence's cache.
    #[allow(clippy::too_many_arguments)]
    fn attention_rows(
        &mut self,
        x: &Tensor,
        seqs: &[usize],
        positions: &[usize],
        inv_freq: &[f32],
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
    ) -> Result<Tensor> {
        let (b, n, hidden) = x.dims3()?;
        let (q, k, v) = self.qkv(x)?;
        let (mut q, mut k, v) = plain(q, k, v)?;
        let mut y = vec![0f32; n * hidden];
        let shape = (heads, kv_heads, head_dim);
        self.attend_rows(&mut q, &mut k, &v, seqs, positions, shape, inv_freq, &mut y)?;
        self.wo
            .forward(&Tensor::from_vec(y, (b, n, hidden), x.device())?)
    }

    /// Row `i` of the queries, keys and values (one token each) attends to the cache of sequence
    /// `seqs[i]` at position `positions[i]`, into row `i` of `y` (CPU caches only).
    #[allow(clippy::too_many_arguments)]
    fn attend_rows(
        &mut self,
        q: &mut [f32],
        k: &mut [f32],
        v: &[f32],
        seqs: &[usize],
        positions: &[usize],
        (heads, kv_heads, head_dim): (usize, usize, usize),
        inv_freq: &[f32],
        y: &mut [f32],
    ) -> Result<()> {
        let (qd, kd) = (heads * head_dim, kv_heads * head_dim);
        for (i, (&seq, &pos)) in seqs.iter().zip(positions).enumerate() {
            let Cache::Cpu(cache) = &mut self.caches[seq] else {
                candle_core::bail!("only CPU caches decode several sequences at once");
            };
            attend_cpu(
                cache,
                &mut q[i * qd..(i + 1) * qd],
                &mut k[i * kd..(i + 1) * kd],
                &v[i * kd..(i + 1) * kd],
                pos,
                1,
                (heads, kv_heads, head_dim),
                inv_freq,
                &mut y[i * qd..(i + 1) * qd],
            );
        }
        Ok(())
    }

    /// The residual stream after attention `a` and the feed-forward block, given the stream `x`
    /// before attention.
    fn feed_forward(&self, x: &Tensor, a: Tensor) -> Result<Tensor> {
        let x1 = (a + x)?;
        let h = self.ffn_norm.forward(&x1)?;
        let gated = (candle_nn::ops::silu(&self.gate.forward(&h)?)? * self.up.forward(&h)?)?;
        self.down.forward(&gated)? + x1
    }

    /// The cache tensors, grown (doubling, contents kept) so that they hold `total` positions.
    fn cache_with_room(
        &mut self,
        seq: usize,
        total: usize,
        like: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let Cache::Tensors(cache) = &mut self.caches[seq] else {
            candle_core::bail!("the CPU cache is not a tensor");
        };
        let capacity = cache.as_ref().map_or(0, |(k, _)| k.dim(2).unwrap_or(0));
        if capacity < total {
            let (b, h, _, d) = like.dims4()?;
            let new_cap = total.max(capacity * 2).max(256);
            let k = Tensor::zeros((b, h, new_cap, d), like.dtype(), like.device())?;
            let v = Tensor::zeros((b, h, new_cap, d), like.dtype(), like.device())?;
            if let Some((ok, ov)) = cache.as_ref() {
                k.slice_set(ok, 2, 0)?;
                v.slice_set(ov, 2, 0)?;
            }
            *cache = Some((k, v));
        }
        let (k, v) = cache.as_ref().expect("allocated above");
        Ok((k.clone(), v.clone()))
    }
}

/// Prompts longer than this run through the layers this many positions at a time. Every chunk
/// attends to the cache of the ones before, so the result is the same; but the per-layer tensors
/// (attention scores above all: 12 heads x chunk x context floats) stay small enough for the
/// allocator to reuse instead of mapping fresh zeroed pages each layer, and a chunk skips the keys
/// after its own last position (half the attention products over a long prompt).
const PREFILL_CHUNK: usize = 256;

impl Qwen2 {
    /// [`Self::hidden`] in chunks of [`PREFILL_CHUNK`] positions; `last_only` keeps only the last
    /// position's hidden state.
    fn hidden_chunked(&mut self, input: &Tensor, pos: usize, last_only: bool) -> Result<Tensor> {
        let (_, n) = input.dims2()?;
        let chunk = std::env::var("SIFT_PREFILL_CHUNK")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(PREFILL_CHUNK);
        let mut outs = Vec::new();
        let mut start = 0;
        while start < n {
            let len = chunk.min(n - start);
            let h = self.hidden(&input.narrow(1, start, len)?, pos + start)?;
            start += len;
            if !last_only {
                outs.push(h);
            } else if start == n {
                outs.push(h.narrow(0, len - 1, 1)?);
            }
        }
        if outs.len() == 1 {
            Ok(outs.pop().expect("one chunk"))
        } else {
            Tensor::cat(&outs, 0)
        }
    }
}

impl Qwen2 {
    /// Logits `[n, vocab]` of the hidden states `h` (`[n, hidden]`).
    fn logits(&self, h: &Tensor) -> Result<Tensor> {
        let Some((ids, vocab)) = &self.kept else {
            return self.output.forward(h);
        };
        let n = h.dim(0)?;
        let some = self
            .output
            .forward(h)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec2::<f32>()?;
        let mut all = vec![f32::NEG_INFINITY; n * vocab];
        for (row, values) in some.iter().enumerate() {
            let out = &mut all[row * vocab..(row + 1) * vocab];
            for (&id, &v) in ids.iter().zip(values) {
                out[id as usize] = v;
            }
        }
        Tensor::from_vec(all, (n, *vocab), h.device())
    }
}

impl CausalLm for Qwen2 {
    fn forward(&mut self, input: &Tensor, pos: usize) -> Result<Tensor> {
        let last = self.hidden_chunked(input, pos, true)?;
        self.logits(&last)
    }

    fn forward_all(&mut self, input: &Tensor, pos: usize) -> Result<Option<Tensor>> {
        let h = self.hidden_chunked(input, pos, false)?;
        Ok(Some(self.logits(&h)?))
    }

    fn keep_outputs(&mut self, ids: &[u32]) -> Result<bool> {
        let (rows, _) = self.output.dims()?;
        let (held, vocab): (Vec<u32>, usize) = match &self.kept {
            Some((held, vocab)) => (held.clone(), *vocab),
            None => ((0..rows as u32).collect(), rows),
        };
        if ids.is_empty() || ids.windows(2).any(|w| w[0] >= w[1]) {
            candle_core::bail!("token ids to keep must be some, sorted and distinct");
        }
        // Rows of the matrix as it is now (the full one, or an earlier restriction of it).
        let mut at = Vec::with_capacity(ids.len());
        for id in ids {
            match held.binary_search(id) {
                Ok(i) => at.push(i as u32),
                Err(_) => candle_core::bail!("token {id} is not among the model's outputs"),
            }
        }
        // Only the kept rows stay: the output matrix is a fifth of the weights read per token, and
        // the dropped rows are neither read nor held. The full matrix goes (for a one-row stand-in)
        // before the kept rows are laid out, so that it is never held with two copies of them.
        if at.len() != held.len() {
            let bytes = self.output.row_bytes(&at)?;
            let (dtype, device, k) = (
                self.output.dtype(),
                self.output.device(),
                self.output.dims()?.1,
            );
            self.output.let_go();
            let one = bytes.len() / at.len().max(1);
            self.output = QMatMul::from_bytes(bytes[..one].to_vec(), dtype, k, &device)?;
            self.output = QMatMul::from_bytes(bytes, dtype, k, &device)?;
        }
        self.kept = Some((ids.to_vec(), vocab));
        Ok(true)
    }

    fn truncate(&mut self, len: usize) -> Result<()> {
        let held = &mut self.lens[self.active];
        if len > *held {
            candle_core::bail!("cannot truncate a cache of {} to {len}", *held);
        }
        // Positions past `len` are overwritten by the next forward.
        *held = len;
        Ok(())
    }

    fn reset(&mut self) {
        // The buffers are kept for the next document; only their length is forgotten.
        self.lens[self.active] = 0;
    }

    fn batches(&self) -> bool {
        // The tensor cache of other devices holds one sequence.
        self.rope_tables.is_none()
    }

    fn fork(&mut self, to: usize, len: usize) -> Result<()> {
        let from = self.active;
        if !self.batches() || len > self.lens[from] {
            candle_core::bail!("cannot fork {len} positions of sequence {from}");
        }
        if to == from {
            return self.truncate(len);
        }
        for layer in &mut self.layers {
            while layer.caches.len() <= to {
                layer
                    .caches
                    .push(Cache::Cpu(KvCache::new(self.kv_heads, self.head_dim)));
            }
            // Two distinct elements of one vector: split it between them.
            let (src, dst) = match from < to {
                true => {
                    let (a, b) = layer.caches.split_at_mut(to);
                    (&a[from], &mut b[0])
                }
                false => {
                    let (a, b) = layer.caches.split_at_mut(from);
                    (&b[0], &mut a[to])
                }
            };
            if let (Cache::Cpu(src), Cache::Cpu(dst)) = (src, dst) {
                dst.copy_from(src, len);
            }
        }
        if self.lens.len() <= to {
            self.lens.resize(to + 1, 0);
        }
        self.lens[to] = len;
        Ok(())
    }

    fn cache_bytes(&self, len: usize) -> Option<Vec<u8>> {
        let seq = self.active;
        if !self.batches() || len > self.lens[seq] {
            return None;
        }
        let mut out = Vec::new();
        for layer in &self.layers {
            let Cache::Cpu(cache) = &layer.caches[seq] else {
                return None;
            };
            cache.write_bytes(len, &mut out);
        }
        Some(out)
    }

    fn restore_cache(&mut self, len: usize, bytes: &[u8]) -> Result<bool> {
        let seq = self.active;
        self.lens[seq] = 0;
        if !self.batches() {
            return Ok(false);
        }
        let mut rest = bytes;
        for layer in &mut self.layers {
            let Cache::Cpu(cache) = &mut layer.caches[seq] else {
                return Ok(false);
            };
            match cache.read_bytes(len, rest) {
                Some(after) => rest = after,
                None => return Ok(false),
            }
        }
        if !rest.is_empty() {
            return Ok(false);
        }
        self.lens[seq] = len;
        Ok(true)
    }

    fn select(&mut self, seq: usize) -> Result<()> {
        if seq >= self.lens.len() {
            candle_core::bail!("there is no sequence {seq}");
        }
        self.active = seq;
        Ok(())
    }

    fn forward_batch(&mut self, tokens: &[u32], seqs: &[usize]) -> Result<Tensor> {
        let distinct = seqs.iter().collect::<std::collections::HashSet<_>>().len() == seqs.len();
        if !self.batches() || tokens.len() != seqs.len() || !distinct {
            candle_core::bail!("a batch needs one token for each of distinct sequences");
        }
        if let Some(&s) = seqs.iter().find(|&&s| s >= self.lens.len()) {
            candle_core::bail!("there is no sequence {s}");
        }
        let h = self.hidden_rows(tokens, seqs)?;
        self.logits(&h)
    }
}

/// A small unquantized tensor (a norm's scales, a bias) as plain values.
fn values(w: &Blocks) -> Result<Vec<f32>> {
    w.to_qtensor(&Device::Cpu)?
        .dequantize(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()
}

/// Values per task of the element-wise loops on plain rows: fewer run on the calling thread.
const PLAIN_CHUNK: usize = 4096;

/// `out[i] = f(out[i], other[i])`, split across the rayon pool when there are many.
fn combine(out: &mut [f32], other: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    let run = |(out, other): (&mut [f32], &[f32])| {
        for (o, &b) in out.iter_mut().zip(other) {
            *o = f(*o, b);
        }
    };
    if out.len() <= PLAIN_CHUNK {
        run((out, other));
    } else {
        out.par_chunks_mut(PLAIN_CHUNK)
            .zip(other.par_chunks(PLAIN_CHUNK))
            .for_each(run);
    }
}

/// Each row of `x` plus `bias` (as candle's `broadcast_add`).
fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// candle's RMS norm of each row of `x` (scales `alpha`) into `out`: the squares summed in order,
/// `x / rms * alpha`. Rows are split across the rayon pool above 32, as candle splits them.
fn rms_norm_rows(x: &[f32], alpha: &[f32], eps: f32, out: &mut [f32]) {
    let dim = alpha.len();
    let row = |(src, dst): (&[f32], &mut [f32])| {
        let sum2 = src.iter().map(|&v| v * v).sum::<f32>();
        let m = (sum2 / dim as f32 + eps).sqrt();
        for ((d, &s), &a) in dst.iter_mut().zip(src).zip(alpha) {
            *d = s / m * a;
        }
    };
    if x.len() / dim <= 32 {
        x.chunks_exact(dim)
            .zip(out.chunks_exact_mut(dim))
            .for_each(row);
    } else {
        x.par_chunks_exact(dim)
            .zip(out.par_chunks_exact_mut(dim))
            .for_each(row);
    }
}

/// Projections as plain row-major values, for the CPU attention.
fn plain(q: Tensor, k: Tensor, v: Tensor) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let flat = |t: Tensor| t.flatten_all()?.to_vec1::<f32>();
    Ok((flat(q)?, flat(k)?, flat(v)?))
}

/// Rotates the queries `q` and keys `k` (`[n][heads][dim]`, row `i` at position `pos + i`), stores
/// the keys and values in `cache` and writes the attention of the queries into `y`. `shape` is
/// (query heads, key/value heads, head size).
#[allow(clippy::too_many_arguments)]
fn attend_cpu(
    cache: &mut KvCache,
    q: &mut [f32],
    k: &mut [f32],
    v: &[f32],
    pos: usize,
    n: usize,
    (heads, kv_heads, head_dim): (usize, usize, usize),
    inv_freq: &[f32],
    y: &mut [f32],
) {
    attention::rope(q, n, heads, head_dim, pos, inv_freq);
    attention::rope(k, n, kv_heads, head_dim, pos, inv_freq);
    attention::attend(cache, q, k, v, pos, n, heads, y);
}

/// Additive causal mask `[n, pos + n]`: position `pos + i` sees every position up to itself.
fn causal_mask(n: usize, pos: usize, device: &Device) -> Result<Tensor> {
    let total = pos + n;
    let values: Vec<f32> = (0..n)
        .flat_map(|i| (0..total).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(values, (n, total), device)
}

/// The rotary embedding for one forward: the tables narrowed to its positions (tensor path), and
/// the frequencies (CPU path, which computes its angles as the tables do).
struct Rope<'a> {
    tables: Option<(&'a Tensor, &'a Tensor)>,
    inv_freq: &'a [f32],
}

/// Rotary embedding tables `[context, head_dim / 2]`.
fn rope_tables(inv_freq: &[f32], context: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let inv = Tensor::new(inv_freq, device)?.unsqueeze(0)?;
    let positions = Tensor::arange(0u32, context as u32, device)?
        .to_dtype(DType::F32)?
        .unsqueeze(1)?;
    let angles = positions.broadcast_mul(&inv)?;
    Ok((angles.cos()?, angles.sin()?))
}
