//! Grouped-query attention over a KV cache of plain `f16` slices, for the CPU.
//!
//! Why this exists: through candle tensors, one decoded token's attention was two f32 matrix
//! products per layer whose library packs the whole cached key matrix into its own tiles on every
//! call, plus a dozen small tensor ops (bias, split, rope, cache copy, scale, softmax, merge): 17% of
//! decode time on 2 cores (`perf`), for arithmetic that reads each cached key and value once. Here
//! the cache keeps keys in tiles of 16 positions (`[kv head][tile][dim][16]`), so the scores of 16
//! positions are 16 lanes of one multiply-add per dimension with the query value broadcast, no
//! packing and no horizontal sums; values stay row by row (`[kv head][position][dim]`) and are
//! summed 16 dimensions at a time. The query heads that share a key/value head are done together,
//! so each key and value is read once per token. Keys and values are stored as f16 (llama.cpp's
//! default too) and widened to f32 as they are loaded: at the seed prompt's 1,657 positions the
//! cache is 95 MB read per token in f32 against 980 MB of weights, and halving it took
//! attention from 11% to 5% of decode samples (`perf`); everything else is f32. CPUs with AVX2 but
//! no AVX-512 run the same arithmetic on 8-lane vectors (module `avx2`); others a scalar loop. The same code serves prefill (many query rows,
//! each seeing the positions up to its own) and decode (one row). The arithmetic is candle's:
//! rotary embedding as `candle_nn::rotary_emb::rope`, scores scaled by `1/sqrt(dim)`, softmax
//! with the maximum subtracted, then the weighted sum of values; `tests/tiny_model.rs` and
//! `tests/real_models.rs` hold it to candle's reference.

use half::f16;
use rayon::prelude::*;

/// Positions per key tile (the 16 f32 lanes of an AVX-512 vector).
const TILE: usize = 16;

/// The keys and values of one layer, for positions `0..capacity`.
pub struct KvCache {
    kv_heads: usize,
    dim: usize,
    /// Positions the buffers hold (a multiple of [`TILE`]).
    capacity: usize,
    /// `[kv head][capacity / TILE][dim][TILE]`.
    keys: Vec<f16>,
    /// `[kv head][capacity][dim]`.
    values: Vec<f16>,
}

impl KvCache {
    pub fn new(kv_heads: usize, dim: usize) -> Self {
        Self {
            kv_heads,
            dim,
            capacity: 0,
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Grows the buffers (doubling, contents kept) so that they hold `total` positions.
    fn reserve(&mut self, total: usize) {
        if total <= self.capacity {
            return;
        }
        let cap = total.max(self.capacity * 2).max(256).next_multiple_of(TILE);
        let (old, d) = (self.capacity, self.dim);
        let mut keys = vec![f16::ZERO; self.kv_heads * cap * d];
        let mut values = vec![f16::ZERO; self.kv_heads * cap * d];
        for g in 0..self.kv_heads {
            keys[g * cap * d..(g * cap + old) * d]
                .copy_from_slice(&self.keys[g * old * d..(g + 1) * old * d]);
            values[g * cap * d..(g * cap + old) * d]
                .copy_from_slice(&self.values[g * old * d..(g + 1) * old * d]);
        }
        self.keys = keys;
        self.values = values;
        self.capacity = cap;
    }

    /// Where key/value head `g`'s first `len` positions lie: in `keys`, the whole tiles that hold
    /// them; in `values`, their rows.
    fn held(&self, g: usize, len: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (d, cap) = (self.dim, self.capacity);
        let start = g * cap * d;
        (
            start..start + len.next_multiple_of(TILE) * d,
            start..start + len * d,
        )
    }

    /// Makes this cache hold the first `len` positions of `src` (what it held before is dropped;
    /// its buffers are reused when they are large enough).
    pub fn copy_from(&mut self, src: &KvCache, len: usize) {
        debug_assert!(len <= src.capacity && (self.kv_heads, self.dim) == (src.kv_heads, src.dim));
        self.reserve(len);
        for g in 0..self.kv_heads {
            let ((to_k, to_v), (from_k, from_v)) = (self.held(g, len), src.held(g, len));
            self.keys[to_k].copy_from_slice(&src.keys[from_k]);
            self.values[to_v].copy_from_slice(&src.values[from_v]);
        }
    }

    /// The first `len` positions as bytes (f16, little-endian): for each key/value head, the key
    /// tiles that hold them, then their values. [`Self::read_bytes`] reads them back.
    pub fn write_bytes(&self, len: usize, out: &mut Vec<u8>) {
        debug_assert!(len <= self.capacity);
        for g in 0..self.kv_heads {
            let (keys, values) = self.held(g, len);
            for x in self.keys[keys].iter().chain(&self.values[values]) {
                out.extend_from_slice(&x.to_bits().to_le_bytes());
            }
        }
    }

    /// Makes this cache hold the `len` positions of `bytes` (from [`Self::write_bytes`]); returns
    /// the bytes after them, or `None` (and holds nothing trustworthy) when there are too few.
    pub fn read_bytes<'b>(&mut self, len: usize, bytes: &'b [u8]) -> Option<&'b [u8]> {
        let need = self.kv_heads * (len.next_multiple_of(TILE) + len) * self.dim * 2;
        if bytes.len() < need {
            return None;
        }
        self.reserve(len);
        let mut halves = bytes[..need]
            .chunks_exact(2)
            .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])));
        for g in 0..self.kv_heads {
            let (keys, values) = self.held(g, len);
            for to in self.keys[keys].iter_mut().chain(&mut self.values[values]) {
                *to = halves.next()?;
            }
        }
        Some(&bytes[need..])
    }

    /// Stores `n` positions from `pos` on: `k` and `v` are `[n][kv head][dim]`.
    fn write(&mut self, pos: usize, n: usize, k: &[f32], v: &[f32]) {
        self.reserve(pos + n);
        let (cap, d, kvh) = (self.capacity, self.dim, self.kv_heads);
        for i in 0..n {
            let p = pos + i;
            for g in 0..kvh {
                let src = (i * kvh + g) * d;
                let tile = (g * cap / TILE + p / TILE) * d * TILE;
                for j in 0..d {
                    self.keys[tile + j * TILE + p % TILE] = f16::from_f32(k[src + j]);
                }
                let row = (g * cap + p) * d;
                for (to, from) in self.values[row..row + d].iter_mut().zip(&v[src..src + d]) {
                    *to = f16::from_f32(*from);
                }
            }
        }
    }
}

/// Rotates `x` (`[n][heads][dim]`, row `i` at position `pos + i`) as candle's `rope` does: the
/// pairs are (j, j + dim/2), with angle `position * base^(-2j/dim)`.
pub fn rope(x: &mut [f32], n: usize, heads: usize, dim: usize, pos: usize, inv_freq: &[f32]) {
    let half = dim / 2;
    let mut cos = vec![0f32; half];
    let mut sin = vec![0f32; half];
    for i in 0..n {
        let p = (pos + i) as f32;
        for j in 0..half {
            let a = p * inv_freq[j];
            cos[j] = a.cos();
            sin[j] = a.sin();
        }
        for h in 0..heads {
            let v = &mut x[(i * heads + h) * dim..(i * heads + h + 1) * dim];
            for j in 0..half {
                let (a, b) = (v[j], v[j + half]);
                v[j] = a * cos[j] - b * sin[j];
                v[j + half] = a * sin[j] + b * cos[j];
            }
        }
    }
}

/// Writes the `n` new positions' keys and values (`[n][kv head][dim]`, roped) at `pos..pos + n`,
/// then returns in `out` (`[n][heads][dim]`) the attention of the queries `q` (`[n][heads][dim]`,
/// roped), row `i` over positions `0..=pos + i`. Query head `h` uses key/value head
/// `h / (heads / kv_heads)`.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    cache: &mut KvCache,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    pos: usize,
    n: usize,
    heads: usize,
    out: &mut [f32],
) {
    cache.write(pos, n, k, v);
    let cache = &*cache;
    let (d, kvh) = (cache.dim, cache.kv_heads);
    let group = heads / kvh;
    // Tasks: (row, kv head), and when that is fewer than the threads, the group's query heads
    // split into equal parts (each part reads the keys again, from cache).
    let threads = rayon::current_num_threads().max(1);
    let parts = (1..=group)
        .filter(|s| group.is_multiple_of(*s))
        .find(|s| n * kvh * s >= threads)
        .unwrap_or(group);
    let per = group / parts;
    // candle's `/ sqrt(d)` on a tensor: a multiplication by the f64 reciprocal, rounded to f32.
    let scale = (1.0 / (d as f64).sqrt()) as f32;
    out[..n * heads * d]
        .par_chunks_mut(per * d)
        .enumerate()
        .for_each(|(t, out)| {
            let h0 = t * per;
            let (i, g) = (h0 / heads, (h0 % heads) / group);
            let first = h0 % heads;
            let qs = &q[(i * heads + first) * d..(i * heads + first + per) * d];
            head_group(cache, g, pos + i + 1, qs, per, scale, out);
        });
}

/// Attention of `count` query heads (`qs`, `[count][dim]`) on kv head `g` over positions `0..len`,
/// into `out` (`[count][dim]`).
fn head_group(
    cache: &KvCache,
    g: usize,
    len: usize,
    qs: &[f32],
    count: usize,
    scale: f32,
    out: &mut [f32],
) {
    let (d, cap) = (cache.dim, cache.capacity);
    let tiles = len.div_ceil(TILE);
    let stride = tiles * TILE;
    let mut scores = vec![0f32; count * stride];
    let keys = &cache.keys[g * cap * d..(g * cap + tiles * TILE) * d];
    let values = &cache.values[g * cap * d..(g * cap + len) * d];
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was detected; the slices hold what the shapes say.
        unsafe {
            for h in (0..count).step_by(6) {
                let c = (count - h).min(6);
                let q = &qs[h * d..(h + c) * d];
                let s = &mut scores[h * stride..(h + c) * stride];
                match c {
                    1 => simd::score_tiles::<1>(keys, q, d, tiles, scale, s),
                    2 => simd::score_tiles::<2>(keys, q, d, tiles, scale, s),
                    3 => simd::score_tiles::<3>(keys, q, d, tiles, scale, s),
                    4 => simd::score_tiles::<4>(keys, q, d, tiles, scale, s),
                    5 => simd::score_tiles::<5>(keys, q, d, tiles, scale, s),
                    _ => simd::score_tiles::<6>(keys, q, d, tiles, scale, s),
                }
            }
            for row in scores.chunks_mut(stride) {
                softmax(&mut row[..len]);
            }
            if d.is_multiple_of(64) {
                for h in (0..count).step_by(6) {
                    let c = (count - h).min(6);
                    let w = &scores[h * stride..(h + c) * stride];
                    let o = &mut out[h * d..(h + c) * d];
                    match c {
                        1 => simd::weigh_values::<1>(values, w, stride, d, len, o),
                        2 => simd::weigh_values::<2>(values, w, stride, d, len, o),
                        3 => simd::weigh_values::<3>(values, w, stride, d, len, o),
                        4 => simd::weigh_values::<4>(values, w, stride, d, len, o),
                        5 => simd::weigh_values::<5>(values, w, stride, d, len, o),
                        _ => simd::weigh_values::<6>(values, w, stride, d, len, o),
                    }
                }
                return;
            }
        }
        weigh_values(values, &scores, stride, d, len, count, out);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if d.is_multiple_of(32) && avx2::available() {
        // SAFETY: the features were detected; the slices hold what the shapes say.
        unsafe {
            for h in (0..count).step_by(6) {
                let c = (count - h).min(6);
                let q = &qs[h * d..(h + c) * d];
                let s = &mut scores[h * stride..(h + c) * stride];
                match c {
                    1 => avx2::score_tiles::<1>(keys, q, d, tiles, scale, s),
                    2 => avx2::score_tiles::<2>(keys, q, d, tiles, scale, s),
                    3 => avx2::score_tiles::<3>(keys, q, d, tiles, scale, s),
                    4 => avx2::score_tiles::<4>(keys, q, d, tiles, scale, s),
                    5 => avx2::score_tiles::<5>(keys, q, d, tiles, scale, s),
                    _ => avx2::score_tiles::<6>(keys, q, d, tiles, scale, s),
                }
            }
            for row in scores.chunks_mut(stride) {
                softmax(&mut row[..len]);
            }
            for h in (0..count).step_by(3) {
                let c = (count - h).min(3);
                let w = &scores[h * stride..(h + c) * stride];
                let o = &mut out[h * d..(h + c) * d];
                match c {
                    1 => avx2::weigh_values::<1>(values, w, stride, d, len, o),
                    2 => avx2::weigh_values::<2>(values, w, stride, d, len, o),
                    _ => avx2::weigh_values::<3>(values, w, stride, d, len, o),
                }
            }
        }
        return;
    }
    for h in 0..count {
        let q = &qs[h * d..(h + 1) * d];
        let s = &mut scores[h * stride..(h + 1) * stride];
        for t in 0..tiles {
            let kt = &keys[t * d * TILE..(t + 1) * d * TILE];
            for l in 0..TILE {
                let dot: f32 = (0..d).map(|j| q[j] * kt[j * TILE + l].to_f32()).sum();
                s[t * TILE + l] = dot * scale;
            }
        }
        softmax(&mut s[..len]);
    }
    weigh_values(values, &scores, stride, d, len, count, out);
}

/// `o[h] = sum over positions p < len of w[h][p] * values[p]` for `count` heads (`w` rows
/// `stride` apart), a value row at a time (each output summed over positions in order).
fn weigh_values(
    values: &[f16],
    w: &[f32],
    stride: usize,
    d: usize,
    len: usize,
    count: usize,
    o: &mut [f32],
) {
    let mut row = vec![0f32; d];
    o[..count * d].fill(0.0);
    for p in 0..len {
        for (r, v) in row.iter_mut().zip(&values[p * d..(p + 1) * d]) {
            *r = v.to_f32();
        }
        for h in 0..count {
            let wp = w[h * stride + p];
            for (acc, r) in o[h * d..(h + 1) * d].iter_mut().zip(&row) {
                *acc += wp * r;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    use half::f16;

    use super::TILE;

    /// Values (f16) between a load and the prefetch issued with it: 2 KB, as for the weights in
    /// `crate::kernels`.
    const AHEAD: usize = 1024;

    /// 16 f16 values from `p`, as f32.
    #[inline(always)]
    unsafe fn load16(p: *const f16) -> __m512 {
        _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
    }

    /// Scores of `H` query heads (`q`, `[H][dim]`) against `tiles` key tiles, scaled, into `s`
    /// (`[H][tiles * TILE]`): per tile, one multiply-add per dimension and head.
    ///
    /// # Safety
    /// AVX-512 F; `keys` holds `tiles` tiles of `d * TILE`, `s` `H` rows of `tiles * TILE`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn score_tiles<const H: usize>(
        keys: &[f16],
        q: &[f32],
        d: usize,
        tiles: usize,
        scale: f32,
        s: &mut [f32],
    ) {
        debug_assert!(keys.len() >= tiles * d * TILE && q.len() >= H * d);
        let stride = tiles * TILE;
        let scale = _mm512_set1_ps(scale);
        for t in 0..tiles {
            let kt = keys.as_ptr().add(t * d * TILE);
            let mut acc = [_mm512_setzero_ps(); H];
            for j in 0..d {
                _mm_prefetch::<_MM_HINT_T0>(kt.wrapping_add(j * TILE + AHEAD) as *const i8);
                let k = load16(kt.add(j * TILE));
                for (h, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(*q.get_unchecked(h * d + j)), k, *acc);
                }
            }
            for (h, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(
                    s.as_mut_ptr().add(h * stride + t * TILE),
                    _mm512_mul_ps(*acc, scale),
                );
            }
        }
    }

    /// `o[h] = sum over positions p < len of w[h][p] * values[p]` for `H` heads (`w` rows
    /// `stride` apart), 64 dimensions at a time.
    ///
    /// # Safety
    /// AVX-512 F; `d` a multiple of 64; `values` holds `len` rows of `d`, `w` `H` rows of
    /// `stride >= len`, `o` `H` rows of `d`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn weigh_values<const H: usize>(
        values: &[f16],
        w: &[f32],
        stride: usize,
        d: usize,
        len: usize,
        o: &mut [f32],
    ) {
        debug_assert!(
            d.is_multiple_of(64) && values.len() >= len * d && w.len() >= (H - 1) * stride + len
        );
        for c in (0..d).step_by(64) {
            let mut acc = [[_mm512_setzero_ps(); 4]; H];
            for p in 0..len {
                let row = values.as_ptr().add(p * d + c);
                for k in 0..2 {
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(AHEAD + 32 * k) as *const i8);
                }
                let v = [
                    load16(row),
                    load16(row.add(16)),
                    load16(row.add(32)),
                    load16(row.add(48)),
                ];
                for (h, acc) in acc.iter_mut().enumerate() {
                    let wv = _mm512_set1_ps(*w.get_unchecked(h * stride + p));
                    for (a, v) in acc.iter_mut().zip(v) {
                        *a = _mm512_fmadd_ps(wv, v, *a);
                    }
                }
            }
            for (h, acc) in acc.iter().enumerate() {
                for (k, a) in acc.iter().enumerate() {
                    _mm512_storeu_ps(o.as_mut_ptr().add(h * d + c + 16 * k), *a);
                }
            }
        }
    }
}

/// The same arithmetic as [`simd`] on CPUs with AVX2 but no AVX-512 (each output is summed in the
/// same order, so the results are the same bit for bit): a tile of 16 positions is two 8-lane
/// vectors, and values are summed 32 dimensions at a time, three heads per pass (the sixteen
/// 256-bit registers hold twelve sums and four loads).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::*;

    use half::f16;

    use super::TILE;

    const AHEAD: usize = 1024;

    /// Whether this CPU has what these functions use.
    pub fn available() -> bool {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }

    /// 8 f16 values from `p`, as f32.
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }

    /// As `simd::score_tiles`.
    ///
    /// # Safety
    /// AVX2, FMA and F16C; `keys` holds `tiles` tiles of `d * TILE`, `s` `H` rows of
    /// `tiles * TILE`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn score_tiles<const H: usize>(
        keys: &[f16],
        q: &[f32],
        d: usize,
        tiles: usize,
        scale: f32,
        s: &mut [f32],
    ) {
        debug_assert!(keys.len() >= tiles * d * TILE && q.len() >= H * d);
        let stride = tiles * TILE;
        let scale = _mm256_set1_ps(scale);
        for t in 0..tiles {
            let kt = keys.as_ptr().add(t * d * TILE);
            let mut acc = [[_mm256_setzero_ps(); 2]; H];
            for j in 0..d {
                _mm_prefetch::<_MM_HINT_T0>(kt.wrapping_add(j * TILE + AHEAD) as *const i8);
                let k = [load8(kt.add(j * TILE)), load8(kt.add(j * TILE + 8))];
                for (h, acc) in acc.iter_mut().enumerate() {
                    let qv = _mm256_set1_ps(*q.get_unchecked(h * d + j));
                    acc[0] = _mm256_fmadd_ps(qv, k[0], acc[0]);
                    acc[1] = _mm256_fmadd_ps(qv, k[1], acc[1]);
                }
            }
            for (h, acc) in acc.iter().enumerate() {
                let out = s.as_mut_ptr().add(h * stride + t * TILE);
                _mm256_storeu_ps(out, _mm256_mul_ps(acc[0], scale));
                _mm256_storeu_ps(out.add(8), _mm256_mul_ps(acc[1], scale));
            }
        }
    }

    /// As `simd::weigh_values`, 32 dimensions at a time.
    ///
    /// # Safety
    /// AVX2, FMA and F16C; `d` a multiple of 32; `values` holds `len` rows of `d`, `w` `H` rows
    /// of `stride >= len`, `o` `H` rows of `d`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn weigh_values<const H: usize>(
        values: &[f16],
        w: &[f32],
        stride: usize,
        d: usize,
        len: usize,
        o: &mut [f32],
    ) {
        debug_assert!(
            d.is_multiple_of(32) && values.len() >= len * d && w.len() >= (H - 1) * stride + len
        );
        for c in (0..d).step_by(32) {
            let mut acc = [[_mm256_setzero_ps(); 4]; H];
            for p in 0..len {
                let row = values.as_ptr().add(p * d + c);
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(AHEAD) as *const i8);
                let v = [
                    load8(row),
                    load8(row.add(8)),
                    load8(row.add(16)),
                    load8(row.add(24)),
                ];
                for (h, acc) in acc.iter_mut().enumerate() {
                    let wv = _mm256_set1_ps(*w.get_unchecked(h * stride + p));
                    for (a, v) in acc.iter_mut().zip(v) {
                        *a = _mm256_fmadd_ps(wv, v, *a);
                    }
                }
            }
            for (h, acc) in acc.iter().enumerate() {
                for (k, a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(o.as_mut_ptr().add(h * d + c + 8 * k), *a);
                }
            }
        }
    }
}

/// Softmax in place, as candle's `softmax_last_dim` computes it (its vector maximum and sum,
/// scalar `exp`, a division): the scores are summed in a different order from candle's matrix
/// product already, and the 8-bit activations downstream turn every ulp into a possible step.
fn softmax(x: &mut [f32]) {
    use candle_core::cpu::kernels::VecOps;
    let (mut max, mut sum) = (f32::NEG_INFINITY, 0f32);
    // SAFETY: the pointers cover `x.len() > 0` values.
    unsafe { f32::vec_reduce_max(x.as_ptr(), &mut max, x.len()) };
    for v in x.iter_mut() {
        *v = (*v - max).exp();
    }
    // SAFETY: as above.
    unsafe { f32::vec_reduce_sum(x.as_ptr(), &mut sum, x.len()) };
    for v in x.iter_mut() {
        *v /= sum;
    }
}
