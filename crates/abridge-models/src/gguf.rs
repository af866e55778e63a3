//! Reader for GGUF files (version 2 and 3): metadata and tensor data, by name.
//!
//! The whole file is read into memory; tensors are views into that buffer until they are
//! dequantised by [`crate::quant`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::quant::GgmlType;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Where a tensor lives in the file and how it is stored.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// Dimensions in GGML order: `dims[0]` is the innermost (contiguous) one.
    pub dims: Vec<usize>,
    pub dtype: GgmlType,
    /// Byte range of the data in the file buffer.
    pub offset: usize,
    pub size: usize,
}

impl TensorInfo {
    pub fn element_count(&self) -> usize {
        self.dims.iter().product()
    }
}

/// A parsed GGUF file held in memory.
pub struct GgufFile {
    pub path: PathBuf,
    pub metadata: HashMap<String, Value>,
    pub tensors: HashMap<String, TensorInfo>,
    data: Vec<u8>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish_non_exhaustive()
    }
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::ModelNotFound {
                    path: path.to_path_buf(),
                }
            } else {
                Error::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        Self::parse(path, data)
    }

    pub fn parse(path: &Path, data: Vec<u8>) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidGguf {
            path: path.to_path_buf(),
            reason,
        };
        let mut reader = Reader {
            data: &data,
            pos: 0,
        };
        let magic = reader.bytes(4).map_err(&invalid)?;
        if magic != MAGIC {
            return Err(invalid(
                "it does not start with the GGUF magic bytes".into(),
            ));
        }
        let version = reader.u32().map_err(&invalid)?;
        if !(2..=3).contains(&version) {
            return Err(invalid(format!(
                "GGUF version {version} is not supported (2 and 3 are)"
            )));
        }
        let tensor_count = reader.u64().map_err(&invalid)?;
        let metadata_count = reader.u64().map_err(&invalid)?;

        let mut metadata = HashMap::new();
        for _ in 0..metadata_count {
            let key = reader.string().map_err(&invalid)?;
            let value_type = reader.u32().map_err(&invalid)?;
            let value = reader.value(value_type, 0).map_err(&invalid)?;
            metadata.insert(key, value);
        }

        let mut infos = Vec::new();
        for _ in 0..tensor_count {
            let name = reader.string().map_err(&invalid)?;
            let n_dims = reader.u32().map_err(&invalid)?;
            if n_dims > 4 {
                return Err(invalid(format!("tensor {name} has {n_dims} dimensions")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                let dim = reader.u64().map_err(&invalid)?;
                dims.push(
                    usize::try_from(dim)
                        .map_err(|_| invalid(format!("tensor {name} is too large")))?,
                );
            }
            let type_id = reader.u32().map_err(&invalid)?;
            let dtype = GgmlType::from_id(type_id).ok_or_else(|| {
                Error::Unsupported(format!(
                    "tensor {name} in {} uses GGML type {type_id}, which abridge cannot read yet",
                    path.display()
                ))
            })?;
            let offset = reader.u64().map_err(&invalid)?;
            infos.push((name, dims, dtype, offset));
        }

        let alignment = metadata
            .get("general.alignment")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_ALIGNMENT)
            .max(1);
        let data_start = (reader.pos as u64).div_ceil(alignment) * alignment;

        let mut tensors = HashMap::new();
        for (name, dims, dtype, offset) in infos {
            let elements: usize = dims.iter().product();
            let size = dtype.byte_size(elements).ok_or_else(|| {
                invalid(format!(
                    "tensor {name} has {elements} elements, not a whole number of {dtype:?} blocks"
                ))
            })?;
            let start = data_start
                .checked_add(offset)
                .and_then(|s| usize::try_from(s).ok())
                .ok_or_else(|| invalid(format!("tensor {name} has an impossible offset")))?;
            let end = start
                .checked_add(size)
                .filter(|&end| end <= data.len())
                .ok_or_else(|| {
                    invalid(format!(
                        "the file is truncated: tensor {name} needs bytes up to {} but the file has {}",
                        start.saturating_add(size),
                        data.len()
                    ))
                })?;
            tensors.insert(
                name,
                TensorInfo {
                    dims,
                    dtype,
                    offset: start,
                    size: end - start,
                },
            );
        }

        Ok(Self {
            path: path.to_path_buf(),
            metadata,
            tensors,
            data,
        })
    }

    /// The raw bytes of a tensor.
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        &self.data[info.offset..info.offset + info.size]
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// A required metadata value, or an error naming the missing key.
    pub fn require(&self, key: &str) -> Result<&Value> {
        self.metadata.get(key).ok_or_else(|| Error::InvalidGguf {
            path: self.path.clone(),
            reason: format!("the metadata key {key} is missing"),
        })
    }

    pub fn require_u64(&self, key: &str) -> Result<u64> {
        self.require(key)?
            .as_u64()
            .ok_or_else(|| self.wrong_type(key))
    }

    pub fn require_str(&self, key: &str) -> Result<&str> {
        self.require(key)?
            .as_str()
            .ok_or_else(|| self.wrong_type(key))
    }

    pub fn wrong_type(&self, key: &str) -> Error {
        Error::InvalidGguf {
            path: self.path.clone(),
            reason: format!("the metadata key {key} has an unexpected type"),
        }
    }
}

/// Nested arrays deeper than this are rejected (real files use one level).
const MAX_ARRAY_DEPTH: usize = 4;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| {
                format!(
                    "the header is truncated (needed {n} bytes at offset {} of {})",
                    self.pos,
                    self.data.len()
                )
            })?;
        let slice = &self.data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.bytes(N)?.try_into().expect("length checked"))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn length(&mut self) -> Result<usize, String> {
        let len = self.u64()?;
        // Every element takes at least a byte, so a length beyond the file is corrupt.
        usize::try_from(len)
            .ok()
            .filter(|&len| len <= self.data.len() - self.pos)
            .ok_or_else(|| {
                format!(
                    "a length of {len} at offset {} runs past the end of the file",
                    self.pos
                )
            })
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.length()?;
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not valid UTF-8".to_string())
    }

    fn value(&mut self, value_type: u32, depth: usize) -> Result<Value, String> {
        Ok(match value_type {
            0 => Value::U8(self.array::<1>()?[0]),
            1 => Value::I8(i8::from_le_bytes(self.array()?)),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => Value::Bool(self.array::<1>()?[0] != 0),
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err("metadata arrays are nested too deeply".into());
                }
                let element_type = self.u32()?;
                let len = self.length()?;
                let mut values = Vec::with_capacity(len.min(1 << 20));
                for _ in 0..len {
                    values.push(self.value(element_type, depth + 1)?);
                }
                Value::Array(values)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            other => return Err(format!("unknown metadata value type {other}")),
        })
    }
}
