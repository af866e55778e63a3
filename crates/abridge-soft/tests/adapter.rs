//! The compressor-adapter file: the shipped GPU-trained adapters load against the default model's
//! shapes, and a save/load round trip keeps every tensor and the training record.

use std::path::{Path, PathBuf};

use abridge_models::gguf::GgufFile;
use abridge_models::llama::Config;
use abridge_soft::{Adapter, Error, Method};

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/soft")
        .join(name)
}

fn default_config() -> Config {
    let gguf = GgufFile::open(&abridge_models::fetch::default_model_path()).unwrap();
    Config::from_gguf(&gguf).unwrap()
}

#[test]
fn shipped_adapters_load_with_the_default_models_shapes() {
    let config = default_config();
    for (file, method) in [
        ("icae-k16.safetensors", Method::Icae),
        ("500x-k16.safetensors", Method::KvPrefix),
    ] {
        let adapter = Adapter::load(&shipped(file), &config).unwrap();
        assert_eq!(adapter.method, method);
        assert_eq!((adapter.k, adapter.rank, adapter.lora_scale), (16, 16, 2.0));
        assert_eq!(adapter.weights.lora.len(), config.layers);
        assert_eq!(adapter.weights.memory.len(), 16 * config.hidden);
        assert!(adapter.record["steps"].parse::<usize>().unwrap() > 0);
        assert_eq!(adapter.qv_lora(&config).len(), config.layers);
    }
}

#[test]
fn round_trip_keeps_weights_and_record() {
    let config = default_config();
    let adapter = Adapter::load(&shipped("500x-k16.safetensors"), &config).unwrap();
    let path = std::env::temp_dir().join(format!(
        "abridge-adapter-{}.safetensors",
        std::process::id()
    ));
    adapter.save(&path, &config).unwrap();
    let again = Adapter::load(&path, &config);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(again.unwrap(), adapter);
}

#[test]
fn wrong_files_are_refused_with_the_reason() {
    let config = default_config();
    let missing = Adapter::load(Path::new("/nonexistent/adapter.safetensors"), &config);
    assert!(matches!(missing, Err(Error::AdapterNotFound { .. })));
    let mut narrow = config.clone();
    narrow.hidden = 64;
    let error = Adapter::load(&shipped("icae-k16.safetensors"), &narrow).unwrap_err();
    assert!(error.to_string().contains("shape"), "{error}");
}
