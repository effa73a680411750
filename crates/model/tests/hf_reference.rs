//! The models against Hugging Face transformers itself: each fixture holds a tiny random HF model's
//! state_dict (HF checkpoint keys), token ids and the logits HF computed for them (eager attention), and
//! the config.json transformers writes for it. Reading that config, loading the weights by name and
//! running our forward must give the same logits. The fixtures come from
//! `tests/fixtures/make_hf_reference.py`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rewarm_model::{Family, Model, ModelConfig};
use tch::{nn, Device, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The model the fixture's config.json describes, read as `init_from` and `import` read one.
fn hf_config(name: &str) -> ModelConfig {
    let path = fixture(&format!("hf_{name}.config.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ModelConfig::from_hf_config(&serde_json::from_str(&text).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Largest |Δ logit| between HF's logits and ours for `config` with the fixture's weights.
fn max_diff_from_hf(name: &str, config: &ModelConfig) -> f64 {
    let path = fixture(&format!("hf_{name}.safetensors"));
    let mut hf: BTreeMap<String, Tensor> = Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect();
    let tokens = hf.remove("tokens").expect("fixture has tokens");
    let expected = hf.remove("logits").expect("fixture has logits");

    let vs = nn::VarStore::new(Device::Cpu);
    let model = Model::new(&vs.root(), config).unwrap();
    let ours = vs.variables();
    assert_eq!(
        ours.keys().collect::<BTreeSet<_>>(),
        hf.keys().collect::<BTreeSet<_>>(),
        "{name}: parameter names differ from the HF checkpoint keys"
    );
    tch::no_grad(|| {
        for (key, mut variable) in ours {
            let value = &hf[&key];
            assert_eq!(variable.size(), value.size(), "{name}: {key}");
            variable.copy_(value);
        }
    });

    let logits = tch::no_grad(|| model.forward(&tokens));
    (&logits - &expected).abs().max().double_value(&[])
}

/// The fixture's config.json read into a model that gives HF's logits; returns the config.
fn check_against_hf(name: &str) -> ModelConfig {
    let config = hf_config(name);
    let max_diff = max_diff_from_hf(name, &config);
    assert!(
        max_diff < 1e-5,
        "{name}: logits differ from HF by up to {max_diff}"
    );
    config
}

#[test]
fn neox_parallel_residual_matches_hf() {
    let config = check_against_hf("neox_parallel");
    assert!(config.use_parallel_residual && !config.tie_embeddings);
}

#[test]
fn neox_sequential_residual_tied_matches_hf() {
    let config = check_against_hf("neox_sequential_tied");
    assert!(!config.use_parallel_residual && config.tie_embeddings);
    assert_eq!(config.rotary_pct, 0.5);
}

#[test]
fn llama_grouped_query_tied_matches_hf() {
    let config = check_against_hf("llama_gqa_tied");
    assert_eq!((config.family, config.num_kv_heads), (Family::Llama, 2));
}

#[test]
fn llama3_rope_scaling_matches_hf_and_matters() {
    let config = check_against_hf("llama3_scaled");
    let scaling = config.rope_scaling.clone().expect("llama3 scaling read");
    assert_eq!(scaling.original_max_position_embeddings, 64);
    // Without the scaling the same weights give other logits: the fixture tests the rule.
    let plain = ModelConfig {
        rope_scaling: None,
        ..config
    };
    assert!(max_diff_from_hf("llama3_scaled", &plain) > 1e-3);
}

#[test]
fn qwen2_qkv_biases_match_hf() {
    let config = check_against_hf("qwen2_gqa_tied");
    assert_eq!(
        (config.family, config.tie_embeddings),
        (Family::Qwen2, true)
    );
}

#[test]
fn qwen3_qk_norms_and_head_dim_match_hf() {
    let config = check_against_hf("qwen3_head_dim");
    assert_eq!((config.family, config.head_dim), (Family::Qwen3, Some(8)));
    assert_ne!(config.attention_width(), config.hidden_size);
}

#[test]
fn mistral_sliding_window_matches_hf_and_matters() {
    let config = check_against_hf("mistral_window");
    assert_eq!(
        (config.family, config.sliding_window),
        (Family::Mistral, Some(5))
    );
    let unbounded = ModelConfig {
        sliding_window: None,
        ..config
    };
    assert!(max_diff_from_hf("mistral_window", &unbounded) > 1e-3);
}
