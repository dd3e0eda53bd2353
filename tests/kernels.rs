//! The fast quantized products (`sift::kernels`) against candle's `QMatMul`, on random and on real
//! weights. Both quantize the activations the same way (8 bits, one scale per 256) and sum the
//! products exactly in integers per block, so they differ only by float summation order: stated
//! tolerance 1e-5 of the largest output's magnitude (differences seen: 1e-7 to 1e-6; weights whose
//! blocks differed from the reference's by one rounding step of re-quantization gave 7.5e-3).

mod common;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use sift::kernels::{
    dequantize_row, level, matmul_blocks_on, quantize_rows, supports, Kind, Level, QLinear, QK,
};
use sift::model::manifest::Role;

/// A deterministic pseudo-random tensor (xorshift), values in [-scale, scale).
fn random(shape: (usize, usize), seed: u64, scale: f32) -> Tensor {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn worst_relative(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    worst / scale
}

/// `weight` and `same` hold the same blocks (two quantizations of one tensor).
fn check(weight: QTensor, same: QTensor, rows: &[usize], what: &str) {
    let (_, k) = weight.shape().dims2().unwrap();
    let fast = QLinear::new(weight).unwrap();
    assert!(fast.is_fast(), "{what}: expected the fast path");
    let reference = QMatMul::from_qtensor(same).unwrap();
    for &m in rows {
        let x = random((m, k), m as u64 + 7, 2.0);
        let want = reference.forward(&x).unwrap();
        let got = fast.forward(&x).unwrap();
        assert_eq!(want.dims(), got.dims());
        let rel = worst_relative(&want, &got);
        eprintln!("{what}, {m} rows: worst difference {rel:.2e} of the largest output");
        assert!(rel <= 1e-5, "{what}, {m} rows: {rel:.2e}");
    }
}

/// The activations' 8-bit blocks are candle's Q8_K blocks, bit for bit (values, scale, sums of 16),
/// whichever quantizer this CPU runs: random rows, halves that must round away from zero, a zero
/// block, a block whose largest magnitude comes first negative then positive, and a block with NaN.
#[test]
fn activations_quantize_to_candles_q8k_blocks() {
    let mut x = random((1, 8 * QK), 5, 3.0)
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    // Block 1: the scale is exactly 1 (largest -127), and every value ends in .5 or is a whole.
    for (i, v) in x[QK..2 * QK].iter_mut().enumerate() {
        *v = (i as f32 - 128.0) / 2.0;
    }
    x[QK] = -127.0;
    // Block 2: all zero (with a negative zero). Block 3: -2 before 2, both the largest magnitude.
    x[2 * QK..3 * QK].fill(0.0);
    x[2 * QK + 7] = -0.0;
    x[3 * QK + 10] = -2.0;
    x[3 * QK + 20] = 2.0;
    // Block 4: a NaN among ordinary values. Block 5: tiny values, block 6: huge ones.
    x[4 * QK + 33] = f32::NAN;
    for v in &mut x[5 * QK..6 * QK] {
        *v *= 1e-30;
    }
    for v in &mut x[6 * QK..7 * QK] {
        *v *= 1e30;
    }
    let candle = QTensor::quantize(
        &Tensor::from_vec(x.clone(), (1, 8 * QK), &Device::Cpu).unwrap(),
        GgmlDType::Q8K,
    )
    .unwrap()
    .data()
    .unwrap()
    .to_vec();
    let ours = quantize_rows(&x, 1, 8 * QK, Kind::Q6K);
    const BYTES: usize = 4 + QK + 32;
    assert_eq!(candle.len(), 8 * BYTES);
    for (b, (want, got)) in candle.chunks_exact(BYTES).zip(&ours).enumerate() {
        let d = f32::from_le_bytes(want[..4].try_into().unwrap());
        assert_eq!(d.to_bits(), got.d.to_bits(), "block {b}: scale");
        let qs: Vec<i8> = want[4..4 + QK].iter().map(|&v| v as i8).collect();
        assert_eq!(qs, got.qs, "block {b}: values");
        let sums: Vec<i16> = want[4 + QK..]
            .chunks_exact(2)
            .map(|s| i16::from_le_bytes([s[0], s[1]]))
            .collect();
        assert_eq!(sums, got.bs16, "block {b}: sums");
    }
}

#[test]
fn fast_kernels_match_candle_on_random_weights() {
    let Some(level) = level() else {
        eprintln!(
            "neither AVX-512 VNNI nor AVX2 here: the fast path is not used, nothing to compare"
        );
        return;
    };
    eprintln!("fast kernels: {level:?}");
    for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
        for (n, k) in [(40, 256), (96, 1536), (33, 768)] {
            let w = random((n, k), (n * k) as u64, 0.5);
            let q = QTensor::quantize(&w, dtype).unwrap();
            let same = QTensor::quantize(&w, dtype).unwrap();
            assert_eq!(q.data().unwrap(), same.data().unwrap());
            check(
                q,
                same,
                &[1, 2, 5, 8, 9, 12, 13, 19, 37, 70],
                &format!("{dtype:?} {n}x{k} random"),
            );
        }
    }
}

#[test]
fn quantized_rows_dequantize_like_candle() {
    for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
        let w = random((5, 512), 3, 1.0);
        let q = QTensor::quantize(&w, dtype).unwrap();
        let all = q.dequantize(&Device::Cpu).unwrap();
        let mut row = vec![0f32; 512];
        for i in 0..5 {
            dequantize_row(&q, i, &mut row).unwrap();
            let want = all.get(i).unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(row, want, "{dtype:?} row {i}");
        }
    }
}

/// Blocks read where they lie in a mapped file give the products and rows of the same blocks held by
/// candle, bit for bit; blocks said to run past the file's end are refused.
#[test]
fn blocks_read_in_place_in_a_mapped_file_match_the_same_blocks_held() {
    use sift::kernels::Blocks;
    use std::io::Write;
    use std::sync::Arc;
    for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
        let q = QTensor::quantize(&random((24, 512), 11, 1.0), dtype).unwrap();
        let bytes = q.data().unwrap().into_owned();
        // At an odd offset, as a tensor sits after a GGUF header.
        let offset = 37;
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; offset]).unwrap();
        file.write_all(&bytes).unwrap();
        file.write_all(&[9u8; 5]).unwrap();
        let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }.unwrap());
        let blocks = Blocks::mapped(map.clone(), offset, dtype, vec![24, 512]).unwrap();
        assert_eq!(blocks.bytes(), &bytes[..]);
        let mut got = vec![0f32; 512];
        let mut want = vec![0f32; 512];
        for i in [0, 13, 23] {
            blocks.dequantize_row(i, &mut got).unwrap();
            dequantize_row(&q, i, &mut want).unwrap();
            assert_eq!(got, want, "{dtype:?} row {i}");
        }
        assert!(blocks.dequantize_row(24, &mut got).is_err());
        let in_place = QLinear::from_blocks(blocks, &Device::Cpu).unwrap();
        let held = QLinear::new(q).unwrap();
        assert_eq!(in_place.is_fast(), held.is_fast());
        assert_eq!(in_place.dims().unwrap(), (24, 512));
        for m in [1, 5, 30] {
            let x = random((m, 512), m as u64 + 3, 2.0);
            let a = in_place.forward(&x).unwrap().flatten_all().unwrap();
            let b = held.forward(&x).unwrap().flatten_all().unwrap();
            assert_eq!(
                a.to_vec1::<f32>().unwrap(),
                b.to_vec1::<f32>().unwrap(),
                "{dtype:?} {m} rows"
            );
        }
        // Rows picked out of the mapped weight make a layer of their own.
        let rows = in_place.row_bytes(&[3, 20]).unwrap();
        let picked = QLinear::from_bytes(rows, dtype, 512, &Device::Cpu).unwrap();
        let x = random((1, 512), 5, 1.0);
        let all = in_place.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let two = picked.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(two[0], vec![all[0][3], all[0][20]]);
        // One byte short of the file: refused, not read past its end.
        let past = map.len() - bytes.len() + 1;
        assert!(Blocks::mapped(map.clone(), past, dtype, vec![24, 512]).is_err());
        assert!(Blocks::mapped(map, 0, dtype, vec![24, 500]).is_err());
    }
}

/// Several products of the same rows in one go (`QLinear::forward_rows_each`: quantized once per
/// order, one parallel pass) give each product's own outputs, bit for bit, in the order asked;
/// weights of both kinds and of different widths, one row (decode), a few, and a batch.
#[test]
fn products_of_the_same_rows_in_one_go_match_each_alone() {
    if level().is_none() {
        eprintln!("no fast kernels here: nothing to compare");
        return;
    }
    let layer = |dtype, n, seed| {
        let w = random((n, 512), seed, 1.0);
        QLinear::new(QTensor::quantize(&w, dtype).unwrap()).unwrap()
    };
    let a = layer(GgmlDType::Q4K, 48, 1);
    let b = layer(GgmlDType::Q6K, 16, 2);
    let c = layer(GgmlDType::Q4K, 24, 3);
    for m in [1, 3, 20] {
        let x = random((m, 512), 40 + m as u64, 2.0);
        let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let [ga, gb, gc] = QLinear::forward_rows_each([&a, &b, &c], &x, m).unwrap();
        assert_eq!(ga, a.forward_rows(&x, m).unwrap(), "{m} rows, first");
        assert_eq!(gb, b.forward_rows(&x, m).unwrap(), "{m} rows, second");
        assert_eq!(gc, c.forward_rows(&x, m).unwrap(), "{m} rows, third");
        assert_eq!((ga.len(), gb.len(), gc.len()), (m * 48, m * 16, m * 24));
    }
}

#[test]
fn fast_kernels_match_candle_on_the_chat_models_weights() {
    let Some(level) = level() else {
        eprintln!(
            "neither AVX-512 VNNI nor AVX2 here: the fast path is not used, nothing to compare"
        );
        return;
    };
    eprintln!("fast kernels: {level:?}");
    let path = common::model_path(Role::Summarizer);
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut seen = Vec::new();
    // Layer 0 has Q4_K (gate, q) and Q6_K (down, v) matrices; the output matrix is Q6_K.
    for name in [
        "blk.0.attn_q.weight",
        "blk.0.attn_v.weight",
        "blk.0.ffn_gate.weight",
        "blk.0.ffn_down.weight",
    ] {
        let w = content.tensor(&mut file, name, &Device::Cpu).unwrap();
        seen.push(w.dtype());
        let (_, k) = w.shape().dims2().unwrap();
        let fast = QLinear::new(w).unwrap();
        let reference =
            QMatMul::from_qtensor(content.tensor(&mut file, name, &Device::Cpu).unwrap()).unwrap();
        for m in [1, 8, 21, 64] {
            let x = random((m, k), m as u64, 3.0);
            let rel = worst_relative(&reference.forward(&x).unwrap(), &fast.forward(&x).unwrap());
            eprintln!("{name}, {m} rows: worst difference {rel:.2e} of the largest output");
            assert!(rel <= 1e-5, "{name}, {m} rows: {rel:.2e}");
        }
    }
    assert!(seen.contains(&GgmlDType::Q4K) && seen.contains(&GgmlDType::Q6K));
}

#[test]
fn every_body_this_cpu_runs_matches_candle() {
    // Both kinds of bodies where the CPU has both (an AVX-512 machine checks the AVX2 ones too).
    let levels: Vec<Level> = [Level::Avx512, Level::Avx2]
        .into_iter()
        .filter(|l| supports(*l))
        .collect();
    if levels.is_empty() {
        eprintln!("neither AVX-512 VNNI nor AVX2 here: nothing to compare");
        return;
    }
    for (dtype, kind) in [(GgmlDType::Q4K, Kind::Q4K), (GgmlDType::Q6K, Kind::Q6K)] {
        let (n, k) = (72, 1024);
        let w = random((n, k), 11, 0.5);
        let q = QTensor::quantize(&w, dtype).unwrap();
        let data = q.data().unwrap().to_vec();
        let reference = QMatMul::from_qtensor(q).unwrap();
        for m in [1, 3, 8, 13, 40] {
            let x = random((m, k), 5 + m as u64, 2.0);
            let want = reference.forward(&x).unwrap();
            let acts = quantize_rows(&x.flatten_all().unwrap().to_vec1().unwrap(), m, k, kind);
            for &level in &levels {
                let mut out = vec![0f32; m * n];
                matmul_blocks_on(level, kind, &data, n, k / QK, &acts, m, &mut out);
                let got = Tensor::from_vec(out, (m, n), &Device::Cpu).unwrap();
                let rel = worst_relative(&want, &got);
                eprintln!("{level:?} {dtype:?}, {m} rows: worst difference {rel:.2e}");
                assert!(rel <= 1e-5, "{level:?} {dtype:?}, {m} rows: {rel:.2e}");
            }
        }
    }
}
