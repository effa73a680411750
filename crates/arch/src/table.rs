//! The plan's `[model]` table: a preset plus any [`ModelConfig`] field as an override, or every field
//! without a preset. Typed, so an unknown or misspelled key is refused where the plan is parsed, with its
//! line and column.
//!
//! ```toml
//! [model]
//! preset = "small"
//! vocab_size = 4096      # overrides the preset's 8192
//! ```

use serde::{Deserialize, Serialize};

use crate::config::{default_rope_theta, default_rotary_pct, default_use_parallel_residual};
use crate::{ConfigError, Family, ModelConfig, RopeScaling, PRESETS};

/// `[model]` as written in a plan. Field names and aliases are [`ModelConfig`]'s (the Hugging Face
/// spellings are accepted too); absent fields come from the preset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTable {
    /// One of [`PRESETS`]; without it every field without a default must be given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_size: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "num_hidden_layers"
    )]
    pub num_layers: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "num_attention_heads"
    )]
    pub num_heads: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "num_key_value_heads"
    )]
    pub num_kv_heads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "max_position_embeddings"
    )]
    pub max_seq_len: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotary_pct: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "rotary_emb_base"
    )]
    pub rope_theta: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "layer_norm_eps",
        alias = "rms_norm_eps"
    )]
    pub norm_eps: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "tie_word_embeddings"
    )]
    pub tie_embeddings: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_parallel_residual: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<usize>,
    /// Last, so that TOML writes it as the `[model.rope_scaling]` table after the plain keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
}

impl ModelTable {
    /// A table naming `preset` with no overrides.
    pub fn preset(name: &str) -> Self {
        ModelTable {
            preset: Some(name.to_owned()),
            ..Self::default()
        }
    }

    /// The model this table describes: the preset with the overrides applied (or the fields alone),
    /// validated. Errors name the field and the fix.
    pub fn resolve(&self) -> Result<ModelConfig, ConfigError> {
        let config = match &self.preset {
            Some(name) => self.apply(preset_named(name)?),
            None => self.without_preset()?,
        };
        config.validate()?;
        Ok(config)
    }

    /// The table to paste into a plan for `config`: its preset (and `max_seq_len` when it differs) when
    /// one matches, else every field.
    pub fn for_config(config: &ModelConfig) -> Self {
        let matching = PRESETS.iter().find_map(|name| {
            let preset = ModelConfig::preset(name)?;
            preset
                .first_difference(config)
                .is_none()
                .then_some((name, preset))
        });
        match matching {
            Some((name, preset)) => ModelTable {
                max_seq_len: (preset.max_seq_len != config.max_seq_len)
                    .then_some(config.max_seq_len),
                ..Self::preset(name)
            },
            None => Self::every_field(config),
        }
    }

    /// The table as the `[model]` section of a plan file.
    pub fn to_plan_toml(&self) -> String {
        let body = toml::to_string(self).expect("a model table is a TOML table");
        format!("[model]\n{body}")
    }

    fn every_field(c: &ModelConfig) -> Self {
        ModelTable {
            preset: None,
            family: Some(c.family),
            vocab_size: Some(c.vocab_size),
            hidden_size: Some(c.hidden_size),
            num_layers: Some(c.num_layers),
            num_heads: Some(c.num_heads),
            num_kv_heads: Some(c.num_kv_heads),
            intermediate_size: Some(c.intermediate_size),
            max_seq_len: Some(c.max_seq_len),
            rotary_pct: Some(c.rotary_pct),
            rope_theta: Some(c.rope_theta),
            norm_eps: Some(c.norm_eps),
            tie_embeddings: Some(c.tie_embeddings),
            use_parallel_residual: Some(c.use_parallel_residual),
            head_dim: c.head_dim,
            sliding_window: c.sliding_window,
            rope_scaling: c.rope_scaling.clone(),
        }
    }

    /// `base` with every field this table sets replaced.
    fn apply(&self, base: ModelConfig) -> ModelConfig {
        ModelConfig {
            family: self.family.unwrap_or(base.family),
            vocab_size: self.vocab_size.unwrap_or(base.vocab_size),
            hidden_size: self.hidden_size.unwrap_or(base.hidden_size),
            num_layers: self.num_layers.unwrap_or(base.num_layers),
            num_heads: self.num_heads.unwrap_or(base.num_heads),
            num_kv_heads: self.num_kv_heads.unwrap_or(base.num_kv_heads),
            intermediate_size: self.intermediate_size.unwrap_or(base.intermediate_size),
            max_seq_len: self.max_seq_len.unwrap_or(base.max_seq_len),
            rotary_pct: self.rotary_pct.unwrap_or(base.rotary_pct),
            rope_theta: self.rope_theta.unwrap_or(base.rope_theta),
            norm_eps: self.norm_eps.unwrap_or(base.norm_eps),
            tie_embeddings: self.tie_embeddings.unwrap_or(base.tie_embeddings),
            use_parallel_residual: self
                .use_parallel_residual
                .unwrap_or(base.use_parallel_residual),
            head_dim: self.head_dim.or(base.head_dim),
            rope_scaling: self.rope_scaling.clone().or(base.rope_scaling),
            sliding_window: self.sliding_window.or(base.sliding_window),
        }
    }

    /// Every field from the table; those with a Hugging Face default (rotary_pct, rope_theta,
    /// use_parallel_residual) may be left out, as in a `config.json`.
    fn without_preset(&self) -> Result<ModelConfig, ConfigError> {
        Ok(ModelConfig {
            family: required("family", self.family)?,
            vocab_size: required("vocab_size", self.vocab_size)?,
            hidden_size: required("hidden_size", self.hidden_size)?,
            num_layers: required("num_layers", self.num_layers)?,
            num_heads: required("num_heads", self.num_heads)?,
            num_kv_heads: required("num_kv_heads", self.num_kv_heads)?,
            intermediate_size: required("intermediate_size", self.intermediate_size)?,
            max_seq_len: required("max_seq_len", self.max_seq_len)?,
            rotary_pct: self.rotary_pct.unwrap_or_else(default_rotary_pct),
            rope_theta: self.rope_theta.unwrap_or_else(default_rope_theta),
            norm_eps: required("norm_eps", self.norm_eps)?,
            tie_embeddings: required("tie_embeddings", self.tie_embeddings)?,
            use_parallel_residual: self
                .use_parallel_residual
                .unwrap_or_else(default_use_parallel_residual),
            head_dim: self.head_dim,
            rope_scaling: self.rope_scaling.clone(),
            sliding_window: self.sliding_window,
        })
    }
}

fn preset_named(name: &str) -> Result<ModelConfig, ConfigError> {
    ModelConfig::preset(name).ok_or_else(|| {
        ConfigError::new(
            "preset",
            format!(
                "= \"{name}\" is not a preset (presets: {})",
                PRESETS.join(", ")
            ),
            "pick one of them, or give every model field without a preset",
        )
    })
}

fn required<T>(field: &'static str, value: Option<T>) -> Result<T, ConfigError> {
    value.ok_or_else(|| {
        ConfigError::new(
            field,
            "is missing, and no preset gives it",
            "name a preset (preset = \"small\") or give every model field (docs/plan.md)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<ModelTable, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn presets_take_overrides_and_unknown_keys_are_refused() {
        let m = table("preset = \"tiny\"\nmax_seq_len = 64\nnum_layers = 3")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!((m.max_seq_len, m.num_layers, m.hidden_size), (64, 3, 64));
        let err = table("preset = \"tiny\"\nnum_layer = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_layer"), "{err}");
        let err = table("preset = \"gpt5\"").unwrap().resolve().unwrap_err();
        assert!(
            err.to_string().contains("gpt5") && err.to_string().contains("pythia-70m"),
            "{err}"
        );
        let err = table("preset = \"tiny\"\nhidden_size = 65")
            .unwrap()
            .resolve()
            .unwrap_err();
        assert_eq!(err.field, "hidden_size");
    }

    #[test]
    fn hugging_face_spellings_are_aliases() {
        let m = table("preset = \"tiny\"\nnum_hidden_layers = 5\ntie_word_embeddings = true")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!((m.num_layers, m.tie_embeddings), (5, true));
    }

    #[test]
    fn without_a_preset_every_required_field_is_named() {
        let full = ModelTable::every_field(&ModelConfig::tiny_llama());
        assert_eq!(full.resolve().unwrap(), ModelConfig::tiny_llama());
        let err = ModelTable {
            hidden_size: None,
            ..full
        }
        .resolve()
        .unwrap_err();
        assert_eq!(err.field, "hidden_size");
        assert!(err.to_string().contains("HINT"), "{err}");
    }

    #[test]
    fn plan_toml_parses_back() {
        let odd = ModelConfig {
            num_layers: 7,
            ..ModelConfig::tiny()
        };
        let text = ModelTable::for_config(&odd).to_plan_toml();
        let body = text.strip_prefix("[model]\n").unwrap();
        assert_eq!(table(body).unwrap().resolve().unwrap(), odd);
        let smol = ModelTable::for_config(&ModelConfig::smollm2_135m()).to_plan_toml();
        assert_eq!(smol, "[model]\npreset = \"smollm2-135m\"\n");
    }

    #[test]
    fn for_config_names_the_matching_preset() {
        let smol = ModelConfig::smollm2_135m();
        assert_eq!(
            ModelTable::for_config(&smol),
            ModelTable::preset("smollm2-135m")
        );
        let shorter = ModelConfig {
            max_seq_len: 512,
            ..smol
        };
        let t = ModelTable::for_config(&shorter);
        assert_eq!(
            (t.preset.as_deref(), t.max_seq_len),
            (Some("smollm2-135m"), Some(512))
        );
        assert_eq!(t.resolve().unwrap(), shorter);
        let odd = ModelConfig {
            num_layers: 7,
            ..ModelConfig::tiny()
        };
        let t = ModelTable::for_config(&odd);
        assert_eq!((t.preset.clone(), t.resolve().unwrap()), (None, odd));
    }
}
