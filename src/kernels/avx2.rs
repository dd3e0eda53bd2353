//! AVX2 bodies of the quantized products, for CPUs without AVX-512 (AMD Zen 1-3, older Intel):
//! one weight row against up to [`MAX_ROWS`] activation rows, over all of the row's blocks, on the
//! same activation blocks as the AVX-512 bodies ([`super::ActBlock`]). Each 32-value chunk of a
//! weight block is unpacked once into bytes and used for every activation row: `vpmaddubsw` (u8
//! weights x i8 activations, adjacent pairs summed to i16, no saturation: |pair| <= 63 * 127 * 2),
//! then `vpmaddwd` with the chunk's sub-scale(s) into 32-bit sums, converted to f32 once per
//! block. Batches (prefill) run through the same bodies, [`MAX_ROWS`] tokens per pass over a
//! weight row, so candle's repacked copy of the weights is never made on these CPUs either.

use core::arch::x86_64::*;

use super::avx512::{f16_at, prefetch_block, PREFETCH};
use super::{ActBlock, Q4K_BYTES, Q6K_BYTES};

/// Activation rows per pass over a weight row.
pub const MAX_ROWS: usize = 8;

/// Whether this CPU has what these bodies use.
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Dot products of the Q4_K weight row `w` (`kb` blocks) with `rows` activation rows of `a`.
pub fn q4k_rows(w: &[u8], kb: usize, a: &[ActBlock], rows: usize, sums: &mut [f32; MAX_ROWS]) {
    debug_assert!(w.len() >= kb * Q4K_BYTES && a.len() >= rows * kb);
    // SAFETY: `super::level()` (checked before any product) found the features; the slices hold
    // the blocks read.
    unsafe {
        match rows {
            1 => q4k::<1>(w, kb, a, sums),
            2 => q4k::<2>(w, kb, a, sums),
            3 => q4k::<3>(w, kb, a, sums),
            4 => q4k::<4>(w, kb, a, sums),
            5 => q4k::<5>(w, kb, a, sums),
            6 => q4k::<6>(w, kb, a, sums),
            7 => q4k::<7>(w, kb, a, sums),
            _ => q4k::<8>(w, kb, a, sums),
        }
    }
}

/// Dot products of the Q6_K weight row `w` (`kb` blocks) with `rows` activation rows of `a`.
pub fn q6k_rows(w: &[u8], kb: usize, a: &[ActBlock], rows: usize, sums: &mut [f32; MAX_ROWS]) {
    debug_assert!(w.len() >= kb * Q6K_BYTES && a.len() >= rows * kb);
    // SAFETY: as in `q4k_rows`.
    unsafe {
        match rows {
            1 => q6k::<1>(w, kb, a, sums),
            2 => q6k::<2>(w, kb, a, sums),
            3 => q6k::<3>(w, kb, a, sums),
            4 => q6k::<4>(w, kb, a, sums),
            5 => q6k::<5>(w, kb, a, sums),
            6 => q6k::<6>(w, kb, a, sums),
            7 => q6k::<7>(w, kb, a, sums),
            _ => q6k::<8>(w, kb, a, sums),
        }
    }
}

/// The sum of the 8 lanes.
#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Where the activations of Q4_K chunk `c` (values `32c..32c + 32`) sit in an [`ActBlock`] quantized
/// for Q4_K (its chunks are stored in the order 0, 2, 1, 3, 4, 6, 5, 7, which is its own inverse).
const SLOT: [usize; 8] = [0, 2, 1, 3, 4, 6, 5, 7];

/// Byte-shuffle masks that spread 16-bit lane `i` of a 128-bit half to all 8 of its lanes.
#[allow(clippy::declare_interior_mutable_const)]
const SCALE_SHUFFLE: [__m256i; 8] = scale_shuffles(false);

/// Byte-shuffle masks for Q6_K chunk `c`: the low half's 16-bit lanes all take scale `2c`, the high
/// half's scale `2c + 1`, from a vector holding scales `8 * (c / 4)..` in both halves.
#[allow(clippy::declare_interior_mutable_const)]
const Q6K_SCALE_SHUFFLE: [__m256i; 8] = scale_shuffles(true);

/// Mask `i` spreads 16-bit lane `i` of each half (`q6k`: lane `2i mod 8` to the low half, lane
/// `2i + 1 mod 8` to the high half).
const fn scale_shuffles(q6k: bool) -> [__m256i; 8] {
    let mut out = [[0u8; 32]; 8];
    let mut i = 0;
    while i < 8 {
        let mut b = 0;
        while b < 32 {
            let lane = if q6k { (2 * i + b / 16) % 8 } else { i };
            out[i][b] = (2 * lane + b % 2) as u8;
            b += 1;
        }
        i += 1;
    }
    // SAFETY: `[u8; 32]` and `__m256i` have the same size, and every bit pattern is valid.
    unsafe { std::mem::transmute::<[[u8; 32]; 8], [__m256i; 8]>(out) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn q4k<const R: usize>(w: &[u8], kb: usize, a: &[ActBlock], sums: &mut [f32; MAX_ROWS]) {
    let mask = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..kb {
        let blk = w.as_ptr().add(b * Q4K_BYTES);
        prefetch_block(blk.wrapping_add(PREFETCH), Q4K_BYTES);
        let d = f16_at(blk);
        let dmin = f16_at(blk.add(2));
        // ggml's unpacking of the 6-bit scales and mins into 8 bytes each.
        let s = blk.add(4);
        let u0 = std::ptr::read_unaligned(s as *const u32);
        let u1 = std::ptr::read_unaligned(s.add(4) as *const u32);
        let u2 = std::ptr::read_unaligned(s.add(8) as *const u32);
        const K1: u32 = 0x3f3f_3f3f;
        const K2: u32 = 0x0f0f_0f0f;
        const K3: u32 = 0x0303_0303;
        let m1 = ((u2 >> 4) & K2) | (((u1 >> 6) & K3) << 4);
        let m0 = u1 & K1;
        let s1 = (u2 & K2) | (((u0 >> 6) & K3) << 4);
        let s0 = u0 & K1;
        // The 8 sub-scales as 16-bit lanes, in both halves; each chunk's is spread to every lane
        // by one byte shuffle (a scalar broadcast took a move across to the vector unit as well).
        let scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(
            (s0 as u64 | (s1 as u64) << 32) as i64,
        )));
        // dmin * minimum per sub-block.
        let mins = _mm256_mul_ps(
            _mm256_set1_ps(dmin),
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(
                (m0 as u64 | (m1 as u64) << 32) as i64,
            ))),
        );
        let mut isum = [_mm256_setzero_si256(); R];
        for j in 0..4 {
            // Low nibbles: chunk 2j; high nibbles: chunk 2j + 1.
            let q = _mm256_loadu_si256(blk.add(16 + 32 * j) as *const _);
            let lo = _mm256_and_si256(q, mask);
            let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
            let sl = _mm256_shuffle_epi8(scales, SCALE_SHUFFLE[2 * j]);
            let sh = _mm256_shuffle_epi8(scales, SCALE_SHUFFLE[2 * j + 1]);
            let (pl, ph) = (32 * SLOT[2 * j], 32 * SLOT[2 * j + 1]);
            for (r, isum) in isum.iter_mut().enumerate() {
                let ap = (*a.as_ptr().add(r * kb + b)).qs.as_ptr();
                let al = _mm256_load_si256(ap.add(pl) as *const _);
                let ah = _mm256_load_si256(ap.add(ph) as *const _);
                let pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, al), sl);
                let ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ah), sh);
                *isum = _mm256_add_epi32(*isum, _mm256_add_epi32(pl, ph));
            }
        }
        let dv = _mm256_set1_ps(d);
        for (r, acc) in acc.iter_mut().enumerate() {
            let act = &*a.as_ptr().add(r * kb + b);
            let scale = _mm256_mul_ps(dv, _mm256_set1_ps(act.d));
            *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), scale, *acc);
            *acc = _mm256_fnmadd_ps(mins, _mm256_load_ps(act.dbs32.as_ptr()), *acc);
        }
    }
    for r in 0..R {
        sums[r] = hsum(acc[r]);
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn q6k<const R: usize>(w: &[u8], kb: usize, a: &[ActBlock], sums: &mut [f32; MAX_ROWS]) {
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(0x03);
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..kb {
        let blk = w.as_ptr().add(b * Q6K_BYTES);
        prefetch_block(blk.wrapping_add(PREFETCH), Q6K_BYTES);
        let d = f16_at(blk.add(208));
        let sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(blk.add(192) as *const _));
        // Scales 0-7 and 8-15 as 16-bit lanes in both halves, for the per-chunk shuffles below.
        let scales = [
            _mm256_permute2x128_si256::<0x00>(sc, sc),
            _mm256_permute2x128_si256::<0x11>(sc, sc),
        ];
        // The values are stored +32: each row's sums start at -32 * sum(scale * activation sum
        // per 16).
        let mut isum = [_mm256_setzero_si256(); R];
        for (r, isum) in isum.iter_mut().enumerate() {
            let act = &*a.as_ptr().add(r * kb + b);
            let off = _mm256_madd_epi16(sc, _mm256_load_si256(act.bs16.as_ptr() as *const _));
            *isum = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        }
        for h in 0..2 {
            // Values 128h + l (l < 32) take ql[l] low nibble and qh[l] bits 0-1; + 32: ql[l + 32]
            // low, qh bits 2-3; + 64: ql[l] high, qh bits 4-5; + 96: ql[l + 32] high, bits 6-7.
            let ql0 = _mm256_loadu_si256(blk.add(64 * h) as *const _);
            let ql1 = _mm256_loadu_si256(blk.add(64 * h + 32) as *const _);
            let qh = _mm256_loadu_si256(blk.add(128 + 32 * h) as *const _);
            let chunks = [
                _mm256_or_si256(
                    _mm256_and_si256(ql0, m4),
                    _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(ql1, m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4),
                ),
            ];
            for (k, wv) in chunks.iter().enumerate() {
                // Chunk c = 4h + k: its first 16 values take scale 2c, the next 16 scale 2c + 1,
                // and `vpmaddubsw` keeps them in the low and high 128-bit lanes.
                let c = 4 * h + k;
                let sv = _mm256_shuffle_epi8(scales[c / 4], Q6K_SCALE_SHUFFLE[c]);
                for (r, isum) in isum.iter_mut().enumerate() {
                    let ap = (*a.as_ptr().add(r * kb + b)).qs.as_ptr();
                    let av = _mm256_load_si256(ap.add(32 * c) as *const _);
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(*wv, av), sv);
                    *isum = _mm256_add_epi32(*isum, p);
                }
            }
        }
        let dv = _mm256_set1_ps(d);
        for (r, acc) in acc.iter_mut().enumerate() {
            let act = &*a.as_ptr().add(r * kb + b);
            let scale = _mm256_mul_ps(dv, _mm256_set1_ps(act.d));
            *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), scale, *acc);
        }
    }
    for r in 0..R {
        sums[r] = hsum(acc[r]);
    }
}

/// [`super::quantize_block`] with the scans and the rounding eight values at a time: the same
/// block, bit for bit (the largest magnitude's first value sets the scale; halves round away
/// from zero as `f32::round` does). `false`, with `blk` untouched, for a block holding NaN, which
/// the scalar code handles.
pub fn quantize_block(x: &[f32; super::QK], blk: &mut ActBlock, kind: super::Kind) -> bool {
    // SAFETY: called only where `available()` said yes (`super::quantize_rows`).
    unsafe { quantize_block_avx2(x, blk, kind) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_block_avx2(x: &[f32; super::QK], blk: &mut ActBlock, kind: super::Kind) -> bool {
    const V: usize = super::QK / 8;
    let p = x.as_ptr();
    let sign = _mm256_set1_ps(-0.0);
    let mut most = _mm256_setzero_ps();
    let mut nan = _mm256_setzero_ps();
    for i in 0..V {
        let v = _mm256_loadu_ps(p.add(8 * i));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        most = _mm256_max_ps(most, _mm256_andnot_ps(sign, v));
    }
    if _mm256_movemask_ps(nan) != 0 {
        return false;
    }
    let m = _mm_max_ps(_mm256_castps256_ps128(most), _mm256_extractf128_ps(most, 1));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    if amax == 0.0 {
        *blk = ActBlock::ZERO;
        return true;
    }
    // The first value of that magnitude, sign and all.
    let target = _mm256_set1_ps(amax);
    let mut max = amax;
    for i in 0..V {
        let v = _mm256_loadu_ps(p.add(8 * i));
        let hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, v), target, _CMP_EQ_OQ));
        if hit != 0 {
            max = x[8 * i + hit.trailing_zeros() as usize];
            break;
        }
    }
    let iscale = -127f32 / max;
    let s = _mm256_set1_ps(iscale);
    let half = _mm256_set1_ps(0.5);
    let one = _mm256_set1_ps(1.0);
    let (lo, hi) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
    // Rounded as `f32::round`: truncated, then one step away from zero when the part cut off (exact
    // in f32) is at least a half.
    let round = |i: usize| {
        let v = _mm256_mul_ps(s, _mm256_loadu_ps(p.add(8 * i)));
        let t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        let cut = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
        let step = _mm256_and_ps(
            _mm256_cmp_ps(cut, half, _CMP_GE_OQ),
            _mm256_or_ps(one, _mm256_and_ps(sign, v)),
        );
        let r = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, step), lo), hi);
        _mm256_cvttps_epi32(r)
    };
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let mut q = [0i8; super::QK];
    for c in 0..V / 4 {
        let a = _mm256_packs_epi32(round(4 * c), round(4 * c + 1));
        let b = _mm256_packs_epi32(round(4 * c + 2), round(4 * c + 3));
        let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), order);
        _mm256_storeu_si256(q.as_mut_ptr().add(32 * c) as *mut __m256i, bytes);
    }
    super::finish_block(&q, 1.0 / iscale, blk, kind);
    true
}
