//! `sift classify` and `sift clean` through the real binary and the real encoder: JSON and JSON Lines
//! parse into typed records, a batch reports every readable document past an unreadable one, and the
//! seed's five injected spans come out exactly.

use std::path::Path;
use std::process::Stdio;

#[path = "common/cli.rs"]
mod cli;
use cli::{sift, stderr, DocOut, Expected};

#[test]
fn seed_spans_are_found_exactly() {
    let out = sift(&["classify", "--format", "json", "examples/article.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: DocOut = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Expected =
        serde_json::from_str(&std::fs::read_to_string("examples/article.expected.json").unwrap())
            .unwrap();
    let got: Vec<(usize, usize)> = doc.spans.iter().map(|s| (s.start, s.end)).collect();
    let want: Vec<(usize, usize)> = expected.spam.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(got, want);
    assert_eq!(doc.clean_text.unwrap(), expected.clean_text);
    let text = std::fs::read_to_string("examples/article.txt").unwrap();
    for s in &doc.spans {
        assert_eq!(&text[s.start..s.end], s.text);
        assert!(s.score > 0.0 && s.score <= 1.0);
    }
    // The first line is all spam; sentences holding glued spam are mixed; the rest genuine.
    assert_eq!(doc.sentences[0].label, "spam");
    assert_eq!(
        doc.sentences.iter().filter(|s| s.label == "mixed").count(),
        4
    );
    for s in &doc.sentences {
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end) && s.start < s.end);
        assert!((0.0..=1.0).contains(&s.score));
    }
}

#[test]
fn batch_goes_on_past_an_unreadable_file_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("examples/article.txt", dir.path().join("a.txt")).unwrap();
    std::fs::write(
        dir.path().join("b.txt"),
        "A short genuine note about the weather in Busan. It rained.",
    )
    .unwrap();
    std::fs::write(dir.path().join("c.txt"), [0xffu8, 0xfe, 0x00, 0x41]).unwrap();
    let missing = dir.path().join("missing.txt");
    let out = sift(&[
        "classify",
        "--format",
        "jsonl",
        dir.path().to_str().unwrap(),
        missing.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let docs: Vec<DocOut> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<String> = docs.iter().map(|d| d.path.clone().unwrap()).collect();
    assert_eq!(docs.len(), 4, "{names:?}");
    assert!(
        names[0].ends_with("a.txt") && names[1].ends_with("b.txt") && names[2].ends_with("c.txt")
    );
    assert_eq!(docs[0].spans.len(), 5);
    assert!(docs[1].spans.is_empty() && docs[1].error.is_none());
    assert!(docs[2].error.as_deref().unwrap().contains("UTF-8"));
    assert!(docs[3].error.is_some() && docs[3].clean_text.is_none());
}

#[test]
fn jsonl_input_and_fail_on_spam() {
    let article = std::fs::read_to_string("examples/article.txt").unwrap();
    let input = format!(
        "{}\n{}\nnot json\n",
        serde_json::json!({"id": "seed", "text": article}),
        serde_json::json!({"id": 7, "text": "Plain clean text about a library opening in Daegu."})
    );
    let mut child = sift(&[
        "classify",
        "--input-format",
        "jsonl",
        "--format",
        "jsonl",
        "--fail-on-spam",
        "-",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let docs: Vec<DocOut> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0].id.as_deref(), Some("seed"));
    assert_eq!(docs[0].spans.len(), 5);
    assert_eq!(docs[1].id.as_deref(), Some("7"));
    assert!(docs[2].error.is_some() && docs[2].path.as_deref() == Some("-:3"));
    // A malformed record is a failure, which outranks the spam status.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let out = sift(&[
        "classify",
        "--fail-on-spam",
        "--format",
        "jsonl",
        "examples/article.txt",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn clean_prints_only_the_cleaned_text() {
    let out = sift(&["clean", "examples/article.txt"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let expected: Expected =
        serde_json::from_str(&std::fs::read_to_string("examples/article.expected.json").unwrap())
            .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        expected.clean_text.trim_end()
    );
}

#[test]
fn text_format_marks_spans() {
    let out = sift(&["classify", "--color", "never", "examples/article.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("5 spam span(s)"), "{text}");
    assert!(text
        .lines()
        .any(|l| l.starts_with("mixed") && l.contains("[[")));
    let colored = sift(&["classify", "--color", "always", "examples/article.txt"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&colored.stdout).contains("\x1b[1;31m"));
    assert!(Path::new("examples/article.txt").exists());
}
