//! Shared by the integration tests: the real default model, loaded once per test binary.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::sync::OnceLock;

use abridge_models::{fetch, LanguageModel, LoadOptions};

pub fn smollm2() -> &'static LanguageModel {
    static MODEL: OnceLock<LanguageModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = fetch::default_model_path();
        LanguageModel::load(&path, LoadOptions::default()).unwrap_or_else(|e| {
            panic!("{e}\n(the tests need the default model: run scripts/fetch-models.sh)")
        })
    })
}

pub fn sample_text() -> &'static str {
    include_str!("../../../../examples/sample.txt")
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
