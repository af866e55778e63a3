//! What every abridge-soft file shares (soft prompts, compressor adapters, compressed prompts,
//! training state): safetensors written as F32 with string metadata, and a metadata reader whose
//! errors name the key, so each file reports a missing or bad key the same way.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use abridge_models::safetensors::{self, SafeTensors};

use crate::error::{Error, Result};

/// Writes `tensors` (name, shape, values) and `metadata` to `path`.
pub(crate) fn write(
    path: &Path,
    metadata: &BTreeMap<String, String>,
    tensors: &[(&str, Vec<usize>, &[f32])],
) -> Result<()> {
    safetensors::write_f32(path, metadata, tensors).map_err(|e| match e {
        abridge_models::Error::Io { path, source } => Error::Write { path, source },
        other => Error::Model(other),
    })
}

/// Tensor `name` of `file`, checked to have `shape` and finite values; `invalid` turns a reason
/// into the file's own error.
pub(crate) fn read_finite(
    file: &SafeTensors,
    name: &str,
    shape: &[usize],
    invalid: impl Fn(String) -> Error,
) -> Result<Vec<f32>> {
    let values = file
        .read_f32(name, shape)
        .map_err(|e| invalid(e.to_string()))?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(invalid(format!("`{name}` is not all finite")));
    }
    Ok(values)
}

/// A file's `__metadata__`; `invalid` turns a reason into the file's own error.
pub(crate) struct Metadata<'a, E> {
    pub map: &'a BTreeMap<String, String>,
    pub invalid: E,
}

impl<E: Fn(String) -> Error> Metadata<'_, E> {
    pub fn text(&self, key: &str) -> Result<String> {
        self.map
            .get(key)
            .cloned()
            .ok_or_else(|| (self.invalid)(format!("its metadata has no `{key}`")))
    }

    /// A whole number under `key`.
    pub fn number<T: FromStr>(&self, key: &str) -> Result<T> {
        self.text(key)?
            .parse()
            .map_err(|_| (self.invalid)(format!("its metadata `{key}` is not a whole number")))
    }

    /// Refuses a file whose `format` is not `format`.
    pub fn check_format(&self, format: &str) -> Result<()> {
        if self.map.get("format").map(String::as_str) == Some(format) {
            return Ok(());
        }
        Err((self.invalid)(format!(
            "its metadata `format` is not `{format}`"
        )))
    }
}
