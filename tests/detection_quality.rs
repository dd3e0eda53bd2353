//! Detection quality with the real encoder and the shipped head, on the development set: the targets
//! of the detection work (byte F1 at least 0.97, no false-positive bytes on clean documents), the seed's
//! five spans exactly, and labels consistent with the spans.

mod common;

use sift::detect::{Detector, Label};

fn detector() -> Detector<'static> {
    let head = sift::detect::head::TokenHead::builtin(&candle_core::Device::Cpu).unwrap();
    Detector::new(common::encoder(), head)
}

#[test]
fn development_set_meets_the_targets() {
    let set =
        sift::eval::load_set(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/dev"))
            .unwrap();
    let d = detector();
    let texts: Vec<&str> = set.iter().map(|l| l.text.as_str()).collect();
    let detections = d.detect_many(&texts).unwrap();
    let report = sift::eval::report(
        set.iter()
            .zip(&detections)
            .map(|(l, det)| sift::eval::score(l, det))
            .collect(),
    );
    eprintln!(
        "F1 {:.4} (P {:.4}, R {:.4}), FP bytes on clean {}, exact clean {:.3}, labels {:.3}",
        report.f1,
        report.precision,
        report.recall,
        report.false_positive_bytes_on_clean,
        report.clean_text_exact_rate,
        report.sentence_accuracy
    );
    assert!(report.documents >= 40);
    assert!(report.f1 >= 0.97, "byte F1 {:.4}", report.f1);
    assert_eq!(report.false_positive_bytes_on_clean, 0);
    // Batching documents together (their sentences through the encoder in shared batches, their
    // decisions side by side on the thread pool) gives what each alone gives, for every document
    // (scores up to float rounding, since padding changes the order of additions).
    let edges =
        |d: &sift::detect::Detection| d.spans.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>();
    for (text, batched) in texts.iter().zip(&detections) {
        let alone = d.detect(text).unwrap();
        assert_eq!(edges(&alone), edges(batched));
        assert_eq!(alone.clean_text, batched.clean_text);
        for (a, b) in alone.spans.iter().zip(&batched.spans) {
            assert!((a.score - b.score).abs() < 1e-3);
        }
    }
}

#[test]
fn seed_spans_and_labels() {
    let text = std::fs::read_to_string("examples/article.txt").unwrap();
    let gold: sift::eval::Gold =
        serde_json::from_str(&std::fs::read_to_string("examples/article.expected.json").unwrap())
            .unwrap();
    let det = detector().detect(&text).unwrap();
    let got: Vec<(usize, usize)> = det.spans.iter().map(|s| (s.start, s.end)).collect();
    let want: Vec<(usize, usize)> = gold.spam.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(got, want);
    assert_eq!(det.clean_text, gold.clean_text);
    for s in &det.sentences {
        let has_span = det
            .spans
            .iter()
            .any(|sp| sp.start < s.end && s.start < sp.end);
        assert_eq!(
            s.label != Label::Genuine,
            has_span,
            "{:?}",
            &text[s.start..s.end]
        );
    }
}

#[test]
fn genuine_articles_about_spam_topics_stay_clean() {
    let d = detector();
    for text in [
        "경찰청은 텔레그램으로 회원을 모집해 불법 토토 사이트를 운영한 일당 42명을 검거했다고 밝혔다. 이들은 해외에 서버를 두고 3년간 1,200억 원 규모의 도박 자금을 굴린 것으로 조사됐다.",
        "Vissel Kobe drew 2-2 with FC Barcelona in a friendly at Noevir Stadium on Sunday. Barcelona's head-to-head record against J.League sides now stands at four wins and one draw.",
        "Bitcoin fell 4% to $61,000 on Tuesday as traders cut leverage ahead of U.S. inflation data, while ether lost 6%.",
    ] {
        let det = d.detect(text).unwrap();
        assert!(det.spans.is_empty(), "{:?} in {text}", det.spans);
        assert_eq!(det.clean_text, text);
    }
}

#[test]
fn injected_instruction_set_precision_and_exact_finds() {
    // data/injections: instructions to a model (no advertising) planted in articles, and a clean
    // article about such attacks. Nothing genuine is cut, and at least three of the four planted
    // instructions are found exactly (the fourth, glued after a comma in Korean and worded as a
    // description, is a known miss: see the README).
    let set = sift::eval::load_set(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/injections"),
    )
    .unwrap();
    let d = detector();
    let texts: Vec<&str> = set.iter().map(|l| l.text.as_str()).collect();
    let detections = d.detect_many(&texts).unwrap();
    let mut exact = 0;
    let mut planted = 0;
    for (l, det) in set.iter().zip(&detections) {
        for s in &det.spans {
            assert!(
                l.gold
                    .spam
                    .iter()
                    .any(|g| g.start <= s.start && s.end <= g.end),
                "{}: {:?} is not injected",
                l.name,
                &l.text[s.start..s.end]
            );
        }
        planted += l.gold.spam.len();
        exact += l
            .gold
            .spam
            .iter()
            .filter(|g| {
                det.spans
                    .iter()
                    .any(|s| s.start == g.start && s.end == g.end)
            })
            .count();
    }
    assert_eq!(planted, 4);
    assert!(exact >= 3, "{exact} of {planted} found exactly");
}
