//! The models against Hugging Face transformers itself: each fixture holds a tiny random HF model's
//! state_dict (HF checkpoint keys), token ids and the logits HF computed for them (eager attention).
//! Loading the weights by name and running our forward must give the same logits. The fixtures come from
//! `tests/fixtures/make_hf_reference.py`, whose configs the ones below mirror.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rewarm_model::{Family, Model, ModelConfig};
use tch::{nn, Device, Tensor};

fn neox(use_parallel_residual: bool, tie_embeddings: bool) -> ModelConfig {
    ModelConfig {
        family: Family::Neox,
        vocab_size: 48,
        hidden_size: 16,
        num_layers: 2,
        num_heads: 2,
        num_kv_heads: 2,
        intermediate_size: 64,
        max_seq_len: 32,
        rotary_pct: 0.5,
        rope_theta: 10_000.0,
        norm_eps: 1e-5,
        tie_embeddings,
        use_parallel_residual,
    }
}

fn llama() -> ModelConfig {
    ModelConfig {
        family: Family::Llama,
        vocab_size: 48,
        hidden_size: 32,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        intermediate_size: 48,
        max_seq_len: 32,
        rotary_pct: 1.0,
        rope_theta: 500.0,
        norm_eps: 1e-5,
        tie_embeddings: true,
        use_parallel_residual: false,
    }
}

fn check_against_hf(fixture: &str, config: &ModelConfig) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
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
        "{fixture}: parameter names differ from the HF checkpoint keys"
    );
    tch::no_grad(|| {
        for (name, mut variable) in ours {
            let value = &hf[&name];
            assert_eq!(variable.size(), value.size(), "{fixture}: {name}");
            variable.copy_(value);
        }
    });

    let logits = tch::no_grad(|| model.forward(&tokens));
    let max_diff = (&logits - &expected).abs().max().double_value(&[]);
    assert!(
        max_diff < 1e-5,
        "{fixture}: logits differ from HF by up to {max_diff}"
    );
}

#[test]
fn neox_parallel_residual_matches_hf() {
    check_against_hf("hf_neox_parallel.safetensors", &neox(true, false));
}

#[test]
fn neox_sequential_residual_tied_matches_hf() {
    check_against_hf("hf_neox_sequential_tied.safetensors", &neox(false, true));
}

#[test]
fn llama_grouped_query_tied_matches_hf() {
    check_against_hf("hf_llama_gqa_tied.safetensors", &llama());
}
