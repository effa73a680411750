//! [`ModelConfig`] ↔ Hugging Face `config.json` (`LlamaForCausalLM`, `MistralForCausalLM`,
//! `Qwen2ForCausalLM`, `Qwen3ForCausalLM`, `GPTNeoXForCausalLM`).
//!
//! Reading accepts both spellings transformers has used: the legacy top-level keys (`rope_theta`,
//! `rotary_pct`, `rotary_emb_base`, `rope_scaling`) and transformers 5's `rope_parameters` object
//! (`rope_theta`, `partial_rotary_factor`, `rope_type` and the scaling's parameters). Omitted keys take
//! the defaults of the family's transformers config class (Qwen3's head_dim 128, Mistral's window
//! 4096). Keys rewarm does not model are ignored unless they change the math (an activation other than
//! silu/gelu, biases a family lacks, RoPE scaling other than `llama3`, Qwen's sliding-window layers):
//! those are refused, naming the key. Writing uses the legacy keys, which transformers 4 and 5 both read.

use serde_json::{json, Value};

use crate::{ConfigError, Family, ModelConfig, RopeScaling, RopeScalingType};

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

/// `model_type`: `llama`, `mistral`, `qwen2`, `qwen3` or `gpt_neox`.
fn family_of(json: &Value) -> Result<Family, ConfigError> {
    let model_type = json
        .get("model_type")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("model_type"))?;
    let families = [
        Family::Llama,
        Family::Mistral,
        Family::Qwen2,
        Family::Qwen3,
        Family::Neox,
    ];
    families
        .into_iter()
        .find(|f| f.hf_model_type() == model_type)
        .ok_or_else(|| {
            ConfigError::new(
                "model_type",
                format!("= \"{model_type}\" in config.json"),
                "rewarm reads `llama` (2 and 3.x), `mistral`, `qwen2` (2 and 2.5), `qwen3` and `gpt_neox` \
                 checkpoints",
            )
        })
}

/// The RoPE scaling of the legacy `rope_scaling` object or transformers 5's `rope_parameters`: none for
/// `default`, Llama 3's rule for `llama3` (Llama-like families only); any other rule is refused by name.
fn rope_scaling_of(
    json: &Value,
    rope: &Value,
    family: Family,
) -> Result<Option<RopeScaling>, ConfigError> {
    let (key, object) = match json.get("rope_scaling").filter(|v| !v.is_null()) {
        Some(v) => ("rope_scaling", v),
        None => ("rope_parameters", rope),
    };
    let kind = object.get("rope_type").or_else(|| object.get("type"));
    match kind.and_then(Value::as_str) {
        None | Some("default") => Ok(None),
        Some("llama3") if family.is_llama_like() => {
            let number = |k: &'static str| number(object, k)?.ok_or_else(|| missing(k));
            let scaling = RopeScaling {
                rope_type: RopeScalingType::Llama3,
                factor: number("factor")?,
                low_freq_factor: number("low_freq_factor")?,
                high_freq_factor: number("high_freq_factor")?,
                original_max_position_embeddings: size(
                    object,
                    "original_max_position_embeddings",
                )?,
            };
            Ok(Some(scaling))
        }
        Some(_) => Err(unsupported(
            key,
            object,
            "only Llama 3's RoPE scaling (rope_type \"llama3\", Llama-like families) is implemented",
        )),
    }
}

/// `head_dim` when it is not hidden_size / num_attention_heads (`None` when it is, or absent); Qwen3's
/// default is 128. GPT-NeoX's head dim is always C / H.
fn head_dim_of(
    json: &Value,
    family: Family,
    num_heads: usize,
    hidden_size: usize,
) -> Result<Option<usize>, ConfigError> {
    let head_dim = match json.get("head_dim") {
        None | Some(Value::Null) if family == Family::Qwen3 => 128,
        None | Some(Value::Null) => return Ok(None),
        Some(_) => size(json, "head_dim")?,
    };
    if num_heads > 0 && head_dim * num_heads == hidden_size {
        return Ok(None);
    }
    if family == Family::Neox {
        return Err(unsupported(
            "head_dim",
            &json!(head_dim),
            "GPT-NeoX's head dim is hidden_size / num_attention_heads",
        ));
    }
    Ok(Some(head_dim))
}

/// Mistral's `sliding_window` (transformers' default 4096 when absent; null for none). Qwen's sliding
/// layers (`use_sliding_window`, `layer_types`) are refused by name.
fn sliding_window_of(json: &Value, family: Family) -> Result<Option<usize>, ConfigError> {
    match family {
        Family::Mistral => match json.get("sliding_window") {
            None => Ok(Some(4096)),
            Some(Value::Null) => Ok(None),
            Some(_) => size(json, "sliding_window").map(Some),
        },
        Family::Qwen2 | Family::Qwen3 => {
            let why = "Qwen's sliding-window layers are not implemented";
            require(json, "use_sliding_window", &[json!(false)], why)?;
            let layers = json.get("layer_types").and_then(Value::as_array);
            match layers.and_then(|l| l.iter().find(|t| t.as_str() != Some("full_attention"))) {
                Some(other) => Err(unsupported("layer_types", other, why)),
                None => Ok(None),
            }
        }
        Family::Llama | Family::Neox => Ok(None),
    }
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
    let no_bias = "rewarm's Llama-like blocks have no biases but Qwen2's on q, k and v";
    require(json, "attention_bias", &[json!(false)], no_bias)?;
    require(json, "mlp_bias", &[json!(false)], no_bias)?;
    let num_kv_heads = match json.get("num_key_value_heads") {
        None | Some(Value::Null) => num_heads,
        Some(_) => size(json, "num_key_value_heads")?,
    };
    let theta = number(json, "rope_theta")?.or(number(rope, "rope_theta")?);
    Ok(FamilyFields {
        rotary_pct: number(rope, "partial_rotary_factor")?.unwrap_or(1.0),
        rope_theta: theta.unwrap_or(10_000.0),
        // LlamaConfig's default ε is 1e-6 (so are Mistral's and Qwen's).
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
    /// The model a Hugging Face `config.json` describes, validated.
    pub fn from_hf_config(json: &Value) -> Result<ModelConfig, ConfigError> {
        let family = family_of(json)?;
        let rope = json.get("rope_parameters").cloned().unwrap_or(Value::Null);
        let num_heads = size(json, "num_attention_heads")?;
        let hidden_size = size(json, "hidden_size")?;
        let f = match family {
            Family::Neox => neox_fields(json, &rope, num_heads)?,
            _ => llama_fields(json, &rope, num_heads)?,
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
            head_dim: head_dim_of(json, family, num_heads, hidden_size)?,
            rope_scaling: rope_scaling_of(json, &rope, family)?,
            sliding_window: sliding_window_of(json, family)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// The Hugging Face `config.json` of this model, with the keys of its family's transformers config.
    pub fn to_hf_config(&self) -> Value {
        let mut out = json!({
            "architectures": [self.family.hf_architecture()],
            "model_type": self.family.hf_model_type(),
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
            Family::Neox => json!({
                "hidden_act": "gelu",
                "layer_norm_eps": self.norm_eps,
                "rotary_pct": self.rotary_pct,
                "rotary_emb_base": self.rope_theta,
                "use_parallel_residual": self.use_parallel_residual,
                "attention_bias": true,
            }),
            _ => self.llama_like_keys(),
        };
        if let (Some(out), Some(extra)) = (out.as_object_mut(), specific.as_object()) {
            out.extend(extra.clone());
        }
        out
    }

    /// The keys of a Llama-like family's config.json beyond the common ones.
    fn llama_like_keys(&self) -> Value {
        let mut keys = json!({
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim(),
            "hidden_act": "silu",
            "rms_norm_eps": self.norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": self.rope_scaling,
        });
        let specific = match self.family {
            Family::Llama => json!({"attention_bias": false, "mlp_bias": false}),
            Family::Mistral => json!({"sliding_window": self.sliding_window}),
            Family::Qwen2 => json!({"use_sliding_window": false}),
            Family::Qwen3 => json!({"attention_bias": false, "use_sliding_window": false}),
            Family::Neox => json!({}),
        };
        if let (Some(keys), Some(extra)) = (keys.as_object_mut(), specific.as_object()) {
            keys.extend(extra.clone());
        }
        keys
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
    use crate::PRESETS;

    #[test]
    fn round_trips_through_hf_config_json() {
        let mistral = ModelConfig {
            family: Family::Mistral,
            sliding_window: Some(64),
            ..ModelConfig::tiny_llama()
        };
        let presets = PRESETS.iter().filter_map(|name| ModelConfig::preset(name));
        for config in presets.chain([mistral]) {
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
    fn reads_the_published_configs_of_llama_3_qwen_and_mistral() {
        // The keys of each checkpoint's config.json that matter (bos/eos ids and the like left out).
        let llama = json!({"architectures": ["LlamaForCausalLM"], "attention_bias": false,
            "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
            "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
            "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
            "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 32.0,
            "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192,
            "rope_type": "llama3"}, "rope_theta": 500000.0, "tie_word_embeddings": true,
            "vocab_size": 128256});
        let qwen2 = json!({"architectures": ["Qwen2ForCausalLM"], "hidden_act": "silu",
            "hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768,
            "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14,
            "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
            "use_sliding_window": false, "vocab_size": 151936});
        let qwen3 = json!({"architectures": ["Qwen3ForCausalLM"], "attention_bias": false,
            "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024, "intermediate_size": 3072,
            "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
            "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
            "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
            "tie_word_embeddings": true, "use_sliding_window": false, "vocab_size": 151936});
        for (json, preset) in [
            (llama, ModelConfig::llama_3_2_1b()),
            (qwen2, ModelConfig::qwen2_5_0_5b()),
            (qwen3, ModelConfig::qwen3_0_6b()),
        ] {
            assert_eq!(ModelConfig::from_hf_config(&json).unwrap(), preset);
        }
        // Mistral-7B-v0.1: a 4096-token window; v0.2 and later set it to null.
        let mut mistral = json!({"architectures": ["MistralForCausalLM"], "hidden_act": "silu",
            "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768,
            "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32,
            "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
            "sliding_window": 4096, "tie_word_embeddings": false, "vocab_size": 32000});
        let v01 = ModelConfig::from_hf_config(&mistral).unwrap();
        assert_eq!(
            (v01.family, v01.sliding_window),
            (Family::Mistral, Some(4096))
        );
        assert_eq!(v01.num_params(), 7_241_732_096);
        mistral["sliding_window"] = Value::Null;
        let v02 = ModelConfig::from_hf_config(&mistral).unwrap();
        assert_eq!(v02.sliding_window, None);
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
        assert_eq!(field(&|j| j["model_type"] = json!("gemma2")), "model_type");
        assert_eq!(
            field(&|j| j["rope_scaling"] = json!({"rope_type": "yarn", "factor": 8.0})),
            "rope_scaling"
        );
        assert_eq!(
            field(&|j| j["rope_parameters"] = json!({"rope_type": "linear", "factor": 2.0})),
            "rope_parameters"
        );
        // llama3 without one of its parameters names the parameter.
        assert_eq!(
            field(&|j| j["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0})),
            "low_freq_factor"
        );
        assert_eq!(field(&|j| j["hidden_act"] = json!("gelu")), "hidden_act");
        assert_eq!(
            field(&|j| j["attention_bias"] = json!(true)),
            "attention_bias"
        );
        assert_eq!(field(&|j| j["mlp_bias"] = json!(true)), "mlp_bias");
        let qwen = |mutate: &dyn Fn(&mut Value)| {
            field(&|j| {
                j["model_type"] = json!("qwen2");
                mutate(j)
            })
        };
        assert_eq!(
            qwen(&|j| j["use_sliding_window"] = json!(true)),
            "use_sliding_window"
        );
        assert_eq!(
            qwen(&|j| j["layer_types"] = json!(["full_attention", "sliding_attention"])),
            "layer_types"
        );
        let mut neox = ModelConfig::tiny().to_hf_config();
        neox["head_dim"] = json!(32);
        assert_eq!(
            ModelConfig::from_hf_config(&neox).unwrap_err().field,
            "head_dim"
        );
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
