//! Fuzz targets for the model-file readers (issue #21, item 6), on stable Rust: a small valid
//! GGUF and safetensors file (the corpus, built below) with random bytes flipped, inserted or cut
//! off, and arbitrary bytes. A reader must return a file or a clear error, never panic or try to
//! allocate what the file merely claims. `cargo test` runs a short bounded pass; a long run sets
//! `ABRIDGE_FUZZ_CASES` (docs/RELIABILITY.md).

use std::path::Path;

use abridge_models::gguf::GgufFile;
use abridge_models::safetensors::SafeTensors;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("ABRIDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// GGUF v3: two metadata values (a string and an array of strings) and one 2×4 F32 tensor.
fn seed_gguf() -> Vec<u8> {
    let string = |out: &mut Vec<u8>, s: &str| {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    };
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(1u64.to_le_bytes()); // tensors
    out.extend(2u64.to_le_bytes()); // metadata
    string(&mut out, "general.architecture");
    out.extend(8u32.to_le_bytes());
    string(&mut out, "llama");
    string(&mut out, "tokenizer.ggml.tokens");
    out.extend(9u32.to_le_bytes()); // array
    out.extend(8u32.to_le_bytes()); // of strings
    out.extend(2u64.to_le_bytes());
    string(&mut out, "a");
    string(&mut out, "b");
    string(&mut out, "w");
    out.extend(2u32.to_le_bytes());
    out.extend(4u64.to_le_bytes());
    out.extend(2u64.to_le_bytes());
    out.extend(0u32.to_le_bytes()); // F32
    out.extend(0u64.to_le_bytes());
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    out.extend((0..8).flat_map(|i| (i as f32).to_le_bytes()));
    out
}

fn seed_safetensors() -> Vec<u8> {
    let header = br#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend((0..4).flat_map(|i| (i as f32).to_le_bytes()));
    out
}

/// `seed` with a few bytes replaced, inserted or removed, and maybe truncated.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0..3u8);
    (
        proptest::collection::vec(edit, 0..6),
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(move |(edits, cut)| {
            let mut bytes = seed.clone();
            for (at, byte, kind) in edits {
                let at = at.index(bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => {}
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

fn file_bytes(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => mutated(seed),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

#[test]
fn the_seeds_are_valid() {
    let gguf = GgufFile::parse(Path::new("seed.gguf"), seed_gguf()).unwrap();
    assert_eq!(gguf.require_str("general.architecture").unwrap(), "llama");
    let path =
        std::env::temp_dir().join(format!("abridge-seed-{}.safetensors", std::process::id()));
    std::fs::write(&path, seed_safetensors()).unwrap();
    let file = SafeTensors::open(&path).unwrap();
    assert_eq!(file.read_f32("w", &[2, 2]).unwrap(), [0.0, 1.0, 2.0, 3.0]);
    std::fs::remove_file(path).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn gguf_reader_reads_or_refuses(bytes in file_bytes(seed_gguf())) {
        if let Ok(file) = GgufFile::parse(Path::new("fuzz.gguf"), bytes) {
            let _ = file.get("general.architecture");
        }
    }

    #[test]
    fn safetensors_reader_reads_or_refuses(bytes in file_bytes(seed_safetensors())) {
        let path = std::env::temp_dir().join(format!(
            "abridge-fuzz-{}-{:?}.safetensors",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(file) = SafeTensors::open(&path) {
            let names: Vec<String> = file.names().map(str::to_string).collect();
            for name in names {
                let shape = file.get(&name).map(|t| t.shape.clone()).unwrap_or_default();
                let _ = file.read_f32(&name, &shape);
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}
