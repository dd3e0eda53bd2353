//! `sift bench` through the real binary and the real models: the prompt file is fed verbatim (chat
//! markers become their special tokens), exactly the asked number of tokens is decoded, and every field
//! of the report is there; `--encoder` reports the batch speed of spam detection and which encoder
//! forward ran (`SIFT_NO_FAST_KERNELS` selects candle's).

use std::process::Command;

const SIFT: &str = env!("CARGO_BIN_EXE_sift");

fn bench(args: &[&str]) -> serde_json::Value {
    bench_with(args, &[])
}

fn bench_with(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let out = Command::new(SIFT)
        .envs(env.iter().copied())
        .args([
            "--offline",
            "-q",
            "--threads",
            "2",
            "bench",
            "--format",
            "json",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn chat_model_bench_reports_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = dir.path().join("prompt.txt");
    std::fs::write(
        &prompt,
        "<|im_start|>user\nName one colour.<|im_end|>\n<|im_start|>assistant\n",
    )
    .unwrap();
    let v = bench(&[
        "--prompt-file",
        prompt.to_str().unwrap(),
        "--decode-tokens",
        "5",
    ]);
    for key in [
        "model",
        "threads",
        "prompt_tokens",
        "load_s",
        "prefill_s",
        "prefill_tok_s",
        "decode_tokens",
        "decode_tok_s",
        "ttft_s",
        "peak_rss_bytes",
    ] {
        assert!(!v[key].is_null(), "{key} missing in {v}");
    }
    assert_eq!(v["decode_tokens"], 5);
    assert_eq!(v["threads"], 2);
    // <|im_start|>, "user", "\n", four or so words, <|im_end|>, ... : a handful of tokens, not the
    // dozens the markers would take as plain text.
    let n = v["prompt_tokens"].as_u64().unwrap();
    assert!((8..=16).contains(&n), "prompt_tokens {n}");
    assert!(
        v["prefill_tok_s"].as_f64().unwrap() > 0.0 && v["decode_tok_s"].as_f64().unwrap() > 0.0
    );
}

#[test]
fn encoder_bench_counts_the_sentences_of_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "첫 문장이다. 둘째 문장이다.").unwrap();
    std::fs::write(
        dir.path().join("b.txt"),
        "One sentence. Another one. A third.",
    )
    .unwrap();
    let v = bench(&["--encoder", dir.path().to_str().unwrap()]);
    assert_eq!(v["documents"], 2);
    assert_eq!(v["sentences"], 5);
    assert!(v["sentences_per_s"].as_f64().unwrap() > 0.0);
    let forward = v["forward"].as_str().unwrap();
    assert!(["cpu-int8", "candle"].contains(&forward), "{forward}");
}

#[test]
fn encoder_bench_can_run_candles_forward() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "One sentence. Another one.").unwrap();
    let v = bench_with(
        &["--encoder", dir.path().to_str().unwrap()],
        &[("SIFT_NO_FAST_KERNELS", "1")],
    );
    assert_eq!(v["forward"], "candle");
    assert_eq!(v["sentences"], 2);
}
