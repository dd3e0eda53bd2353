//! Quantized matrix products for the CPU, on weights kept in their GGUF block format.
//!
//! Why this exists: candle's `QMatMul` on x86 repacks Q4_K (and, for batches, Q6_K) weights into
//! its own tiles the first time they are used and keeps them *beside* the GGUF copy, a third more
//! bytes than the blocks they come from; that doubles the chat model's weight memory and makes the
//! one-token product (decode, memory-bound) stream a third more bytes than the file holds. Here the
//! weights stay as the GGUF's Q4_K / Q6_K blocks (one copy in memory, streamed once per product),
//! the activations are quantized to 8 bits per value with one scale per 256 (as candle's and
//! llama.cpp's Q8_K; once for all the products that read the same rows,
//! [`QLinear::forward_rows_each`]), and the dot products run as int8 x uint8 multiply-adds
//! (`vpmaddubsw`) whose 16-bit pairs are scaled by the blocks' sub-scales and summed in 32 bits
//! (AVX-512 VNNI `vpdpwssd`), up to 8 activation rows against one weight row at a time
//! ([`matmul_blocks`]: decode and guess checks). Larger batches (prefill) put 16 tokens in the
//! vector lanes instead ([`matmul_panels`]): a block of a weight row is unpacked once into bytes
//! and float sub-scales, and one `vpdpbusd` multiplies 4 of its values (broadcast) with the same
//! 4 positions of 16 tokens, 2 weight rows x 32 tokens per pass. Either way the output columns are
//! split across the rayon pool's threads, and nothing is kept beside the GGUF blocks.
//!
//! Dispatch is at run time (`is_x86_feature_detected!`, [`level`]): on CPUs with AVX2 but no
//! AVX-512 (AMD Zen 1-3, older Intel) the same activation blocks go through `avx2`'s bodies, one
//! weight row against up to 8 token rows for batches too (`vpmaddubsw` then `vpmaddwd`); with
//! neither, or for a weight type other than Q4_K and Q6_K, [`QLinear`] falls back to candle's
//! `QMatMul`. The arithmetic is the same as candle's up to float summation order
//! (`tests/kernels.rs` holds the two together).

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Result, Storage, Tensor};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod q4_0;
pub mod vmath;

/// Values per quantization block (Q4_K, Q6_K and the activations' Q8_K-like blocks).
pub const QK: usize = 256;
/// Bytes of one Q4_K block: `d`, `dmin` (f16), 12 bytes of packed 6-bit scales and mins, 128 of
/// 4-bit values.
pub const Q4K_BYTES: usize = 144;
/// Bytes of one Q6_K block: 128 of low 4 bits, 64 of high 2 bits, 16 signed scales, `d` (f16).
pub const Q6K_BYTES: usize = 210;

/// One block of 256 activations quantized to 8 bits: `x ~ d * qs`, with the sums of `qs` over
/// each 16 values (the Q6_K offset of 32 is applied through them) and `d` times the sums over each
/// 32 (the Q4_K minimums). For Q4_K weights `qs` is stored in the order the weights' nibbles come
/// out of a 64-byte load (see [`Kind::Q4K`]).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct ActBlock {
    pub qs: [i8; QK],
    pub bs16: [i16; 16],
    pub dbs32: [f32; 8],
    pub d: f32,
}

impl ActBlock {
    const ZERO: Self = Self {
        qs: [0; QK],
        bs16: [0; 16],
        dbs32: [0.0; 8],
        d: 0.0,
    };
}

/// The weight types with a fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Q4_K: a 64-byte load of the 4-bit values holds values 0..32 and 64..96 in its low nibbles and
    /// 32..64 and 96..128 in its high nibbles (likewise for 128..256), so the activations are
    /// stored with their 32-value chunks in the order 0, 2, 1, 3, 4, 6, 5, 7.
    Q4K,
    /// Q6_K: the values come out in their natural order.
    Q6K,
}

impl Kind {
    fn of(dtype: GgmlDType) -> Option<Self> {
        match dtype {
            GgmlDType::Q4K => Some(Self::Q4K),
            GgmlDType::Q6K => Some(Self::Q6K),
            _ => None,
        }
    }

    fn block_bytes(self) -> usize {
        match self {
            Self::Q4K => Q4K_BYTES,
            Self::Q6K => Q6K_BYTES,
        }
    }
}

/// Which bodies the Q4_K / Q6_K products run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// AVX-512 F, BW and VNNI: row tiles for a few tokens, panels (tokens in the lanes) for more.
    Avx512,
    /// AVX2 and FMA: row tiles whatever the number of tokens.
    Avx2,
}

/// The fastest bodies this CPU runs, or `None` (then candle's `QMatMul` does the products).
/// `SIFT_NO_FAST_KERNELS` set: `None`; `SIFT_AVX2_KERNELS` set: AVX2 even where AVX-512 is there
/// (to compare the two on one machine).
pub fn level() -> Option<Level> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static LEVEL: OnceLock<Option<Level>> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            if std::env::var_os("SIFT_NO_FAST_KERNELS").is_some() {
                None
            } else if available() && std::env::var_os("SIFT_AVX2_KERNELS").is_none() {
                Some(Level::Avx512)
            } else if avx2::available() {
                Some(Level::Avx2)
            } else {
                None
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Whether this CPU runs the AVX-512 kernels (AVX-512 F, BW and VNNI): the chat model's batch
/// panels need them, and the encoder's forward and products use them where they are there.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static OK: OnceLock<bool> = OnceLock::new();
        *OK.get_or_init(|| {
            std::env::var_os("SIFT_NO_FAST_KERNELS").is_none()
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Quantizes `m` rows of `k` values (`k` a multiple of 256) into `m * k / 256` blocks laid out for
/// `kind`. Same rounding as candle's Q8_K: the value of largest magnitude maps to -127.
pub fn quantize_rows(x: &[f32], m: usize, k: usize, kind: Kind) -> Vec<ActBlock> {
    let kb = k / QK;
    let mut out = vec![ActBlock::ZERO; m * kb];
    let work = |(row, blocks): (usize, &mut [ActBlock])| {
        for (b, blk) in blocks.iter_mut().enumerate() {
            let off = row * k + b * QK;
            quantize_block(&x[off..off + QK], blk, kind);
        }
    };
    if m >= 4 {
        out.par_chunks_mut(kb).enumerate().for_each(work);
    } else {
        out.chunks_mut(kb).enumerate().for_each(work);
    }
    out
}

fn quantize_block(x: &[f32], blk: &mut ActBlock, kind: Kind) {
    #[cfg(target_arch = "x86_64")]
    if let Ok(x) = <&[f32; QK]>::try_from(x) {
        if avx2::available() && avx2::quantize_block(x, blk, kind) {
            return;
        }
    }
    quantize_block_scalar(x, blk, kind)
}

/// The reference [`quantize_block`], one value at a time (candle's Q8_K rounding).
fn quantize_block_scalar(x: &[f32], blk: &mut ActBlock, kind: Kind) {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        *blk = ActBlock::ZERO;
        return;
    }
    let iscale = -127f32 / max;
    let mut q = [0i8; QK];
    for (q, &v) in q.iter_mut().zip(x) {
        *q = (iscale * v).round().clamp(-128.0, 127.0) as i8;
    }
    finish_block(&q, 1.0 / iscale, blk, kind);
}

/// Fills `blk` from the quantized values `q` (natural order) and their scale `d`: the sums, and
/// `qs` in the order `kind` reads it.
fn finish_block(q: &[i8; QK], d: f32, blk: &mut ActBlock, kind: Kind) {
    for j in 0..16 {
        blk.bs16[j] = q[j * 16..j * 16 + 16].iter().map(|&v| v as i16).sum();
    }
    blk.d = d;
    for j in 0..8 {
        blk.dbs32[j] = blk.d * (blk.bs16[2 * j] as i32 + blk.bs16[2 * j + 1] as i32) as f32;
    }
    match kind {
        Kind::Q6K => blk.qs = *q,
        Kind::Q4K => {
            const ORDER: [usize; 8] = [0, 2, 1, 3, 4, 6, 5, 7];
            for (slot, &chunk) in ORDER.iter().enumerate() {
                blk.qs[slot * 32..slot * 32 + 32].copy_from_slice(&q[chunk * 32..chunk * 32 + 32]);
            }
        }
    }
}

/// `out[r * n + c] = dot(weight row c, activation row r)` for `m` rows, with the weights `n` rows
/// of `kb` blocks of `kind` in `w`. The columns are split across the rayon pool.
///
/// # Panics
/// If the slices are shorter than the shapes say, or the fast kernels are not [`available`].
pub fn matmul_blocks(
    kind: Kind,
    w: &[u8],
    n: usize,
    kb: usize,
    acts: &[ActBlock],
    m: usize,
    out: &mut [f32],
) {
    let level = level().expect("the fast kernels need AVX2 or AVX-512");
    matmul_blocks_on(level, kind, w, n, kb, acts, m, out)
}

/// Whether this CPU can run the bodies of `level` (whatever [`level`] chose).
pub fn supports(level: Level) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match level {
            Level::Avx512 => available(),
            Level::Avx2 => avx2::available(),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        false
    }
}

/// [`matmul_blocks`] on the bodies of `level` (so that tests on an AVX-512 machine check the
/// AVX2 ones too).
///
/// # Panics
/// As [`matmul_blocks`], or if this CPU does not [`supports`] `level`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_blocks_on(
    level: Level,
    kind: Kind,
    w: &[u8],
    n: usize,
    kb: usize,
    acts: &[ActBlock],
    m: usize,
    out: &mut [f32],
) {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and only initialized values are written.
    let out = unsafe { &mut *(out as *mut [f32] as *mut [std::mem::MaybeUninit<f32>]) };
    let product = Product {
        kind,
        w,
        n,
        kb,
        acts,
        m,
    };
    products_into(level, std::slice::from_ref(&product), &mut [out]);
}

/// The operands of one product: `n` weight rows of `kb` blocks of `kind` in `w`, `m` activation
/// rows in `acts`.
struct Product<'a> {
    kind: Kind,
    w: &'a [u8],
    n: usize,
    kb: usize,
    acts: &'a [ActBlock],
    m: usize,
}

/// Each of `products` into its `outs` (which need not be initialized: every value is written),
/// as the tasks of one parallel pass: the output columns of every product split into tasks, all
/// of them shared out to the rayon pool together (a small product alone, such as the keys' 256
/// columns, leaves threads waiting at its end).
fn products_into(
    level: Level,
    products: &[Product],
    outs: &mut [&mut [std::mem::MaybeUninit<f32>]],
) {
    assert_eq!(products.len(), outs.len());
    assert!(supports(level), "this CPU cannot run the {level:?} kernels");
    let threads = rayon::current_num_threads().max(1);
    // Per product: bytes of a weight row, columns per task, tasks, where its outputs go.
    let splits: Vec<(usize, usize, usize, SyncPtr)> = products
        .iter()
        .zip(outs.iter_mut())
        .map(|(p, out)| {
            check_shapes(p.kind, p.w, p.n, p.kb, p.acts, p.m, out.len());
            let row_bytes = p.kb * p.kind.block_bytes();
            // Columns per task: for one row (decode), one even share per thread so the weights
            // stream once with every core; for a batch, enough columns that a task's weights
            // stay in L2 while the row tiles pass over them, and enough tasks to balance the
            // threads.
            let cols = if p.m == 1 {
                p.n.div_ceil(threads * 4).max(16)
            } else {
                (256 * 1024 / row_bytes)
                    .clamp(8, 64)
                    .min(p.n.div_ceil(threads * 2).max(8))
            };
            let ptr = SyncPtr(out.as_mut_ptr().cast::<f32>());
            (row_bytes, cols, p.n.div_ceil(cols), ptr)
        })
        .collect();
    let jobs: Vec<(usize, usize)> = splits
        .iter()
        .enumerate()
        .flat_map(|(i, s)| (0..s.2).map(move |t| (i, t)))
        .collect();
    let run = |&(i, t): &(usize, usize)| {
        let p = &products[i];
        let (row_bytes, cols, _, out) = splits[i];
        let c0 = t * cols;
        let c1 = p.n.min(c0 + cols);
        // SAFETY: each task writes only its own columns c0..c1 of every row of its product's
        // output, which holds `m * n` values (checked above).
        unsafe {
            tile(
                level,
                p.kind,
                p.w,
                row_bytes,
                c0,
                c1,
                p.kb,
                p.acts,
                p.m,
                p.n,
                out.get(),
            )
        }
    };
    if jobs.len() == 1 || threads == 1 {
        jobs.iter().for_each(run);
    } else {
        jobs.par_iter().for_each(run);
    }
}

/// The preconditions of [`matmul_blocks`] and [`matmul_panels`]: the kernels can run here, and the
/// slices hold what the shapes say.
fn check_shapes(
    kind: Kind,
    w: &[u8],
    n: usize,
    kb: usize,
    acts: &[ActBlock],
    m: usize,
    out: usize,
) {
    assert!(level().is_some(), "the fast kernels need AVX2 or AVX-512");
    assert!(
        w.len() >= n * kb * kind.block_bytes(),
        "weights shorter than {n} rows"
    );
    assert!(acts.len() >= m * kb, "activations shorter than {m} rows");
    assert!(out >= m * n, "output shorter than {m} x {n}");
}

/// A vector of `len` all-zero values of a plain-number type.
///
/// # Safety
/// All-zero bytes must be a valid `T`.
unsafe fn zeroed_vec<T>(len: usize) -> Vec<T> {
    let mut v = Vec::<T>::with_capacity(len);
    std::ptr::write_bytes(v.as_mut_ptr(), 0, len);
    v.set_len(len);
    v
}

/// [`matmul_blocks`] for batches: tokens in the vector lanes (see `avx512::panel_x2`). `acts`
/// must be quantized in natural order ([`Kind::Q6K`]'s) whatever the weight type.
#[cfg(target_arch = "x86_64")]
pub fn matmul_panels(
    kind: Kind,
    w: &[u8],
    n: usize,
    kb: usize,
    acts: &[ActBlock],
    m: usize,
    out: &mut [f32],
) {
    use avx512::{PanelBlock, WeightBlock, PANEL};
    check_shapes(kind, w, n, kb, acts, m, out.len());
    assert!(available(), "the batch panels need AVX-512 BW and VNNI");
    let bb = kind.block_bytes();
    // Panels of 16 tokens, an even number of them (the last ones padded with zeros).
    let np = m.div_ceil(PANEL).next_multiple_of(2);
    // SAFETY: panel blocks are plain numbers.
    let mut panels: Vec<PanelBlock> = unsafe { zeroed_vec(np * kb) };
    panels
        .par_chunks_mut(kb)
        .enumerate()
        .for_each(|(p, blocks)| {
            for (b, pb) in blocks.iter_mut().enumerate() {
                let rows: Vec<&ActBlock> = (p * PANEL..m.min(p * PANEL + PANEL))
                    .map(|r| &acts[r * kb + b])
                    .collect();
                avx512::fill_panel(pb, &rows);
            }
        });
    const ROWS: usize = 32;
    const X: usize = avx512::PANEL_ROWS;
    let out_ptr = SyncPtr(out.as_mut_ptr());
    let panels = &panels;
    (0..n.div_ceil(ROWS)).into_par_iter().for_each(|task| {
        let c0 = task * ROWS;
        let c1 = n.min(c0 + ROWS);
        // Unpacked weight rows, a multiple of X (the last one repeated, its results dropped).
        let rows = (c1 - c0).next_multiple_of(X);
        // SAFETY: weight blocks are plain numbers.
        let mut wb: Vec<WeightBlock> = unsafe { zeroed_vec(rows * kb) };
        for r in 0..rows {
            let c = (c0 + r).min(c1 - 1);
            for b in 0..kb {
                let blk = &w[(c * kb + b) * bb..(c * kb + b + 1) * bb];
                // SAFETY: `available()` checked the features; `blk` is a whole block.
                unsafe {
                    match kind {
                        Kind::Q4K => avx512::unpack_q4k(blk, &mut wb[r * kb + b]),
                        Kind::Q6K => avx512::unpack_q6k(blk, &mut wb[r * kb + b]),
                    }
                }
            }
        }
        let mut res = [[[0f32; PANEL]; 2]; X];
        for p in (0..np).step_by(2) {
            let pp = [
                &panels[p * kb..(p + 1) * kb],
                &panels[(p + 1) * kb..(p + 2) * kb],
            ];
            for r in (0..rows).step_by(X) {
                let ww: [&[WeightBlock]; X] =
                    std::array::from_fn(|x| &wb[(r + x) * kb..(r + x + 1) * kb]);
                // SAFETY: `available()` checked the features; the slices hold `kb` blocks.
                unsafe { avx512::panel_x2(kind == Kind::Q4K, ww, pp, kb, &mut res) };
                for (x, per_panel) in res.iter().enumerate() {
                    let c = c0 + r + x;
                    if c >= c1 {
                        continue;
                    }
                    for (y, lanes) in per_panel.iter().enumerate() {
                        for (t, v) in lanes.iter().enumerate() {
                            let tok = (p + y) * PANEL + t;
                            if tok < m {
                                // SAFETY: this task alone writes columns c0..c1.
                                unsafe { *out_ptr.get().add(tok * n + c) = *v };
                            }
                        }
                    }
                }
            }
        }
    });
}

/// An output buffer shared by the tasks of one product, each of which writes its own elements.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(pub(crate) *mut f32);
// SAFETY: the tasks that share the pointer write disjoint elements.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}
impl SyncPtr {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Columns `c0..c1` of every row.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    level: Level,
    kind: Kind,
    w: &[u8],
    row_bytes: usize,
    c0: usize,
    c1: usize,
    kb: usize,
    acts: &[ActBlock],
    m: usize,
    n: usize,
    out: *mut f32,
) {
    #[cfg(target_arch = "x86_64")]
    {
        const R: usize = avx512::MAX_ROWS;
        const _: () = assert!(avx2::MAX_ROWS == R);
        let body = match (level, kind) {
            (Level::Avx512, Kind::Q4K) => avx512::q4k_rows,
            (Level::Avx512, Kind::Q6K) => avx512::q6k_rows,
            (Level::Avx2, Kind::Q4K) => avx2::q4k_rows,
            (Level::Avx2, Kind::Q6K) => avx2::q6k_rows,
        };
        let mut r0 = 0;
        while r0 < m {
            let rows = (m - r0).min(R);
            let a = &acts[r0 * kb..(r0 + rows) * kb];
            for c in c0..c1 {
                let wr = &w[c * row_bytes..(c + 1) * row_bytes];
                let mut sums = [0f32; R];
                body(wr, kb, a, rows, &mut sums);
                for (r, s) in sums[..rows].iter().enumerate() {
                    *out.add((r0 + r) * n + c) = *s;
                }
            }
            r0 += rows;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (level, kind, w, row_bytes, c0, c1, kb, acts, m, n, out);
        unreachable!("level() is None off x86_64");
    }
}

/// Up to this many activation rows go through [`matmul_blocks`] (one weight row against up to 8
/// token rows), more through [`matmul_panels`] (tokens in the lanes). Row tiles in GGUF order
/// beat candle's repacked tiles for a few rows but fall behind from about 16 (one thread,
/// `examples/kernel_bench.rs` on a shared machine: 8 rows 0.82x candle's time, 16 rows 1.11x,
/// 64 rows 1.45x); the panels were about level with candle's at 256 rows (0.86x-0.88x in two
/// noisy runs).
pub const FAST_MAX_ROWS: usize = 12;

/// `SIFT_CANDLE_BATCHES=1`: batches go through candle's `QMatMul` (for comparisons).
fn candle_for_batches() -> bool {
    use std::sync::OnceLock;
    static C: OnceLock<bool> = OnceLock::new();
    *C.get_or_init(|| std::env::var_os("SIFT_CANDLE_BATCHES").is_some())
}

/// A weight's GGUF blocks as bytes: read in place where the model file is memory-mapped, so
/// loading copies nothing (on 2 cores, copying the chat model's blocks out of the file was most
/// of its load), or held (rows picked out of a mapped weight, [`QLinear::from_bytes`]).
#[derive(Clone)]
pub struct Blocks {
    bytes: BlockBytes,
    dtype: GgmlDType,
    shape: Vec<usize>,
}

#[derive(Clone)]
enum BlockBytes {
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
    Held(Arc<[u8]>),
}

/// Bytes of `elems` values of `dtype`, when they are whole blocks.
fn blocks_len(dtype: GgmlDType, elems: usize) -> Result<usize> {
    if !elems.is_multiple_of(dtype.block_size()) {
        candle_core::bail!("{elems} values are not whole {dtype:?} blocks");
    }
    Ok(elems / dtype.block_size() * dtype.type_size())
}

impl Blocks {
    /// The weight of `dtype` and `shape` whose blocks start `start` bytes into `map`.
    pub fn mapped(
        map: Arc<memmap2::Mmap>,
        start: usize,
        dtype: GgmlDType,
        shape: Vec<usize>,
    ) -> Result<Self> {
        let len = blocks_len(dtype, shape.iter().product())?;
        if start.checked_add(len).is_none_or(|end| end > map.len()) {
            candle_core::bail!(
                "{len} bytes of blocks at offset {start} run past the file's {} bytes",
                map.len()
            );
        }
        Ok(Self {
            bytes: BlockBytes::Mapped { map, start, len },
            dtype,
            shape,
        })
    }

    /// The weight of `dtype` and `shape` whose blocks are `bytes`.
    pub fn held(bytes: Vec<u8>, dtype: GgmlDType, shape: Vec<usize>) -> Result<Self> {
        let len = blocks_len(dtype, shape.iter().product())?;
        if bytes.len() != len {
            candle_core::bail!("{} bytes for {len} bytes of blocks", bytes.len());
        }
        Ok(Self {
            bytes: BlockBytes::Held(bytes.into()),
            dtype,
            shape,
        })
    }

    /// The blocks of a tensor candle holds (a copy of them).
    pub fn of_tensor(t: &QTensor) -> Result<Self> {
        Self::held(t.data()?.into_owned(), t.dtype(), t.shape().dims().to_vec())
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            BlockBytes::Mapped { map, start, len } => &map[*start..*start + *len],
            BlockBytes::Held(bytes) => bytes,
        }
    }

    pub fn dtype(&self) -> GgmlDType {
        self.dtype
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// A tensor candle holds, with a copy of the blocks: for norms and biases, other devices,
    /// and types the fast kernels do not take.
    pub fn to_qtensor(&self, device: &Device) -> Result<QTensor> {
        candle_core::quantized::ggml_file::qtensor_from_ggml(
            self.dtype,
            self.bytes(),
            self.shape.clone(),
            device,
        )
    }

    /// Row `i` of a `[rows, k]` table, dequantized into `out` (`k` values).
    pub fn dequantize_row(&self, i: usize, out: &mut [f32]) -> Result<()> {
        let [rows, k] = self.shape[..] else {
            candle_core::bail!("a table of shape {:?} has no rows", self.shape);
        };
        if i >= rows {
            candle_core::bail!("row {i} of a table of {rows}");
        }
        match Kind::of(self.dtype) {
            Some(kind) if k % QK == 0 => {
                dequantize_blocks_row(kind, self.bytes(), k, i, out);
                Ok(())
            }
            _ => dequantize_row(&self.to_qtensor(&Device::Cpu)?, i, out),
        }
    }
}

/// The shape the fast kernels take a `[n, k]` weight of `dtype` on `device` in, when they do.
fn fast_shape(dtype: GgmlDType, shape: &[usize], device: &Device) -> Option<(Kind, usize, usize)> {
    match (Kind::of(dtype), shape, device) {
        (Some(kind), &[n, k], Device::Cpu) if level().is_some() && k % QK == 0 => {
            Some((kind, n, k))
        }
        _ => None,
    }
}

/// A linear layer without bias on quantized weights: the fast kernels for Q4_K and Q6_K on CPUs
/// that have them, candle's `QMatMul` otherwise (other types, other devices, other CPUs, or
/// `SIFT_CANDLE_BATCHES` set for batches on a weight candle holds).
pub struct QLinear {
    fast: Option<(Kind, usize, usize)>,
    weight: Weight,
}

enum Weight {
    /// Blocks the fast kernels read where they lie.
    Blocks(Blocks),
    /// A tensor candle holds; its `QMatMul` runs what the fast kernels do not.
    Candle {
        tensor: Arc<QTensor>,
        fallback: QMatMul,
    },
}

impl QLinear {
    pub fn new(weight: QTensor) -> Result<Self> {
        let fast = fast_shape(weight.dtype(), weight.shape().dims(), &weight.device());
        let tensor = Arc::new(weight);
        let fallback = QMatMul::from_arc(tensor.clone())?;
        Ok(Self {
            fast,
            weight: Weight::Candle { tensor, fallback },
        })
    }

    /// A layer on `blocks`, read in place when the fast kernels take them on `device`, else
    /// copied into a tensor candle holds.
    pub fn from_blocks(blocks: Blocks, device: &Device) -> Result<Self> {
        match fast_shape(blocks.dtype, &blocks.shape, device) {
            Some(fast) => Ok(Self {
                fast: Some(fast),
                weight: Weight::Blocks(blocks),
            }),
            None => Self::new(blocks.to_qtensor(device)?),
        }
    }

    /// Whether products run on the fast kernels.
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    fn candle(&self, x: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::Candle { fallback, .. } => fallback.forward(x),
            Weight::Blocks(_) => candle_core::bail!("no candle product for blocks read in place"),
        }
    }

    /// `x [.., k]` times the transposed weight: `[.., n]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let Some((_, n, k)) = self.fast else {
            return self.candle(x);
        };
        let held = matches!(self.weight, Weight::Candle { .. });
        let dims = x.dims();
        if dims.last() != Some(&k) {
            if held {
                return self.candle(x);
            }
            candle_core::bail!("a product of {dims:?} with a weight of {k} columns");
        }
        let x = match x.dtype() {
            candle_core::DType::F32 => x.contiguous()?,
            _ if held => return self.candle(x),
            _ => x.to_dtype(candle_core::DType::F32)?.contiguous()?,
        };
        let m = x.elem_count() / k;
        if m == 0 || (held && m > FAST_MAX_ROWS && candle_for_batches()) {
            return self.candle(&x);
        }
        let out = {
            let (storage, layout) = x.storage_and_layout();
            let Storage::Cpu(cpu) = &*storage else {
                drop(storage);
                return self.candle(&x);
            };
            let all = cpu.as_slice::<f32>()?;
            let start = layout.start_offset();
            self.forward_rows(&all[start..start + m * k], m)?
        };
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("checked above") = n;
        Tensor::from_vec(out, shape, x.device())
    }

    /// `m` rows of `k` values in `x` times the transposed weight: `m` rows of `n`, on the fast
    /// kernels (an error for a layer that is not [`Self::is_fast`]).
    pub fn forward_rows(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        let [out] = Self::forward_rows_each([self], x, m)?;
        Ok(out)
    }

    /// The same rows `x` times each of `layers`' weights, as [`Self::forward_rows`] does one, in
    /// one go: the activations are quantized once for the products that read them in the same
    /// order, and the row tiles of all the products are tasks of one parallel pass (a layer's
    /// queries, keys and values; its gate and up projections).
    pub fn forward_rows_each<const N: usize>(
        layers: [&QLinear; N],
        x: &[f32],
        m: usize,
    ) -> Result<[Vec<f32>; N]> {
        let mut shapes = [(Kind::Q4K, 0, 0); N];
        for (shape, layer) in shapes.iter_mut().zip(layers) {
            let Some(fast) = layer.fast else {
                candle_core::bail!("the fast kernels do not take this weight");
            };
            if x.len() != m * fast.2 {
                candle_core::bail!("{} values are not {m} rows of {}", x.len(), fast.2);
            }
            *shape = fast;
        }
        // Batches on AVX-512 go through the panels (tokens in the lanes), which take the
        // activations in natural order; AVX2 has row tiles only.
        let panels = m > FAST_MAX_ROWS && level() == Some(Level::Avx512);
        let order = |kind| if panels { Kind::Q6K } else { kind };
        let mut quantized: Vec<(Kind, Vec<ActBlock>)> = Vec::with_capacity(2);
        for &(kind, _, k) in &shapes {
            if !quantized.iter().any(|(o, _)| *o == order(kind)) {
                quantized.push((order(kind), quantize_rows(x, m, k, order(kind))));
            }
        }
        let acts = |kind| {
            let (_, acts) = quantized
                .iter()
                .find(|(o, _)| *o == order(kind))
                .expect("quantized above");
            acts.as_slice()
        };
        let data = layers
            .iter()
            .map(|layer| layer.data())
            .collect::<Result<Vec<_>>>()?;
        if panels {
            let outs = std::array::from_fn(|i| {
                let (kind, n, k) = shapes[i];
                let mut out = vec![0f32; m * n];
                #[cfg(target_arch = "x86_64")]
                matmul_panels(kind, &data[i], n, k / QK, acts(kind), m, &mut out);
                out
            });
            return Ok(outs);
        }
        // Not zeroed first: the row tiles write every value (a batch's outputs are megabytes,
        // zeroed or faulted in fresh on every product otherwise).
        let level = level().expect("a fast layer runs where the kernels do");
        let mut outs: [Vec<f32>; N] = std::array::from_fn(|i| Vec::with_capacity(m * shapes[i].1));
        let products: Vec<Product> = shapes
            .iter()
            .zip(&data)
            .map(|(&(kind, n, k), w)| Product {
                kind,
                w,
                n,
                kb: k / QK,
                acts: acts(kind),
                m,
            })
            .collect();
        let mut spare: Vec<_> = outs
            .iter_mut()
            .zip(&shapes)
            .map(|(out, &(_, n, _))| &mut out.spare_capacity_mut()[..m * n])
            .collect();
        products_into(level, &products, &mut spare);
        for (out, &(_, n, _)) in outs.iter_mut().zip(&shapes) {
            // SAFETY: `products_into` wrote all `m * n` values.
            unsafe { out.set_len(m * n) };
        }
        Ok(outs)
    }

    fn data(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match &self.weight {
            Weight::Blocks(b) => Ok(std::borrow::Cow::Borrowed(b.bytes())),
            Weight::Candle { tensor, .. } => tensor.data(),
        }
    }

    pub fn dtype(&self) -> GgmlDType {
        match &self.weight {
            Weight::Blocks(b) => b.dtype,
            Weight::Candle { tensor, .. } => tensor.dtype(),
        }
    }

    /// `[n, k]`: output rows, input columns.
    pub fn dims(&self) -> Result<(usize, usize)> {
        match &self.weight {
            Weight::Blocks(b) => match b.shape[..] {
                [n, k] => Ok((n, k)),
                _ => candle_core::bail!("a weight of shape {:?}", b.shape),
            },
            Weight::Candle { tensor, .. } => tensor.shape().dims2(),
        }
    }

    pub fn device(&self) -> Device {
        match &self.weight {
            Weight::Blocks(_) => Device::Cpu,
            Weight::Candle { tensor, .. } => tensor.device(),
        }
    }

    /// For a weight about to be replaced: the pages of blocks read in place in a file leave the
    /// process's memory now (a later read would fault them back in from the file).
    pub fn let_go(&self) {
        if let Weight::Blocks(Blocks {
            bytes: BlockBytes::Mapped { map, start, len },
            ..
        }) = &self.weight
        {
            // SAFETY: the pages are the file's; nothing is lost, a later read faults them in again.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, *start, *len)
            };
        }
    }

    /// Bytes the weight's blocks take.
    pub fn storage_bytes(&self) -> usize {
        match &self.weight {
            Weight::Blocks(b) => b.bytes().len(),
            Weight::Candle { tensor, .. } => tensor.storage_size_in_bytes(),
        }
    }

    /// The bytes of the weight's output rows `rows`, in that order (for [`Self::from_bytes`]).
    pub fn row_bytes(&self, rows: &[u32]) -> Result<Vec<u8>> {
        let (n, k) = self.dims()?;
        let row = blocks_len(self.dtype(), k)?;
        let data = self.data()?;
        let mut out = Vec::with_capacity(rows.len() * row);
        for &r in rows {
            let r = r as usize;
            if r >= n {
                candle_core::bail!("row {r} of a weight with {n} rows");
            }
            out.extend_from_slice(&data[r * row..(r + 1) * row]);
        }
        Ok(out)
    }

    /// A layer on a `[bytes / row size, k]` weight of `dtype` laid out in `bytes`.
    pub fn from_bytes(bytes: Vec<u8>, dtype: GgmlDType, k: usize, device: &Device) -> Result<Self> {
        let row = blocks_len(dtype, k)?;
        if row == 0 || !bytes.len().is_multiple_of(row) {
            candle_core::bail!("{} bytes are not rows of {k} {dtype:?} values", bytes.len());
        }
        let n = bytes.len() / row;
        Self::from_blocks(Blocks::held(bytes, dtype, vec![n, k])?, device)
    }
}

/// Row `i` of a quantized `[rows, k]` table, dequantized into `out` (`k` values). Q4_K and Q6_K
/// are decoded here (one row, not the table); other types go through candle.
pub fn dequantize_row(t: &QTensor, i: usize, out: &mut [f32]) -> Result<()> {
    let (_, k) = t.shape().dims2()?;
    let kind = Kind::of(t.dtype());
    match (kind, t.device()) {
        (Some(kind), Device::Cpu) if k % QK == 0 => {
            dequantize_blocks_row(kind, &t.data()?, k, i, out);
            Ok(())
        }
        _ => {
            let all = t.dequantize(&Device::Cpu)?;
            let row = all.get(i)?.to_vec1::<f32>()?;
            out[..k].copy_from_slice(&row);
            Ok(())
        }
    }
}

/// Row `i` of the `k`-column table of `kind` blocks in `data`, into `out`.
fn dequantize_blocks_row(kind: Kind, data: &[u8], k: usize, i: usize, out: &mut [f32]) {
    let row_bytes = k / QK * kind.block_bytes();
    let row = &data[i * row_bytes..(i + 1) * row_bytes];
    for (b, y) in out[..k].chunks_exact_mut(QK).enumerate() {
        let blk = &row[b * kind.block_bytes()..(b + 1) * kind.block_bytes()];
        match kind {
            Kind::Q4K => dequant_q4k(blk, y),
            Kind::Q6K => dequant_q6k(blk, y),
        }
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// The 8 sub-scales and 8 sub-minimums of a Q4_K block (6 bits each, packed in 12 bytes).
pub(crate) fn q4k_scales(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..8 {
        if j < 4 {
            sc[j] = s[j] & 63;
            mn[j] = s[j + 4] & 63;
        } else {
            sc[j] = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
            mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        }
    }
    (sc, mn)
}

fn dequant_q4k(blk: &[u8], y: &mut [f32]) {
    let d = f16_at(blk, 0);
    let dmin = f16_at(blk, 2);
    let (sc, mn) = q4k_scales(&blk[4..16]);
    let qs = &blk[16..144];
    for j in 0..4 {
        let q = &qs[32 * j..32 * j + 32];
        let (d1, m1) = (d * sc[2 * j] as f32, dmin * mn[2 * j] as f32);
        let (d2, m2) = (d * sc[2 * j + 1] as f32, dmin * mn[2 * j + 1] as f32);
        for l in 0..32 {
            y[64 * j + l] = d1 * (q[l] & 0xF) as f32 - m1;
            y[64 * j + 32 + l] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

fn dequant_q6k(blk: &[u8], y: &mut [f32]) {
    let d = f16_at(blk, 208);
    for half in 0..2 {
        let ql = &blk[64 * half..64 * half + 64];
        let qh = &blk[128 + 32 * half..128 + 32 * half + 32];
        let sc = &blk[192 + 8 * half..192 + 8 * half + 8];
        let y = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}
