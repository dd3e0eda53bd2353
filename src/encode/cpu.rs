//! The encoder's own forward pass for CPUs with AVX-512 VNNI or AVX2: the same BERT as candle's
//! `BertModel` (the reference, which CUDA and other CPUs run), computed the way a 2-core machine
//! needs. The AVX-512 bodies are in `simd`, the AVX2 ones (8 lanes, same arithmetic up to float
//! summation order) in `avx2`.
//!
//! Why this exists: through candle the encoder managed about 25 sentences a second on 2 cores,
//! most of it in f32 matrix products on AVX2 kernels, a scalar `erf` and per-op overheads. Here the
//! four products of a layer run on int8 dot products over the Q4_0 weights as the image stores them
//! ([`crate::kernels::q4_0`]: the weights exact, the activations rounded to 16 bits per block of
//! 32 and multiplied in as two bytes, the only approximation), with the bias, the residual and the exact GELU applied as each
//! product is stored. Layer norm, softmax, the residual sums and all accumulation stay in f32
//! (bf16 for these destroyed detection). Sequences are packed without padding: the products run
//! over the batch's real tokens only, and attention runs per sequence, so no padded key or query is
//! ever computed. Q, K and V are one product (their weights stacked at load).
//!
//! `tests/encoder.rs` holds this forward to candle's on real sentences.

use rayon::prelude::*;

use crate::kernels::q4_0::{self, Epilogue, Q4Weights, Q8Rows};
use crate::model::e5s1::{E5Image, RawData, RawTensor};

/// Whether this CPU runs [`CpuBert`] (AVX-512 F, BW and VNNI, or AVX2 and FMA;
/// `SIFT_NO_FAST_KERNELS` unset).
pub fn available() -> bool {
    q4_0::available()
}

/// Whether the AVX-512 bodies run here (otherwise the AVX2 ones).
fn wide() -> bool {
    crate::kernels::level() == Some(crate::kernels::Level::Avx512)
}

struct Layer {
    qkv: Q4Weights,
    qkv_b: Vec<f32>,
    ao: Q4Weights,
    ao_b: Vec<f32>,
    ln1: (Vec<f32>, Vec<f32>),
    fi: Q4Weights,
    fi_b: Vec<f32>,
    fo: Q4Weights,
    fo_b: Vec<f32>,
    ln2: (Vec<f32>, Vec<f32>),
}

/// A BERT encoder on Q4_0 weights.
pub struct CpuBert {
    hidden: usize,
    heads: usize,
    eps: f32,
    max_positions: usize,
    /// `[vocab, hidden]`, kept as stored (Q4_0: rows are dequantised as they are looked up).
    word: RawTensor,
    vocab: usize,
    /// `[max_positions, hidden]`.
    pos: Vec<f32>,
    /// Token type 0's row (the only type e5 uses).
    type0: Vec<f32>,
    emb_ln: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
}

impl CpuBert {
    /// From an image whose layer matrices are Q4_0. An error says why this forward cannot run it
    /// (the caller then uses candle's).
    pub fn new(image: &E5Image) -> Result<Self, String> {
        let c = &image.config;
        let (hidden, heads, ffn) = (c.hidden_size, c.num_attention_heads, c.intermediate_size);
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(format!("{hidden} is not split into {heads} heads"));
        }
        let head_dim = hidden / heads;
        if !head_dim.is_multiple_of(16) || head_dim > 64 || !hidden.is_multiple_of(32) {
            return Err(format!("head width {head_dim} is not supported"));
        }
        let get = |name: &str| {
            image
                .weights
                .get(name)
                .ok_or_else(|| format!("no tensor {name}"))
        };
        let vec = |name: &str, len: usize| -> Result<Vec<f32>, String> {
            let t = get(name)?;
            if t.len() != len {
                return Err(format!("{name} has {} values, not {len}", t.len()));
            }
            Ok(t.to_f32())
        };
        let q4 = |names: &[String], n: usize, k: usize| -> Result<Q4Weights, String> {
            let mut blocks = Vec::new();
            for name in names {
                match &get(name)?.data {
                    RawData::Q4_0(b) => blocks.extend_from_slice(b),
                    RawData::F32(_) => return Err(format!("{name} is f32, not Q4_0")),
                }
            }
            Q4Weights::from_q4_0(&blocks, n, k).map_err(|e| format!("{}: {e}", names[0]))
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = |s: &str| format!("encoder.layer.{l}.{s}");
            let qkv_names =
                ["query", "key", "value"].map(|m| p(&format!("attention.self.{m}.weight")));
            let mut qkv_b = Vec::with_capacity(3 * hidden);
            for m in ["query", "key", "value"] {
                qkv_b.extend(vec(&p(&format!("attention.self.{m}.bias")), hidden)?);
            }
            layers.push(Layer {
                qkv: q4(&qkv_names, 3 * hidden, hidden)?,
                qkv_b,
                ao: q4(&[p("attention.output.dense.weight")], hidden, hidden)?,
                ao_b: vec(&p("attention.output.dense.bias"), hidden)?,
                ln1: (
                    vec(&p("attention.output.LayerNorm.weight"), hidden)?,
                    vec(&p("attention.output.LayerNorm.bias"), hidden)?,
                ),
                fi: q4(&[p("intermediate.dense.weight")], ffn, hidden)?,
                fi_b: vec(&p("intermediate.dense.bias"), ffn)?,
                fo: q4(&[p("output.dense.weight")], hidden, ffn)?,
                fo_b: vec(&p("output.dense.bias"), hidden)?,
                ln2: (
                    vec(&p("output.LayerNorm.weight"), hidden)?,
                    vec(&p("output.LayerNorm.bias"), hidden)?,
                ),
            });
        }
        let word = get("embeddings.word_embeddings.weight")?.clone();
        if word.shape.len() != 2 || word.shape[1] != hidden {
            return Err(format!("word embeddings of shape {:?}", word.shape));
        }
        let vocab = word.shape[0];
        let pos = vec(
            "embeddings.position_embeddings.weight",
            c.max_position_embeddings * hidden,
        )?;
        let types = get("embeddings.token_type_embeddings.weight")?;
        if types.len() < hidden {
            return Err("no token type embedding".into());
        }
        let mut type0 = vec![0f32; hidden];
        types.read_f32(0, &mut type0);
        Ok(Self {
            hidden,
            heads,
            eps: c.layer_norm_eps as f32,
            max_positions: c.max_position_embeddings,
            word,
            vocab,
            pos,
            type0,
            emb_ln: (
                vec("embeddings.LayerNorm.weight", hidden)?,
                vec("embeddings.LayerNorm.bias", hidden)?,
            ),
            layers,
        })
    }

    /// The last hidden state of every token of every sequence, the sequences one after another
    /// (`[sum of lengths, hidden]`, row-major). Ids past the vocabulary read as id 0; sequences
    /// must be no longer than the position limit.
    pub fn forward(&self, seqs: &[&[u32]]) -> Vec<f32> {
        assert!(available(), "the CPU forward needs AVX2 or AVX-512");
        let h = self.hidden;
        let mut spans = Vec::with_capacity(seqs.len());
        let mut total = 0;
        for s in seqs {
            assert!(
                s.len() <= self.max_positions,
                "sequence past the position limit"
            );
            spans.push((total, s.len()));
            total += s.len();
        }
        if total == 0 {
            return Vec::new();
        }
        let ids: Vec<(u32, usize)> = seqs
            .iter()
            .flat_map(|s| s.iter().enumerate().map(|(p, &id)| (id, p)))
            .collect();
        let mut x = vec![0f32; total * h];
        x.par_chunks_mut(h)
            .zip(&ids)
            .with_min_len(16)
            .for_each(|(row, &(id, p))| {
                let id = if (id as usize) < self.vocab {
                    id as usize
                } else {
                    0
                };
                self.word.read_f32(id * h, row);
                for ((v, a), b) in row.iter_mut().zip(&self.type0).zip(&self.pos[p * h..]) {
                    // candle's order: (word + type) + position.
                    *v = (*v + a) + b;
                }
                layer_norm(row, &self.emb_ln, self.eps);
            });

        let ffn = self.layers.first().map_or(0, |l| l.fi.n());
        let mut xq = Q8Rows::zeros(total, h, PRECISE);
        xq.fill(&x, total);
        let mut qkv = vec![0f32; total * 3 * h];
        let mut ctx = vec![0f32; total * h];
        let mut ctxq = Q8Rows::zeros(total, h, PRECISE);
        let mut h1 = vec![0f32; total * h];
        let mut h1q = Q8Rows::zeros(total, h, PRECISE);
        let mut f = vec![0f32; total * ffn];
        let mut fq = Q8Rows::zeros(total, ffn, PRECISE);
        for l in &self.layers {
            q4_0::matmul(&l.qkv, &xq, total, &mut qkv, Epilogue::Bias(&l.qkv_b));
            self.attention(&qkv, &spans, &mut ctx);
            ctxq.fill(&ctx, total);
            q4_0::matmul(
                &l.ao,
                &ctxq,
                total,
                &mut h1,
                Epilogue::BiasResidual(&l.ao_b, &x),
            );
            h1q.fill_after(&mut h1, total, &|row| layer_norm(row, &l.ln1, self.eps));
            q4_0::matmul(&l.fi, &h1q, total, &mut f, Epilogue::BiasGelu(&l.fi_b));
            fq.fill(&f, total);
            q4_0::matmul(
                &l.fo,
                &fq,
                total,
                &mut x,
                Epilogue::BiasResidual(&l.fo_b, &h1),
            );
            xq.fill_after(&mut x, total, &|row| layer_norm(row, &l.ln2, self.eps));
        }
        x
    }

    /// Self-attention of each sequence over itself, all heads; `ctx` gets `[tokens, hidden]`.
    fn attention(&self, qkv: &[f32], spans: &[(usize, usize)], ctx: &mut [f32]) {
        let h = self.hidden;
        let hd = h / self.heads;
        let mut rest = ctx;
        let mut parts = Vec::with_capacity(spans.len());
        for &(_, len) in spans {
            let (part, tail) = rest.split_at_mut(len * h);
            parts.push(part);
            rest = tail;
        }
        parts
            .into_par_iter()
            .zip(spans)
            .for_each(|(out, &(start, len))| {
                let rows = &qkv[start * 3 * h..(start + len) * 3 * h];
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `available()` was checked by `forward`; the slices hold `len` rows.
                unsafe {
                    if wide() {
                        simd::attend(rows, len, h, self.heads, hd, out)
                    } else {
                        avx2::attend(rows, len, h, self.heads, hd, out)
                    }
                };
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (rows, out, hd);
            });
    }
}

/// 16-bit activations for every product. With 8 bits (half the integer work) the built-in head's
/// token probabilities moved by up to 0.055 from the reference's and the development set lost a
/// span (F1 0.974 -> 0.959); with 8 bits for any single product of the four they still moved by
/// 0.009 (attention output) to 0.040 (FFN input). With 16 bits: 2e-4 (`tests/encoder.rs`).
const PRECISE: bool = true;

/// `(x - mean) / sqrt(var + eps) * w + b`, mean and variance in two passes.
fn layer_norm(x: &mut [f32], (w, b): &(Vec<f32>, Vec<f32>), eps: f32) {
    #[cfg(target_arch = "x86_64")]
    if x.len().is_multiple_of(16) {
        // SAFETY: `forward` checked `available()` (AVX-512 F or AVX2 and FMA among it).
        unsafe {
            if wide() {
                simd::layer_norm(x, w, b, eps)
            } else {
                avx2::layer_norm(x, w, b, eps)
            }
        };
        return;
    }
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, w), b) in x.iter_mut().zip(w).zip(b) {
        *v = (*v - mean) * inv * w + b;
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    use crate::kernels::vmath::softmax;

    /// See [`super::layer_norm`]; `x.len()` a multiple of 16.
    ///
    /// # Safety
    /// AVX-512 F; `w` and `b` at least as long as `x`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn layer_norm(x: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
        let n = x.len();
        let p = x.as_mut_ptr();
        let mut sum = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            sum = _mm512_add_ps(sum, _mm512_loadu_ps(p.add(i)));
        }
        let mean = _mm512_reduce_add_ps(sum) / n as f32;
        let mv = _mm512_set1_ps(mean);
        let mut sq = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            let d = _mm512_sub_ps(_mm512_loadu_ps(p.add(i)), mv);
            sq = _mm512_fmadd_ps(d, d, sq);
        }
        let var = _mm512_reduce_add_ps(sq) / n as f32;
        let inv = _mm512_set1_ps(1.0 / (var + eps).sqrt());
        for i in (0..n).step_by(16) {
            let d = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(p.add(i)), mv), inv);
            let y = _mm512_fmadd_ps(
                d,
                _mm512_loadu_ps(w.as_ptr().add(i)),
                _mm512_loadu_ps(b.as_ptr().add(i)),
            );
            _mm512_storeu_ps(p.add(i), y);
        }
    }

    /// All heads of one sequence: `rows` is `[len, 3 * h]` (Q, K, V side by side), `out` `[len, h]`.
    /// Queries go 4 at a time, so each key and value vector loaded serves 4 of them.
    ///
    /// # Safety
    /// AVX-512 F; `hd` a multiple of 16, at most 64; the slices as long as the shapes say.
    // Index loops over constant bounds keep the accumulators in registers.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn attend(
        rows: &[f32],
        len: usize,
        h: usize,
        heads: usize,
        hd: usize,
        out: &mut [f32],
    ) {
        const Q: usize = 4;
        let lp = len.next_multiple_of(16);
        let stride = 3 * h;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut kt = vec![0f32; hd * lp];
        let mut scores = vec![0f32; Q * lp];
        let nv = hd / 16;
        let rp = rows.as_ptr();
        for head in 0..heads {
            let (qo, ko, vo) = (head * hd, h + head * hd, 2 * h + head * hd);
            // K transposed: kt[d][j], keys in the lanes.
            for j in 0..len {
                for d in 0..hd {
                    kt[d * lp + j] = rows[j * stride + ko + d];
                }
            }
            for i0 in (0..len).step_by(Q) {
                let nq = Q.min(len - i0);
                // Rows past the sequence repeat its last query; their results are dropped.
                let qp: [*const f32; Q] =
                    std::array::from_fn(|t| rp.add((i0 + t.min(nq - 1)) * stride + qo));
                for jv in (0..lp).step_by(16) {
                    let mut acc = [_mm512_setzero_ps(); Q];
                    for d in 0..hd {
                        let k = _mm512_loadu_ps(kt.as_ptr().add(d * lp + jv));
                        for t in 0..Q {
                            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(*qp[t].add(d)), k, acc[t]);
                        }
                    }
                    for t in 0..Q {
                        _mm512_storeu_ps(
                            scores.as_mut_ptr().add(t * lp + jv),
                            _mm512_mul_ps(acc[t], _mm512_set1_ps(scale)),
                        );
                    }
                }
                for t in 0..nq {
                    softmax(&mut scores[t * lp..t * lp + len]);
                }
                let mut acc = [[_mm512_setzero_ps(); 4]; Q];
                for j in 0..len {
                    let v = rp.add(j * stride + vo);
                    for c in 0..nv {
                        let vv = _mm512_loadu_ps(v.add(16 * c));
                        for t in 0..Q {
                            let p = _mm512_set1_ps(*scores.get_unchecked(t * lp + j));
                            acc[t][c] = _mm512_fmadd_ps(p, vv, acc[t][c]);
                        }
                    }
                }
                for (t, acc) in acc.iter().enumerate().take(nq) {
                    for (c, acc) in acc.iter().enumerate().take(nv) {
                        _mm512_storeu_ps(
                            out.as_mut_ptr().add((i0 + t) * h + head * hd + 16 * c),
                            *acc,
                        );
                    }
                }
            }
        }
    }
}

/// [`simd`]'s functions on 8 lanes, for CPUs with AVX2 and FMA but no AVX-512.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::*;

    use crate::kernels::vmath::avx2::softmax;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// See [`super::layer_norm`]; `x.len()` a multiple of 8.
    ///
    /// # Safety
    /// AVX2 and FMA; `w` and `b` at least as long as `x`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn layer_norm(x: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
        let n = x.len();
        let p = x.as_mut_ptr();
        let mut sum = _mm256_setzero_ps();
        for i in (0..n).step_by(8) {
            sum = _mm256_add_ps(sum, _mm256_loadu_ps(p.add(i)));
        }
        let mean = hsum(sum) / n as f32;
        let mv = _mm256_set1_ps(mean);
        let mut sq = _mm256_setzero_ps();
        for i in (0..n).step_by(8) {
            let d = _mm256_sub_ps(_mm256_loadu_ps(p.add(i)), mv);
            sq = _mm256_fmadd_ps(d, d, sq);
        }
        let var = hsum(sq) / n as f32;
        let inv = _mm256_set1_ps(1.0 / (var + eps).sqrt());
        for i in (0..n).step_by(8) {
            let d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), mv), inv);
            let y = _mm256_fmadd_ps(
                d,
                _mm256_loadu_ps(w.as_ptr().add(i)),
                _mm256_loadu_ps(b.as_ptr().add(i)),
            );
            _mm256_storeu_ps(p.add(i), y);
        }
    }

    /// As `simd::attend`: scores of 4 queries against 8 keys per step, then each query's
    /// weighted sum of the values, 8 dimensions per vector.
    ///
    /// # Safety
    /// AVX2 and FMA; `hd` a multiple of 16, at most 64; the slices as long as the shapes say.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn attend(
        rows: &[f32],
        len: usize,
        h: usize,
        heads: usize,
        hd: usize,
        out: &mut [f32],
    ) {
        const Q: usize = 4;
        let lp = len.next_multiple_of(8);
        let stride = 3 * h;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut kt = vec![0f32; hd * lp];
        let mut scores = vec![0f32; Q * lp];
        let nv = hd / 8;
        let rp = rows.as_ptr();
        for head in 0..heads {
            let (qo, ko, vo) = (head * hd, h + head * hd, 2 * h + head * hd);
            for j in 0..len {
                for d in 0..hd {
                    kt[d * lp + j] = rows[j * stride + ko + d];
                }
            }
            for i0 in (0..len).step_by(Q) {
                let nq = Q.min(len - i0);
                let qp: [*const f32; Q] =
                    std::array::from_fn(|t| rp.add((i0 + t.min(nq - 1)) * stride + qo));
                for jv in (0..lp).step_by(8) {
                    let mut acc = [_mm256_setzero_ps(); Q];
                    for d in 0..hd {
                        let k = _mm256_loadu_ps(kt.as_ptr().add(d * lp + jv));
                        for t in 0..Q {
                            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(*qp[t].add(d)), k, acc[t]);
                        }
                    }
                    for t in 0..Q {
                        _mm256_storeu_ps(
                            scores.as_mut_ptr().add(t * lp + jv),
                            _mm256_mul_ps(acc[t], _mm256_set1_ps(scale)),
                        );
                    }
                }
                for t in 0..nq {
                    softmax(&mut scores[t * lp..t * lp + len]);
                }
                for t in 0..nq {
                    let mut acc = [_mm256_setzero_ps(); 8];
                    for j in 0..len {
                        let v = rp.add(j * stride + vo);
                        let p = _mm256_set1_ps(*scores.get_unchecked(t * lp + j));
                        for c in 0..nv {
                            acc[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v.add(8 * c)), acc[c]);
                        }
                    }
                    for c in 0..nv {
                        _mm256_storeu_ps(
                            out.as_mut_ptr().add((i0 + t) * h + head * hd + 8 * c),
                            acc[c],
                        );
                    }
                }
            }
        }
    }
}
