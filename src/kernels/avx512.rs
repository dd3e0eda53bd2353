//! AVX-512 (BW + VNNI) bodies of the quantized products: one weight row against up to
//! [`MAX_ROWS`] activation rows, over all of the row's blocks. Each weight block is unpacked once
//! (nibbles or 6-bit values into bytes, sub-scales spread over 16-bit lanes) and used for every
//! activation row. Per block and row: `vpmaddubsw` (u8 weights x i8 activations, adjacent pairs
//! summed to i16, no saturation: |pair| <= 63 * 127 * 2) then `vpdpwssd` with the sub-scales, so
//! the whole block sums in one i32 vector, converted to f32 once per block. The weights are
//! prefetched [`PREFETCH`] bytes ahead of the block in use: the one-row products stream the whole
//! model from memory per token, and the hardware prefetchers alone kept them at two thirds of the
//! bandwidth.

use core::arch::x86_64::*;

use super::{ActBlock, Q4K_BYTES, Q6K_BYTES};

/// Activation rows per pass over a weight row.
pub const MAX_ROWS: usize = 8;

/// Dot products of the Q4_K weight row `w` (`kb` blocks) with `rows` activation rows of `a`.
pub fn q4k_rows(w: &[u8], kb: usize, a: &[ActBlock], rows: usize, sums: &mut [f32; MAX_ROWS]) {
    debug_assert!(w.len() >= kb * Q4K_BYTES && a.len() >= rows * kb);
    // SAFETY: `super::available()` (checked before any product) found the features; the slices
    // hold the blocks read.
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

/// How far ahead of the block being multiplied the weights are prefetched, in bytes. The
/// hardware prefetchers alone left the one-row products at about two thirds of the memory
/// bandwidth (`kernel_bench` stream: 145 ms per token's weights without, 96-105 ms with 1.5-3 KB
/// ahead, on 2 shared cores; 4 KB was slower again).
pub(super) const PREFETCH: usize = 2048;

/// Software prefetch of the cache lines of a block `bytes` long at `p` (which may lie past the
/// weights: a prefetch never faults).
#[inline(always)]
pub(super) unsafe fn prefetch_block(p: *const u8, bytes: usize) {
    let mut off = 0;
    while off < bytes {
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off) as *const i8);
        off += 64;
    }
    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(bytes - 1) as *const i8);
}

#[inline(always)]
pub(super) unsafe fn f16_at(p: *const u8) -> f32 {
    half::f16::from_bits(std::ptr::read_unaligned(p as *const u16)).to_f32()
}

/// Index vector for `vpermw`: 16-bit lanes 0..16 take element `a`, lanes 16..32 element `b`.
#[inline(always)]
unsafe fn two_halves(a: i16, b: i16) -> __m512i {
    _mm512_mask_blend_epi16(0xFFFF_0000, _mm512_set1_epi16(a), _mm512_set1_epi16(b))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn q4k<const R: usize>(w: &[u8], kb: usize, a: &[ActBlock], sums: &mut [f32; MAX_ROWS]) {
    let mask = _mm512_set1_epi8(0x0F);
    // Activation chunk order 0,2,1,3,4,6,5,7: vector k holds sub-blocks (IDX[k].0, IDX[k].1).
    let idx = [
        two_halves(0, 2),
        two_halves(1, 3),
        two_halves(4, 6),
        two_halves(5, 7),
    ];
    let mut acc = [_mm512_setzero_ps(); R];
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
        let scales = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((s0 as u64 | (s1 as u64) << 32) as i64));
        // dmin * minimum per sub-block, in lanes 0..8 (lanes 8..16 zero).
        let mins = _mm512_zextps256_ps512(_mm256_mul_ps(
            _mm256_set1_ps(dmin),
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(
                (m0 as u64 | (m1 as u64) << 32) as i64,
            ))),
        ));
        let dv = _mm512_set1_ps(d);
        let scales = _mm512_castsi128_si512(scales);
        let sv = [
            _mm512_permutexvar_epi16(idx[0], scales),
            _mm512_permutexvar_epi16(idx[1], scales),
            _mm512_permutexvar_epi16(idx[2], scales),
            _mm512_permutexvar_epi16(idx[3], scales),
        ];
        let q0 = _mm512_loadu_si512(blk.add(16) as *const _);
        let q1 = _mm512_loadu_si512(blk.add(80) as *const _);
        let wv = [
            _mm512_and_si512(q0, mask),
            _mm512_and_si512(_mm512_srli_epi16(q0, 4), mask),
            _mm512_and_si512(q1, mask),
            _mm512_and_si512(_mm512_srli_epi16(q1, 4), mask),
        ];
        for (r, acc) in acc.iter_mut().enumerate() {
            let act = &*a.as_ptr().add(r * kb + b);
            let ap = act.qs.as_ptr();
            let mut isum = _mm512_setzero_si512();
            for k in 0..4 {
                let av = _mm512_load_si512(ap.add(64 * k) as *const _);
                isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(wv[k], av), sv[k]);
            }
            let scale = _mm512_mul_ps(dv, _mm512_set1_ps(act.d));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, *acc);
            let dbs = _mm512_zextps256_ps512(_mm256_load_ps(act.dbs32.as_ptr()));
            *acc = _mm512_fnmadd_ps(mins, dbs, *acc);
        }
    }
    for r in 0..R {
        sums[r] = _mm512_reduce_add_ps(acc[r]);
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn q6k<const R: usize>(w: &[u8], kb: usize, a: &[ActBlock], sums: &mut [f32; MAX_ROWS]) {
    let m4 = _mm512_set1_epi8(0x0F);
    let m2 = _mm512_set1_epi8(0x03);
    // 16-bit lane j of the vector for values 64h .. 64h + 64 covers values 64h + 2j, 2j + 1: scale
    // 4h + j / 8.
    let idx = [
        _mm512_set_epi16(
            3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
            0, 0, 0,
        ),
        _mm512_set_epi16(
            7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4,
            4, 4, 4,
        ),
        _mm512_set_epi16(
            11, 11, 11, 11, 11, 11, 11, 11, 10, 10, 10, 10, 10, 10, 10, 10, 9, 9, 9, 9, 9, 9, 9, 9,
            8, 8, 8, 8, 8, 8, 8, 8,
        ),
        _mm512_set_epi16(
            15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 14, 14, 14, 14, 14, 14, 13, 13, 13, 13, 13, 13,
            13, 13, 12, 12, 12, 12, 12, 12, 12, 12,
        ),
    ];
    let mut acc = [_mm512_setzero_ps(); R];
    for b in 0..kb {
        let blk = w.as_ptr().add(b * Q6K_BYTES);
        prefetch_block(blk.wrapping_add(PREFETCH), Q6K_BYTES);
        let d = f16_at(blk.add(208));
        let dv = _mm512_set1_ps(d);
        let sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(blk.add(192) as *const _));
        let sc512 = _mm512_castsi256_si512(sc);
        let sv = [
            _mm512_permutexvar_epi16(idx[0], sc512),
            _mm512_permutexvar_epi16(idx[1], sc512),
            _mm512_permutexvar_epi16(idx[2], sc512),
            _mm512_permutexvar_epi16(idx[3], sc512),
        ];
        let mut wv = [_mm512_setzero_si512(); 4];
        for h in 0..2 {
            let ql = _mm512_loadu_si512(blk.add(64 * h) as *const _);
            let qh = _mm256_loadu_si256(blk.add(128 + 32 * h) as *const _);
            // Bytes 0..32 pair with ql[l] (values l), bytes 32..64 with ql[l + 32] (values l + 32).
            let qh01 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
            let qh23 = _mm512_srli_epi16(qh01, 4);
            let lo = _mm512_or_si512(
                _mm512_and_si512(ql, m4),
                _mm512_slli_epi16(_mm512_and_si512(qh01, m2), 4),
            );
            let hi = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                _mm512_slli_epi16(_mm512_and_si512(qh23, m2), 4),
            );
            wv[2 * h] = lo;
            wv[2 * h + 1] = hi;
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let act = &*a.as_ptr().add(r * kb + b);
            let ap = act.qs.as_ptr();
            // The values are stored +32: subtract 32 * sum(scale * activation sum per 16).
            let off = _mm256_madd_epi16(sc, _mm256_load_si256(act.bs16.as_ptr() as *const _));
            let mut isum = _mm512_zextsi256_si512(_mm256_sub_epi32(
                _mm256_setzero_si256(),
                _mm256_slli_epi32(off, 5),
            ));
            for k in 0..4 {
                let av = _mm512_load_si512(ap.add(64 * k) as *const _);
                isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(wv[k], av), sv[k]);
            }
            let scale = _mm512_mul_ps(dv, _mm512_set1_ps(act.d));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, *acc);
        }
    }
    for r in 0..R {
        sums[r] = _mm512_reduce_add_ps(acc[r]);
    }
}

// ---------------------------------------------------------------------------------------------
// Batches (prefill): tokens in the vector lanes. 16 activation rows are interleaved by groups of 4
// values ("panels"), a weight row's block is unpacked once into bytes with float sub-scales, and
// one `vpdpbusd` multiplies 4 weight values (broadcast) with the same 4 positions of 16 tokens.
// The sub-block scale is then one scalar per 16 lanes, applied after 32 (Q4_K) or 16 (Q6_K)
// values; the Q4_K minimums and the Q6_K offset go through the activations' per-token sums.
// ---------------------------------------------------------------------------------------------

/// Tokens per panel (the 16 f32 / i32 lanes of a vector).
pub const PANEL: usize = 16;

/// One block (256 positions) of 16 tokens' activations.
#[repr(C, align(64))]
pub struct PanelBlock {
    /// `[group of 4 positions][token][4]`.
    pub qs: [[i8; 64]; 64],
    /// Each token's scale.
    pub d: [f32; PANEL],
    /// `d * sum(q)` over each 32 positions (Q4_K minimums), per token.
    pub dbs32: [[f32; PANEL]; 8],
    /// `-32 * sum(q)` over each 16 positions (the Q6_K offset), per token.
    pub nbs16: [[i32; PANEL]; 16],
}

/// One weight row's block, unpacked.
#[repr(C, align(64))]
pub struct WeightBlock {
    /// The values as unsigned bytes, natural order (Q4_K 0..16, Q6_K 0..64).
    pub q: [u8; 256],
    /// `d * scale` per sub-block (8 of 32 for Q4_K, 16 of 16 for Q6_K).
    pub sc: [f32; 16],
    /// `dmin * min` per sub-block (Q4_K).
    pub mn: [f32; 8],
}

/// Fills `p` from up to 16 activation blocks in natural order (missing tokens stay zero).
pub fn fill_panel(p: &mut PanelBlock, acts: &[&ActBlock]) {
    for (t, a) in acts.iter().enumerate() {
        for g in 0..64 {
            p.qs[g][4 * t..4 * t + 4].copy_from_slice(&a.qs[4 * g..4 * g + 4]);
        }
        p.d[t] = a.d;
        for j in 0..8 {
            p.dbs32[j][t] = a.dbs32[j];
        }
        for j in 0..16 {
            p.nbs16[j][t] = -32 * a.bs16[j] as i32;
        }
    }
}

/// Unpacks a Q4_K block.
///
/// # Safety
/// The CPU has AVX-512 F and BW; `blk` holds a whole block.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn unpack_q4k(blk: &[u8], w: &mut WeightBlock) {
    debug_assert!(blk.len() >= Q4K_BYTES);
    let d = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
    let dmin = half::f16::from_le_bytes([blk[2], blk[3]]).to_f32();
    let (sc, mn) = super::q4k_scales(&blk[4..16]);
    for j in 0..8 {
        w.sc[j] = d * sc[j] as f32;
        w.mn[j] = dmin * mn[j] as f32;
    }
    let mask = _mm256_set1_epi8(0x0F);
    for j in 0..4 {
        let v = _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * j) as *const _);
        let q = w.q.as_mut_ptr().add(64 * j);
        _mm256_storeu_si256(q as *mut _, _mm256_and_si256(v, mask));
        _mm256_storeu_si256(
            q.add(32) as *mut _,
            _mm256_and_si256(_mm256_srli_epi16(v, 4), mask),
        );
    }
}

/// Unpacks a Q6_K block.
///
/// # Safety
/// The CPU has AVX-512 F and BW; `blk` holds a whole block.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn unpack_q6k(blk: &[u8], w: &mut WeightBlock) {
    debug_assert!(blk.len() >= Q6K_BYTES);
    let d = half::f16::from_le_bytes([blk[208], blk[209]]).to_f32();
    for j in 0..16 {
        w.sc[j] = d * (blk[192 + j] as i8) as f32;
    }
    let m4 = _mm512_set1_epi8(0x0F);
    let m2 = _mm512_set1_epi8(0x03);
    for h in 0..2 {
        let ql = _mm512_loadu_si512(blk.as_ptr().add(64 * h) as *const _);
        let qh = _mm256_loadu_si256(blk.as_ptr().add(128 + 32 * h) as *const _);
        let qh01 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        let qh23 = _mm512_srli_epi16(qh01, 4);
        let lo = _mm512_or_si512(
            _mm512_and_si512(ql, m4),
            _mm512_slli_epi16(_mm512_and_si512(qh01, m2), 4),
        );
        let hi = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
            _mm512_slli_epi16(_mm512_and_si512(qh23, m2), 4),
        );
        _mm512_storeu_si512(w.q.as_mut_ptr().add(128 * h) as *mut _, lo);
        _mm512_storeu_si512(w.q.as_mut_ptr().add(128 * h + 64) as *mut _, hi);
    }
}

#[inline(always)]
unsafe fn bcast_w(w: &WeightBlock, at: usize) -> __m512i {
    _mm512_set1_epi32(std::ptr::read_unaligned(w.q.as_ptr().add(at) as *const i32))
}

/// Weight rows per pass of [`panel_x2`] over two panels. Each 4-byte group of the two panels is
/// loaded once for all of them: with two rows the products read the panels from L2 for every pair
/// of rows, and were bound by that traffic.
pub const PANEL_ROWS: usize = 4;

/// One sub-block group of [`panel_x2`]: the int8 products of weight rows `w` with panels `p` over
/// the 4-byte groups `groups`, summed onto `is` (zero, or the Q6_K offset terms), then scaled by each
/// weight row's sub-scale into `accb`.
#[inline(always)]
unsafe fn group_x2<const X: usize>(
    mut is: [[__m512i; 2]; X],
    w: [&WeightBlock; X],
    p: [&PanelBlock; 2],
    groups: std::ops::Range<usize>,
    scales: [f32; X],
    accb: &mut [[__m512; 2]; X],
) {
    for g in groups {
        let a = [
            _mm512_load_si512(p[0].qs[g].as_ptr() as *const _),
            _mm512_load_si512(p[1].qs[g].as_ptr() as *const _),
        ];
        for x in 0..X {
            let b = bcast_w(w[x], 4 * g);
            for y in 0..2 {
                is[x][y] = _mm512_dpbusd_epi32(is[x][y], b, a[y]);
            }
        }
    }
    for x in 0..X {
        let s = _mm512_set1_ps(scales[x]);
        for y in 0..2 {
            accb[x][y] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[x][y]), s, accb[x][y]);
        }
    }
}

/// `X` weight rows (`kb` unpacked blocks each) against two panels (`p0`, `p1`: `kb` blocks each):
/// `out[x][y]` = the 16 tokens of panel y times weight row x.
///
/// # Safety
/// The CPU has AVX-512 F, BW and VNNI; the slices hold `kb` blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn panel_x2<const X: usize>(
    q4k: bool,
    w: [&[WeightBlock]; X],
    p: [&[PanelBlock]; 2],
    kb: usize,
    out: &mut [[[f32; PANEL]; 2]; X],
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; X];
    for b in 0..kb {
        let wb: [&WeightBlock; X] = std::array::from_fn(|x| &w[x][b]);
        let (p0, p1) = (&p[0][b], &p[1][b]);
        let mut accb = [[_mm512_setzero_ps(); 2]; X];
        if q4k {
            for j in 0..8 {
                let start = [[_mm512_setzero_si512(); 2]; X];
                let scales = std::array::from_fn(|x| wb[x].sc[j]);
                group_x2(start, wb, [p0, p1], 8 * j..8 * j + 8, scales, &mut accb);
            }
        } else {
            for j in 0..16 {
                let o = [
                    _mm512_load_si512(p0.nbs16[j].as_ptr() as *const _),
                    _mm512_load_si512(p1.nbs16[j].as_ptr() as *const _),
                ];
                let scales = std::array::from_fn(|x| wb[x].sc[j]);
                group_x2([o; X], wb, [p0, p1], 4 * j..4 * j + 4, scales, &mut accb);
            }
        }
        let d = [_mm512_load_ps(p0.d.as_ptr()), _mm512_load_ps(p1.d.as_ptr())];
        for x in 0..X {
            for y in 0..2 {
                acc[x][y] = _mm512_fmadd_ps(accb[x][y], d[y], acc[x][y]);
            }
        }
        if q4k {
            for j in 0..8 {
                let s = [
                    _mm512_load_ps(p0.dbs32[j].as_ptr()),
                    _mm512_load_ps(p1.dbs32[j].as_ptr()),
                ];
                for x in 0..X {
                    let m = _mm512_set1_ps(wb[x].mn[j]);
                    for y in 0..2 {
                        acc[x][y] = _mm512_fnmadd_ps(m, s[y], acc[x][y]);
                    }
                }
            }
        }
    }
    for x in 0..X {
        for y in 0..2 {
            _mm512_storeu_ps(out[x][y].as_mut_ptr(), acc[x][y]);
        }
    }
}
