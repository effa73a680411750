//! Tensors ↔ safetensors files: weights and optimizer moments by Hugging Face name, checked name by
//! name, shape by shape and dtype by dtype on load, so a file made for another model is an error that
//! names the tensor, never a silent partial load.

use crate::ModelError;
use rewarm_interop::hf::{self, StoredTensor, WeightDtype};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{nn, Kind, Tensor};

/// A VarStore's variables sorted by name: the order every file and optimizer slot uses.
pub fn sorted_variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

fn kind_dtype(kind: Kind) -> Result<Dtype, ModelError> {
    match kind {
        Kind::Float => Ok(Dtype::F32),
        Kind::BFloat16 => Ok(Dtype::BF16),
        Kind::Half => Ok(Dtype::F16),
        other => Err(ModelError::Weights(format!(
            "cannot save tensors of kind {other:?}"
        ))),
    }
}

fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.detach().to_device(tch::Device::Cpu).contiguous();
    let numel = t.numel();
    let elt = t.kind().elt_size_in_bytes();
    let mut bytes = vec![0u8; numel * elt];
    t.copy_data_u8(&mut bytes, numel);
    bytes
}

/// Writes tensors to a safetensors file (sorted by name) and fsyncs it.
pub fn save_tensors(path: &Path, tensors: &[(String, &Tensor)]) -> Result<(), ModelError> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        owned.push((
            name.clone(),
            kind_dtype(t.kind())?,
            t.size().iter().map(|&d| d as usize).collect::<Vec<_>>(),
            tensor_bytes(t),
        ));
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| {
            Ok((
                n.clone(),
                TensorView::new(*d, s.clone(), b)
                    .map_err(|e| ModelError::Weights(e.to_string()))?,
            ))
        })
        .collect::<Result<_, ModelError>>()?;
    let bytes =
        safetensors::serialize(views, None).map_err(|e| ModelError::Weights(e.to_string()))?;
    rewarm_runfolder::atomic::write_synced(path, &bytes).map_err(|e| ModelError::io(path, e))
}

/// Copies tensors from a safetensors file into `targets` (by name), checking every name, shape and dtype.
/// `what` names the file's role in errors ("checkpoint weights", "optimizer state").
pub fn load_tensors_into(
    path: &Path,
    targets: &[(String, Tensor)],
    what: &str,
) -> Result<(), ModelError> {
    load_tensors_from(&[path.to_owned()], targets, what, &|name| {
        Some(name.to_owned())
    })
}

/// Copies tensors from one or more safetensors files (shards) into `targets`, checking every name, shape
/// and dtype. `rename` maps a stored name to a target name, or to `None` for a stored tensor that is not
/// a parameter (e.g. a cached rotary table); every target must be filled exactly once and every other
/// stored tensor is an error.
pub fn load_tensors_from(
    files: &[PathBuf],
    targets: &[(String, Tensor)],
    what: &str,
    rename: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ModelError> {
    let mut filled = vec![false; targets.len()];
    let index: BTreeMap<&str, usize> = targets
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        let stored =
            hf::read_safetensors(&bytes, path).map_err(|e| ModelError::Weights(e.to_string()))?;
        for view in &stored {
            let stored_name = view.name.as_str();
            let Some(name) = rename(stored_name) else {
                continue;
            };
            let Some(&i) = index.get(name.as_str()) else {
                return Err(ModelError::Weights(format!(
                    "{}: {what} holds tensor `{stored_name}`, which the model lacks\nHINT: the checkpoint belongs to another architecture or size",
                    path.display()
                )));
            };
            if std::mem::replace(&mut filled[i], true) {
                return Err(ModelError::Weights(format!(
                    "{}: {what} holds tensor `{name}` twice (under `{stored_name}`)\nHINT: the checkpoint's shards overlap; download them again",
                    path.display()
                )));
            }
            copy_view(path, &name, view, &targets[i].1, what)?;
        }
    }
    if let Some(i) = filled.iter().position(|f| !f) {
        return Err(ModelError::Weights(format!(
            "{}: {what} lacks {} tensors the model has, e.g. `{}`\nHINT: the checkpoint belongs to another architecture",
            files.first().map_or(String::new(), |f| f.display().to_string()),
            filled.iter().filter(|f| !**f).count(),
            targets[i].0
        )));
    }
    Ok(())
}

fn copy_view(
    path: &Path,
    name: &str,
    view: &StoredTensor,
    target: &Tensor,
    what: &str,
) -> Result<(), ModelError> {
    let want: Vec<usize> = target.size().iter().map(|&d| d as usize).collect();
    if view.shape != want {
        return Err(ModelError::Weights(format!(
            "{}: {what} tensor `{name}` has shape {:?}, the model needs {want:?}\nHINT: the checkpoint was made for another model shape; use the same model preset and overrides",
            path.display(),
            view.shape
        )));
    }
    let kind = match view.dtype {
        Some(WeightDtype::F32) => Kind::Float,
        Some(WeightDtype::BF16) => Kind::BFloat16,
        Some(WeightDtype::F16) => Kind::Half,
        None => {
            return Err(ModelError::Weights(format!(
            "{}: tensor `{name}` has unsupported dtype {}\nHINT: store weights as F32, BF16 or F16",
            path.display(),
            view.dtype_name
        )))
        }
    };
    let shape: Vec<i64> = want.iter().map(|&d| d as i64).collect();
    let src = Tensor::f_from_data_size(view.data, &shape, kind)
        .map_err(|e| ModelError::Weights(e.to_string()))?;
    tch::no_grad(|| {
        target
            .shallow_clone()
            .copy_(&src.to_kind(target.kind()).to_device(target.device()))
    });
    Ok(())
}
