//! A GGUF reader (llama.cpp's model format, versions 2 and 3, little-endian) that trusts nothing in the
//! file. Layout (ggml `docs/gguf.md`):
//!
//! ```text
//! "GGUF"  version: u32  tensor_count: u64  metadata_count: u64
//! metadata_count × (key: string, type: u32, value)           string = len: u64, UTF-8 bytes
//! tensor_count × (name: string, n_dims: u32, dims: [u64; n_dims], type: u32, offset: u64)
//! padding to `general.alignment` (default 32), then the tensor data; offsets are relative to it
//! ```
//!
//! `dims[0]` varies fastest: a PyTorch weight of shape (out, in) is stored with dims `[in, out]`, row by row,
//! so its bytes are in PyTorch order and only the shape is reversed.
//!
//! Every count and length is checked against the bytes left in the file before anything is allocated, so a
//! hostile or truncated file gives an error naming the field or tensor, never an out-of-bounds read or an
//! allocation larger than a small multiple of the file. Tensors must lie inside the data section, be
//! aligned, and not overlap.

use crate::quant::{self, GgmlType};
use crate::InteropError;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// The first four bytes of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: usize = 4;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
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
    Array(Array),
}

/// A metadata array: all elements share one type (nested arrays are refused, as in llama.cpp).
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
}

impl Value {
    /// Any integer type as u64, `None` for negatives and non-integers.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any number as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
}

/// Where one tensor's data lies and how to read it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: `dims[0]` varies fastest.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset from the start of the data section (aligned).
    pub offset: u64,
    /// Bytes of data, from the type and the element count.
    pub size: u64,
}

impl TensorInfo {
    /// Number of values.
    pub fn numel(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The shape in PyTorch order (slowest first): `dims` reversed.
    pub fn torch_shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// An open GGUF file: its metadata and tensor table, and the reader to fetch tensor data on demand.
pub struct GgufFile<R> {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_start: u64,
    /// The file's length in bytes.
    pub len: u64,
    name: String,
    reader: R,
}

impl GgufFile<BufReader<File>> {
    /// Opens and checks the file at `path` (header, metadata, tensor table; data is read on demand).
    pub fn open(path: &Path) -> Result<Self, InteropError> {
        let file = File::open(path).map_err(|e| InteropError::io(path, e))?;
        Self::from_reader(BufReader::new(file), &path.display().to_string())
    }
}

/// Bytes a value of metadata type `ty` takes at least (for bounding counts), `None` for an unknown type.
fn min_value_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => 8,     // string: its u64 length
        9 => 4 + 8, // array: element type and count
        _ => return None,
    })
}

/// A position-tracking reader that refuses to read past the end of the file.
struct Cursor<R> {
    reader: R,
    pos: u64,
    len: u64,
    name: String,
}

impl<R: Read> Cursor<R> {
    fn error(&self, what: &str, problem: impl Into<String>, hint: &str) -> InteropError {
        InteropError::gguf(&self.name, what, problem, hint)
    }

    fn left(&self) -> u64 {
        self.len - self.pos
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, InteropError> {
        if n > self.left() {
            return Err(self.error(
                what,
                format!(
                    "needs {n} bytes at offset {} but the file ends at {}",
                    self.pos, self.len
                ),
                "the file is truncated or corrupt; download it again",
            ));
        }
        let mut buf = vec![0u8; n as usize];
        self.reader.read_exact(&mut buf).map_err(|e| {
            self.error(
                what,
                format!("read failed at offset {}: {e}", self.pos),
                "check the file",
            )
        })?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], InteropError> {
        let bytes = self.bytes(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32, InteropError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, InteropError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, InteropError> {
        let len = self.u64(what)?;
        let bytes = self.bytes(len, what)?; // bounded by the bytes left
        String::from_utf8(bytes).map_err(|_| {
            self.error(
                what,
                "is not valid UTF-8",
                "the file is corrupt; download it again",
            )
        })
    }

    /// A count of items of at least `min_size` bytes each, checked against the bytes left.
    fn count(&mut self, what: &str, min_size: u64) -> Result<u64, InteropError> {
        let n = self.u64(what)?;
        if n.saturating_mul(min_size) > self.left() {
            return Err(self.error(
                what,
                format!(
                    "= {n} items of ≥ {min_size} bytes cannot fit in the {} bytes left",
                    self.left()
                ),
                "the file is corrupt or not a GGUF file",
            ));
        }
        Ok(n)
    }

    fn value(&mut self, ty: u32, what: &str) -> Result<Value, InteropError> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>(what)?[0]),
            1 => Value::I8(self.array::<1>(what)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(self.error(
                        what,
                        format!("bool has byte {b}"),
                        "the file is corrupt",
                    ))
                }
            },
            8 => Value::String(self.string(what)?),
            9 => Value::Array(self.array_value(what)?),
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            other => {
                return Err(self.error(
                    what,
                    format!("has unknown value type {other}"),
                    "the file is corrupt or from a newer GGUF version",
                ))
            }
        })
    }

    fn array_value(&mut self, what: &str) -> Result<Array, InteropError> {
        let ty = self.u32(what)?;
        if ty == 9 {
            return Err(self.error(
                what,
                "is an array of arrays",
                "nested arrays are not supported",
            ));
        }
        let min = min_value_size(ty).ok_or_else(|| {
            self.error(
                what,
                format!("array has unknown element type {ty}"),
                "the file is corrupt",
            )
        })?;
        let n = self.count(what, min)? as usize;
        macro_rules! items {
            ($variant:ident, $pat:ident) => {{
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    match self.value(ty, what)? {
                        Value::$pat(v) => items.push(v),
                        _ => unreachable!("value() returns the variant of its type"),
                    }
                }
                Array::$variant(items)
            }};
        }
        Ok(match ty {
            0 => items!(U8, U8),
            1 => items!(I8, I8),
            2 => items!(U16, U16),
            3 => items!(I16, I16),
            4 => items!(U32, U32),
            5 => items!(I32, I32),
            6 => items!(F32, F32),
            7 => items!(Bool, Bool),
            8 => items!(String, String),
            10 => items!(U64, U64),
            11 => items!(I64, I64),
            _ => items!(F64, F64),
        })
    }
}

/// The header after the magic: the version and how many metadata and tensor entries follow.
struct Header {
    version: u32,
    tensor_count: u64,
    metadata_count: u64,
}

impl<R: Read + Seek> Cursor<R> {
    /// A cursor at the start of `reader`, whose length bounds every read.
    fn start(mut reader: R, name: &str) -> Result<Self, InteropError> {
        let len = reader
            .seek(SeekFrom::End(0))
            .and_then(|len| reader.seek(SeekFrom::Start(0)).map(|_| len))
            .map_err(|e| InteropError::gguf(name, "file", e.to_string(), "check the path"))?;
        Ok(Cursor {
            reader,
            pos: 0,
            len,
            name: name.to_owned(),
        })
    }
}

// The file's sections, in the order they are read.
impl<R: Read> Cursor<R> {
    fn header(&mut self) -> Result<Header, InteropError> {
        self.magic()?;
        let version = self.version()?;
        // Lower bounds on entry sizes: a key-value needs ≥ 13 bytes, a tensor entry ≥ 32.
        let tensor_count = self.count("tensor_count", 32)?;
        let metadata_count = self.count("metadata_count", 13)?;
        Ok(Header {
            version,
            tensor_count,
            metadata_count,
        })
    }

    fn magic(&mut self) -> Result<(), InteropError> {
        let magic = self.array::<4>("magic").map_err(|_| {
            self.error(
                "magic",
                format!("file of {} bytes is too short", self.len),
                "pass a .gguf file",
            )
        })?;
        if magic != MAGIC {
            return Err(self.error(
                "magic",
                format!("is {magic:?}, not \"GGUF\""),
                "this is not a GGUF file; rewarm imports llama.cpp's .gguf models",
            ));
        }
        Ok(())
    }

    /// The version, 2 or 3; the errors tell an obsolete, big-endian or unknown file apart.
    fn version(&mut self) -> Result<u32, InteropError> {
        let (problem, hint) = match self.u32("version")? {
            v @ (2 | 3) => return Ok(v),
            1 => (
                "is 1".to_owned(),
                "GGUF v1 is obsolete; re-convert the model with a recent llama.cpp",
            ),
            v if matches!(v.swap_bytes(), 2 | 3) => (
                "is big-endian".to_owned(),
                "convert to a little-endian GGUF",
            ),
            v => (format!("is {v}, expected 2 or 3"), "use a GGUF v2/v3 file"),
        };
        Err(self.error("version", problem, hint))
    }

    fn metadata(&mut self, count: u64) -> Result<BTreeMap<String, Value>, InteropError> {
        let mut metadata = BTreeMap::new();
        for i in 0..count {
            let key = self.string(&format!("metadata key #{i}"))?;
            let ty = self.u32(&format!("metadata `{key}` type"))?;
            let value = self.value(ty, &format!("metadata `{key}`"))?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(self.error(
                    &format!("metadata `{key}`"),
                    "appears twice",
                    "the file is corrupt",
                ));
            }
        }
        Ok(metadata)
    }

    /// `general.alignment`, or the default when the metadata has none.
    fn alignment(&self, metadata: &BTreeMap<String, Value>) -> Result<u64, InteropError> {
        let Some(v) = metadata.get("general.alignment") else {
            return Ok(DEFAULT_ALIGNMENT);
        };
        match v.as_u64() {
            Some(a) if a.is_power_of_two() => Ok(a),
            _ => Err(self.error(
                "metadata `general.alignment`",
                format!("is {v:?}, not a power of two"),
                "the file is corrupt",
            )),
        }
    }

    /// The tensor table; names must be unique since tensors are looked up by name.
    fn tensor_infos(&mut self, count: u64) -> Result<Vec<TensorInfo>, InteropError> {
        let mut tensors = Vec::with_capacity(count as usize);
        let mut names = HashSet::new();
        for i in 0..count {
            let tensor = self.tensor_info(i)?;
            if !names.insert(tensor.name.clone()) {
                let what = format!("tensor `{}`", tensor.name);
                return Err(self.error(&what, "appears twice", "the file is corrupt"));
            }
            tensors.push(tensor);
        }
        Ok(tensors)
    }

    /// Entry `i` of the tensor table, its size checked to be positive and made of whole blocks.
    fn tensor_info(&mut self, i: u64) -> Result<TensorInfo, InteropError> {
        let name = self.string(&format!("tensor #{i} name"))?;
        let what = format!("tensor `{name}`");
        let dims = self.dims(&what)?;
        let ty = GgmlType::from_id(self.u32(&what)?).map_err(|problem| {
            self.error(
                &what,
                problem,
                "rewarm dequantizes F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K to Q6_K; \
                 re-quantize with llama.cpp's llama-quantize (e.g. to Q8_0) or convert to F16",
            )
        })?;
        let offset = self.u64(&what)?;
        let Some(size) = data_size(&dims, ty) else {
            return Err(self.error(
                &what,
                format!("has dims {dims:?} of type {ty}: not a positive size made of whole {}-value rows of blocks", ty.block_size()),
                "the file is corrupt",
            ));
        };
        Ok(TensorInfo {
            name,
            dims,
            ty,
            offset,
            size,
        })
    }

    fn dims(&mut self, what: &str) -> Result<Vec<u64>, InteropError> {
        let n_dims = self.u32(what)? as usize;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(self.error(
                what,
                format!("has {n_dims} dimensions, expected 1..={MAX_DIMS}"),
                "the file is corrupt",
            ));
        }
        (0..n_dims).map(|_| self.u64(what)).collect()
    }

    /// Where the data section starts: the end of the tensor table, padded to `alignment`.
    fn data_start(&self, alignment: u64, no_tensors: bool) -> Result<u64, InteropError> {
        // A file without tensors may end before the padding.
        let data_start = self
            .pos
            .div_ceil(alignment)
            .checked_mul(alignment)
            .map(|s| if no_tensors { s.min(self.len) } else { s })
            .filter(|&s| s <= self.len);
        data_start.ok_or_else(|| {
            self.error(
                "data section",
                format!("would start past the end of the {}-byte file", self.len),
                "the file is truncated",
            )
        })
    }
}

/// Bytes of data of a tensor of `dims` and type `ty`; `None` unless that is a positive size and each row
/// (`dims[0]` values) is whole blocks.
fn data_size(dims: &[u64], ty: GgmlType) -> Option<u64> {
    let numel = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n > 0);
    numel
        .and_then(|n| ty.bytes_for(n))
        .filter(|_| dims[0] % ty.block_size() == 0)
}

impl<R: Read + Seek> GgufFile<R> {
    /// Reads and checks the header, metadata and tensor table from `reader`; `name` labels errors.
    pub fn from_reader(reader: R, name: &str) -> Result<Self, InteropError> {
        let mut c = Cursor::start(reader, name)?;
        let header = c.header()?;
        let metadata = c.metadata(header.metadata_count)?;
        let alignment = c.alignment(&metadata)?;
        let tensors = c.tensor_infos(header.tensor_count)?;
        let data_start = c.data_start(alignment, tensors.is_empty())?;
        check_layout(&c, &tensors, alignment, c.len - data_start)?;
        Ok(GgufFile {
            version: header.version,
            metadata,
            tensors,
            alignment,
            data_start,
            len: c.len,
            name: c.name,
            reader: c.reader,
        })
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The metadata value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// A string metadata value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.metadata.get(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The raw bytes of `tensor` (its size was checked against the file on open).
    pub fn read_raw(&mut self, tensor: &TensorInfo) -> Result<Vec<u8>, InteropError> {
        let what = format!("tensor `{}`", tensor.name);
        let start = self.data_start + tensor.offset; // checked ≤ len on open
        let mut buf = vec![0u8; tensor.size as usize];
        self.reader
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.reader.read_exact(&mut buf))
            .map_err(|e| {
                InteropError::gguf(
                    &self.name,
                    &what,
                    format!("read failed: {e}"),
                    "the file changed or is truncated",
                )
            })?;
        Ok(buf)
    }

    /// `tensor` dequantized to f32, in GGUF order (`dims[0]` fastest, i.e. PyTorch row-major order).
    pub fn read_f32(&mut self, tensor: &TensorInfo) -> Result<Vec<f32>, InteropError> {
        let raw = self.read_raw(tensor)?;
        let mut out = Vec::new();
        quant::dequantize(tensor.ty, &raw, &mut out).map_err(|problem| {
            InteropError::gguf(
                &self.name,
                &format!("tensor `{}`", tensor.name),
                problem,
                "the file is corrupt",
            )
        })?;
        Ok(out)
    }

    /// The label used in errors (the path).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Every tensor lies in the data section (of `data_len` bytes), is aligned, and overlaps no other.
fn check_layout<R: Read>(
    c: &Cursor<R>,
    tensors: &[TensorInfo],
    alignment: u64,
    data_len: u64,
) -> Result<(), InteropError> {
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
    by_offset.sort_by_key(|t| t.offset);
    let mut previous: Option<&TensorInfo> = None;
    for t in by_offset {
        let what = format!("tensor `{}`", t.name);
        if t.offset % alignment != 0 {
            return Err(c.error(
                &what,
                format!(
                    "offset {} is not a multiple of the alignment {alignment}",
                    t.offset
                ),
                "the file is corrupt",
            ));
        }
        match t.offset.checked_add(t.size) {
            Some(end) if end <= data_len => {}
            _ => {
                return Err(c.error(
                    &what,
                    format!(
                        "needs data bytes [{}, {}+{}) but the data section has {data_len}",
                        t.offset, t.offset, t.size
                    ),
                    "the file is truncated; download it again",
                ))
            }
        }
        if let Some(p) = previous {
            if t.offset < p.offset + p.size {
                return Err(c.error(
                    &what,
                    format!(
                        "at data offset {} overlaps tensor `{}` at [{}, {})",
                        t.offset,
                        p.name,
                        p.offset,
                        p.offset + p.size
                    ),
                    "the file is corrupt",
                ));
            }
        }
        previous = Some(t);
    }
    Ok(())
}
