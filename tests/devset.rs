//! The development set as a fixture: the segmenter over every document, and the cleaning and
//! whitespace conventions against every gold file.

#[test]
fn segmenter_covers_every_development_document() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/dev/docs");
    let mut docs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let spans = sift::segment::sentences(&text);
        let mut last_end = 0;
        let mut covered = 0usize;
        for s in &spans {
            assert!(
                s.start >= last_end && s.start < s.end,
                "{}: {s:?}",
                path.display()
            );
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            let piece = &text[s.start..s.end];
            assert_eq!(piece, piece.trim(), "{}", path.display());
            assert!(
                text[last_end..s.start].trim().is_empty(),
                "{}: text between spans",
                path.display()
            );
            covered += piece.chars().filter(|c| !c.is_whitespace()).count();
            last_end = s.end;
        }
        assert!(text[last_end..].trim().is_empty());
        assert_eq!(covered, text.chars().filter(|c| !c.is_whitespace()).count());
        docs += 1;
    }
    assert!(docs >= 40, "only {docs} development documents");
}

#[test]
fn cleaning_convention_reproduces_every_gold_clean_text() {
    let set =
        sift::eval::load_set(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/dev"))
            .unwrap();
    assert!(set.len() >= 40);
    for doc in &set {
        let cuts: Vec<(usize, usize)> = doc.gold.spam.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(
            sift::detect::spans::clean_text(&doc.text, &cuts),
            doc.gold.clean_text,
            "{}",
            doc.name
        );
        // The whitespace convention, applied to each gold span's non-space core, gives the span back.
        for s in &doc.gold.spam {
            let (a, b) = sift::detect::spans::trim(&doc.text, s.start, s.end);
            assert_eq!(
                sift::detect::spans::snap_whitespace(&doc.text, a, b),
                (s.start, s.end),
                "{}: {:?}",
                doc.name,
                s.text
            );
        }
    }
}
