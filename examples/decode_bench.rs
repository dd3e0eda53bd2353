//! Times one decode step of the chat model at a fixed context length, many times over:
//! `cargo run --release --example decode_bench -- [CONTEXT] [REPS]` (defaults 1657, the seed
//! prompt's length, and 40). The context is prefilled once (token ids of no meaning: the cost
//! depends only on the length), then one token is run at position CONTEXT and the cache cut back,
//! REPS times; it prints the fastest and the median step. On a shared machine the fastest is the
//! least disturbed, which makes small changes visible that whole-run tokens/s hide in noise. A third
//! argument `writable` first keeps only the output tokens a summary may write, as the summarizer
//! does (`sift::summarize::writable`). `SIFT_STEP_TOKENS=N` runs N tokens per step with every
//! position's logits, as a check of guessed tokens does (prompt-lookup decoding), instead of one.

use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use sift::generate::qwen2::Qwen2;
use sift::generate::CausalLm;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let context: usize = args.get(1).map_or(1657, |s| s.parse().unwrap());
    let reps: usize = args.get(2).map_or(40, |s| s.parse().unwrap());
    let writable = args.get(3).is_some_and(|a| a == "writable");
    // The thread pool as the `sift` binary sets it up.
    sift::device::init_cpu_threads(None);
    let home = std::env::var("SIFT_HOME")
        .unwrap_or_else(|_| format!("{}/.cache/sift", std::env::var("HOME").unwrap()));
    let path = format!(
        "{home}/models/qwen2.5-coder-1.5b-instruct-q4km/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    );
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut model = Qwen2::from_gguf(&content, &mut file, &Device::Cpu).unwrap();
    if writable {
        let tokenizer = sift::model::gguf::tokenizer_from_gguf(&content).unwrap();
        let ids: Vec<u32> = (0..tokenizer.get_vocab_size(true) as u32)
            .filter(|&id| {
                tokenizer.id_to_token(id).is_some()
                    && tokenizer
                        .decode(&[id], false)
                        .is_ok_and(|t| sift::summarize::writable(&t))
            })
            .collect();
        println!("keeping {} output tokens", ids.len());
        model.keep_outputs(&ids).unwrap();
    }
    let ids: Vec<u32> = (0..context as u32).map(|i| 100 + i * 37 % 30_000).collect();
    let t = Instant::now();
    if context > 0 {
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        model.forward(&input, 0).unwrap();
    }
    let prefill = t.elapsed().as_secs_f64();
    let width: usize = std::env::var("SIFT_STEP_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let step: Vec<u32> = (0..width as u32).map(|i| 1234 + i).collect();
    let one = Tensor::new(step.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mut times = Vec::with_capacity(reps);
    let cpu0 = cpu_seconds();
    for _ in 0..reps {
        let t = Instant::now();
        match width {
            1 => drop(model.forward(&one, context).unwrap()),
            _ => drop(model.forward_all(&one, context).unwrap()),
        }
        times.push(t.elapsed().as_secs_f64());
        model.truncate(context).unwrap();
    }
    let cpu = (cpu_seconds() - cpu0) / reps as f64;
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "context {context}, {width} token(s) per step, threads {}, prefill {prefill:.2} s; decode step over {reps}: fastest {:.2} ms, median {:.2} ms, CPU time {:.2} ms per step",
        rayon::current_num_threads(),
        times[0] * 1e3,
        times[reps / 2] * 1e3,
        cpu * 1e3
    );
}

/// User and system CPU time of the whole process so far (Linux, `/proc/self/stat`, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the line (utime, stime): indices 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}
