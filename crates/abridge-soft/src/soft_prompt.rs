//! A fitted soft prompt and its file: `.safetensors` with one F32 tensor `soft_prompt`
//! (`k × hidden`) and string metadata naming the model it was fitted for.

use std::collections::BTreeMap;
use std::path::Path;

use abridge_models::safetensors::SafeTensors;

use crate::error::{Error, Result};

/// The tensor's name in the file.
const TENSOR: &str = "soft_prompt";
/// `__metadata__["format"]` of our files.
const FORMAT: &str = "abridge-soft-prompt";

/// The model a soft prompt belongs to: it works with this exact file only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    /// The GGUF file's name (for messages).
    pub file: String,
    /// sha256 of the GGUF file.
    pub sha256: String,
}

impl ModelId {
    pub fn of_file(path: &Path) -> Result<Self> {
        Ok(Self {
            file: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            sha256: abridge_models::fetch::sha256_file(path)?,
        })
    }
}

/// How a soft prompt was fitted.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRecord {
    /// `cram` or `distill`.
    pub objective: String,
    /// The objective's last value (nats per predicted token).
    pub loss: f64,
    /// Optimisation steps taken.
    pub steps: usize,
    /// Tokens of the prompt text it stands for.
    pub text_tokens: usize,
}

/// `k` input vectors that stand for a prompt, for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftPrompt {
    /// `k × hidden`, row-major.
    pub vectors: Vec<f32>,
    pub hidden: usize,
    pub model: ModelId,
    pub fit: FitRecord,
}

impl SoftPrompt {
    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.vectors.len() / self.hidden
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Refuses to be used with any model but the one it was fitted for.
    pub fn check_model(&self, path: &Path, model: &ModelId) -> Result<()> {
        if self.model.sha256 == model.sha256 {
            return Ok(());
        }
        Err(Error::ModelMismatch {
            path: path.to_path_buf(),
            fitted_for: self.model.file.clone(),
            fitted_sha256: self.model.sha256.clone(),
            model: model.file.clone(),
            model_sha256: model.sha256.clone(),
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let metadata: BTreeMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("model_file", self.model.file.clone()),
            ("model_sha256", self.model.sha256.clone()),
            ("k", self.len().to_string()),
            ("objective", self.fit.objective.clone()),
            ("loss", self.fit.loss.to_string()),
            ("steps", self.fit.steps.to_string()),
            ("text_tokens", self.fit.text_tokens.to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        let shape = vec![self.len(), self.hidden];
        crate::file::write(path, &metadata, &[(TENSOR, shape, &self.vectors)])
    }

    pub fn load(path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidFile {
            path: path.to_path_buf(),
            reason,
        };
        let file = SafeTensors::open(path).map_err(|e| match e {
            abridge_models::Error::ModelNotFound { .. } => Error::NotFound {
                path: path.to_path_buf(),
            },
            other => invalid(other.to_string()),
        })?;
        let meta = file.metadata();
        let meta = crate::file::Metadata {
            map: meta,
            invalid: &invalid,
        };
        meta.check_format(FORMAT)?;
        let shape = file
            .get(TENSOR)
            .map(|t| t.shape.clone())
            .ok_or_else(|| invalid(format!("it has no `{TENSOR}` tensor")))?;
        let [k, hidden] = shape[..] else {
            return Err(invalid(format!(
                "`{TENSOR}` has shape {shape:?}, not [k, hidden]"
            )));
        };
        if k == 0 || hidden == 0 || meta.number::<usize>("k")? != k {
            return Err(invalid(format!(
                "`{TENSOR}` has shape {shape:?}, its metadata k = {}",
                meta.text("k")?
            )));
        }
        let vectors = file
            .read_f32(TENSOR, &shape)
            .map_err(|e| invalid(e.to_string()))?;
        if vectors.iter().any(|v| !v.is_finite()) {
            return Err(invalid("its vectors are not all finite".into()));
        }
        Ok(Self {
            vectors,
            hidden,
            model: ModelId {
                file: meta.text("model_file")?,
                sha256: meta.text("model_sha256")?,
            },
            fit: FitRecord {
                objective: meta.text("objective")?,
                loss: meta
                    .text("loss")?
                    .parse()
                    .map_err(|_| invalid("its metadata `loss` is not a number".into()))?,
                steps: meta.number("steps")?,
                text_tokens: meta.number("text_tokens")?,
            },
        })
    }
}
