//! Shared helpers for integration tests: the real models, loaded once per test binary from the
//! verified cache (`.ci/run` fetches them first; a missing model fails with the command that fetches it).

#![allow(dead_code)]

use std::sync::{Mutex, OnceLock};

use candle_core::Device;
use sift::encode::Encoder;
use sift::generate::TextModel;
use sift::model::manifest::{Catalog, Manifest, Role};
use sift::model::store::ModelStore;

pub fn store() -> ModelStore {
    let mut s = ModelStore::from_env();
    s.offline = true;
    s.progress = false;
    s
}

pub fn manifest(role: Role) -> Manifest {
    Catalog::builtin().unwrap().for_role(role).unwrap().clone()
}

pub fn model_path(role: Role) -> std::path::PathBuf {
    store()
        .resolve(&manifest(role))
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0)
}

pub fn encoder() -> &'static Encoder {
    static E: OnceLock<Encoder> = OnceLock::new();
    E.get_or_init(|| {
        sift::model::load_encoder(&store(), &manifest(Role::Encoder), &Device::Cpu)
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

pub fn summarizer() -> &'static Mutex<TextModel> {
    static S: OnceLock<Mutex<TextModel>> = OnceLock::new();
    S.get_or_init(|| {
        let m = sift::model::load_summarizer(&store(), &manifest(Role::Summarizer), &Device::Cpu)
            .unwrap_or_else(|e| panic!("{e}"));
        Mutex::new(m)
    })
}
