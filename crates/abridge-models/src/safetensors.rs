//! A reader for `.safetensors` files (Hugging Face's weight format): an 8-byte little-endian
//! header length, a JSON header naming each tensor's dtype, shape and byte range, then the data.
//!
//! Tensors are read one at a time straight from the file, so loading a model never holds the
//! whole file and its f32 copy at once (XLM-RoBERTa-large is 2.2 GB).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use crate::error::{Error, Result};

/// Headers larger than this are not safetensors files (the format itself caps them at 100 MB).
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// Element types we convert to f32. Others (integer buffers such as `position_ids`) can be
/// listed but not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
    BF16,
    Other(String),
}

impl Dtype {
    fn parse(name: &str) -> Self {
        match name {
            "F32" => Self::F32,
            "F16" => Self::F16,
            "BF16" => Self::BF16,
            other => Self::Other(other.to_string()),
        }
    }

    fn byte_size(&self) -> Option<usize> {
        match self {
            Self::F32 => Some(4),
            Self::F16 | Self::BF16 => Some(2),
            Self::Other(_) => None,
        }
    }
}

/// One tensor's entry in the header.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range in the file (already offset past the header).
    bytes: Range<u64>,
}

/// An open safetensors file.
pub struct SafeTensors {
    pub path: PathBuf,
    file: File,
    tensors: BTreeMap<String, TensorInfo>,
    /// The header's `__metadata__` (string values only).
    metadata: BTreeMap<String, String>,
}

impl SafeTensors {
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |reason: String| Error::InvalidModelFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::ModelNotFound {
                    path: path.to_path_buf(),
                }
            } else {
                io(source)
            }
        })?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut len_bytes = [0u8; 8];
        file.read_exact(&mut len_bytes)
            .map_err(|_| invalid("shorter than a safetensors header".into()))?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
            return Err(invalid(format!(
                "its header claims {header_len} bytes in a {file_len}-byte file"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(io)?;
        let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| invalid(format!("its header is not a JSON object: {e}")))?;
        let data_start = 8 + header_len;
        let mut tensors = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, entry) in header {
            if name == "__metadata__" {
                // The format allows only strings here; anything else is skipped, not fatal,
                // so files from lax writers still load.
                if let serde_json::Value::Object(map) = entry {
                    metadata = map
                        .into_iter()
                        .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
                        .collect();
                }
                continue;
            }
            let info = parse_entry(&entry, data_start, file_len)
                .map_err(|reason| invalid(format!("tensor `{name}`: {reason}")))?;
            tensors.insert(name, info);
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            tensors,
            metadata,
        })
    }

    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Reads tensor `name` as f32, checking that its shape is `shape`.
    pub fn read_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let invalid = |reason: String| Error::InvalidModelFile {
            path: self.path.clone(),
            reason,
        };
        let info = self
            .get(name)
            .ok_or_else(|| invalid(format!("the tensor `{name}` is missing")))?;
        if info.shape != shape {
            return Err(invalid(format!(
                "the tensor `{name}` has shape {:?}, expected {shape:?}",
                info.shape
            )));
        }
        let mut raw = vec![0u8; (info.bytes.end - info.bytes.start) as usize];
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        // `&File` reads and seeks without `&mut self`, so loaders can share the reader.
        let mut file = &self.file;
        file.seek(SeekFrom::Start(info.bytes.start)).map_err(io)?;
        file.read_exact(&mut raw).map_err(io)?;
        Ok(match &info.dtype {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::Other(dtype) => {
                return Err(invalid(format!(
                    "the tensor `{name}` is {dtype}; only F32, F16 and BF16 weights can be used"
                )))
            }
        })
    }
}

/// Writes `tensors` (name, shape, values) as F32 with string `metadata`: the format written by
/// abridge's own tools (soft prompts, compressor adapters).
pub fn write_f32(
    path: &Path,
    metadata: &BTreeMap<String, String>,
    tensors: &[(&str, Vec<usize>, &[f32])],
) -> Result<()> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(metadata));
    let mut offset = 0;
    for (name, shape, values) in tensors {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "{name}");
        let end = offset + values.len() * 4;
        header.insert(
            (*name).to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let header = serde_json::Value::Object(header).to_string();
    // The format pads the header with spaces so the data starts 8-byte aligned.
    let padded = header.len().next_multiple_of(8);
    let mut bytes = Vec::with_capacity(8 + padded + offset);
    bytes.extend_from_slice(&(padded as u64).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(8 + padded, b' ');
    for (_, _, values) in tensors {
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_entry(
    entry: &serde_json::Value,
    data_start: u64,
    file_len: u64,
) -> Result<TensorInfo, String> {
    let dtype = entry
        .get("dtype")
        .and_then(|v| v.as_str())
        .map(Dtype::parse)
        .ok_or("no dtype")?;
    let shape = entry
        .get("shape")
        .and_then(|v| v.as_array())
        .ok_or("no shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<Vec<_>>>()
        .ok_or("a dimension is not a whole number")?;
    let offsets = entry
        .get("data_offsets")
        .and_then(|v| v.as_array())
        .filter(|a| a.len() == 2)
        .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
        .ok_or("data_offsets is not a pair of byte offsets")?;
    let bytes = data_start.saturating_add(offsets.0)..data_start.saturating_add(offsets.1);
    if bytes.start > bytes.end || bytes.end > file_len {
        return Err(format!(
            "its data {:?} lies outside the file ({file_len} bytes)",
            offsets
        ));
    }
    if let Some(size) = dtype.byte_size() {
        let expected = shape
            .iter()
            .try_fold(size as u64, |n, &d| n.checked_mul(d as u64));
        if expected != Some(bytes.end - bytes.start) {
            return Err(format!(
                "shape {shape:?} does not fit its {} bytes",
                bytes.end - bytes.start
            ));
        }
    }
    Ok(TensorInfo {
        dtype,
        shape,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(name: &str, header: &str, data: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("abridge-st-{}-{name}", std::process::id()));
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_each_float_type() {
        let mut data = Vec::new();
        data.extend([1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()));
        data.extend(f16::from_f32(0.25).to_le_bytes());
        data.extend(bf16::from_f32(-3.0).to_le_bytes());
        data.extend(7i64.to_le_bytes());
        let header = r#"{"__metadata__":{"format":"pt"},
            "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
            "b":{"dtype":"F16","shape":[1,1],"data_offsets":[8,10]},
            "c":{"dtype":"BF16","shape":[1],"data_offsets":[10,12]},
            "ids":{"dtype":"I64","shape":[1],"data_offsets":[12,20]}}"#;
        let path = write_file("types", header, &data);
        let st = SafeTensors::open(&path).unwrap();
        assert_eq!(st.names().collect::<Vec<_>>(), ["a", "b", "c", "ids"]);
        assert_eq!(st.metadata()["format"], "pt");
        assert_eq!(st.read_f32("a", &[2]).unwrap(), [1.5, -2.0]);
        assert_eq!(st.read_f32("b", &[1, 1]).unwrap(), [0.25]);
        assert_eq!(st.read_f32("c", &[1]).unwrap(), [-3.0]);
        assert!(st.read_f32("a", &[1, 2]).is_err());
        assert!(st.read_f32("ids", &[1]).is_err());
        assert!(st.read_f32("missing", &[1]).is_err());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn rejects_broken_files() {
        let cases = [
            ("short", "", &[][..]),
            ("json", "not json", &[][..]),
            (
                "range",
                r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                &[0u8; 8][..],
            ),
            (
                "shape",
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                &[0u8; 8][..],
            ),
        ];
        for (name, header, data) in cases {
            let path = write_file(name, header, data);
            assert!(
                matches!(
                    SafeTensors::open(&path),
                    Err(Error::InvalidModelFile { .. })
                ),
                "{name}"
            );
            std::fs::remove_file(path).unwrap();
        }
        assert!(matches!(
            SafeTensors::open(Path::new("/nonexistent/model.safetensors")),
            Err(Error::ModelNotFound { .. })
        ));
    }
}
