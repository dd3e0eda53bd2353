//! `exp`, the exact (erf) GELU and softmax on 16 lanes at a time (8 on CPUs with AVX2 only), to
//! f32 accuracy, for the encoder's CPU forward.
//!
//! Why this exists: candle computes BERT's GELU with a scalar `erf` on one thread (an eighth of the
//! encoder's time on 2 cores) and its softmax with scalar `exp`. A tanh-style GELU would be faster
//! still but is a different function from the one e5 was trained with; these keep the function and
//! its accuracy. `erfc` is Numerical Recipes' `erfcc` (a Chebyshev fit, relative error below 1.2e-7
//! everywhere), so `GELU(x) = x/2 * erfc(-x/sqrt 2)` keeps its relative accuracy for negative `x`
//! too; `exp` is a Cephes-style range reduction with a degree-6 polynomial and `scalef`. The scalar
//! `*_reference` functions are the same formulas, one value at a time, for the tests and the
//! scalar reference product.

/// `exp(x)` by the formula [`exp16`] vectorises.
pub fn exp_reference(x: f32) -> f32 {
    let x = x.clamp(-104.0, 88.7);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = n.mul_add(-EXP_C1, x);
    let r = n.mul_add(-EXP_C2, r);
    let mut p = EXP_P[0];
    for c in &EXP_P[1..] {
        p = p.mul_add(r, *c);
    }
    let p = p.mul_add(r * r, r + 1.0);
    p * 2f32.powi(n as i32)
}

/// `x/2 * (1 + erf(x / sqrt 2))` by the formula [`gelu16`] vectorises.
pub fn gelu_reference(x: f32) -> f32 {
    let z = (x * std::f32::consts::FRAC_1_SQRT_2).abs().min(10.0);
    let t = 1.0 / z.mul_add(0.5, 1.0);
    let mut p = ERFC_P[0];
    for c in &ERFC_P[1..] {
        p = p.mul_add(t, *c);
    }
    // erfc(z) = t * exp(-z^2 + p(t)).
    let q = t * exp_reference((-z).mul_add(z, p));
    let one_plus_erf = if x < 0.0 { q } else { 2.0 - q };
    0.5 * x * one_plus_erf
}

const EXP_C1: f32 = 0.693_359_4;
const EXP_C2: f32 = -2.121_944_4e-4;
/// Cephes' `expf` polynomial, highest power first.
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    0.166_666_65,
    0.5,
];
/// Numerical Recipes' `erfcc` coefficients, highest power of `t` first.
const ERFC_P: [f32; 10] = [
    0.170_872_77,
    -0.822_152_23,
    1.488_515_9,
    -1.135_204,
    0.278_868_07,
    -0.186_288_06,
    0.096_784_18,
    0.374_091_96,
    1.000_023_7,
    -1.265_512_2,
];

#[cfg(target_arch = "x86_64")]
pub use simd::*;

/// The same formulas on 8 lanes, for CPUs with AVX2 and FMA but no AVX-512.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use core::arch::x86_64::*;

    use super::{ERFC_P, EXP_C1, EXP_C2, EXP_P};

    /// `exp` of 8 lanes. `2^n` is applied as two factors, each a normal float, so that results
    /// below the normal range round once, as AVX-512's `scalef` does.
    ///
    /// # Safety
    /// AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp8(x: __m256) -> __m256 {
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(-104.0)),
            _mm256_set1_ps(88.7),
        );
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_C1), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_C2), r);
        let mut p = _mm256_set1_ps(EXP_P[0]);
        for c in &EXP_P[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
        }
        let p = _mm256_fmadd_ps(
            p,
            _mm256_mul_ps(r, r),
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        let ni = _mm256_cvtps_epi32(n);
        let n1 = _mm256_srai_epi32::<1>(ni);
        let n2 = _mm256_sub_epi32(ni, n1);
        let pow = |e: __m256i| {
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                e,
                _mm256_set1_epi32(127),
            )))
        };
        _mm256_mul_ps(_mm256_mul_ps(p, pow(n1)), pow(n2))
    }

    /// The exact GELU of 8 lanes.
    ///
    /// # Safety
    /// AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gelu8(x: __m256) -> __m256 {
        let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF));
        let z = _mm256_min_ps(
            _mm256_and_ps(
                _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2)),
                abs,
            ),
            _mm256_set1_ps(10.0),
        );
        let t = _mm256_div_ps(
            _mm256_set1_ps(1.0),
            _mm256_fmadd_ps(z, _mm256_set1_ps(0.5), _mm256_set1_ps(1.0)),
        );
        let mut p = _mm256_set1_ps(ERFC_P[0]);
        for c in &ERFC_P[1..] {
            p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(*c));
        }
        let q = _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));
        let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
        let one_plus_erf = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0), q), q, neg);
        _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5), x), one_plus_erf)
    }

    /// Softmax of `x` in place (any length; the tail past whole vectors in scalar code).
    ///
    /// # Safety
    /// AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax(x: &mut [f32]) {
        let n = x.len();
        let whole = n - n % 8;
        let p = x.as_mut_ptr();
        let mut max = f32::NEG_INFINITY;
        let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
        for i in (0..whole).step_by(8) {
            mv = _mm256_max_ps(mv, _mm256_loadu_ps(p.add(i)));
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), mv);
        for v in lanes.iter().chain(&x[whole..]) {
            max = max.max(*v);
        }
        let maxv = _mm256_set1_ps(max);
        let mut sum = _mm256_setzero_ps();
        for i in (0..whole).step_by(8) {
            let v = exp8(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), maxv));
            sum = _mm256_add_ps(sum, v);
            _mm256_storeu_ps(p.add(i), v);
        }
        _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
        let mut total: f32 = lanes.iter().sum();
        for v in &mut x[whole..] {
            *v = super::exp_reference(*v - max);
            total += *v;
        }
        let inv = 1.0 / total;
        let invv = _mm256_set1_ps(inv);
        for i in (0..whole).step_by(8) {
            _mm256_storeu_ps(p.add(i), _mm256_mul_ps(_mm256_loadu_ps(p.add(i)), invv));
        }
        for v in &mut x[whole..] {
            *v *= inv;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    use super::{ERFC_P, EXP_C1, EXP_C2, EXP_P};

    /// `exp` of 16 lanes.
    ///
    /// # Safety
    /// AVX-512 F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp16(x: __m512) -> __m512 {
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-104.0)),
            _mm512_set1_ps(88.7),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_C1), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_C2), r);
        let mut p = _mm512_set1_ps(EXP_P[0]);
        for c in &EXP_P[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(*c));
        }
        let p = _mm512_fmadd_ps(
            p,
            _mm512_mul_ps(r, r),
            _mm512_add_ps(r, _mm512_set1_ps(1.0)),
        );
        _mm512_scalef_ps(p, n)
    }

    /// The exact GELU of 16 lanes.
    ///
    /// # Safety
    /// AVX-512 F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gelu16(x: __m512) -> __m512 {
        let z = _mm512_min_ps(
            _mm512_abs_ps(_mm512_mul_ps(
                x,
                _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
            )),
            _mm512_set1_ps(10.0),
        );
        let t = _mm512_div_ps(
            _mm512_set1_ps(1.0),
            _mm512_fmadd_ps(z, _mm512_set1_ps(0.5), _mm512_set1_ps(1.0)),
        );
        let mut p = _mm512_set1_ps(ERFC_P[0]);
        for c in &ERFC_P[1..] {
            p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(*c));
        }
        let q = _mm512_mul_ps(t, exp16(_mm512_fnmadd_ps(z, z, p)));
        let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
        let one_plus_erf = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.0), q), q);
        _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5), x), one_plus_erf)
    }

    /// Softmax of `x` in place (any length).
    ///
    /// # Safety
    /// AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn softmax(x: &mut [f32]) {
        let n = x.len();
        let p = x.as_mut_ptr();
        let mask = |i: usize| -> __mmask16 {
            let left = n - i;
            if left >= 16 {
                0xFFFF
            } else {
                ((1u32 << left) - 1) as __mmask16
            }
        };
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut i = 0;
        while i < n {
            let v = _mm512_mask_loadu_ps(_mm512_set1_ps(f32::NEG_INFINITY), mask(i), p.add(i));
            max = _mm512_max_ps(max, v);
            i += 16;
        }
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
        let mut sum = _mm512_setzero_ps();
        i = 0;
        while i < n {
            let k = mask(i);
            let v = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p.add(i)), max));
            let v = _mm512_maskz_mov_ps(k, v);
            sum = _mm512_add_ps(sum, v);
            _mm512_mask_storeu_ps(p.add(i), k, v);
            i += 16;
        }
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
        i = 0;
        while i < n {
            let k = mask(i);
            let v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p.add(i)), inv);
            _mm512_mask_storeu_ps(p.add(i), k, v);
            i += 16;
        }
    }

    /// GELU of a slice in place (whole vectors, then one masked one).
    ///
    /// # Safety
    /// AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gelu_slice(x: &mut [f32]) {
        let n = x.len();
        let p = x.as_mut_ptr();
        let mut i = 0;
        while i < n {
            let left = n - i;
            let k = if left >= 16 {
                0xFFFF
            } else {
                ((1u32 << left) - 1) as __mmask16
            };
            let v = gelu16(_mm512_maskz_loadu_ps(k, p.add(i)));
            _mm512_mask_storeu_ps(p.add(i), k, v);
            i += 16;
        }
    }

    /// `exp` of a slice in place.
    ///
    /// # Safety
    /// AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp_slice(x: &mut [f32]) {
        for c in x.chunks_mut(16) {
            let k = ((1u32 << c.len()) - 1) as __mmask16;
            let v = exp16(_mm512_maskz_loadu_ps(k, c.as_ptr()));
            _mm512_mask_storeu_ps(c.as_mut_ptr(), k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<f32> {
        (-20_000..=20_000).map(|i| i as f32 * 6e-4).collect()
    }

    fn exact_gelu(x: f32) -> f64 {
        let x = x as f64;
        0.5 * x * (1.0 + candle_core::cpu::erf::erf_f64(x * std::f64::consts::FRAC_1_SQRT_2))
    }

    #[test]
    fn scalar_gelu_is_f32_accurate() {
        // Worst error relative to max(|gelu(x)|, 1e-2), here and for candle's f32 GELU (`erf_f32`).
        let (mut ours, mut candle) = (0f64, 0f64);
        for x in grid() {
            let want = exact_gelu(x);
            let floor = want.abs().max(1e-2);
            ours = ours.max((gelu_reference(x) as f64 - want).abs() / floor);
            let c = (candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2) + 1.0)
                * 0.5
                * x;
            candle = candle.max((c as f64 - want).abs() / floor);
        }
        eprintln!("gelu: worst relative error {ours:.2e} (candle's f32 gelu_erf: {candle:.2e})");
        assert!(ours <= 2e-6, "{ours:.2e}");
    }

    #[test]
    fn scalar_exp_is_f32_accurate() {
        for x in grid().into_iter().map(|x| x * 7.0) {
            let want = (x as f64).exp();
            let got = exp_reference(x) as f64;
            if want > 1e-37 && want < 1e38 {
                assert!(
                    (got - want).abs() <= 3e-7 * want,
                    "exp({x}) = {got}, {want}"
                );
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_forms_match_the_scalar_ones() {
        use core::arch::x86_64::*;
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        let xs = grid();
        for chunk in xs.chunks_exact(8) {
            let (mut g, mut e) = ([0f32; 8], [0f32; 8]);
            // SAFETY: the features were detected; the arrays hold 8 values.
            unsafe {
                let v = _mm256_loadu_ps(chunk.as_ptr());
                _mm256_storeu_ps(g.as_mut_ptr(), avx2::gelu8(v));
                _mm256_storeu_ps(
                    e.as_mut_ptr(),
                    avx2::exp8(_mm256_mul_ps(v, _mm256_set1_ps(7.0))),
                );
            }
            for (i, x) in chunk.iter().enumerate() {
                let want = gelu_reference(*x);
                assert!(
                    (g[i] - want).abs() <= 2e-7 * want.abs().max(1e-2),
                    "gelu({x}): {} vs {want}",
                    g[i]
                );
                let want = exp_reference(x * 7.0);
                assert!(
                    (e[i] - want).abs() <= 2e-7 * want,
                    "exp({}): {} vs {want}",
                    x * 7.0,
                    e[i]
                );
            }
        }
        // Below the normal range too (exp(-100) is about 3.7e-44).
        let mut tiny = [0f32; 8];
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(tiny.as_mut_ptr(), avx2::exp8(_mm256_set1_ps(-100.0))) };
        assert_eq!(tiny[0], exp_reference(-100.0));
        let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let max = row.iter().fold(f32::MIN, |m, v| m.max(*v));
        let want: Vec<f64> = row.iter().map(|v| ((v - max) as f64).exp()).collect();
        let total: f64 = want.iter().sum();
        // SAFETY: as above.
        unsafe { avx2::softmax(&mut row) };
        for (got, w) in row.iter().zip(&want) {
            assert!((*got as f64 - w / total).abs() <= 1e-6 * (w / total).max(1e-3));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_forms_match_the_scalar_ones() {
        if !is_x86_feature_detected!("avx512f") {
            return;
        }
        let xs = grid();
        let mut g = xs.clone();
        let mut e: Vec<f32> = xs.iter().map(|x| x * 7.0).collect();
        let e0 = e.clone();
        // SAFETY: the feature was detected.
        unsafe {
            gelu_slice(&mut g);
            exp_slice(&mut e);
        }
        for ((x, got), (xe, ge)) in xs.iter().zip(&g).zip(e0.iter().zip(&e)) {
            let want = gelu_reference(*x);
            assert!(
                (got - want).abs() <= 2e-7 * want.abs().max(1e-2),
                "gelu({x}): {got} vs {want}"
            );
            let want = exp_reference(*xe);
            assert!(
                (ge - want).abs() <= 2e-7 * want,
                "exp({xe}): {ge} vs {want}"
            );
        }
        let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let max = row.iter().fold(f32::MIN, |m, v| m.max(*v));
        let want: Vec<f64> = row.iter().map(|v| ((v - max) as f64).exp()).collect();
        let total: f64 = want.iter().sum();
        // SAFETY: as above.
        unsafe { softmax(&mut row) };
        for (got, w) in row.iter().zip(&want) {
            assert!((*got as f64 - w / total).abs() <= 1e-6 * (w / total).max(1e-3));
        }
    }
}
