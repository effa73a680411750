//! Building what a run needs from a plan: the model config (preset + overrides), the opened sources with
//! their tokenizer checked, the mixture index and the fixed evaluation sets.

use crate::error::{TrainError, TrainResult};
use rewarm_data::eval::EvalSet;
use rewarm_data::{Mixture, MixtureIndex, PreparedSource, Tokenizer, TokenizerSpec};
use rewarm_model::ModelConfig;
use rewarm_plan::Plan;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `[model]`: `preset = "…"` plus any ModelConfig field as an override (unknown keys rejected), or a full
/// config without a preset.
pub fn resolve_model(table: &toml::Table) -> TrainResult<ModelConfig> {
    let mut merged = toml::Table::new();
    let mut overrides = table.clone();
    if let Some(preset) = overrides.remove("preset") {
        let name = preset
            .as_str()
            .ok_or_else(|| TrainError::Config("model.preset: expected a string".into()))?;
        let config = ModelConfig::preset(name).ok_or_else(|| {
            TrainError::Config(format!("model.preset: unknown preset `{name}` (presets: {})\nHINT: pick one of them, or give every model field without a preset", rewarm_model::PRESETS.join(", ")))
        })?;
        merged = toml::Table::try_from(&config).map_err(|e| TrainError::Config(e.to_string()))?;
    }
    for (k, v) in overrides {
        merged.insert(k, v);
    }
    let config: ModelConfig = merged.try_into().map_err(|e: toml::de::Error| {
        TrainError::Config(format!(
            "[model]: {}\nHINT: overrides must be ModelConfig fields (see docs/plan.md)",
            e.message()
        ))
    })?;
    config.validate()?;
    Ok(config)
}

/// Opened data of a plan.
pub struct Data {
    pub sources: Vec<Arc<PreparedSource>>,
    pub mixture: Mixture,
    pub eval_sets: Vec<EvalSet>,
    /// sha256 over the sources' manifests: stored in checkpoints, checked on resume.
    pub fingerprint: String,
}

pub fn open_data(plan: &Plan, model: &ModelConfig) -> TrainResult<Data> {
    let mut sources = Vec::new();
    for s in &plan.sources {
        sources.push(Arc::new(PreparedSource::open(&s.dir)?));
    }
    let expected = match &plan.config.data.tokenizer {
        Some(t) => {
            let spec: TokenizerSpec = if t.ends_with(".json") {
                TokenizerSpec::HfFile(plan.base_dir.join(t))
            } else {
                t.parse()?
            };
            Some(Tokenizer::load(&spec, None)?.info().clone())
        }
        None => None,
    };
    let first = &sources[0].manifest.tokenizer;
    for (plan_src, src) in plan.sources.iter().zip(&sources) {
        let want = expected.as_ref().unwrap_or(first);
        src.manifest.check_tokenizer(&plan_src.dir, want)?;
        if src.manifest.tokenizer.vocab_size as usize > model.vocab_size {
            return Err(TrainError::Config(format!(
                "source `{}`: tokenizer vocabulary {} > model.vocab_size {}\nHINT: set model.vocab_size ≥ {} (a multiple of 64 is fastest)",
                plan_src.name, src.manifest.tokenizer.vocab_size, model.vocab_size, src.manifest.tokenizer.vocab_size
            )));
        }
    }
    let counts: Vec<u64> = sources
        .iter()
        .map(|s| s.train.sequences(plan.seq_len))
        .collect();
    let index = MixtureIndex::new(plan.mixture_plan(&counts))?;
    let mixture = Mixture::new(index, plan.seq_len, sources.clone())?;
    let eval_sets = plan
        .eval_sets
        .iter()
        .map(|&k| {
            EvalSet::new(
                &plan.sources[k].name,
                &sources[k],
                plan.seq_len,
                plan.config.eval.tokens,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut h = Sha256::new();
    for s in &sources {
        h.update(serde_json::to_string(&s.manifest.train).expect("serializes"));
        h.update(serde_json::to_string(&s.manifest.validation).expect("serializes"));
    }
    let fingerprint = h
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Data {
        sources,
        mixture,
        eval_sets,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn presets_take_overrides_and_unknown_model_keys_are_rejected() {
        let m = resolve_model(&table(
            "preset = \"tiny\"\nmax_seq_len = 64\nnum_layers = 3",
        ))
        .unwrap();
        assert_eq!((m.max_seq_len, m.num_layers, m.hidden_size), (64, 3, 64));
        let err = resolve_model(&table("preset = \"tiny\"\nnum_layer = 3"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("num_layer") && err.contains("HINT"), "{err}");
        let err = resolve_model(&table("preset = \"gpt5\""))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("gpt5") && err.contains("pythia-70m"), "{err}");
        let err = resolve_model(&table("preset = \"tiny\"\nhidden_size = 65"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("hidden_size"), "{err}");
    }
}
