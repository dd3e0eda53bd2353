//! `sift models list|fetch|verify`.

use serde::Serialize;

use sift::model::manifest::{Catalog, Manifest};
use sift::model::store::{FileStatus, ModelStore};
use sift::{Error, Result};

use super::Format;

#[derive(Serialize)]
struct FileReport {
    name: String,
    path: String,
    size: u64,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
struct ModelReport {
    name: String,
    role: String,
    architecture: String,
    license: String,
    status: &'static str,
    size: u64,
    files: Vec<FileReport>,
}

fn report(store: &ModelStore, m: &Manifest) -> ModelReport {
    let files: Vec<FileReport> = m
        .files
        .iter()
        .map(|f| {
            let (path, status) = store.status(m, f);
            FileReport {
                name: f.name.clone(),
                path: path.display().to_string(),
                size: f.size,
                status: status.label(),
                detail: match status {
                    FileStatus::Corrupt(d) => Some(d),
                    _ => None,
                },
            }
        })
        .collect();
    let worst = ["corrupt", "missing"]
        .into_iter()
        .find(|s| files.iter().any(|f| f.status == *s))
        .unwrap_or("present");
    ModelReport {
        name: m.name.clone(),
        role: m.role.to_string(),
        architecture: m.architecture.clone(),
        license: m.license.clone(),
        status: worst,
        size: m.total_size(),
        files,
    }
}

fn selected<'a>(catalog: &'a Catalog, names: &[String]) -> Result<Vec<&'a Manifest>> {
    if names.is_empty() {
        return Ok(catalog.models.iter().collect());
    }
    names.iter().map(|n| catalog.get(n)).collect()
}

pub fn list(store: &ModelStore, catalog: &Catalog, format: Format) -> Result<bool> {
    let reports: Vec<ModelReport> = catalog.models.iter().map(|m| report(store, m)).collect();
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&reports).expect("serialisable")
        ),
        Format::Text => {
            for r in &reports {
                println!(
                    "{:<36} {:<10} {:<8} {:>10}",
                    r.name,
                    r.role,
                    r.status,
                    human(r.size)
                );
                for f in &r.files {
                    println!("    {} [{}]", f.path, f.status);
                    if let Some(d) = &f.detail {
                        println!("      {d}");
                    }
                }
            }
        }
    }
    Ok(true)
}

pub fn fetch(store: &ModelStore, catalog: &Catalog, names: &[String]) -> Result<bool> {
    if store.offline {
        return Err(Error::Input(
            "`sift models fetch` cannot run with --offline or HF_HUB_OFFLINE=1".into(),
        ));
    }
    for m in selected(catalog, names)? {
        for f in &m.files {
            let (path, status) = store.status(m, f);
            match status {
                FileStatus::Present => {
                    eprintln!("sift: {} {} is present and verified", m.name, f.name);
                    continue;
                }
                FileStatus::Corrupt(d) if path == store.cached_path(m, f) => {
                    eprintln!(
                        "sift: {} is corrupt ({d}); fetching it again",
                        path.display()
                    );
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
                FileStatus::Corrupt(detail) => {
                    return Err(Error::ModelCorrupt {
                        model: m.name.clone(),
                        path,
                        detail: sift::model::store::against(m, detail),
                    })
                }
                FileStatus::Missing => {}
            }
        }
        let paths = store.resolve(m)?;
        for p in paths {
            eprintln!("sift: {} ready at {}", m.name, p.display());
        }
    }
    Ok(true)
}

pub fn verify(store: &ModelStore, catalog: &Catalog, names: &[String]) -> Result<bool> {
    let mut all_good = true;
    for m in selected(catalog, names)? {
        let r = report(store, m);
        for f in &r.files {
            println!("{} {} {}", f.status, r.name, f.path);
            if let Some(d) = &f.detail {
                println!("  {d}");
            }
            if f.status != "present" {
                all_good = false;
            }
        }
    }
    if !all_good {
        eprintln!("sift: some model files are missing or corrupt: run `sift models fetch`");
    }
    Ok(all_good)
}

fn human(bytes: u64) -> String {
    let mb = bytes as f64 / 1_048_576.0;
    if mb >= 1024.0 {
        format!("{:.2} GiB", mb / 1024.0)
    } else {
        format!("{mb:.1} MiB")
    }
}
