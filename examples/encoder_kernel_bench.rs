//! Times the encoder's int8 products (`sift::kernels::q4_0`) on random Q4_0 weights of the e5-small
//! shapes: `cargo run --release --example encoder_kernel_bench -- [ROWS] [REPS]`. Fastest of REPS
//! (the machine is shared), in billions of weight-times-activation products per second (16-bit
//! activations count once, though they take two byte passes).

use std::time::Instant;

use sift::kernels::q4_0::{matmul, Epilogue, Q4Weights, Q8Rows};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).map_or(640, |s| s.parse().unwrap());
    let reps: usize = args.get(2).map_or(20, |s| s.parse().unwrap());
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    println!(
        "rows {rows}, reps {reps}, threads {}",
        rayon::current_num_threads()
    );
    let mut total = (0.0, 0.0);
    for (name, n, k) in [
        ("qkv", 1152, 384),
        ("ao", 384, 384),
        ("fi", 1536, 384),
        ("fo", 384, 1536),
    ] {
        let blocks: Vec<u8> = (0..n * k / 32)
            .flat_map(|_| {
                let mut b = half::f16::from_f32(0.01 + (next() % 100) as f32 * 1e-4)
                    .to_le_bytes()
                    .to_vec();
                b.extend((0..16).map(|_| next() as u8));
                b
            })
            .collect();
        let w = Q4Weights::from_q4_0(&blocks, n, k).unwrap();
        let x: Vec<f32> = (0..rows * k)
            .map(|_| (next() % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        let a = Q8Rows::quantize(&x, rows, k, true);
        let bias = vec![0.1f32; n];
        let mut out = vec![0f32; rows * n];
        let mut best = f64::MAX;
        for _ in 0..reps {
            let t = Instant::now();
            matmul(&w, &a, rows, &mut out, Epilogue::Bias(&bias));
            best = best.min(t.elapsed().as_secs_f64());
        }
        let macs = (rows * n * k) as f64;
        println!(
            "{name} {n}x{k}: {:.3} ms, {:.1} G/s",
            best * 1e3,
            macs / best / 1e9
        );
        total.0 += best;
        total.1 += macs;
    }
    println!(
        "all four: {:.3} ms, {:.1} G/s",
        total.0 * 1e3,
        total.1 / total.0 / 1e9
    );
}
