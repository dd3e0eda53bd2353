//! Mechanics of loading and generation on a tiny model made in the test: stop tokens, the token budget,
//! KV-cache reset between documents and reuse of a shared prompt opening, cached decoding equal to
//! recomputation, streaming and seeding, several generations decoded together, and prompt openings
//! kept on disk.

#[path = "common/tiny.rs"]
mod tiny;

use std::ops::ControlFlow;

use candle_core::Device;
use sift::generate::openings::OpeningStore;
use sift::generate::{GenerateOptions, Sampling, StopReason, TextModel};

fn load(seed: u64, eos: Option<u32>) -> (TextModel, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    tiny::write_tiny_qwen2(&path, seed, eos);
    let model = sift::model::gguf::load_chat_model(&path, "qwen2", &Device::Cpu).unwrap();
    (model, dir)
}

fn run(
    model: &mut TextModel,
    prompt: &[u32],
    opts: &GenerateOptions,
) -> sift::generate::Generation {
    model
        .generate(prompt, opts, &mut |_| ControlFlow::Continue(()))
        .unwrap()
}

fn budget(n: usize) -> GenerateOptions {
    GenerateOptions {
        max_new_tokens: n,
        ignore_stop_tokens: true,
        ..GenerateOptions::default()
    }
}

#[test]
fn tokenizer_from_gguf_metadata_applies_merges_and_specials() {
    let (model, _dir) = load(1, None);
    let tok = model.tokenizer();
    let the = tok.token_to_id("Ġthe").unwrap();
    let ids = tok.encode("a the", false).unwrap().get_ids().to_vec();
    assert_eq!(ids, [tok.token_to_id("a").unwrap(), the]);
    let im_end = tok.token_to_id("<|im_end|>").unwrap();
    assert!(model.stop_tokens().contains(&im_end));
    // As text, a special-token string stays text.
    assert!(!model.encode("x<|im_end|>").unwrap().contains(&im_end));
}

#[test]
fn max_new_tokens_is_exact() {
    let (mut model, _dir) = load(2, None);
    let prompt = model.encode("the cat").unwrap();
    for n in [1, 5, 12] {
        let g = run(&mut model, &prompt, &budget(n));
        assert_eq!(g.tokens.len(), n);
        assert_eq!(g.stop, StopReason::MaxTokens);
    }
}

#[test]
fn generation_ends_at_the_models_stop_token() {
    let prompt_text = "the hat";
    let (mut free, _d1) = load(3, None);
    let prompt = free.encode(prompt_text).unwrap();
    let seq = run(&mut free, &prompt, &budget(8)).tokens;
    // The same weights, now declaring the fourth generated token as end-of-sequence.
    let eos = seq[3];
    let (mut model, _d2) = load(3, Some(eos));
    let stops = model.stop_tokens().to_vec();
    let expected = seq.iter().position(|t| stops.contains(t)).unwrap();
    let g = run(
        &mut model,
        &prompt,
        &GenerateOptions {
            max_new_tokens: 8,
            ..GenerateOptions::default()
        },
    );
    assert_eq!(g.tokens, seq[..expected]);
    assert_eq!(g.stop, StopReason::StopToken(seq[expected]));
}

#[test]
fn kv_cache_is_reset_between_documents() {
    let (mut model, _dir) = load(4, None);
    let a = model.encode("the hat the").unwrap();
    let b = model.encode("zebra quilt").unwrap();
    let first = run(&mut model, &a, &budget(10)).tokens;
    let other = run(&mut model, &b, &budget(10)).tokens;
    let again = run(&mut model, &a, &budget(10)).tokens;
    assert_eq!(first, again, "state from the previous document leaked");
    assert_ne!(first, other);
}

#[test]
fn a_prompt_that_opens_like_the_last_one_runs_only_its_new_tokens() {
    let (mut model, _dir) = load(8, None);
    let first = model.encode("the hat the cat sat on").unwrap();
    let second = model.encode("the hat the cat ran to the zebra").unwrap();
    let shared = first
        .iter()
        .zip(&second)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(shared >= 4 && shared < second.len());
    let reuse = GenerateOptions {
        reuse_cache: true,
        ..budget(8)
    };
    let fresh = run(&mut model, &second, &budget(8));
    assert_eq!(fresh.prompt_tokens, second.len());
    run(&mut model, &first, &reuse);
    let reused = run(&mut model, &second, &reuse);
    assert_eq!(reused.prompt_tokens, second.len() - shared);
    assert_eq!(reused.tokens, fresh.tokens);
    // The same prompt again: only its last token is run.
    let again = run(&mut model, &second, &reuse);
    assert_eq!(again.prompt_tokens, 1);
    assert_eq!(again.tokens, fresh.tokens);
    // After `forget`, or without reuse, everything is run.
    model.forget();
    assert_eq!(run(&mut model, &second, &reuse).prompt_tokens, second.len());
    assert_eq!(
        run(&mut model, &second, &budget(8)).prompt_tokens,
        second.len()
    );
    // A callback that stops early leaves the cache usable all the same.
    model
        .generate(&first, &reuse, &mut |_| ControlFlow::Break(()))
        .unwrap();
    let after_stop = run(&mut model, &second, &reuse);
    assert_eq!(after_stop.prompt_tokens, second.len() - shared);
    assert_eq!(after_stop.tokens, fresh.tokens);
}

#[test]
fn cached_decoding_matches_recomputing_the_prefix() {
    let (mut model, _dir) = load(5, None);
    let prompt = model.encode("hello there").unwrap();
    let cached = run(&mut model, &prompt, &budget(6)).tokens;
    for k in 0..cached.len() {
        let mut prefix = prompt.clone();
        prefix.extend(&cached[..k]);
        let next = run(&mut model, &prefix, &budget(1)).tokens;
        assert_eq!(next[0], cached[k], "step {k}");
    }
}

#[test]
fn streamed_pieces_add_up_to_the_text_and_callback_can_stop() {
    let (mut model, _dir) = load(6, None);
    let prompt = model.encode("stream me").unwrap();
    let mut pieces = Vec::new();
    let g = model
        .generate(&prompt, &budget(16), &mut |p| {
            pieces.push(p.to_string());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(pieces.concat(), g.text);
    let mut calls = 0;
    let g = model
        .generate(&prompt, &budget(16), &mut |_| {
            calls += 1;
            if calls == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(g.stop, StopReason::Callback);
    assert!(g.tokens.len() < 16);
}

#[test]
fn seeded_sampling_is_reproducible_and_differs_from_greedy() {
    let (mut model, _dir) = load(7, None);
    let prompt = model.encode("the").unwrap();
    let sampled = |seed| GenerateOptions {
        sampling: Sampling::Seeded {
            temperature: 1.5,
            top_p: None,
            seed,
        },
        ..budget(24)
    };
    let a = run(&mut model, &prompt, &sampled(42)).tokens;
    let b = run(&mut model, &prompt, &sampled(42)).tokens;
    let greedy = run(&mut model, &prompt, &budget(24)).tokens;
    assert_eq!(a, b);
    assert_ne!(a, greedy);
}

#[test]
fn a_model_whose_file_says_another_architecture_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    tiny::write_tiny_qwen2(&path, 8, None);
    let err = sift::model::gguf::load_chat_model(&path, "llama", &Device::Cpu)
        .err()
        .unwrap();
    assert!(err.to_string().contains("architecture"), "{err}");
}

#[test]
fn copy_filter_lets_only_the_articles_numbers_through() {
    use sift::summarize::constrain::{Class, ClassTokens, CopyFilter};
    use sift::summarize::ground::Grounding;
    let (mut model, _dir) = load(8, None);
    let article = "The plant cost 2026 dollars and 15 workers built it.";
    let grounding = Grounding::new(article);
    let tokens = ClassTokens::new(model.tokenizer());
    let prompt = model.encode("1234567890 0987654321").unwrap();
    let mut digits_seen = 0;
    for seed in 0..6 {
        // Hot sampling over random weights writes digits often; the filter must keep every run copyable.
        let opts = GenerateOptions {
            max_new_tokens: 120,
            sampling: Sampling::Seeded {
                temperature: 5.0,
                top_p: None,
                seed,
            },
            ignore_stop_tokens: true,
            lookahead: 0,
            reuse_cache: false,
            opening: 0,
        };
        let mut filter = CopyFilter::new(&grounding, &tokens, &[Class::Digits]);
        let g = model
            .generate_filtered(&prompt, &opts, Some(&mut filter), &mut |_| {
                ControlFlow::Continue(())
            })
            .unwrap();
        let text = g.text;
        let runs: Vec<&str> = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|r| !r.is_empty())
            .collect();
        digits_seen += runs.len();
        let last = runs.len().saturating_sub(1);
        for (i, run) in runs.iter().enumerate() {
            let whole = ["2026", "15"].contains(run);
            // The last run may be cut by the token budget: it must still be a prefix.
            let prefix = i == last
                && text.ends_with(run)
                && ["2026", "15"].iter().any(|a| a.starts_with(run));
            assert!(whole || prefix, "run {run:?} in {text:?}");
        }
    }
    assert!(digits_seen > 0, "the test never exercised the filter");
}

#[test]
fn copy_filter_never_masks_the_stop_tokens() {
    use sift::generate::TokenFilter;
    use sift::summarize::constrain::{Class, ClassTokens, CopyFilter};
    use sift::summarize::ground::Grounding;
    let (model, _dir) = load(8, None);
    let grounding = Grounding::new("이재용 회장은 CEO들과 만났다.");
    let tokens = ClassTokens::new(model.tokenizer());
    let mut filter = CopyFilter::new(&grounding, &tokens, &[Class::Digits, Class::Latin]);
    let size = model.tokenizer().get_vocab_size(true);
    let mut logits = vec![0.0f32; size];
    filter.filter("이재용 회장은 ", &mut logits);
    let the = model.tokenizer().token_to_id("Ġthe").unwrap() as usize;
    assert_eq!(
        logits[the],
        f32::NEG_INFINITY,
        "a Latin word the article lacks"
    );
    for &stop in model.stop_tokens() {
        assert_eq!(logits[stop as usize], 0.0, "stop token {stop} was masked");
    }
}

#[test]
fn a_ban_changes_the_answer_at_the_refused_place_and_keeps_what_came_before() {
    use sift::summarize::constrain::{Ban, ClassTokens, CopyFilter};
    use sift::summarize::ground::Grounding;
    let (mut model, _dir) = load(11, None);
    let prompt = model
        .encode("the hat the cat the hat the cat the hat the cat the")
        .unwrap();
    let grounding = Grounding::new("the hat");
    let tokens = ClassTokens::new(model.tokenizer());
    let opts = GenerateOptions {
        lookahead: 4,
        ..budget(24)
    };
    let generate = |model: &mut TextModel, bans: &[Ban]| {
        let mut filter = CopyFilter::new(&grounding, &tokens, &[]).banning(bans);
        model
            .generate_filtered(&prompt, &opts, Some(&mut filter), &mut |_| {
                ControlFlow::Continue(())
            })
            .unwrap()
    };
    let first = generate(&mut model, &[]);
    let mut changed = 0;
    for k in [3, 9, 15] {
        // The refused word starts where token k's text starts.
        let at = model.decode(&first.tokens[..k]).unwrap().len();
        let Some(refused) = first.text[at..].chars().next() else {
            continue;
        };
        let again = generate(&mut model, &[Ban::new(&first.text, at)]);
        assert!(
            again.text.starts_with(&first.text[..at]),
            "the text before the ban changed: {:?} then {:?}",
            first.text,
            again.text
        );
        let there = again.text[at..].chars().next();
        assert!(
            there.is_none_or(|c| !c.eq_ignore_ascii_case(&refused)),
            "{refused:?} was written again at {at}: {:?}",
            again.text
        );
        changed += 1;
    }
    assert!(changed > 0, "no place to ban in {:?}", first.text);
}

#[test]
fn guessing_ahead_gives_the_same_tokens_as_one_at_a_time() {
    let (mut model, _dir) = load(10, None);
    // A prompt that repeats itself, so the lookup finds runs to guess and the model checks them.
    let prompt = model
        .encode("the hat the cat the hat the cat the hat the cat the")
        .unwrap();
    for n in [1, 7, 40] {
        let plain = run(
            &mut model,
            &prompt,
            &GenerateOptions {
                lookahead: 0,
                ..budget(n)
            },
        );
        let guessed = run(
            &mut model,
            &prompt,
            &GenerateOptions {
                lookahead: 6,
                ..budget(n)
            },
        );
        assert_eq!(plain.tokens, guessed.tokens, "budget {n}");
        assert_eq!(plain.text, guessed.text);
    }
}

#[test]
fn the_native_forward_matches_candles_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    tiny::write_tiny_qwen2(&path, 11, None);
    use sift::model::gguf::{load_chat_model_with, Forward};
    let mut native = load_chat_model_with(&path, "qwen2", &Device::Cpu, Forward::Native).unwrap();
    let mut reference =
        load_chat_model_with(&path, "qwen2", &Device::Cpu, Forward::Reference).unwrap();
    let prompt = native.encode("the cat sat on the hat").unwrap();
    let opts = GenerateOptions {
        lookahead: 0,
        ..budget(32)
    };
    assert_eq!(
        run(&mut native, &prompt, &opts).tokens,
        run(&mut reference, &prompt, &opts).tokens
    );
}

#[test]
fn a_model_kept_to_some_tokens_writes_only_those_and_scores_them_as_before() {
    let (mut model, _dir) = load(12, None);
    let prompt = model.encode("the cat sat on the hat").unwrap();
    let before = model.prompt_logits(&prompt).unwrap();
    // Only tokens without the letter `a`.
    let kept = model.keep_tokens(|t| !t.contains('a')).unwrap().unwrap();
    assert!(kept > 0 && kept < before.len());
    let after = model.prompt_logits(&prompt).unwrap();
    assert_eq!(after.len(), before.len());
    let tok = model.tokenizer().clone();
    for (id, (b, a)) in before.iter().zip(&after).enumerate() {
        let text = tok.decode(&[id as u32], false).unwrap_or_default();
        if tok.id_to_token(id as u32).is_some() && !text.contains('a') {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "token {id}: {b} then {a}"
            );
        } else {
            assert_eq!(
                *a,
                f32::NEG_INFINITY,
                "token {id} ({text:?}) should be masked"
            );
        }
    }
    let g = run(&mut model, &prompt, &budget(24));
    assert!(!g.text.contains('a'), "{:?}", g.text);
    // A second restriction narrows the first; it cannot bring a dropped token back.
    assert!(model
        .keep_tokens(|t| !t.contains('a') && !t.contains('e'))
        .unwrap()
        .is_some());
    assert!(model.keep_tokens(|_| true).is_err());
}

/// Forbids one token everywhere.
struct Forbid(u32);

impl sift::generate::TokenFilter for Forbid {
    fn filter(&mut self, _generated: &str, logits: &mut [f32]) {
        logits[self.0 as usize] = f32::NEG_INFINITY;
    }
}

#[test]
fn a_batch_gives_each_prompt_what_it_gets_alone() {
    use sift::generate::Request;
    let (mut model, _dir) = load(13, None);
    let prompts: Vec<Vec<u32>> = [
        "the cat sat on the hat",
        "the cat sat on a mat and the",
        "zebra",
    ]
    .iter()
    .map(|p| model.encode(p).unwrap())
    .collect();
    let opts = GenerateOptions {
        lookahead: 0,
        reuse_cache: true,
        ..budget(12)
    };
    // Alone: the second with a filter, the third stopped by its callback after three pieces.
    let alone_plain = run(&mut model, &prompts[0], &opts);
    let banned = alone_plain.tokens[0];
    let mut forbid = Forbid(banned);
    let alone_filtered = model
        .generate_filtered(&prompts[1], &opts, Some(&mut forbid), &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    let stop_after = |calls: &mut usize| {
        *calls += 1;
        match *calls >= 3 {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    };
    let mut calls = 0;
    let alone_stopped = model
        .generate(&prompts[2], &opts, &mut |_| stop_after(&mut calls))
        .unwrap();
    assert_eq!(alone_stopped.stop, StopReason::Callback);
    assert!(!alone_filtered.tokens.contains(&banned));

    model.forget();
    let mut texts = [String::new(), String::new()];
    let (first_text, second_text) = texts.split_at_mut(1);
    let mut on_first = |p: &str| {
        first_text[0].push_str(p);
        ControlFlow::Continue(())
    };
    let mut on_second = |p: &str| {
        second_text[0].push_str(p);
        ControlFlow::Continue(())
    };
    let mut calls = 0;
    let mut on_third = |_: &str| stop_after(&mut calls);
    let mut forbid = Forbid(banned);
    let requests = vec![
        Request {
            prompt: prompts[0].clone(),
            filter: None,
            on_text: &mut on_first,
        },
        Request {
            prompt: prompts[1].clone(),
            filter: Some(&mut forbid),
            on_text: &mut on_second,
        },
        Request {
            prompt: prompts[2].clone(),
            filter: None,
            on_text: &mut on_third,
        },
    ];
    let batch = model.generate_batch(requests, &opts).unwrap();
    for (together, alone) in batch
        .iter()
        .zip([&alone_plain, &alone_filtered, &alone_stopped])
    {
        assert_eq!(together.tokens, alone.tokens);
        assert_eq!(together.text, alone.text);
        assert_eq!(together.stop, alone.stop);
    }
    assert_eq!(texts[0], batch[0].text);
    assert_eq!(texts[1], batch[1].text);
    // The second prompt shares its opening with the first: only the rest was run for it.
    let shared = prompts[0]
        .iter()
        .zip(&prompts[1])
        .take_while(|(a, b)| a == b)
        .count();
    assert!(shared > 0);
    assert_eq!(batch[1].prompt_tokens, prompts[1].len() - shared);
    assert_eq!(batch[2].prompt_tokens, prompts[2].len());
    // Afterwards the cache holds the first prompt and its answer, as after one generation.
    let mut follow = prompts[0].clone();
    follow.extend(&batch[0].tokens);
    follow.extend(model.encode(" and").unwrap());
    let fresh = {
        let mut other = load(13, None).0;
        run(&mut other, &follow, &opts)
    };
    let next = run(&mut model, &follow, &opts);
    assert!(next.prompt_tokens < follow.len() - prompts[0].len());
    assert_eq!(next.tokens, fresh.tokens);
}

#[test]
fn a_parked_cache_serves_a_later_prompt_that_opens_like_it() {
    let (mut model, _dir) = load(14, None);
    let listed = model.encode("the hat the cat sat on the mat").unwrap();
    let other = model.encode("zebra zebra hat").unwrap();
    let mut later = listed[..5].to_vec();
    later.extend(model.encode(" and the zebra ran").unwrap());
    let reuse = GenerateOptions {
        reuse_cache: true,
        lookahead: 0,
        ..budget(6)
    };
    let fresh = run(&mut load(14, None).0, &later, &reuse);
    run(&mut model, &listed, &reuse);
    assert!(model.park().unwrap());
    // Something else runs in between, then the prompt that opens like the parked one.
    run(&mut model, &other, &reuse);
    let served = run(&mut model, &later, &reuse);
    let shared = listed
        .iter()
        .zip(&later)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(shared >= 5);
    assert_eq!(served.prompt_tokens, later.len() - shared);
    assert_eq!(served.tokens, fresh.tokens);
    // `forget` drops what was parked: everything is run again.
    model.forget();
    run(&mut model, &other, &reuse);
    assert_eq!(run(&mut model, &later, &reuse).prompt_tokens, later.len());
}

#[test]
fn a_prompt_opening_kept_on_disk_gives_the_same_answer_and_is_not_run_again() {
    let (mut model, dir) = load(15, None);
    let gguf = dir.path().join("tiny.gguf");
    let kept = dir.path().join("openings");
    model.keep_openings(OpeningStore::new(kept.clone(), &gguf));
    let prompt = model
        .encode("the hat the cat sat on the mat and the zebra ran")
        .unwrap();
    let opening = 5;
    assert!(prompt.len() > opening + 2);
    let opts = GenerateOptions {
        opening,
        ..budget(8)
    };
    let files = || std::fs::read_dir(&kept).map_or(0, |d| d.count());
    // No store: the opening runs on its own, the answer is the one of a whole-prompt run.
    let plain = run(&mut load(15, None).0, &prompt, &budget(8));
    let apart = run(&mut load(15, None).0, &prompt, &opts);
    assert_eq!(apart.tokens, plain.tokens);
    assert_eq!(apart.prompt_tokens, prompt.len());
    // The first run with the store runs every token and keeps the opening.
    let first = run(&mut model, &prompt, &opts);
    assert_eq!(first.prompt_tokens, prompt.len());
    assert_eq!(first.tokens, plain.tokens);
    assert_eq!(files(), 1);
    // Later runs, in this model or another loaded from the file, read it instead.
    model.forget();
    let again = run(&mut model, &prompt, &opts);
    assert_eq!(again.prompt_tokens, prompt.len() - opening);
    assert_eq!(again.tokens, plain.tokens);
    let (mut other, _other_dir) = load(15, None);
    other.keep_openings(OpeningStore::new(kept.clone(), &gguf));
    let read = run(&mut other, &prompt, &opts);
    assert_eq!(read.prompt_tokens, prompt.len() - opening);
    assert_eq!(read.tokens, plain.tokens);
    // Another opening is another file.
    model.forget();
    let shorter = GenerateOptions {
        opening: opening - 1,
        ..budget(8)
    };
    assert_eq!(run(&mut model, &prompt, &shorter).tokens, plain.tokens);
    assert_eq!(files(), 2);
    // A damaged file is a miss: the opening is run again, the answer unchanged, the file rewritten.
    for entry in std::fs::read_dir(&kept).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    }
    model.forget();
    let damaged = run(&mut model, &prompt, &opts);
    assert_eq!(damaged.prompt_tokens, prompt.len());
    assert_eq!(damaged.tokens, plain.tokens);
    model.forget();
    assert_eq!(
        run(&mut model, &prompt, &opts).prompt_tokens,
        prompt.len() - opening
    );
}

#[test]
fn a_cache_written_as_bytes_reads_back_to_the_same_numbers() {
    use sift::generate::qwen2::Qwen2;
    use sift::generate::CausalLm;
    let (model, dir) = load(16, None);
    let path = dir.path().join("tiny.gguf");
    let open = || {
        let mut file = std::fs::File::open(&path).unwrap();
        let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
        Qwen2::from_gguf(&content, &mut file, &Device::Cpu).unwrap()
    };
    let prompt = model.encode("the hat the cat sat on the mat").unwrap();
    let tensor = |ids: &[u32]| {
        candle_core::Tensor::new(ids, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
    };
    let (mut a, mut b) = (open(), open());
    a.forward(&tensor(&prompt[..5]), 0).unwrap();
    let bytes = a.cache_bytes(5).unwrap();
    assert!(a.cache_bytes(6).is_none());
    // Too few bytes, or too many, are refused.
    assert!(!b.restore_cache(5, &bytes[..bytes.len() - 2]).unwrap());
    assert!(!b.restore_cache(4, &bytes).unwrap());
    assert!(b.restore_cache(5, &bytes).unwrap());
    let rest = tensor(&prompt[5..]);
    let want = a.forward_all(&rest, 5).unwrap().unwrap();
    let got = b.forward_all(&rest, 5).unwrap().unwrap();
    let (want, got) = (
        want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
    );
    assert_eq!(want, got);
}
