//! Model loading: manifests say which weights, the store finds or fetches and verifies them, and the
//! format loaders (GGUF, E5S1) turn verified files into candle models with their tokenizers.

pub mod e5s1;
pub mod fetch;
pub mod gguf;
pub mod manifest;
pub mod store;

use candle_core::Device;

use crate::encode::Encoder;
use crate::error::{Error, Result};
use crate::generate::openings::OpeningStore;
use crate::generate::TextModel;
use manifest::{Format, Manifest, Role};
use store::ModelStore;

/// Resolves (fetching when allowed) and loads the summarizer `manifest` describes.
pub fn load_summarizer(
    store: &ModelStore,
    manifest: &Manifest,
    device: &Device,
) -> Result<TextModel> {
    expect_role(manifest, Role::Summarizer)?;
    let paths = store.resolve(manifest)?;
    match manifest.format {
        Format::Gguf => {
            let mut model = gguf::load_chat_model(&paths[0], &manifest.architecture, device)?;
            let openings = store.home.join("openings").join(&manifest.name);
            model.keep_openings(OpeningStore::new(openings, &paths[0]));
            Ok(model)
        }
        other => Err(unsupported(manifest, other)),
    }
}

/// Resolves (fetching when allowed) and loads the encoder `manifest` describes.
pub fn load_encoder(store: &ModelStore, manifest: &Manifest, device: &Device) -> Result<Encoder> {
    expect_role(manifest, Role::Encoder)?;
    let paths = store.resolve(manifest)?;
    match manifest.format {
        Format::E5s1 => Encoder::load_e5s1(&paths[0], device),
        other => Err(unsupported(manifest, other)),
    }
}

fn expect_role(manifest: &Manifest, role: Role) -> Result<()> {
    if manifest.role == role {
        Ok(())
    } else {
        Err(Error::Manifest {
            path: manifest.origin.clone(),
            detail: format!(
                "model `{}` is a {}, not a {role}",
                manifest.name, manifest.role
            ),
        })
    }
}

fn unsupported(manifest: &Manifest, format: Format) -> Error {
    Error::Manifest {
        path: manifest.origin.clone(),
        detail: format!("format {format:?} cannot serve as a {}", manifest.role),
    }
}
