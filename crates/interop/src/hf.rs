//! Hugging Face model folders as files: which weight files a folder has (one `model.safetensors`, or shards
//! listed by `model.safetensors.index.json`; pickle `.bin` checkpoints are refused, never unpickled), its
//! `config.json`, and a streaming safetensors writer that holds one tensor in memory at a time.
//!
//! safetensors layout: `header_len: u64 LE`, a JSON header `{name: {dtype, shape, data_offsets: [begin,
//! end]}, "__metadata__": {...}}` padded with spaces to 8 bytes, then the data, tensor after tensor.

use crate::InteropError;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Whether `dir` looks like a Hugging Face model folder (it has a `config.json`).
pub fn is_hf_folder(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).is_file()
}

/// The parsed `config.json` of `dir`.
pub fn read_config(dir: &Path) -> Result<Value, InteropError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| InteropError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        InteropError::invalid(
            path.display(),
            format!("not valid JSON ({e})"),
            "restore the config.json of the model",
        )
    })
}

/// Writes `value` as pretty JSON to `path`, fsynced.
pub fn write_json(path: &Path, value: &Value) -> Result<(), InteropError> {
    let text = serde_json::to_string_pretty(value).expect("a Value serializes");
    write_synced(path, text.as_bytes())
}

/// Writes `bytes` to `path` and fsyncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), InteropError> {
    let mut f = File::create(path).map_err(|e| InteropError::io(path, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| InteropError::io(path, e))
}

/// The safetensors files holding the weights of the HF folder `dir`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, InteropError> {
    let single = dir.join(WEIGHTS_FILE);
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join(INDEX_FILE);
    if index.is_file() {
        return shard_files(dir, &index);
    }
    let pickles: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| InteropError::io(dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with(".bin") || n.ends_with(".pt") || n.ends_with(".pth") || n.ends_with(".ckpt")
        })
        .collect();
    if let Some(first) = pickles.first() {
        return Err(InteropError::invalid(
            dir.display(),
            format!("has only PyTorch pickle weights (`{first}`); rewarm never unpickles files (they can run code)"),
            "convert them to safetensors first, e.g. in Python: `AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)`",
        ));
    }
    Err(InteropError::invalid(
        dir.display(),
        format!("has no {WEIGHTS_FILE} and no {INDEX_FILE}"),
        "point at a Hugging Face model folder with safetensors weights",
    ))
}

/// The distinct shard files named by a `model.safetensors.index.json`, each checked to be a plain file name
/// inside `dir` that exists.
fn shard_files(dir: &Path, index: &Path) -> Result<Vec<PathBuf>, InteropError> {
    let text = std::fs::read_to_string(index).map_err(|e| InteropError::io(index, e))?;
    index_files(index, &text)?
        .into_iter()
        .map(|f| {
            let path = dir.join(&f);
            if path.is_file() {
                Ok(path)
            } else {
                Err(InteropError::invalid(
                    index.display(),
                    format!("names shard `{f}`, which is missing"),
                    "download every shard of the model",
                ))
            }
        })
        .collect()
}

/// The distinct file names in the `weight_map` of the index text read from `index`: at least one, each a
/// plain `.safetensors` file name (no folder, no `..`).
pub fn index_files(index: &Path, text: &str) -> Result<BTreeSet<String>, InteropError> {
    let bad = |problem: String| {
        InteropError::invalid(
            index.display(),
            problem,
            "restore the index file of the model",
        )
    };
    let json: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON ({e})")))?;
    let map = json
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("has no `weight_map` object".into()))?;
    let mut files = BTreeSet::new();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| bad(format!("weight_map[`{tensor}`] is not a file name")))?;
        let plain = !file.is_empty() && !file.contains(['/', '\\']) && file != "." && file != "..";
        if !plain || !file.ends_with(".safetensors") {
            return Err(bad(format!(
                "weight_map[`{tensor}`] = `{file}` is not a .safetensors file in the folder"
            )));
        }
        files.insert(file.to_owned());
    }
    if files.is_empty() {
        return Err(bad("lists no weight files".into()));
    }
    Ok(files)
}

/// Creates `out`, refusing a folder with anything in it rather than mixing two outputs.
pub fn create_empty_folder(out: &Path) -> Result<(), InteropError> {
    refuse_non_empty(out)?;
    std::fs::create_dir_all(out).map_err(|e| InteropError::io(out, e))
}

/// Refuses `out` if it is a folder with anything in it (before any work that would write there).
pub fn refuse_non_empty(out: &Path) -> Result<(), InteropError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| InteropError::io(out, e))?
            .next()
            .is_some()
    {
        return Err(InteropError::invalid(
            out.display(),
            "already exists and is not empty",
            "choose a new --out folder, or remove this one",
        ));
    }
    Ok(())
}

/// The element types rewarm loads weights as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightDtype {
    F32,
    BF16,
    F16,
}

impl WeightDtype {
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            WeightDtype::F32 => 4,
            WeightDtype::BF16 | WeightDtype::F16 => 2,
        }
    }
}

/// One tensor of a checked safetensors file, borrowing its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTensor<'a> {
    pub name: String,
    /// `None` for a type rewarm does not load (BOOL masks, integers…): an error only if the tensor is used.
    pub dtype: Option<WeightDtype>,
    /// The stored type as safetensors names it (`F32`, `BOOL`…), for errors.
    pub dtype_name: String,
    pub shape: Vec<usize>,
    /// Exactly `shape.product() × dtype.size()` bytes for the loadable types.
    pub data: &'a [u8],
}

/// Parses and checks the bytes of a safetensors file, trusting nothing in it: the header length, JSON,
/// dtypes, shapes and data offsets (inside the file, contiguous, not overlapping, each the size its shape
/// and dtype need) are all checked before any tensor is handed out, so a lying or truncated file is an
/// error naming `file`, never a panic, an out-of-bounds read or an allocation beyond the header's size.
/// Tensors come sorted by name.
pub fn read_safetensors<'a>(
    bytes: &'a [u8],
    file: &Path,
) -> Result<Vec<StoredTensor<'a>>, InteropError> {
    let bad = |problem: String| {
        InteropError::invalid(
            file.display(),
            problem,
            "the file is truncated or corrupt; write or download it again",
        )
    };
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
    let mut tensors: Vec<StoredTensor<'a>> = st
        .iter()
        .map(|(name, view)| {
            use safetensors::Dtype;
            let dtype = match view.dtype() {
                Dtype::F32 => Some(WeightDtype::F32),
                Dtype::BF16 => Some(WeightDtype::BF16),
                Dtype::F16 => Some(WeightDtype::F16),
                _ => None,
            };
            StoredTensor {
                name: name.to_owned(),
                dtype,
                dtype_name: format!("{:?}", view.dtype()),
                shape: view.shape().to_vec(),
                data: view.data(),
            }
        })
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    for t in &tensors {
        let Some(dtype) = t.dtype else { continue };
        let need = t
            .shape
            .iter()
            .try_fold(dtype.size(), |n, &d| n.checked_mul(d));
        if need != Some(t.data.len()) {
            return Err(bad(format!(
                "tensor `{}` of shape {:?} and type {} holds {} bytes",
                t.name,
                t.shape,
                t.dtype_name,
                t.data.len()
            )));
        }
    }
    Ok(tensors)
}

/// Writes an F32 safetensors file tensor by tensor: the header (all names and shapes) first, then each
/// tensor's data in the declared order.
pub struct SafetensorsWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// (name, number of values), in file order.
    tensors: Vec<(String, usize)>,
    next: usize,
}

impl SafetensorsWriter {
    /// Creates `path` and writes the header for `tensors` (name, shape), all F32, in that order.
    pub fn create(path: &Path, tensors: &[(String, Vec<usize>)]) -> Result<Self, InteropError> {
        let mut header = Map::new();
        header.insert("__metadata__".into(), json!({ "format": "pt" }));
        let mut offset = 0usize;
        let mut order = Vec::with_capacity(tensors.len());
        for (name, shape) in tensors {
            let numel: usize = shape.iter().product();
            let end = offset + 4 * numel;
            header.insert(
                name.clone(),
                json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }),
            );
            order.push((name.clone(), numel));
            offset = end;
        }
        let mut text = serde_json::to_string(&Value::Object(header)).expect("a Value serializes");
        while text.len() % 8 != 0 {
            text.push(' ');
        }
        let file = File::create(path).map_err(|e| InteropError::io(path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&(text.len() as u64).to_le_bytes())
            .and_then(|_| out.write_all(text.as_bytes()))
            .map_err(|e| InteropError::io(path, e))?;
        Ok(SafetensorsWriter {
            path: path.to_owned(),
            out,
            tensors: order,
            next: 0,
        })
    }

    /// Writes the next tensor's values; `name` and the length must match the header.
    pub fn write(&mut self, name: &str, values: &[f32]) -> Result<(), InteropError> {
        match self.tensors.get(self.next) {
            Some((n, numel)) if n == name && *numel == values.len() => {}
            expected => {
                return Err(InteropError::invalid(
                    self.path.display(),
                    format!(
                        "writer got `{name}` ({} values) but expected {expected:?}",
                        values.len()
                    ),
                    "this is a bug in rewarm; please report it",
                ))
            }
        }
        let mut buf = Vec::with_capacity(4 * values.len().min(1 << 18));
        for chunk in values.chunks(1 << 18) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            self.out
                .write_all(&buf)
                .map_err(|e| InteropError::io(&self.path, e))?;
        }
        self.next += 1;
        Ok(())
    }

    /// Checks every tensor was written, flushes and fsyncs.
    pub fn finish(self) -> Result<(), InteropError> {
        if self.next != self.tensors.len() {
            return Err(InteropError::invalid(
                self.path.display(),
                format!(
                    "only {} of {} tensors were written",
                    self.next,
                    self.tensors.len()
                ),
                "this is a bug in rewarm; please report it",
            ));
        }
        let file = self
            .out
            .into_inner()
            .map_err(|e| InteropError::io(&self.path, e.into_error()))?;
        file.sync_all().map_err(|e| InteropError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_output_is_read_back_by_the_safetensors_crate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let tensors = vec![("b".to_string(), vec![2, 3]), ("a".to_string(), vec![1])];
        let mut w = SafetensorsWriter::create(&path, &tensors).unwrap();
        w.write("b", &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]).unwrap();
        assert!(w.write("b", &[1.0]).is_err()); // out of order
        w.write("a", &[0.25]).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let b = st.tensor("b").unwrap();
        assert_eq!(b.shape(), &[2, 3]);
        assert_eq!(&b.data()[20..24], &(-6.5f32).to_le_bytes());
        assert_eq!(st.tensor("a").unwrap().data(), &0.25f32.to_le_bytes());
    }

    #[test]
    fn pickles_are_refused_and_shard_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pytorch_model.bin"), b"not loaded").unwrap();
        let err = weight_files(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("pytorch_model.bin")
                && err.contains("HINT")
                && err.contains("safetensors"),
            "{err}"
        );

        let index = json!({ "weight_map": { "x": "../escape.safetensors" } });
        write_json(&dir.path().join(INDEX_FILE), &index).unwrap();
        let err = weight_files(dir.path()).unwrap_err().to_string();
        assert!(err.contains("../escape.safetensors"), "{err}");

        let index = json!({ "weight_map": { "x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors", "z": "model-00001-of-00002.safetensors" } });
        write_json(&dir.path().join(INDEX_FILE), &index).unwrap();
        let err = weight_files(dir.path()).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        for f in [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let files = weight_files(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].ends_with("model-00001-of-00002.safetensors"));
    }
}
