//! A tiny Qwen2-shaped GGUF built in the test: random weights, a byte-level BPE vocabulary of 256 byte
//! tokens, a few merges and the ChatML specials. Small enough to write in milliseconds, real enough to
//! go through the same loader, tokenizer builder and generation loop as the real model.

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

pub const HIDDEN: usize = 16;
pub const HEADS: usize = 2;
pub const KV_HEADS: usize = 1;
pub const FFN: usize = 32;
pub const LAYERS: usize = 2;

/// GPT-2's byte-to-character table, which byte-level BPE vocabularies are written in.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut table = vec!['\0'; 256];
    for (b, c) in printable.iter().zip(chars) {
        table[*b as usize] = char::from_u32(c).unwrap();
    }
    table
}

/// Writes the tiny model to `path`; `eos` is the id stored as `tokenizer.ggml.eos_token_id`.
pub fn write_tiny_qwen2(path: &std::path::Path, seed: u64, eos: Option<u32>) -> Vec<String> {
    let bc = byte_chars();
    let mut tokens: Vec<String> = bc.iter().map(|c| c.to_string()).collect();
    let space = bc[b' ' as usize];
    let merges = [
        format!("{space} t"),
        "h e".to_string(),
        format!("{space}t he"),
    ];
    tokens.push(format!("{space}t"));
    tokens.push("he".into());
    tokens.push(format!("{space}the"));
    let mut types = vec![1i32; tokens.len()];
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(special.into());
        types.push(3);
    }
    let vocab = tokens.len();

    let dev = Device::Cpu;
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut rand = |shape: &[usize], scale: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 2.0 * scale
            })
            .collect();
        QTensor::quantize(&Tensor::from_vec(v, shape, &dev).unwrap(), GgmlDType::F32).unwrap()
    };
    let ones = |n: usize| {
        QTensor::quantize(
            &Tensor::ones(n, candle_core::DType::F32, &dev).unwrap(),
            GgmlDType::F32,
        )
        .unwrap()
    };
    let kv = HIDDEN / HEADS * KV_HEADS;
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), rand(&[vocab, HIDDEN], 1.0)),
        ("output_norm.weight".into(), ones(HIDDEN)),
        ("output.weight".into(), rand(&[vocab, HIDDEN], 1.0)),
    ];
    for l in 0..LAYERS {
        let p = format!("blk.{l}");
        for (name, shape) in [
            ("attn_q.weight", vec![HIDDEN, HIDDEN]),
            ("attn_k.weight", vec![kv, HIDDEN]),
            ("attn_v.weight", vec![kv, HIDDEN]),
            ("attn_output.weight", vec![HIDDEN, HIDDEN]),
            ("attn_q.bias", vec![HIDDEN]),
            ("attn_k.bias", vec![kv]),
            ("attn_v.bias", vec![kv]),
            ("ffn_gate.weight", vec![FFN, HIDDEN]),
            ("ffn_up.weight", vec![FFN, HIDDEN]),
            ("ffn_down.weight", vec![HIDDEN, FFN]),
        ] {
            tensors.push((format!("{p}.{name}"), rand(&shape, 0.5)));
        }
        tensors.push((format!("{p}.attn_norm.weight"), ones(HIDDEN)));
        tensors.push((format!("{p}.ffn_norm.weight"), ones(HIDDEN)));
    }

    let s = |x: &str| Value::String(x.to_string());
    let strings = |xs: &[String]| Value::Array(xs.iter().map(|x| s(x)).collect());
    let mut metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), s("qwen2")),
        ("qwen2.attention.head_count".into(), Value::U32(HEADS as u32)),
        ("qwen2.attention.head_count_kv".into(), Value::U32(KV_HEADS as u32)),
        ("qwen2.embedding_length".into(), Value::U32(HIDDEN as u32)),
        ("qwen2.context_length".into(), Value::U32(4096)),
        ("qwen2.block_count".into(), Value::U32(LAYERS as u32)),
        ("qwen2.attention.layer_norm_rms_epsilon".into(), Value::F32(1e-6)),
        ("qwen2.rope.freq_base".into(), Value::F32(10000.0)),
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("qwen2")),
        ("tokenizer.ggml.tokens".into(), strings(&tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types.iter().map(|&t| Value::I32(t)).collect())),
        ("tokenizer.ggml.merges".into(), strings(&merges)),
        (
            "tokenizer.chat_template".into(),
            s("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"),
        ),
    ];
    if let Some(eos) = eos {
        metadata.push(("tokenizer.ggml.eos_token_id".into(), Value::U32(eos)));
    }
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &ts).unwrap();
    tokens
}
