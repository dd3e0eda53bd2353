//! Matrix products on Q4_0 weights (32-value blocks, the encoder's format) with 8-bit activations,
//! for the encoder's own CPU forward (`crate::encode::cpu`).
//!
//! Why this exists: on a 2-core AVX-512 machine candle runs the encoder's f32 products on the gemm
//! crate's AVX2 kernels, about 16 multiply-adds per cycle at best, while one AVX-512 VNNI `vpdpbusd`
//! does 64 int8 multiply-adds. A Q4_0 weight is exactly `d * q` with `q` in -8..8, so the weights
//! lose nothing as bytes; the activations are quantized per row and per block of 32 to 8 bits
//! (`x ~ da * qa`, the value of largest magnitude to +-127, as ggml's Q8_0), the only rounding this
//! path adds. Per block the integer sum `sum (q + 8) * qa` is exact; it is corrected by
//! `-8 * sum qa` (kept with the activations), turned into f32 and scaled by `d * da`, and the blocks
//! are summed in f32.
//!
//! Layout: output columns in the vector lanes. The weights are repacked once at load into groups
//! of 16 columns, 4 consecutive inputs per lane (`[n / 16][k / 4][16][4]` bytes, nibble values
//! `q + 8` as unsigned bytes) with the block scales beside them (`[n / 16][k / 32][16]`); 4 bytes of
//! an activation row are broadcast and multiplied into 16 columns at once. A tile is 4 rows x 4
//! groups (64 columns): 16 integer accumulators, enough independent `vpdpbusd` chains to cover
//! its latency at two a cycle (a 4 x 2 tile took 1.03x-1.18x the time in two runs of
//! `examples/encoder_kernel_bench`, one thread, shared machine).
//! Rows and column groups are split across the rayon pool.
//!
//! On CPUs with AVX2 but no AVX-512 the same layout serves 8 columns per vector: `vpmaddubsw`
//! (pairs of products summed in 16 bits: at most 15 * 128 * 2, so a whole block's 8 steps sum in 16
//! bits without saturating) and one `vpmaddwd` by ones per block into 32 bits; a tile is 4 rows x
//! 16 columns. For 16-bit activations (the encoder's) AVX2 holds both sides as whole 16-bit values
//! instead, two inputs per lane (the weights repacked once more on first use, 2 bytes a weight),
//! and one `vpmaddwd` does what two byte passes and their widening did: 2 multiplies per 32
//! products instead of 2.25, the same integer sums (`sift bench --encoder`: 8-11% more sentences
//! a second).
//!
//! Dispatch is at run time ([`available`]); the scalar [`matmul_reference`] defines the
//! arithmetic and is what the tests hold the kernels to.

use rayon::prelude::*;

use super::SyncPtr;
use crate::model::e5s1::Q4_0_BLOCK_BYTES;

/// Values per block, weights and activations alike.
pub const QB: usize = 32;
/// Rows per tile (activation rows are padded to a multiple of this).
pub const TILE_ROWS: usize = 4;
/// Column groups of 16 per tile.
const TILE_GROUPS: usize = 4;

/// A `[n, k]` weight matrix (a PyTorch Linear's `[out, in]`) from Q4_0 blocks, repacked for the kernel.
pub struct Q4Weights {
    n: usize,
    k: usize,
    /// Groups stored (a multiple of [`TILE_GROUPS`]; the ones past `n / 16` are zero).
    groups: usize,
    packed: Vec<u8>,
    scales: Vec<f32>,
    /// The same weights as 16-bit `q` (-8..8), two consecutive inputs per lane (`[n / 16][k /
    /// 2][16][2]`), for the AVX2 kernel on 16-bit activations; made on first use.
    wide: std::sync::OnceLock<Vec<i16>>,
}

impl Q4Weights {
    /// From `n * k / 32` Q4_0 blocks in row-major order. `n` must be a multiple of 16 and `k` of 32.
    pub fn from_q4_0(blocks: &[u8], n: usize, k: usize) -> Result<Self, String> {
        if n == 0 || !n.is_multiple_of(16) || k == 0 || !k.is_multiple_of(QB) {
            return Err(format!(
                "a {n} x {k} matrix does not fit the kernel (16 | n, 32 | k)"
            ));
        }
        let kb = k / QB;
        if blocks.len() != n * kb * Q4_0_BLOCK_BYTES {
            return Err(format!(
                "{} bytes are not {n} x {k} values in Q4_0",
                blocks.len()
            ));
        }
        let groups = (n / 16).next_multiple_of(TILE_GROUPS);
        let mut packed = vec![0u8; groups * k * 16];
        let mut scales = vec![0f32; groups * kb * 16];
        for col in 0..n {
            let (g, lane) = (col / 16, col % 16);
            for b in 0..kb {
                let blk = &blocks[(col * kb + b) * Q4_0_BLOCK_BYTES..][..Q4_0_BLOCK_BYTES];
                scales[(g * kb + b) * 16 + lane] =
                    half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                for j in 0..QB {
                    let byte = blk[2 + j % 16];
                    let q = if j < 16 { byte & 0x0F } else { byte >> 4 };
                    let kk = b * QB + j;
                    packed[(g * (k / 4) + kk / 4) * 64 + lane * 4 + kk % 4] = q;
                }
            }
        }
        Ok(Self {
            n,
            k,
            groups,
            packed,
            scales,
            wide: std::sync::OnceLock::new(),
        })
    }

    /// The weights as 16-bit values for `vpmaddwd` ([`Self::wide`]'s layout), made once.
    fn wide(&self) -> &[i16] {
        self.wide.get_or_init(|| {
            let k = self.k;
            let mut wide = vec![0i16; self.groups * k * 16];
            wide.par_chunks_mut(k * 16)
                .zip(self.packed.par_chunks(k * 16))
                .for_each(|(wide, packed)| {
                    for kk in 0..k {
                        for lane in 0..16 {
                            wide[(kk / 2 * 16 + lane) * 2 + kk % 2] =
                                packed[kk / 4 * 64 + lane * 4 + kk % 4] as i16 - 8;
                        }
                    }
                });
            wide
        })
    }

    /// Output width.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input width.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Weight `(col, kk)` as the integer `q` (-8..8) and its block scale.
    fn at(&self, col: usize, kk: usize) -> (i32, f32) {
        let (g, lane) = (col / 16, col % 16);
        let q = self.packed[(g * (self.k / 4) + kk / 4) * 64 + lane * 4 + kk % 4] as i32 - 8;
        let d = self.scales[(g * (self.k / QB) + kk / QB) * 16 + lane];
        (q, d)
    }
}

/// Activation rows quantized per block of 32. At 8 bits (`lo` empty): `x ~ d * qs`. At 16 bits
/// ("precise"): `x ~ d * (256 * qs + lo)`, the high and the low byte of a 16-bit value, each
/// multiplied into the weights by its own pass. `corr` is `-8 * sum` of the (8- or 16-bit) values
/// per block: the weights are stored as `q + 8`.
pub struct Q8Rows {
    rows: usize,
    k: usize,
    qs: Vec<i8>,
    lo: Vec<i8>,
    /// 16-bit values as one `i16` each (`256 * qs + lo`), for the AVX2 kernel (one `vpmaddwd`
    /// instead of two byte passes); empty at 8 bits and on other CPUs.
    wide: Vec<i16>,
    d: Vec<f32>,
    corr: Vec<i32>,
}

impl Q8Rows {
    /// Room for `m` rows of `k` values (`k` a multiple of 32), padded to whole tiles, all zero;
    /// `precise`: 16 bits a value instead of 8.
    pub fn zeros(m: usize, k: usize, precise: bool) -> Self {
        assert!(
            k.is_multiple_of(QB),
            "rows of {k} values are not whole blocks"
        );
        let rows = m.next_multiple_of(TILE_ROWS).max(TILE_ROWS);
        let avx2 = super::level() == Some(super::Level::Avx2);
        Self {
            rows,
            k,
            qs: vec![0; rows * k],
            lo: if precise {
                vec![0; rows * k]
            } else {
                Vec::new()
            },
            wide: if precise && avx2 {
                vec![0; rows * k]
            } else {
                Vec::new()
            },
            d: vec![0.0; rows * k / QB],
            corr: vec![0; rows * k / QB],
        }
    }

    /// Whether the values have 16 bits.
    pub fn is_precise(&self) -> bool {
        !self.lo.is_empty()
    }

    /// `m` rows of `k` values from `x` (row-major), quantized in parallel.
    pub fn quantize(x: &[f32], m: usize, k: usize, precise: bool) -> Self {
        let mut q = Self::zeros(m, k, precise);
        q.fill(x, m);
        q
    }

    /// Re-quantizes the first `m` rows from `x` (the rest keep their values).
    pub fn fill(&mut self, x: &[f32], m: usize) {
        let k = self.k;
        assert!(x.len() >= m * k);
        self.fill_rows(m, &|r| &x[r * k..(r + 1) * k]);
    }

    /// Applies `prep` to each of the first `m` rows of `x` in place (a layer norm), then quantizes
    /// them: one pass over the rows.
    pub fn fill_after(&mut self, x: &mut [f32], m: usize, prep: &(dyn Fn(&mut [f32]) + Sync)) {
        let k = self.k;
        assert!(x.len() >= m * k);
        let base = SyncPtr(x.as_mut_ptr());
        self.fill_rows(m, &|r| {
            // SAFETY: row `r` is in bounds (checked above) and handed to one task only; `x` is
            // borrowed mutably for the whole call.
            let row = unsafe { std::slice::from_raw_parts_mut(base.get().add(r * k), k) };
            prep(row);
            &*row
        });
    }

    /// Quantizes row `r` of the first `m` from `row(r)`, the rows in parallel.
    fn fill_rows<'x>(&mut self, m: usize, row: &(dyn Fn(usize) -> &'x [f32] + Sync)) {
        let k = self.k;
        assert!(m <= self.rows);
        let kb = k / QB;
        let precise = self.is_precise();
        let lo_len = if precise { m * k } else { 0 };
        // An empty `lo` (or `wide`) yields no chunks: give each row an empty slice instead.
        let lo_rows: Vec<&mut [i8]> = if precise {
            self.lo[..lo_len].chunks_mut(k).collect()
        } else {
            (0..m).map(|_| <&mut [i8]>::default()).collect()
        };
        let wide_rows: Vec<&mut [i16]> = if self.wide.is_empty() {
            (0..m).map(|_| <&mut [i16]>::default()).collect()
        } else {
            self.wide[..m * k].chunks_mut(k).collect()
        };
        self.qs[..m * k]
            .par_chunks_mut(k)
            .zip(lo_rows)
            .zip(wide_rows)
            .zip(self.d[..m * kb].par_chunks_mut(kb))
            .zip(self.corr[..m * kb].par_chunks_mut(kb))
            .enumerate()
            .with_min_len(8)
            .for_each(|(r, ((((qs, lo), wide), d), corr))| {
                let x = row(r);
                #[cfg(target_arch = "x86_64")]
                match super::level() {
                    // SAFETY: the features are there; the slices are one row each.
                    Some(super::Level::Avx512) => {
                        unsafe { avx512_q4::quantize_row(x, qs, lo, d, corr) };
                        return;
                    }
                    // SAFETY: as above.
                    Some(super::Level::Avx2) => {
                        unsafe { avx2_q4::quantize_row(x, qs, lo, wide, d, corr) };
                        return;
                    }
                    None => {}
                }
                // Only the AVX2 kernel reads `wide`, and it is made only where that kernel runs.
                debug_assert!(wide.is_empty());
                quantize_row(x, qs, lo, d, corr);
            });
    }

    /// Row `r`, dequantized (for tests).
    pub fn dequantize_row(&self, r: usize) -> Vec<f32> {
        let kb = self.k / QB;
        (0..self.k)
            .map(|kk| {
                let i = r * self.k + kk;
                let q = if self.is_precise() {
                    256 * self.qs[i] as i32 + self.lo[i] as i32
                } else {
                    self.qs[i] as i32
                };
                self.d[r * kb + kk / QB] * q as f32
            })
            .collect()
    }
}

/// One row into blocks: the largest magnitude maps to 127 (8 bits) or 32512 (16 bits, `lo` as long
/// as `qs`; empty for 8 bits), rounding to nearest even. `d` gets the step of the low byte.
pub fn quantize_row(x: &[f32], qs: &mut [i8], lo: &mut [i8], d: &mut [f32], corr: &mut [i32]) {
    let precise = !lo.is_empty();
    for (b, x) in x.chunks_exact(QB).enumerate() {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        if amax == 0.0 {
            zero_block(qs, lo, d, corr, b);
            continue;
        }
        let qs = &mut qs[b * QB..(b + 1) * QB];
        let (scale, inv) = block_scales(amax, precise);
        let mut sum = 0i32;
        for (j, &v) in x.iter().enumerate() {
            let q = (v * inv).round_ties_even() as i32;
            sum += q;
            if precise {
                let hi = (q + 128) >> 8;
                qs[j] = hi as i8;
                lo[b * QB + j] = (q - 256 * hi) as i8;
            } else {
                qs[j] = q as i8;
            }
        }
        d[b] = scale;
        corr[b] = -8 * sum;
    }
}

/// Block `b` of a quantized row as zeros: a block of zeros has no step.
fn zero_block(qs: &mut [i8], lo: &mut [i8], d: &mut [f32], corr: &mut [i32], b: usize) {
    qs[b * QB..(b + 1) * QB].fill(0);
    if !lo.is_empty() {
        lo[b * QB..(b + 1) * QB].fill(0);
    }
    d[b] = 0.0;
    corr[b] = 0;
}

/// The step and its inverse for a block whose largest magnitude is `amax`.
fn block_scales(amax: f32, precise: bool) -> (f32, f32) {
    if precise {
        (amax / 32512.0, 32512.0 / amax)
    } else {
        (amax / 127.0, 127.0 / amax)
    }
}

/// What is added to each product before it is stored.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    /// `+ bias[col]`.
    Bias(&'a [f32]),
    /// `gelu(x + bias[col])` with the exact (erf) GELU.
    BiasGelu(&'a [f32]),
    /// `+ bias[col] + residual[row * n + col]`.
    BiasResidual(&'a [f32], &'a [f32]),
}

impl Epilogue<'_> {
    fn apply(&self, row: usize, col: usize, n: usize, v: f32) -> f32 {
        match *self {
            Epilogue::Bias(b) => v + b[col],
            Epilogue::BiasGelu(b) => super::vmath::gelu_reference(v + b[col]),
            Epilogue::BiasResidual(b, r) => v + b[col] + r[row * n + col],
        }
    }

    fn check(&self, m: usize, n: usize) {
        let (Epilogue::Bias(b) | Epilogue::BiasGelu(b) | Epilogue::BiasResidual(b, _)) = *self;
        assert!(b.len() >= n, "bias shorter than {n}");
        if let Epilogue::BiasResidual(_, r) = *self {
            assert!(r.len() >= m * n, "residual shorter than {m} x {n}");
        }
    }
}

/// Whether this CPU runs [`matmul`]: AVX-512 F, BW and VNNI, or AVX2 and FMA
/// (`SIFT_NO_FAST_KERNELS` unset).
pub fn available() -> bool {
    super::level().is_some()
}

/// `out[r * n + c] = epilogue(sum_k a[r][k] * w[c][k])` for the first `m` rows of `a`, on the
/// AVX-512 VNNI kernel or the AVX2 one.
///
/// # Panics
/// If the shapes disagree, or the CPU lacks the features ([`available`]).
pub fn matmul(w: &Q4Weights, a: &Q8Rows, m: usize, out: &mut [f32], epilogue: Epilogue) {
    let level = super::level().expect("the fast kernels need AVX2 or AVX-512");
    matmul_on(level, w, a, m, out, epilogue)
}

/// [`matmul`] on the kernel of `level` (tests on an AVX-512 machine check the AVX2 one too).
///
/// # Panics
/// As [`matmul`], or if this CPU does not [`super::supports`] `level`.
pub fn matmul_on(
    level: super::Level,
    w: &Q4Weights,
    a: &Q8Rows,
    m: usize,
    out: &mut [f32],
    epilogue: Epilogue,
) {
    assert!(
        super::supports(level),
        "this CPU cannot run the {level:?} kernels"
    );
    let wide = level == super::Level::Avx512;
    assert!(a.k == w.k && m <= a.rows && out.len() >= m * w.n);
    epilogue.check(m, w.n);
    if m == 0 {
        return;
    }
    // Tasks: 32 rows x half the column groups (both whole tiles), enough to balance two threads
    // on a batch of a few hundred rows while a task's weights stay in L2.
    const TASK_ROWS: usize = 32;
    let row_tasks = m.div_ceil(TASK_ROWS);
    let tiles = w.groups / TILE_GROUPS;
    let col_tasks = if tiles >= 2 { 2 } else { 1 };
    let per_col_task = tiles.div_ceil(col_tasks) * TILE_GROUPS;
    // The AVX2 kernel on 16-bit activations held whole: the weights as 16 bits too.
    let wide_weights = (!wide && !a.wide.is_empty()).then(|| w.wide());
    let out_ptr = SyncPtr(out.as_mut_ptr());
    (0..row_tasks * col_tasks).into_par_iter().for_each(|t| {
        let (rt, ct) = (t / col_tasks, t % col_tasks);
        let r0 = rt * TASK_ROWS;
        let r1 = m.min(r0 + TASK_ROWS);
        let g0 = ct * per_col_task;
        let g1 = w.groups.min(g0 + per_col_task);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` checked the features; each task writes only rows r0..r1 of
        // columns g0 * 16..g1 * 16, and the asserts above checked the lengths.
        unsafe {
            match (wide, a.is_precise()) {
                (false, true) if wide_weights.is_some() => avx2_q4::task_wide(
                    w,
                    wide_weights.unwrap_or_default(),
                    a,
                    (r0, r1, g0, g1),
                    m,
                    out_ptr.get(),
                    epilogue,
                ),
                (true, true) => {
                    avx512_q4::task::<true>(w, a, r0, r1, g0, g1, m, out_ptr.get(), epilogue)
                }
                (true, false) => {
                    avx512_q4::task::<false>(w, a, r0, r1, g0, g1, m, out_ptr.get(), epilogue)
                }
                (false, true) => {
                    avx2_q4::task::<true>(w, a, r0, r1, g0, g1, m, out_ptr.get(), epilogue)
                }
                (false, false) => {
                    avx2_q4::task::<false>(w, a, r0, r1, g0, g1, m, out_ptr.get(), epilogue)
                }
            }
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (r0, r1, g0, g1, out_ptr, epilogue);
    });
}

/// The same product in scalar code: exact integer sums per block, scaled and summed in f32 in
/// block order. Defines what [`matmul`] computes (its float sums differ only in rounding).
pub fn matmul_reference(w: &Q4Weights, a: &Q8Rows, m: usize, out: &mut [f32], epilogue: Epilogue) {
    assert!(a.k == w.k && m <= a.rows && out.len() >= m * w.n);
    epilogue.check(m, w.n);
    let kb = w.k / QB;
    for r in 0..m {
        for c in 0..w.n {
            let mut sum = 0f32;
            for b in 0..kb {
                let mut isum = 0i32;
                let mut d = 0f32;
                for j in 0..QB {
                    let kk = b * QB + j;
                    let (q, dw) = w.at(c, kk);
                    d = dw;
                    let i = r * w.k + kk;
                    let x = if a.is_precise() {
                        256 * a.qs[i] as i32 + a.lo[i] as i32
                    } else {
                        a.qs[i] as i32
                    };
                    isum += q * x;
                }
                sum += isum as f32 * (d * a.d[r * kb + b]);
            }
            out[r * w.n + c] = epilogue.apply(r, c, w.n, sum);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512_q4 {
    use core::arch::x86_64::*;

    use super::{Epilogue, Q4Weights, Q8Rows, QB, TILE_GROUPS, TILE_ROWS};
    use crate::kernels::vmath::gelu16;

    const R: usize = TILE_ROWS;
    const J: usize = TILE_GROUPS;

    /// Rows `r0..r1` (padded up to whole tiles; rows past `m` are computed, not stored) of column
    /// groups `g0..g1` (whole tiles).
    ///
    /// # Safety
    /// AVX-512 F, BW and VNNI; `out` holds `m * w.n` values; no other thread writes these rows of
    /// these columns.
    // Index loops over constant bounds keep the accumulators in registers (iterators over the
    // arrays left them on the stack).
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn task<const PRECISE: bool>(
        w: &Q4Weights,
        a: &Q8Rows,
        r0: usize,
        r1: usize,
        g0: usize,
        g1: usize,
        m: usize,
        out: *mut f32,
        epilogue: Epilogue,
    ) {
        let k = w.k;
        let kb = k / QB;
        let n = w.n;
        let real_groups = n / 16;
        let mut r = r0;
        while r < r1 {
            let mut g = g0;
            while g < g1 {
                let mut res = [[_mm512_setzero_ps(); J]; R];
                let wp = w.packed.as_ptr().add(g * k * 16);
                let sp = w.scales.as_ptr().add(g * kb * 16);
                let ap = a.qs.as_ptr().add(r * k);
                let lp = if PRECISE {
                    a.lo.as_ptr().add(r * k)
                } else {
                    ap
                };
                for b in 0..kb {
                    let mut acc = [[_mm512_setzero_si512(); J]; R];
                    // Index loops over constant bounds: fully unrolled, the accumulators stay in
                    // registers.
                    macro_rules! dot_pass {
                        ($bytes:expr) => {
                            let src: *const i8 = $bytes;
                            for s in 0..QB / 4 {
                                let kk4 = b * (QB / 4) + s;
                                let mut wv = [_mm512_setzero_si512(); J];
                                for j in 0..J {
                                    wv[j] = _mm512_loadu_si512(
                                        wp.add((j * (k / 4) + kk4) * 64) as *const _
                                    );
                                }
                                for i in 0..R {
                                    let av = _mm512_set1_epi32(std::ptr::read_unaligned(
                                        src.add(i * k + kk4 * 4) as *const i32,
                                    ));
                                    for j in 0..J {
                                        acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], wv[j], av);
                                    }
                                }
                            }
                        };
                    }
                    dot_pass!(ap);
                    if PRECISE {
                        // The high bytes count 256 times the low ones.
                        for i in 0..R {
                            for j in 0..J {
                                acc[i][j] = _mm512_slli_epi32::<8>(acc[i][j]);
                            }
                        }
                        dot_pass!(lp);
                    }
                    let mut dw = [_mm512_setzero_ps(); J];
                    for j in 0..J {
                        dw[j] = _mm512_loadu_ps(sp.add((j * kb + b) * 16));
                    }
                    for i in 0..R {
                        let c = _mm512_set1_epi32(*a.corr.get_unchecked((r + i) * kb + b));
                        let da = _mm512_set1_ps(*a.d.get_unchecked((r + i) * kb + b));
                        for j in 0..J {
                            let f = _mm512_cvtepi32_ps(_mm512_add_epi32(acc[i][j], c));
                            res[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(f, da), dw[j], res[i][j]);
                        }
                    }
                }
                for (i, res) in res.iter().enumerate() {
                    let row = r + i;
                    if row >= m {
                        break;
                    }
                    for (j, &v) in res.iter().enumerate() {
                        if g + j >= real_groups {
                            break;
                        }
                        let col = (g + j) * 16;
                        let v = match epilogue {
                            Epilogue::Bias(bias) => {
                                _mm512_add_ps(v, _mm512_loadu_ps(bias.as_ptr().add(col)))
                            }
                            Epilogue::BiasGelu(bias) => {
                                gelu16(_mm512_add_ps(v, _mm512_loadu_ps(bias.as_ptr().add(col))))
                            }
                            Epilogue::BiasResidual(bias, resid) => _mm512_add_ps(
                                _mm512_add_ps(v, _mm512_loadu_ps(bias.as_ptr().add(col))),
                                _mm512_loadu_ps(resid.as_ptr().add(row * n + col)),
                            ),
                        };
                        _mm512_storeu_ps(out.add(row * n + col), v);
                    }
                }
                g += J;
            }
            r += R;
        }
    }

    /// [`super::quantize_row`] on 16 lanes; the same rounding (`vcvtps2dq` rounds to nearest even).
    ///
    /// # Safety
    /// AVX-512 F and BW; the slices as for `quantize_row`.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn quantize_row(
        x: &[f32],
        qs: &mut [i8],
        lo: &mut [i8],
        d: &mut [f32],
        corr: &mut [i32],
    ) {
        let precise = !lo.is_empty();
        for b in 0..x.len() / QB {
            let p = x.as_ptr().add(b * QB);
            let v0 = _mm512_loadu_ps(p);
            let v1 = _mm512_loadu_ps(p.add(16));
            let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            if amax == 0.0 {
                super::zero_block(qs, lo, d, corr, b);
                continue;
            }
            let q = qs.as_mut_ptr().add(b * QB);
            let (scale, inv) = super::block_scales(amax, precise);
            let inv = _mm512_set1_ps(inv);
            let i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv));
            let i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv));
            let sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            if precise {
                let half = _mm512_set1_epi32(128);
                let h0 = _mm512_srai_epi32::<8>(_mm512_add_epi32(i0, half));
                let h1 = _mm512_srai_epi32::<8>(_mm512_add_epi32(i1, half));
                let l0 = _mm512_sub_epi32(i0, _mm512_slli_epi32::<8>(h0));
                let l1 = _mm512_sub_epi32(i1, _mm512_slli_epi32::<8>(h1));
                _mm_storeu_si128(q as *mut _, _mm512_cvtepi32_epi8(h0));
                _mm_storeu_si128(q.add(16) as *mut _, _mm512_cvtepi32_epi8(h1));
                let l = lo.as_mut_ptr().add(b * QB);
                _mm_storeu_si128(l as *mut _, _mm512_cvtepi32_epi8(l0));
                _mm_storeu_si128(l.add(16) as *mut _, _mm512_cvtepi32_epi8(l1));
            } else {
                _mm_storeu_si128(q as *mut _, _mm512_cvtepi32_epi8(i0));
                _mm_storeu_si128(q.add(16) as *mut _, _mm512_cvtepi32_epi8(i1));
            }
            d[b] = scale;
            corr[b] = -8 * sum;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_q4 {
    use core::arch::x86_64::*;

    use super::{Epilogue, Q4Weights, Q8Rows, QB, TILE_ROWS};
    use crate::kernels::vmath::avx2::gelu8;

    const R: usize = TILE_ROWS;

    /// 32 values of four vectors as 32 bytes in order (each value fits a byte: no saturation).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn bytes(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
        // Packing works within 128-bit lanes: the 4-byte groups come out as a, b, c, d of the low
        // lane, then of the high one.
        let abcd = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
        _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    }

    /// As the scalar [`super::quantize_row`], bit for bit (`cvtps` rounds to nearest even, as
    /// `round_ties_even` does), four vectors to a block.
    ///
    /// # Safety
    /// AVX2; `x` is whole blocks, `qs` (and `lo`, `wide` unless empty) as long as `x`, `d` and
    /// `corr` one value a block. `wide` gets each 16-bit value whole.
    #[target_feature(enable = "avx2")]
    pub unsafe fn quantize_row(
        x: &[f32],
        qs: &mut [i8],
        lo: &mut [i8],
        wide: &mut [i16],
        d: &mut [f32],
        corr: &mut [i32],
    ) {
        let precise = !lo.is_empty();
        let sign = _mm256_set1_ps(-0.0);
        for b in 0..x.len() / QB {
            let p = x.as_ptr().add(b * QB);
            let v = [
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            ];
            let abs = |v: __m256| _mm256_andnot_ps(sign, v);
            let m8 = _mm256_max_ps(
                _mm256_max_ps(abs(v[0]), abs(v[1])),
                _mm256_max_ps(abs(v[2]), abs(v[3])),
            );
            let m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps::<1>(m8));
            let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_shuffle_ps::<1>(m2, m2)));
            if amax == 0.0 {
                super::zero_block(qs, lo, d, corr, b);
                if !wide.is_empty() {
                    wide[b * QB..(b + 1) * QB].fill(0);
                }
                continue;
            }
            let q = qs.as_mut_ptr().add(b * QB) as *mut __m256i;
            let (scale, inv) = super::block_scales(amax, precise);
            let inv = _mm256_set1_ps(inv);
            let i = v.map(|v| _mm256_cvtps_epi32(_mm256_mul_ps(v, inv)));
            let s8 = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
            let s4 = _mm_add_epi32(
                _mm256_castsi256_si128(s8),
                _mm256_extracti128_si256::<1>(s8),
            );
            let s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
            let sum = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32::<1>(s2)));
            if precise {
                let half = _mm256_set1_epi32(128);
                let h = i.map(|i| _mm256_srai_epi32::<8>(_mm256_add_epi32(i, half)));
                let l = [0, 1, 2, 3].map(|j| _mm256_sub_epi32(i[j], _mm256_slli_epi32::<8>(h[j])));
                _mm256_storeu_si256(q, bytes(h[0], h[1], h[2], h[3]));
                _mm256_storeu_si256(
                    lo.as_mut_ptr().add(b * QB) as *mut __m256i,
                    bytes(l[0], l[1], l[2], l[3]),
                );
                if !wide.is_empty() {
                    // Packing interleaves the 128-bit lanes: put the 64-bit quarters back in order.
                    let wp = wide.as_mut_ptr().add(b * QB) as *mut __m256i;
                    for h in 0..2 {
                        let packed = _mm256_packs_epi32(i[2 * h], i[2 * h + 1]);
                        _mm256_storeu_si256(wp.add(h), _mm256_permute4x64_epi64::<0xD8>(packed));
                    }
                }
            } else {
                _mm256_storeu_si256(q, bytes(i[0], i[1], i[2], i[3]));
            }
            d[b] = scale;
            corr[b] = -8 * sum;
        }
    }

    /// As `avx512_q4::task`, one group of 16 columns (two vectors) at a time.
    ///
    /// # Safety
    /// AVX2 and FMA; `out` holds `m * w.n` values; no other thread writes these rows of these
    /// columns.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn task<const PRECISE: bool>(
        w: &Q4Weights,
        a: &Q8Rows,
        r0: usize,
        r1: usize,
        g0: usize,
        g1: usize,
        m: usize,
        out: *mut f32,
        epilogue: Epilogue,
    ) {
        let k = w.k;
        let kb = k / QB;
        let n = w.n;
        let real_groups = n / 16;
        let ones = _mm256_set1_epi16(1);
        let mut r = r0;
        while r < r1 {
            for g in g0..g1.min(real_groups) {
                let mut res = [[_mm256_setzero_ps(); 2]; R];
                let wp = w.packed.as_ptr().add(g * k * 16);
                let sp = w.scales.as_ptr().add(g * kb * 16);
                let ap = a.qs.as_ptr().add(r * k);
                let lp = if PRECISE {
                    a.lo.as_ptr().add(r * k)
                } else {
                    ap
                };
                for b in 0..kb {
                    // A block's 8 steps summed in 16 bits, then widened once.
                    macro_rules! dot_pass {
                        ($bytes:expr) => {{
                            let src: *const i8 = $bytes;
                            let mut acc = [[_mm256_setzero_si256(); 2]; R];
                            // Not unrolled: unrolled, the steps' loads were hoisted and the
                            // accumulators spilled to the stack.
                            for s in 0..std::hint::black_box(QB / 4) {
                                let kk4 = b * (QB / 4) + s;
                                let w0 = _mm256_loadu_si256(wp.add(kk4 * 64) as *const _);
                                let w1 = _mm256_loadu_si256(wp.add(kk4 * 64 + 32) as *const _);
                                for i in 0..R {
                                    let av = _mm256_set1_epi32(std::ptr::read_unaligned(
                                        src.add(i * k + kk4 * 4) as *const i32,
                                    ));
                                    acc[i][0] =
                                        _mm256_add_epi16(acc[i][0], _mm256_maddubs_epi16(w0, av));
                                    acc[i][1] =
                                        _mm256_add_epi16(acc[i][1], _mm256_maddubs_epi16(w1, av));
                                }
                            }
                            let mut wide = [[_mm256_setzero_si256(); 2]; R];
                            for i in 0..R {
                                for h in 0..2 {
                                    wide[i][h] = _mm256_madd_epi16(acc[i][h], ones);
                                }
                            }
                            wide
                        }};
                    }
                    let mut acc = dot_pass!(ap);
                    if PRECISE {
                        // The high bytes count 256 times the low ones.
                        let lo = dot_pass!(lp);
                        for i in 0..R {
                            for h in 0..2 {
                                acc[i][h] =
                                    _mm256_add_epi32(_mm256_slli_epi32::<8>(acc[i][h]), lo[i][h]);
                            }
                        }
                    }
                    let dw = [
                        _mm256_loadu_ps(sp.add(b * 16)),
                        _mm256_loadu_ps(sp.add(b * 16 + 8)),
                    ];
                    for i in 0..R {
                        let c = _mm256_set1_epi32(*a.corr.get_unchecked((r + i) * kb + b));
                        let da = _mm256_set1_ps(*a.d.get_unchecked((r + i) * kb + b));
                        for h in 0..2 {
                            let f = _mm256_cvtepi32_ps(_mm256_add_epi32(acc[i][h], c));
                            res[i][h] = _mm256_fmadd_ps(_mm256_mul_ps(f, da), dw[h], res[i][h]);
                        }
                    }
                }
                store(&res, r, g, m, n, out, epilogue);
            }
            r += R;
        }
    }

    /// A tile's sums `res` (rows `r..r + R`, columns of group `g`) through the epilogue into `out`;
    /// rows from `m` on are padding and not stored.
    ///
    /// # Safety
    /// AVX2 and FMA; `out` holds `m * n` values, the epilogue's slices what it reads.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(
        res: &[[__m256; 2]; R],
        r: usize,
        g: usize,
        m: usize,
        n: usize,
        out: *mut f32,
        epilogue: Epilogue,
    ) {
        for (i, res) in res.iter().enumerate() {
            let row = r + i;
            if row >= m {
                break;
            }
            for (h, &v) in res.iter().enumerate() {
                let col = g * 16 + 8 * h;
                let v = match epilogue {
                    Epilogue::Bias(bias) => {
                        _mm256_add_ps(v, _mm256_loadu_ps(bias.as_ptr().add(col)))
                    }
                    Epilogue::BiasGelu(bias) => {
                        gelu8(_mm256_add_ps(v, _mm256_loadu_ps(bias.as_ptr().add(col))))
                    }
                    Epilogue::BiasResidual(bias, resid) => _mm256_add_ps(
                        _mm256_add_ps(v, _mm256_loadu_ps(bias.as_ptr().add(col))),
                        _mm256_loadu_ps(resid.as_ptr().add(row * n + col)),
                    ),
                };
                _mm256_storeu_ps(out.add(row * n + col), v);
            }
        }
    }

    /// As [`task`] on 16-bit activations, with the activations (`a.wide`) and the weights
    /// (`wide`, [`Q4Weights::wide`]'s layout) as whole 16-bit values: one `vpmaddwd` multiplies
    /// two inputs of 8 columns into 32-bit sums, where the byte passes take two `vpmaddubsw` and
    /// a share of the widening for the same products. The weights are the signed `q`, so each
    /// block's sum is `task`'s after its `corr`: the same integers, scaled by the same float steps.
    ///
    /// # Safety
    /// As [`task`]; `a.wide` holds the rows (not empty) and `wide` the weights.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn task_wide(
        w: &Q4Weights,
        wide: &[i16],
        a: &Q8Rows,
        (r0, r1, g0, g1): (usize, usize, usize, usize),
        m: usize,
        out: *mut f32,
        epilogue: Epilogue,
    ) {
        let k = w.k;
        let kb = k / QB;
        let n = w.n;
        let real_groups = n / 16;
        debug_assert!(
            a.wide.len() >= r1.next_multiple_of(R) * k && wide.len() >= w.groups * k * 16
        );
        let mut r = r0;
        while r < r1 {
            for g in g0..g1.min(real_groups) {
                let mut res = [[_mm256_setzero_ps(); 2]; R];
                let wp = wide.as_ptr().add(g * k * 16);
                let sp = w.scales.as_ptr().add(g * kb * 16);
                let ap = a.wide.as_ptr().add(r * k);
                for b in 0..kb {
                    let mut acc = [[_mm256_setzero_si256(); 2]; R];
                    // Not unrolled, as in `task`.
                    for s in 0..std::hint::black_box(QB / 2) {
                        let kk2 = b * (QB / 2) + s;
                        let w0 = _mm256_loadu_si256(wp.add(kk2 * 32) as *const _);
                        let w1 = _mm256_loadu_si256(wp.add(kk2 * 32 + 16) as *const _);
                        for i in 0..R {
                            let av = _mm256_set1_epi32(std::ptr::read_unaligned(
                                ap.add(i * k + kk2 * 2) as *const i32,
                            ));
                            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(w0, av));
                            acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(w1, av));
                        }
                    }
                    let dw = [
                        _mm256_loadu_ps(sp.add(b * 16)),
                        _mm256_loadu_ps(sp.add(b * 16 + 8)),
                    ];
                    for i in 0..R {
                        let da = _mm256_set1_ps(*a.d.get_unchecked((r + i) * kb + b));
                        for h in 0..2 {
                            let f = _mm256_cvtepi32_ps(acc[i][h]);
                            res[i][h] = _mm256_fmadd_ps(_mm256_mul_ps(f, da), dw[h], res[i][h]);
                        }
                    }
                }
                store(&res, r, g, m, n, out, epilogue);
            }
            r += R;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
    fn noise(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    /// Random Q4_0 blocks: scales around 0.05, every nibble value used.
    fn blocks(n: usize, k: usize, seed: u64) -> Vec<u8> {
        let v = noise(n * k / QB * Q4_0_BLOCK_BYTES, seed);
        let mut out = Vec::new();
        for chunk in v.chunks_exact(Q4_0_BLOCK_BYTES) {
            let d = half::f16::from_f32(0.05 + 0.04 * chunk[0]);
            out.extend(d.to_le_bytes());
            out.extend(chunk[2..].iter().map(|x| ((x + 1.0) * 127.99) as u8));
        }
        out
    }

    #[test]
    fn packing_keeps_every_weight() {
        let (n, k) = (32, 64);
        let raw = blocks(n, k, 3);
        let w = Q4Weights::from_q4_0(&raw, n, k).unwrap();
        let t = crate::model::e5s1::RawTensor {
            shape: vec![n, k],
            data: crate::model::e5s1::RawData::Q4_0(raw),
        };
        let want = t.to_f32();
        for c in 0..n {
            for kk in 0..k {
                let (q, d) = w.at(c, kk);
                assert_eq!(q as f32 * d, want[c * k + kk], "({c}, {kk})");
            }
        }
    }

    #[test]
    fn quantized_rows_are_close_and_exact_at_the_maximum() {
        let mut x = noise(3 * 64, 9);
        // A block of zeros (its step is 0), quantized like any other by every body.
        x[64..96].fill(0.0);
        for precise in [false, true] {
            let q = Q8Rows::quantize(&x, 3, 64, precise);
            let step = if precise { 65024.0 } else { 254.0 };
            let mut scalar = Q8Rows::zeros(3, 64, precise);
            for r in 0..3 {
                let (qs, lo) = (
                    &mut scalar.qs[r * 64..][..64],
                    if precise {
                        &mut scalar.lo[r * 64..][..64]
                    } else {
                        &mut [][..]
                    },
                );
                quantize_row(
                    &x[r * 64..][..64],
                    qs,
                    lo,
                    &mut scalar.d[r * 2..][..2],
                    &mut scalar.corr[r * 2..][..2],
                );
            }
            assert_eq!(
                (&q.qs, &q.lo, &q.d, &q.corr),
                (&scalar.qs, &scalar.lo, &scalar.d, &scalar.corr)
            );
            for r in 0..3 {
                let back = q.dequantize_row(r);
                for b in 0..2 {
                    let blk = &x[r * 64 + b * 32..][..32];
                    let amax = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
                    for j in 0..32 {
                        let err = (back[b * 32 + j] - blk[j]).abs();
                        assert!(err <= amax / step * 1.001, "{err} > {}", amax / step);
                    }
                }
            }
        }
    }

    /// On AVX2, 16-bit activations held whole (`wide`, one `vpmaddwd`) give exactly the outputs of
    /// the two byte passes: the same integer sums, scaled the same way.
    #[test]
    fn sixteen_bit_values_held_whole_match_the_byte_passes_bit_for_bit() {
        let level = super::super::Level::Avx2;
        if !super::super::supports(level) {
            eprintln!("no AVX2 here: the kernel is not used");
            return;
        }
        for (m, n, k) in [(1, 16, 32), (6, 48, 96), (37, 96, 1536), (9, 1152, 384)] {
            let w = Q4Weights::from_q4_0(&blocks(n, k, (n + k) as u64), n, k).unwrap();
            let x: Vec<f32> = noise(m * k, 7 + m as u64).iter().map(|v| v * 5.0).collect();
            let mut whole = Q8Rows::quantize(&x, m, k, true);
            if whole.wide.is_empty() {
                // Made only where the AVX2 kernel is the one chosen: make it here.
                whole.wide = whole
                    .qs
                    .iter()
                    .zip(&whole.lo)
                    .map(|(&h, &l)| 256 * h as i16 + l as i16)
                    .collect();
            }
            let mut bytes = Q8Rows::quantize(&x, m, k, true);
            bytes.wide = Vec::new();
            let bias = noise(n, 8);
            for epi in [Epilogue::Bias(&bias), Epilogue::BiasGelu(&bias)] {
                let (mut a, mut b) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
                matmul_on(level, &w, &whole, m, &mut a, epi);
                matmul_on(level, &w, &bytes, m, &mut b, epi);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{m}x{n}x{k}");
            }
        }
    }

    #[test]
    fn kernel_matches_the_scalar_reference() {
        // Every kernel this CPU runs (an AVX-512 machine checks the AVX2 one too).
        let levels: Vec<_> = [super::super::Level::Avx512, super::super::Level::Avx2]
            .into_iter()
            .filter(|l| super::super::supports(*l))
            .collect();
        if levels.is_empty() {
            eprintln!("neither AVX-512 VNNI nor AVX2 here: the kernels are not used");
            return;
        }
        for (m, n, k) in [
            (1, 16, 32),
            (5, 48, 64),
            (13, 384, 384),
            (37, 96, 1536),
            (4, 1152, 384),
        ] {
            let w = Q4Weights::from_q4_0(&blocks(n, k, (n * k) as u64), n, k).unwrap();
            let x: Vec<f32> = noise(m * k, m as u64).iter().map(|v| v * 3.0).collect();
            for precise in [false, true] {
                let a = Q8Rows::quantize(&x, m, k, precise);
                let bias = noise(n, 5);
                let resid = noise(m * n, 6);
                for epi in [
                    Epilogue::Bias(&bias),
                    Epilogue::BiasGelu(&bias),
                    Epilogue::BiasResidual(&bias, &resid),
                ] {
                    let mut want = vec![0f32; m * n];
                    matmul_reference(&w, &a, m, &mut want, epi);
                    let scale = want.iter().fold(0f32, |s, v| s.max(v.abs()));
                    for &level in &levels {
                        let mut got = vec![f32::NAN; m * n];
                        matmul_on(level, &w, &a, m, &mut got, epi);
                        for (i, (x, y)) in want.iter().zip(&got).enumerate() {
                            assert!(
                                (x - y).abs() <= 1e-5 * scale,
                                "{level:?} {m}x{n}x{k} at {i}: {x} vs {y}"
                            );
                        }
                    }
                }
            }
        }
    }
}
