//! The encoder's CPU forward (`sift::encode::cpu`) against candle's `BertModel` (the reference) on
//! real sentences of the seed and of Korean and English development documents, through the public
//! `Encoder` API, the way detection uses it (batches of 16, similar lengths together).
//!
//! Stated tolerances (what the fast forward may differ by; see the measured figures printed):
//! - every sentence vector's cosine with the reference's >= 0.99999;
//! - every token state within 0.002 of the reference's (the largest component seen is 1.29);
//! - every token's spam probability from the built-in head within 0.01 of the reference's.
//!
//! Measured with 16-bit activations (what runs): cosine >= 0.999999, states within 1e-4,
//! probabilities within 2e-4. With 8-bit activations for every product (the kernel's other mode)
//! the bounds fail: cosine 0.99987, states off by 0.025, probabilities by 0.055, and the
//! development set lost a span; so the test tells the two apart.

mod common;

use candle_core::Device;
use sift::detect::head::TokenHead;
use sift::detect::unit_mean;
use sift::encode::{Encoder, ForwardKind, Prefix, TokenVectors};
use sift::model::manifest::Role;

const DOCS: &[&str] = &[
    "examples/article.txt",
    "data/dev/docs/ko-economy-chip-exports-loan-spam.txt",
    "data/dev/docs/ko-health-flu-pharmacy-spam.txt",
    "data/dev/docs/ko-tech-ai-startup-en-loan-spam.txt",
    "data/dev/docs/ko-clean-mortgage-rates.txt",
    "data/dev/docs/ko-sport-kbo-walkoff-telegram-spam.txt",
    "data/dev/docs/en-health-measles-cialis-spam.txt",
    "data/dev/docs/en-tech-chipmaker-earnings-crypto-spam.txt",
    "data/dev/docs/en-clean-mortgage-rates.txt",
    "data/dev/docs/en-sport-premier-league-two-spams.txt",
    "data/dev/docs/en-courts-antitrust-ko-toto-spam.txt",
];

fn embed(encoder: &Encoder, sentences: &[&str]) -> Vec<TokenVectors> {
    let mut order: Vec<usize> = (0..sentences.len()).collect();
    order.sort_by_key(|&i| sentences[i].len());
    let mut out: Vec<Option<TokenVectors>> = vec![None; sentences.len()];
    for chunk in order.chunks(16) {
        let batch: Vec<&str> = chunk.iter().map(|&i| sentences[i]).collect();
        let got = encoder.embed_tokens(&batch, Prefix::Passage).unwrap();
        for (&i, v) in chunk.iter().zip(got) {
            out[i] = Some(v);
        }
    }
    out.into_iter().map(Option::unwrap).collect()
}

#[test]
fn cpu_forward_matches_candle_on_real_sentences() {
    let fast = common::encoder();
    if fast.forward_name() != "cpu-int8" {
        eprintln!(
            "this machine runs the {} forward (no AVX-512 VNNI): nothing to compare",
            fast.forward_name()
        );
        return;
    }
    let path = common::model_path(Role::Encoder);
    let reference = Encoder::load_e5s1_with(&path, &Device::Cpu, ForwardKind::Reference).unwrap();
    assert_eq!(reference.forward_name(), "candle");
    let head = TokenHead::builtin(&Device::Cpu).unwrap();

    let root = env!("CARGO_MANIFEST_DIR");
    let (mut worst_cos, mut worst_state, mut worst_p) = (1f32, 0f32, 0f32);
    let (mut largest, mut tokens, mut sentences_seen) = (0f32, 0usize, 0usize);
    for doc in DOCS {
        let text = std::fs::read_to_string(format!("{root}/{doc}")).unwrap();
        let sentences: Vec<&str> = sift::segment::pieces(&text, 400)
            .iter()
            .map(|s| &text[s.start..s.end])
            .collect();
        let want = embed(&reference, &sentences);
        let got = embed(fast, &sentences);
        let centre = |v: &[TokenVectors]| {
            let s: Vec<&[f32]> = v.iter().map(|t| t.sentence.as_slice()).collect();
            unit_mean(&s, reference.dim())
        };
        let (cw, cg) = (centre(&want), centre(&got));
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(w.spans, g.spans);
            worst_cos = worst_cos.min(sift::encode::cosine(&w.sentence, &g.sentence));
            for (a, b) in w.vectors.iter().zip(&g.vectors) {
                for (x, y) in a.iter().zip(b) {
                    worst_state = worst_state.max((x - y).abs());
                    largest = largest.max(x.abs());
                }
            }
            let pw = head
                .token_probabilities(&w.vectors, &w.sentence, &cw)
                .unwrap();
            let pg = head
                .token_probabilities(&g.vectors, &g.sentence, &cg)
                .unwrap();
            for (a, b) in pw.iter().zip(&pg) {
                worst_p = worst_p.max((a - b).abs());
            }
            tokens += w.vectors.len();
        }
        sentences_seen += sentences.len();
    }
    eprintln!(
        "{sentences_seen} sentences, {tokens} tokens: worst sentence cosine {worst_cos:.6}, \
         worst token-state difference {worst_state:.2e} (largest component {largest:.2}), \
         worst token probability difference {worst_p:.2e}"
    );
    assert!(worst_cos >= 0.99999, "sentence cosine {worst_cos}");
    assert!(worst_state <= 0.002, "token state off by {worst_state}");
    assert!(worst_p <= 0.01, "token probability off by {worst_p}");
}
