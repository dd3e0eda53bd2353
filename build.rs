//! Compiles the repository's model manifests (`models/*.toml`) into the binary, so that adding a model
//! is adding a file, with no Rust to edit, and an installed `sift` needs no checkout beside it.

use std::path::Path;

fn main() {
    // Read when the script runs, not when it is compiled: a script compiled for another checkout of
    // the same package (a git worktree sharing the target folder) must still read this one's models.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("models");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("models/ folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    let mut out = String::from("pub const MANIFESTS: &[(&str, &str)] = &[\n");
    for p in &names {
        println!("cargo:rerun-if-changed={}", p.display());
        let file = p.file_name().unwrap().to_string_lossy();
        out += &format!(
            "    ({file:?}, include_str!({:?})),\n",
            p.display().to_string()
        );
    }
    out += "];\n";
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("manifests.rs");
    std::fs::write(dest, out).expect("write manifests.rs");
}
