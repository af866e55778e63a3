//! A model file that changed since it was fetched is refused at load (issue #21, item 5: a GGUF
//! with 4 KiB flipped mid-file loaded and scored perplexity 851,555,411 without a word). The
//! corrupted copy is written under a temporary directory, never in the models directory.

use std::path::PathBuf;

use abridge_models::fetch::{self, Integrity};
use abridge_models::{Error, LanguageModel, LoadOptions};

/// A copy of the default model and its recorded sha256 in a fresh temporary directory, with
/// 4 KiB in the middle inverted.
fn corrupted_copy() -> (PathBuf, PathBuf) {
    let original = fetch::default_model_path();
    let dir = std::env::temp_dir().join(format!("abridge-integrity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(original.file_name().unwrap());
    let mut bytes = std::fs::read(&original).unwrap_or_else(|e| {
        panic!("{e}: the test needs the default model (run scripts/fetch-models.sh)")
    });
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 4096] {
        *byte = !*byte;
    }
    std::fs::write(&copy, bytes).unwrap();
    let mut marker = copy.clone().into_os_string();
    marker.push(".sha256");
    let mut recorded = original.clone().into_os_string();
    recorded.push(".sha256");
    std::fs::copy(recorded, marker).unwrap();
    (dir, copy)
}

#[test]
fn a_corrupted_model_is_refused_unless_verification_is_skipped() {
    assert_eq!(
        fetch::check_integrity(&fetch::default_model_path()).unwrap(),
        Integrity::Verified
    );
    let (dir, copy) = corrupted_copy();
    assert!(matches!(
        fetch::check_integrity(&copy).unwrap(),
        Integrity::Corrupt { .. }
    ));
    let error = LanguageModel::load(&copy, LoadOptions::default())
        .err()
        .expect("a corrupted file is refused");
    assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("corrupted") && message.contains("--no-verify"),
        "{message}"
    );
    let skipped = LoadOptions {
        skip_verify: true,
        ..LoadOptions::default()
    };
    assert!(LanguageModel::load(&copy, skipped).is_ok());

    // A file with no recorded checksum (one the user brought) loads: there is nothing to check.
    let mut marker = copy.clone().into_os_string();
    marker.push(".sha256");
    std::fs::remove_file(marker).unwrap();
    assert_eq!(
        fetch::check_integrity(&copy).unwrap(),
        Integrity::Unrecorded
    );
    std::fs::remove_dir_all(dir).unwrap();
}
