//! [`ModelConfig`] ↔ Hugging Face `config.json` (`LlamaForCausalLM`, `GPTNeoXForCausalLM`).
//!
//! Reading accepts both spellings transformers has used: the legacy top-level keys (`rope_theta`,
//! `rotary_pct`, `rotary_emb_base`, `rope_scaling`) and transformers 5's `rope_parameters` object
//! (`rope_theta`, `partial_rotary_factor`, `rope_type`). Keys rewarm does not model are ignored unless
//! they change the math (an activation other than silu/gelu, biases Llama lacks, RoPE scaling, a
//! head_dim that is not C/H): those are refused, naming the key. Writing uses the legacy keys, which
//! transformers 4 and 5 both read.

use serde_json::{json, Value};

use crate::{ConfigError, Family, ModelConfig};

fn missing(key: &'static str) -> ConfigError {
    ConfigError::new(
        key,
        "is missing from config.json",
        "use the config.json that came with the checkpoint",
    )
}

fn unsupported(key: &'static str, value: &Value, why: &str) -> ConfigError {
    ConfigError::new(
        key,
        format!("= {value} in config.json: {why}"),
        "rewarm implements plain Llama and GPT-NeoX; this checkpoint needs another architecture",
    )
}

fn size(json: &Value, key: &'static str) -> Result<usize, ConfigError> {
    match json.get(key) {
        None | Some(Value::Null) => Err(missing(key)),
        Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
            ConfigError::new(key, format!("= {v} is not a size"), "fix config.json")
        }),
    }
}

fn number(json: &Value, key: &'static str) -> Result<Option<f64>, ConfigError> {
    match json.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| {
            ConfigError::new(key, format!("= {v} is not a number"), "fix config.json")
        }),
    }
}

fn flag(json: &Value, key: &'static str, default: bool) -> Result<bool, ConfigError> {
    match json.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_bool().ok_or_else(|| {
            ConfigError::new(key, format!("= {v} is not true/false"), "fix config.json")
        }),
    }
}

/// The value at `key` must be absent/null or one of `allowed`.
fn require(
    json: &Value,
    key: &'static str,
    allowed: &[Value],
    why: &str,
) -> Result<(), ConfigError> {
    match json.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if allowed.contains(v) => Ok(()),
        Some(v) => Err(unsupported(key, v, why)),
    }
}

/// `model_type`: `llama` or `gpt_neox`.
fn family_of(json: &Value) -> Result<Family, ConfigError> {
    let model_type = json
        .get("model_type")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("model_type"))?;
    match model_type {
        "llama" => Ok(Family::Llama),
        "gpt_neox" => Ok(Family::Neox),
        other => Err(ConfigError::new(
            "model_type",
            format!("= \"{other}\" in config.json"),
            "rewarm trains `llama` and `gpt_neox` checkpoints",
        )),
    }
}

/// RoPE scaling (the legacy `rope_scaling` or transformers 5's `rope_parameters.rope_type`) other than
/// `default` changes the math: refused by name.
fn refuse_rope_scaling(json: &Value, rope: &Value) -> Result<(), ConfigError> {
    for (holder, key) in [(json, "rope_scaling"), (rope, "rope_type")] {
        if let Some(v) = holder.get(key).filter(|v| !v.is_null()) {
            let kind = v.get("rope_type").or_else(|| v.get("type")).unwrap_or(v);
            if kind.as_str() != Some("default") {
                return Err(unsupported(key, v, "RoPE scaling is not implemented"));
            }
        }
    }
    Ok(())
}

/// A `head_dim` other than hidden_size / num_attention_heads changes the math: refused.
fn check_head_dim(json: &Value, num_heads: usize, hidden_size: usize) -> Result<(), ConfigError> {
    if let Some(head_dim) = json.get("head_dim").and_then(Value::as_u64) {
        if num_heads == 0 || head_dim as usize * num_heads != hidden_size {
            return Err(unsupported(
                "head_dim",
                &json!(head_dim),
                "rewarm's head dim is hidden_size / num_attention_heads",
            ));
        }
    }
    Ok(())
}

/// The fields whose keys and defaults differ between the families.
struct FamilyFields {
    rotary_pct: f64,
    rope_theta: f64,
    norm_eps: f64,
    num_kv_heads: usize,
    use_parallel_residual: bool,
}

fn llama_fields(json: &Value, rope: &Value, num_heads: usize) -> Result<FamilyFields, ConfigError> {
    require(
        json,
        "hidden_act",
        &[json!("silu")],
        "Llama's MLP is SwiGLU (silu)",
    )?;
    require(
        json,
        "attention_bias",
        &[json!(false)],
        "rewarm's Llama has no biases",
    )?;
    require(
        json,
        "mlp_bias",
        &[json!(false)],
        "rewarm's Llama has no biases",
    )?;
    let num_kv_heads = match json.get("num_key_value_heads") {
        None | Some(Value::Null) => num_heads,
        Some(_) => size(json, "num_key_value_heads")?,
    };
    let theta = number(json, "rope_theta")?.or(number(rope, "rope_theta")?);
    Ok(FamilyFields {
        rotary_pct: number(rope, "partial_rotary_factor")?.unwrap_or(1.0),
        rope_theta: theta.unwrap_or(10_000.0),
        // LlamaConfig's default ε is 1e-6.
        norm_eps: number(json, "rms_norm_eps")?.unwrap_or(1e-6),
        num_kv_heads,
        use_parallel_residual: false,
    })
}

fn neox_fields(json: &Value, rope: &Value, num_heads: usize) -> Result<FamilyFields, ConfigError> {
    require(
        json,
        "hidden_act",
        &[json!("gelu")],
        "rewarm's GPT-NeoX uses exact (erf) GELU",
    )?;
    require(
        json,
        "attention_bias",
        &[json!(true)],
        "rewarm's GPT-NeoX has attention biases",
    )?;
    let partial = number(json, "rotary_pct")?.or(number(rope, "partial_rotary_factor")?);
    let theta = number(json, "rotary_emb_base")?
        .or(number(json, "rope_theta")?)
        .or(number(rope, "rope_theta")?);
    Ok(FamilyFields {
        rotary_pct: partial.unwrap_or(0.25),
        rope_theta: theta.unwrap_or(10_000.0),
        norm_eps: number(json, "layer_norm_eps")?.unwrap_or(1e-5),
        num_kv_heads: num_heads,
        use_parallel_residual: flag(json, "use_parallel_residual", true)?,
    })
}

impl ModelConfig {
    /// The model a Hugging Face `config.json` describes (Llama or GPT-NeoX), validated.
    pub fn from_hf_config(json: &Value) -> Result<ModelConfig, ConfigError> {
        let family = family_of(json)?;
        let rope = json.get("rope_parameters").cloned().unwrap_or(Value::Null);
        refuse_rope_scaling(json, &rope)?;
        let num_heads = size(json, "num_attention_heads")?;
        let hidden_size = size(json, "hidden_size")?;
        check_head_dim(json, num_heads, hidden_size)?;
        let f = match family {
            Family::Llama => llama_fields(json, &rope, num_heads)?,
            Family::Neox => neox_fields(json, &rope, num_heads)?,
        };
        let config = ModelConfig {
            family,
            vocab_size: size(json, "vocab_size")?,
            hidden_size,
            num_layers: size(json, "num_hidden_layers")?,
            num_heads,
            num_kv_heads: f.num_kv_heads,
            intermediate_size: size(json, "intermediate_size")?,
            max_seq_len: size(json, "max_position_embeddings")?,
            rotary_pct: f.rotary_pct,
            rope_theta: f.rope_theta,
            norm_eps: f.norm_eps,
            tie_embeddings: flag(json, "tie_word_embeddings", false)?,
            use_parallel_residual: f.use_parallel_residual,
        };
        config.validate()?;
        Ok(config)
    }

    /// The Hugging Face `config.json` of this model (`LlamaForCausalLM` or `GPTNeoXForCausalLM` keys).
    pub fn to_hf_config(&self) -> Value {
        let common = json!({
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "max_position_embeddings": self.max_seq_len,
            "vocab_size": self.vocab_size,
            "tie_word_embeddings": self.tie_embeddings,
            "torch_dtype": "float32",
        });
        let specific = match self.family {
            Family::Llama => json!({
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "num_key_value_heads": self.num_kv_heads,
                "head_dim": self.head_dim(),
                "hidden_act": "silu",
                "rms_norm_eps": self.norm_eps,
                "rope_theta": self.rope_theta,
                "rope_scaling": null,
                "attention_bias": false,
                "mlp_bias": false,
            }),
            Family::Neox => json!({
                "architectures": ["GPTNeoXForCausalLM"],
                "model_type": "gpt_neox",
                "hidden_act": "gelu",
                "layer_norm_eps": self.norm_eps,
                "rotary_pct": self.rotary_pct,
                "rotary_emb_base": self.rope_theta,
                "use_parallel_residual": self.use_parallel_residual,
                "attention_bias": true,
            }),
        };
        let mut out = common;
        if let (Some(out), Some(extra)) = (out.as_object_mut(), specific.as_object()) {
            out.extend(extra.clone());
        }
        out
    }

    /// The first field (in declaration order) where `self` and `other` differ, with both values, leaving
    /// out `max_seq_len` (the rotary tables are computed, so any context length loads the same weights).
    pub fn first_difference(&self, other: &ModelConfig) -> Option<(String, String, String)> {
        let (a, b) = (json!(self), json!(other));
        let (a, b) = (a.as_object()?, b.as_object()?);
        a.iter()
            .filter(|(k, _)| *k != "max_seq_len")
            .find(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.to_string(),
                    b.get(k).map_or("(absent)".into(), Value::to_string),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_hf_config_json() {
        for config in [
            ModelConfig::tiny(),
            ModelConfig::tiny_llama(),
            ModelConfig::smollm2_135m(),
            ModelConfig::pythia_70m(),
            ModelConfig::gpt2_124m(),
        ] {
            let hf = config.to_hf_config();
            assert_eq!(ModelConfig::from_hf_config(&hf).unwrap(), config, "{hf}");
        }
    }

    #[test]
    fn reads_transformers_5_rope_parameters_and_pythia_defaults() {
        let llama = json!({"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
            "rms_norm_eps": 1e-5, "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
            "vocab_size": 49152, "max_position_embeddings": 2048, "tie_word_embeddings": true,
            "hidden_act": "silu", "pretraining_tp": 1});
        assert_eq!(
            ModelConfig::from_hf_config(&llama).unwrap(),
            ModelConfig::smollm2_135m()
        );
        // Pythia-70m's config.json omits nothing rewarm needs; rotary_pct / parallel residual are explicit.
        let pythia = json!({"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
            "hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8, "num_hidden_layers": 6,
            "max_position_embeddings": 2048, "rotary_pct": 0.25, "rotary_emb_base": 10000,
            "layer_norm_eps": 1e-5, "use_parallel_residual": true, "vocab_size": 50304,
            "tie_word_embeddings": false, "hidden_act": "gelu", "bos_token_id": 0});
        assert_eq!(
            ModelConfig::from_hf_config(&pythia).unwrap(),
            ModelConfig::pythia_70m()
        );
    }

    #[test]
    fn refuses_what_changes_the_math_naming_the_key() {
        let field = |mutate: &dyn Fn(&mut Value)| {
            let mut hf = ModelConfig::tiny_llama().to_hf_config();
            mutate(&mut hf);
            match ModelConfig::from_hf_config(&hf) {
                Err(ConfigError { field, .. }) => field,
                other => panic!("expected an error, got {other:?}"),
            }
        };
        assert_eq!(field(&|j| j["model_type"] = json!("mistral")), "model_type");
        assert_eq!(
            field(&|j| j["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0})),
            "rope_scaling"
        );
        assert_eq!(field(&|j| j["hidden_act"] = json!("gelu")), "hidden_act");
        assert_eq!(
            field(&|j| j["attention_bias"] = json!(true)),
            "attention_bias"
        );
        assert_eq!(field(&|j| j["head_dim"] = json!(32)), "head_dim");
        assert_eq!(
            field(&|j| {
                j.as_object_mut().unwrap().remove("vocab_size");
            }),
            "vocab_size"
        );
        assert_eq!(
            field(&|j| j["num_key_value_heads"] = json!(3)),
            "num_kv_heads"
        );
    }

    #[test]
    fn first_difference_names_the_field_and_ignores_the_context_length() {
        let a = ModelConfig::smollm2_135m();
        assert_eq!(
            a.first_difference(&ModelConfig {
                max_seq_len: 512,
                ..a.clone()
            }),
            None
        );
        let (field, ours, theirs) = a
            .first_difference(&ModelConfig {
                rope_theta: 10_000.0,
                ..a.clone()
            })
            .unwrap();
        assert_eq!(
            (field.as_str(), ours.as_str(), theirs.as_str()),
            ("rope_theta", "100000.0", "10000.0")
        );
    }
}
