//! Times the chat model's matrix products, candle's `QMatMul` against `sift::kernels::QLinear`, side
//! by side on the same weights: `cargo run --release --example kernel_bench -- [ROWS] [REPS]`.
//! Fastest of REPS (the machine is shared); one row is decode, many rows prefill.

use std::time::Instant;

use candle_core::quantized::{gguf_file, QMatMul};
use candle_core::{Device, Module, Tensor};
use sift::kernels::QLinear;

fn fastest(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[0] // the fastest: the machine is shared, the minimum is the least disturbed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).map_or(1, |s| s.parse().unwrap());
    let reps: usize = args.get(2).map_or(20, |s| s.parse().unwrap());
    let home = std::env::var("SIFT_HOME")
        .unwrap_or_else(|_| format!("{}/.cache/sift", std::env::var("HOME").unwrap()));
    let path = format!(
        "{home}/models/qwen2.5-coder-1.5b-instruct-q4km/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    );
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    println!(
        "rows {rows}, reps {reps}, threads {}",
        rayon::current_num_threads()
    );
    let (mut tc, mut tf) = (0.0, 0.0);
    for name in [
        "blk.0.attn_q.weight",
        "blk.0.attn_k.weight",
        "blk.0.attn_v.weight",
        "blk.0.attn_output.weight",
        "blk.0.ffn_gate.weight",
        "blk.0.ffn_up.weight",
        "blk.0.ffn_down.weight",
        "blk.1.ffn_down.weight",
        "output.weight",
    ] {
        let w = content.tensor(&mut file, name, &Device::Cpu).unwrap();
        let dtype = w.dtype();
        let (n, k) = w.shape().dims2().unwrap();
        let fast = QLinear::new(w).unwrap();
        let cand =
            QMatMul::from_qtensor(content.tensor(&mut file, name, &Device::Cpu).unwrap()).unwrap();
        let x = Tensor::randn(0f32, 1.0, (rows, k), &Device::Cpu).unwrap();
        // Warm up (candle repacks on first use).
        cand.forward(&x).unwrap();
        fast.forward(&x).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let t = Instant::now();
            cand.forward(&x).unwrap();
            a.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            fast.forward(&x).unwrap();
            b.push(t.elapsed().as_secs_f64());
        }
        let (a, b) = (fastest(a), fastest(b));
        tc += a;
        tf += b;
        let bytes = fast.storage_bytes() as f64;
        println!(
            "{name:26} {dtype:?} {n:6}x{k:5}: candle {:8.3} ms, fast {:8.3} ms, ratio {:.2}; fast {:.1} GB/s, {:.1} GMAC/s",
            a * 1e3,
            b * 1e3,
            b / a,
            bytes / b / 1e9,
            (rows * n * k) as f64 / b / 1e9
        );
    }
    println!(
        "total: candle {:.3} ms, fast {:.3} ms, ratio {:.2}",
        tc * 1e3,
        tf * 1e3,
        tf / tc
    );

    if rows == 1 {
        stream(&content, &mut file, reps);
    }
}

/// Every layer's products for one token in decode order, then the output matrix: the weights
/// stream from memory as in decode (1 GB, far more than the caches). Fastest of REPS passes, with
/// the bytes per second that makes.
fn stream(content: &gguf_file::Content, file: &mut std::fs::File, reps: usize) {
    let blocks = content
        .metadata
        .get("qwen2.block_count")
        .unwrap()
        .to_u32()
        .unwrap() as usize;
    let mut names = Vec::new();
    for i in 0..blocks {
        for part in [
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
        ] {
            names.push(format!("blk.{i}.{part}.weight"));
        }
    }
    names.push("output.weight".to_string());
    let layers: Vec<(QLinear, Tensor)> = names
        .iter()
        .map(|name| {
            let w = content.tensor(file, name, &Device::Cpu).unwrap();
            let k = w.shape().dims2().unwrap().1;
            let x = Tensor::randn(0f32, 1.0, (1, k), &Device::Cpu).unwrap();
            (QLinear::new(w).unwrap(), x)
        })
        .collect();
    let bytes: usize = layers.iter().map(|(l, _)| l.storage_bytes()).sum();
    let mut times = Vec::new();
    for _ in 0..reps.max(3) {
        let t = Instant::now();
        for (l, x) in &layers {
            l.forward(x).unwrap();
        }
        times.push(t.elapsed().as_secs_f64());
    }
    let best = fastest(times.clone());
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "stream: {} products, {:.0} MB per token: fastest {:.2} ms ({:.1} GB/s), median {:.2} ms",
        layers.len(),
        bytes as f64 / 1e6,
        best * 1e3,
        bytes as f64 / best / 1e9,
        times[times.len() / 2] * 1e3
    );
}
