//! `rewarm merge`: the weighted average of several models' weights (checkpoints of one run, branches of
//! one trunk), written as a Hugging Face folder that `init_from`, `sample`, `logits` and transformers load.
//! Weight averaging stands in for a learning-rate decay (LAWA; Hägele et al. 2024 on SWA) when the models
//! are checkpoints of a constant-LR run.
//!
//! Pure Rust and one tensor at a time: the inputs are memory-mapped and each output tensor is summed in
//! f64, so memory stays at one tensor's size whatever the model's.

use crate::hf::{self, read_safetensors, SafetensorsWriter, StoredTensor, WeightDtype};
use crate::quant::{bf16_to_f32, f16_to_f32};
use crate::source::{checkpoint_dir, Source};
use crate::InteropError;
use rewarm_arch::ModelConfig;
use serde_json::json;
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, InteropError>;

/// One model to average and its weight (any positive number: the weights are normalised to sum to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct MergeInput {
    pub path: PathBuf,
    pub weight: f64,
}

/// What a merge wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeSummary {
    pub tensors: usize,
    pub parameters: u64,
    /// The normalised weights, in the order of the inputs.
    pub weights: Vec<f64>,
}

/// Averages `inputs` (rewarm checkpoints or run folders, weights files inside a checkpoint such as its
/// `ema.safetensors`, or Hugging Face folders with one model.safetensors) into the Hugging Face folder `out`
/// (one input: converted): config.json, model.safetensors (f32) and
/// merge.json naming the inputs and weights. Every input must describe the same model and hold the same
/// tensors.
pub fn merge(inputs: &[MergeInput], out: &Path) -> Result<MergeSummary> {
    let weights = normalised(inputs)?;
    hf::refuse_non_empty(out)?;
    let models: Vec<(PathBuf, ModelConfig)> = inputs
        .iter()
        .map(|i| model(&i.path))
        .collect::<Result<_>>()?;
    let config = &models[0].1;
    for (input, (_, other)) in inputs.iter().zip(&models).skip(1) {
        if other != config {
            return Err(InteropError::invalid(
                input.path.display(),
                format!("describes another model than {}", inputs[0].path.display()),
                "merge checkpoints of one model: the same architecture and sizes",
            ));
        }
    }
    let maps: Vec<memmap2::Mmap> = models.iter().map(|(p, _)| map(p)).collect::<Result<_>>()?;
    let files: Vec<Vec<StoredTensor>> = models
        .iter()
        .zip(&maps)
        .map(|((p, _), m)| read_safetensors(m, p))
        .collect::<Result<_>>()?;
    hf::create_empty_folder(out)?;
    let names: Vec<&Path> = inputs.iter().map(|i| i.path.as_path()).collect();
    let summary = write_average(&files, &names, &weights, &out.join("model.safetensors"))?;
    hf::write_json(&out.join("config.json"), &config.to_hf_config())?;
    let provenance: Vec<_> = inputs
        .iter()
        .zip(&weights)
        .map(|(i, w)| json!({ "path": i.path.display().to_string(), "weight": w }))
        .collect();
    hf::write_json(&out.join("merge.json"), &json!({ "merged": provenance }))?;
    Ok(summary)
}

/// The weights divided by their sum; each must be finite and > 0.
fn normalised(inputs: &[MergeInput]) -> Result<Vec<f64>> {
    if inputs.is_empty() {
        return Err(InteropError::invalid(
            "rewarm merge",
            "no model given",
            "give the checkpoints to average",
        ));
    }
    if let Some(bad) = inputs
        .iter()
        .find(|i| !(i.weight.is_finite() && i.weight > 0.0))
    {
        return Err(InteropError::invalid(
            bad.path.display(),
            format!("weight {}", bad.weight),
            "give every model a weight > 0",
        ));
    }
    let total: f64 = inputs.iter().map(|i| i.weight).sum();
    Ok(inputs.iter().map(|i| i.weight / total).collect())
}

/// The weights file and the model of a rewarm checkpoint (or run folder: its newest) or a Hugging Face
/// folder with a single weights file.
fn model(path: &Path) -> Result<(PathBuf, ModelConfig)> {
    match Source::detect(path)? {
        Source::Checkpoint(dir) => {
            let ckpt = checkpoint_dir(&dir);
            ckpt.verify()?;
            Ok((ckpt.model(), rewarm_runfolder::model_of(&ckpt.plan_json())?))
        }
        Source::HfFolder(dir) => {
            let files = hf::weight_files(&dir)?;
            let [file] = files.as_slice() else {
                return Err(InteropError::invalid(
                    dir.display(),
                    format!("weights in {} files", files.len()),
                    "merge Hugging Face folders with one model.safetensors, or rewarm checkpoints",
                ));
            };
            let config =
                ModelConfig::from_hf_config(&hf::read_config(&dir)?).map_err(|source| {
                    InteropError::Model {
                        path: dir.join("config.json"),
                        source,
                    }
                })?;
            Ok((file.clone(), config))
        }
        // A file in a checkpoint (its `ema.safetensors`, say): the checkpoint's plan names the model.
        Source::File(file) => match file.parent().map(|d| d.join("plan.json")) {
            Some(plan) if plan.is_file() => Ok((file.clone(), rewarm_runfolder::model_of(&plan)?)),
            _ => Err(InteropError::invalid(
                file.display(),
                "a bare weights file says nothing of its model",
                "merge rewarm checkpoints, files inside them (ema.safetensors) or Hugging Face folders",
            )),
        },
    }
}

fn map(path: &Path) -> Result<memmap2::Mmap> {
    let file = std::fs::File::open(path).map_err(|e| InteropError::io(path, e))?;
    // SAFETY: read-only map of a file rewarm does not change while merging; a file changed underneath
    // by another process gives wrong values, not memory unsafety beyond what reading it would.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| InteropError::io(path, e))
}

/// Writes Σ wᵢ·tensorᵢ for every tensor of the first file, which every other file must hold with the
/// same shape (`inputs` names them in errors).
fn write_average(
    files: &[Vec<StoredTensor>],
    inputs: &[&Path],
    weights: &[f64],
    out: &Path,
) -> Result<MergeSummary> {
    let shapes: Vec<(String, Vec<usize>)> = files[0]
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    for (f, path) in files.iter().zip(inputs).skip(1) {
        let theirs: Vec<(String, Vec<usize>)> = f
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        if let Some((name, shape)) = shapes.iter().find(|s| !theirs.contains(s)) {
            return Err(InteropError::invalid(
                path.display(),
                format!("has no tensor `{name}` of shape {shape:?} (the first model has)"),
                "merge checkpoints of one model",
            ));
        }
    }
    let mut writer = SafetensorsWriter::create(out, &shapes)?;
    let mut parameters = 0u64;
    for (name, _) in &shapes {
        let mut sum: Vec<f64> = Vec::new();
        for ((f, path), w) in files.iter().zip(inputs).zip(weights) {
            let t = f.iter().find(|t| &t.name == name).expect("checked above");
            let values = to_f32(t, path)?;
            sum.resize(values.len(), 0.0);
            sum.iter_mut()
                .zip(&values)
                .for_each(|(s, v)| *s += w * f64::from(*v));
        }
        parameters += sum.len() as u64;
        writer.write(name, &sum.iter().map(|v| *v as f32).collect::<Vec<f32>>())?;
    }
    writer.finish()?;
    Ok(MergeSummary {
        tensors: shapes.len(),
        parameters,
        weights: weights.to_vec(),
    })
}

/// A stored tensor's values as f32.
fn to_f32(t: &StoredTensor, file: &Path) -> Result<Vec<f32>> {
    let halves = || {
        t.data
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    match t.dtype {
        Some(WeightDtype::F32) => Ok(t
            .data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()),
        Some(WeightDtype::BF16) => Ok(halves().map(bf16_to_f32).collect()),
        Some(WeightDtype::F16) => Ok(halves().map(f16_to_f32).collect()),
        None => Err(InteropError::invalid(
            file.display(),
            format!("tensor `{}` is {}", t.name, t.dtype_name),
            "merge models whose weights are f32, bf16 or f16",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Hugging Face folder of the `tiny` model's config holding `tensors` (name, f32 values) of shape
    /// (values,), or bf16 when `bf16`.
    fn folder(dir: &Path, tensors: &[(&str, &[f32])], num_layers: usize) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let mut config = ModelConfig::preset("tiny").unwrap();
        config.num_layers = num_layers;
        hf::write_json(&dir.join("config.json"), &config.to_hf_config()).unwrap();
        let shapes: Vec<(String, Vec<usize>)> = tensors
            .iter()
            .map(|(n, v)| (n.to_string(), vec![v.len()]))
            .collect();
        let mut w = SafetensorsWriter::create(&dir.join("model.safetensors"), &shapes).unwrap();
        for (n, v) in tensors {
            w.write(n, v).unwrap();
        }
        w.finish().unwrap();
        dir.to_owned()
    }

    fn input(path: &Path, weight: f64) -> MergeInput {
        MergeInput {
            path: path.to_owned(),
            weight,
        }
    }

    fn read(out: &Path, name: &str) -> Vec<f32> {
        let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
        let t = read_safetensors(&bytes, out).unwrap();
        let t = t.iter().find(|t| t.name == name).unwrap();
        to_f32(t, out).unwrap()
    }

    #[test]
    fn the_merge_is_the_weighted_mean_of_every_tensor() {
        let d = tempfile::tempdir().unwrap();
        let a = folder(
            &d.path().join("a"),
            &[("w", &[1.0, 2.0, 3.0, 4.0]), ("b", &[0.0])],
            2,
        );
        let b = folder(
            &d.path().join("b"),
            &[("w", &[3.0, 4.0, 5.0, 6.0]), ("b", &[8.0])],
            2,
        );
        let out = d.path().join("merged");
        let summary = merge(&[input(&a, 1.0), input(&b, 3.0)], &out).unwrap();
        assert_eq!(
            (summary.tensors, summary.parameters, summary.weights),
            (2, 5, vec![0.25, 0.75])
        );
        assert_eq!(read(&out, "w"), [2.5, 3.5, 4.5, 5.5]);
        assert_eq!(read(&out, "b"), [6.0]);
        assert!(hf::is_hf_folder(&out) && out.join("merge.json").is_file());
        assert_eq!(Source::detect(&out).unwrap(), Source::HfFolder(out.clone()));
    }

    #[test]
    fn different_models_missing_tensors_and_bad_weights_are_refused_naming_the_input() {
        let d = tempfile::tempdir().unwrap();
        let a = folder(&d.path().join("a"), &[("w", &[1.0, 2.0])], 2);
        let deeper = folder(&d.path().join("deeper"), &[("w", &[1.0, 2.0])], 3);
        let other = folder(&d.path().join("other"), &[("v", &[1.0, 2.0])], 2);
        let out = d.path().join("merged");
        for (inputs, want) in [
            (
                vec![input(&a, 1.0), input(&deeper, 1.0)],
                "deeper: describes another model",
            ),
            (
                vec![input(&a, 1.0), input(&other, 1.0)],
                "other: has no tensor `w` of shape [2]",
            ),
            (vec![input(&a, 1.0), input(&a, 0.0)], "a: weight 0"),
            (vec![], "no model given"),
        ] {
            let err = merge(&inputs, &out).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("HINT"),
                "want `{want}`, got: {err}"
            );
        }
    }
}
