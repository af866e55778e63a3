//! Missing, corrupt, truncated and unsupported model files give clear errors.

use std::path::Path;

use abridge_models::{fetch, Error, LanguageModel, LoadOptions};

fn load(path: &Path) -> Error {
    match LanguageModel::load(path, LoadOptions::default()) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e,
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("abridge-bad-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A minimal GGUF v3 file: the given string metadata and no tensors.
fn gguf_with_metadata(pairs: &[(&str, &str)]) -> Vec<u8> {
    let string = |out: &mut Vec<u8>, s: &str| {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    };
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend((pairs.len() as u64).to_le_bytes());
    for (key, value) in pairs {
        string(&mut out, key);
        out.extend(8u32.to_le_bytes());
        string(&mut out, value);
    }
    out
}

#[test]
fn a_missing_file_names_the_fetch_command() {
    let error = load(Path::new("/nonexistent/model.gguf"));
    assert!(matches!(error, Error::ModelNotFound { .. }));
    assert!(
        error.to_string().contains("abridge models fetch"),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_gguf_is_rejected() {
    let error = load(&temp_file(
        "random.gguf",
        b"PK\x03\x04 this is a zip, not a model",
    ));
    assert!(error.to_string().contains("GGUF magic"), "{error}");
    let error = load(&temp_file("empty.gguf", b""));
    assert!(error.to_string().contains("truncated"), "{error}");
}

#[test]
fn a_truncated_download_is_detected() {
    let real = std::fs::read(fetch::default_model_path())
        .expect("the default model (run scripts/fetch-models.sh)");
    for cut in [100, real.len() / 2, real.len() - 1] {
        let error = load(&temp_file("truncated.gguf", &real[..cut]));
        assert!(matches!(error, Error::InvalidGguf { .. }), "{error}");
        assert!(error.to_string().contains("truncated"), "{cut}: {error}");
    }
}

#[test]
fn an_unsupported_architecture_is_named() {
    let bytes = gguf_with_metadata(&[("general.architecture", "gpt2")]);
    let error = load(&temp_file("gpt2.gguf", &bytes));
    assert!(matches!(error, Error::Unsupported(_)), "{error}");
    assert!(error.to_string().contains("`gpt2`"), "{error}");
}

#[test]
fn missing_metadata_is_named() {
    let bytes = gguf_with_metadata(&[("general.architecture", "llama")]);
    let error = load(&temp_file("bare.gguf", &bytes)).to_string();
    assert!(error.contains("missing"), "{error}");
}
