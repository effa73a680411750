//! Model-level tests: HF parameter names and shapes, parameter counts, causality, GQA layout, learning,
//! determinism. Tiny, CPU-only, deterministic; run with `cargo test --release -p rewarm-model`.

use std::collections::BTreeMap;

use rewarm_model::{decay_mask, Arch, Family, Model, ModelConfig};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// libtorch's default generator is process-wide and the tests run on several threads: seeding and
/// drawing happen under this lock so that one test cannot change another's draws.
fn seeded<T>(seed: i64, draw: impl FnOnce() -> T) -> T {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    draw()
}

fn build(config: &ModelConfig, seed: i64) -> (nn::VarStore, Model) {
    seeded(seed, || {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Model::new(&vs.root(), config).unwrap_or_else(|e| panic!("{e}"));
        (vs, model)
    })
}

/// name → shape of every variable in the store (trainable or not).
fn shapes(vs: &nn::VarStore) -> BTreeMap<String, Vec<i64>> {
    vs.variables()
        .into_iter()
        .map(|(name, t)| (name, t.size()))
        .collect()
}

fn tokens(config: &ModelConfig, b: i64, t: i64, seed: i64) -> Tensor {
    seeded(seed, || {
        Tensor::randint(config.vocab_size as i64, [b, t], (Kind::Int64, Device::Cpu))
    })
}

/// The HF `GPTNeoXForCausalLM` keys and shapes for `tiny` (L=2, C=64, I=256, V=512), written out by hand.
#[test]
fn neox_parameter_names_and_shapes_are_the_hf_keys() {
    let (vs, _) = build(&ModelConfig::tiny(), 0);
    let mut expected = BTreeMap::new();
    expected.insert("gpt_neox.embed_in.weight".to_string(), vec![512, 64]);
    for i in 0..2 {
        let p = format!("gpt_neox.layers.{i}");
        for (name, shape) in [
            ("input_layernorm.weight", vec![64]),
            ("input_layernorm.bias", vec![64]),
            ("post_attention_layernorm.weight", vec![64]),
            ("post_attention_layernorm.bias", vec![64]),
            ("attention.query_key_value.weight", vec![192, 64]),
            ("attention.query_key_value.bias", vec![192]),
            ("attention.dense.weight", vec![64, 64]),
            ("attention.dense.bias", vec![64]),
            ("mlp.dense_h_to_4h.weight", vec![256, 64]),
            ("mlp.dense_h_to_4h.bias", vec![256]),
            ("mlp.dense_4h_to_h.weight", vec![64, 256]),
            ("mlp.dense_4h_to_h.bias", vec![64]),
        ] {
            expected.insert(format!("{p}.{name}"), shape);
        }
    }
    expected.insert("gpt_neox.final_layer_norm.weight".to_string(), vec![64]);
    expected.insert("gpt_neox.final_layer_norm.bias".to_string(), vec![64]);
    expected.insert("embed_out.weight".to_string(), vec![512, 64]);
    assert_eq!(shapes(&vs), expected);
    // Everything in the store is a trainable parameter: the rotary tables live outside it.
    assert_eq!(vs.trainable_variables().len(), expected.len());

    let tied = ModelConfig {
        tie_embeddings: true,
        ..ModelConfig::tiny()
    };
    let (vs, _) = build(&tied, 0);
    assert!(!shapes(&vs).contains_key("embed_out.weight"));
    assert_eq!(shapes(&vs).len(), expected.len() - 1);
}

/// The HF `LlamaForCausalLM` keys and shapes for `tiny-llama` (L=2, C=64, 4 q / 2 kv heads of 16, I=176).
#[test]
fn llama_parameter_names_and_shapes_are_the_hf_keys() {
    let (vs, _) = build(&ModelConfig::tiny_llama(), 0);
    let mut expected = BTreeMap::new();
    expected.insert("model.embed_tokens.weight".to_string(), vec![512, 64]);
    for i in 0..2 {
        let p = format!("model.layers.{i}");
        for (name, shape) in [
            ("input_layernorm.weight", vec![64]),
            ("self_attn.q_proj.weight", vec![64, 64]),
            ("self_attn.k_proj.weight", vec![32, 64]),
            ("self_attn.v_proj.weight", vec![32, 64]),
            ("self_attn.o_proj.weight", vec![64, 64]),
            ("post_attention_layernorm.weight", vec![64]),
            ("mlp.gate_proj.weight", vec![176, 64]),
            ("mlp.up_proj.weight", vec![176, 64]),
            ("mlp.down_proj.weight", vec![64, 176]),
        ] {
            expected.insert(format!("{p}.{name}"), shape);
        }
    }
    expected.insert("model.norm.weight".to_string(), vec![64]);
    assert_eq!(shapes(&vs), expected, "tied: no lm_head");
    assert_eq!(vs.trainable_variables().len(), expected.len());

    let untied = ModelConfig {
        tie_embeddings: false,
        ..ModelConfig::tiny_llama()
    };
    let (vs, _) = build(&untied, 0);
    expected.insert("lm_head.weight".to_string(), vec![512, 64]);
    assert_eq!(shapes(&vs), expected);
}

#[test]
fn forward_shapes_and_dtypes() {
    for config in [ModelConfig::tiny(), ModelConfig::tiny_llama()] {
        let (_vs, model) = build(&config, 0);
        let logits = model.forward(&tokens(&config, 3, 17, 1));
        assert_eq!(logits.size(), [3, 17, 512], "{:?}", config.family);
        assert_eq!(logits.kind(), Kind::Float);
        let inputs = tokens(&config, 3, 17, 2);
        let loss = model.loss(&inputs, &tokens(&config, 3, 17, 3));
        assert_eq!(loss.size(), Vec::<i64>::new());
        assert_eq!(loss.kind(), Kind::Float);
        // Small init gives near-uniform predictions: loss ≈ ln V (a little above with tied embeddings,
        // where each position's own token gets a logit of about |e|²/rms(e) ≈ 1.3).
        let loss = loss.double_value(&[]);
        assert!((loss - 512f64.ln()).abs() < 0.25, "{loss}");
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let config = ModelConfig::tiny();
    let (_vs, model) = build(&config, 0);
    let too_long = tokens(&config, 1, 129, 0);
    let message = model.f_forward(&too_long).unwrap_err().to_string();
    assert!(
        message.contains("max_seq_len") && message.contains("HINT"),
        "{message}"
    );
    assert!(model
        .f_forward(&tokens(&config, 2, 8, 0).view([-1]))
        .is_err());
    assert!(model
        .f_forward(&Tensor::zeros([1, 4], (Kind::Float, Device::Cpu)))
        .is_err());
    let (a, b) = (tokens(&config, 2, 8, 0), tokens(&config, 2, 7, 0));
    assert!(model.f_loss(&a, &b).is_err());
    let bad = ModelConfig {
        hidden_size: 63,
        ..config
    };
    assert!(Model::new(&nn::VarStore::new(Device::Cpu).root(), &bad).is_err());
}

/// `num_params()` equals the tensors actually created, for the presets up to Pythia-70M and for
/// non-default variants. The larger presets (≥ 124M, 0.5–1.6 GB to allocate) use the same formulas; their
/// counts are checked against the published figures in `config.rs`.
#[test]
fn num_params_equals_the_created_tensors() {
    let mut configs: Vec<ModelConfig> = ["tiny", "tiny-llama", "small", "pythia-70m"]
        .iter()
        .map(|name| ModelConfig::preset(name).unwrap())
        .collect();
    configs.push(ModelConfig {
        tie_embeddings: true,
        ..ModelConfig::tiny()
    });
    configs.push(ModelConfig {
        tie_embeddings: false,
        num_kv_heads: 1,
        ..ModelConfig::tiny_llama()
    });
    configs.push(ModelConfig {
        use_parallel_residual: false,
        intermediate_size: 100,
        ..ModelConfig::tiny()
    });
    configs.extend(llama_like_variants());
    for config in configs {
        // One at a time, dropped before the next.
        let (vs, _model) = build(
            &ModelConfig {
                max_seq_len: 8,
                ..config.clone()
            },
            0,
        );
        let created: u64 = vs.variables().values().map(|t| t.numel() as u64).sum();
        assert_eq!(created, config.num_params(), "{config:?}");
    }
}

/// `tiny-llama` as each Llama-like family, with what sets it apart: Qwen2's biases, Qwen3's q/k norms
/// with 24-dim heads at C = 64 (H·hd = 96), Mistral's window of 5.
fn llama_like_variants() -> Vec<ModelConfig> {
    let base = ModelConfig::tiny_llama();
    vec![
        ModelConfig {
            family: Family::Qwen2,
            ..base.clone()
        },
        ModelConfig {
            family: Family::Qwen3,
            head_dim: Some(24),
            ..base.clone()
        },
        ModelConfig {
            family: Family::Mistral,
            sliding_window: Some(5),
            ..base
        },
    ]
}

/// Changing tokens after position t never changes the logits at positions ≤ t.
#[test]
fn causal() {
    let mut variants = vec![
        ModelConfig::tiny(),
        ModelConfig {
            use_parallel_residual: false,
            ..ModelConfig::tiny()
        },
        ModelConfig::tiny_llama(),
    ];
    variants.extend(llama_like_variants());
    for config in variants {
        let (_vs, model) = build(&config, 0);
        let a = tokens(&config, 2, 32, 1);
        let logits_a = model.forward(&a);
        for t in [0, 7, 30] {
            // Every token after t replaced by another one.
            let b = a.copy();
            let tail = (a.narrow(1, t + 1, 31 - t) + 1).remainder(config.vocab_size as i64);
            b.narrow(1, t + 1, 31 - t).copy_(&tail);
            let logits_b = model.forward(&b);
            let head = |l: &Tensor| l.narrow(1, 0, t + 1);
            assert!(
                head(&logits_a).allclose(&head(&logits_b), 1e-6, 1e-6, false),
                "{:?}: logits at positions ≤ {t} changed",
                config.family
            );
            let rest = |l: &Tensor| l.narrow(1, t + 1, 31 - t);
            assert!(!rest(&logits_a).allclose(&rest(&logits_b), 1e-4, 1e-4, false));
        }
    }
}

/// A window of W positions over L layers reaches back L·(W − 1) positions: with W = 5 and two layers,
/// the first token changes the logits of positions 0..=8 and no later one.
#[test]
fn a_sliding_window_bounds_how_far_back_a_position_sees() {
    let config = ModelConfig {
        family: Family::Mistral,
        sliding_window: Some(5),
        ..ModelConfig::tiny_llama()
    };
    let (_vs, model) = build(&config, 0);
    let a = tokens(&config, 1, 20, 3);
    let b = a.copy();
    let _ = b
        .narrow(1, 0, 1)
        .fill_(((a.int64_value(&[0, 0]) + 1) % 512) as f64);
    let (la, lb) = (model.forward(&a), model.forward(&b));
    let changed = |t: i64| {
        !la.get(0)
            .get(t)
            .allclose(&lb.get(0).get(t), 1e-6, 1e-6, false)
    };
    assert!((0..=8).all(changed), "positions within reach changed");
    assert!(!(9..20).any(changed), "positions past 8 unchanged");
}

/// Grouped-query attention: query head h reads kv head ⌊h / (H/Hkv)⌋. A model with Hkv kv heads equals
/// the full multi-head model whose k/v projections repeat each kv head's rows H/Hkv times.
#[test]
fn gqa_equals_multi_head_attention_with_repeated_kv_heads() {
    let x = tokens(&ModelConfig::tiny_llama(), 2, 12, 5);
    for kv_heads in [4, 2, 1] {
        let grouped = ModelConfig {
            num_kv_heads: kv_heads,
            ..ModelConfig::tiny_llama()
        };
        let (grouped_vs, grouped_model) = build(&grouped, 0);
        let full = ModelConfig {
            num_kv_heads: 4,
            ..ModelConfig::tiny_llama()
        };
        let (full_vs, full_model) = build(&full, 1);
        let group = 4 / kv_heads as i64;
        tch::no_grad(|| {
            let source = grouped_vs.variables();
            for (name, mut target) in full_vs.variables() {
                let value = &source[&name];
                if name.ends_with("k_proj.weight") || name.ends_with("v_proj.weight") {
                    // (Hkv·hd, C) → (Hkv, hd, C) → (H, hd, C) → (H·hd, C)
                    let repeated = value
                        .view([kv_heads as i64, 16, 64])
                        .repeat_interleave_self_int(group, 0, None);
                    target.copy_(&repeated.view([64, 64]));
                } else {
                    target.copy_(value);
                }
            }
        });
        let (a, b) = (grouped_model.forward(&x), full_model.forward(&x));
        assert!(a.allclose(&b, 1e-5, 1e-5, false), "kv_heads = {kv_heads}");
    }
}

/// `tiny` of every family learns the pattern "next = current + 1 mod 17" within 100 Adam steps.
#[test]
fn tiny_learns_a_repeating_pattern() {
    let families = [ModelConfig::tiny(), ModelConfig::tiny_llama()];
    for config in families.into_iter().chain(llama_like_variants()) {
        let (vs, model) = build(&config, 0);
        let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
        let (b, t) = (8, 64);
        let mut loss = f64::NAN;
        for step in 0..100 {
            let offsets = seeded(1000 + step, || {
                Tensor::randint(17, [b, 1], (Kind::Int64, Device::Cpu))
            });
            let window =
                (offsets + Tensor::arange(t + 1, (Kind::Int64, Device::Cpu))).remainder(17);
            let (inputs, targets) = (window.narrow(1, 0, t), window.narrow(1, 1, t));
            let l = model.loss(&inputs, &targets);
            opt.backward_step(&l);
            loss = l.double_value(&[]);
        }
        let ln_v = (config.vocab_size as f64).ln();
        assert!(
            loss < 0.1 * ln_v,
            "{:?}: final loss {loss} vs ln V = {ln_v}",
            config.family
        );
    }
}

#[test]
fn deterministic_init_and_forward() {
    for config in [ModelConfig::tiny(), ModelConfig::tiny_llama()] {
        let (vs_a, model_a) = build(&config, 42);
        let (vs_b, _) = build(&config, 42);
        let (vs_c, _) = build(&config, 43);
        let (a, b, c) = (vs_a.variables(), vs_b.variables(), vs_c.variables());
        assert!(
            a.iter().all(|(name, t)| t.equal(&b[name])),
            "same seed, same weights"
        );
        assert!(
            a.iter().any(|(name, t)| !t.equal(&c[name])),
            "another seed, other weights"
        );
        let x = tokens(&config, 2, 16, 7);
        assert!(
            model_a.forward(&x).equal(&model_a.forward(&x)),
            "forward is bit-identical"
        );
    }
}

/// Linear weights and embeddings ~ N(0, 0.02); residual projections ~ N(0, 0.02/√(2L)); norms 1, biases 0.
#[test]
fn initialization_statistics() {
    let config = ModelConfig {
        num_layers: 8,
        ..ModelConfig::small()
    };
    let (vs, _) = build(&config, 0);
    let residual = 0.02 / (2.0 * 8f64).sqrt();
    for (name, t) in vs.variables() {
        let std = t.std(true).double_value(&[]);
        let mean = t.mean(Kind::Float).double_value(&[]);
        if name.ends_with("bias") {
            assert_eq!(t.abs().max().double_value(&[]), 0.0, "{name}");
        } else if name.contains("layernorm") || name.contains("layer_norm") {
            assert_eq!(t.min().double_value(&[]), 1.0, "{name}");
            assert_eq!(t.max().double_value(&[]), 1.0, "{name}");
        } else if name.ends_with("dense.weight") || name.ends_with("dense_4h_to_h.weight") {
            assert!((std / residual - 1.0).abs() < 0.05, "{name}: std {std}");
        } else {
            assert!((std / 0.02 - 1.0).abs() < 0.05, "{name}: std {std}");
            assert!(mean.abs() < 1e-3, "{name}: mean {mean}");
        }
    }
}

/// `decay_mask` on every parameter of both families: exactly the 2-D linear weights, plus the input
/// embedding when asked; never norms or biases.
#[test]
fn decay_mask_on_every_parameter() {
    let configs = [
        ModelConfig::tiny(),
        ModelConfig {
            tie_embeddings: true,
            ..ModelConfig::tiny()
        },
        ModelConfig::tiny_llama(),
        ModelConfig {
            tie_embeddings: false,
            ..ModelConfig::tiny_llama()
        },
    ];
    for config in configs {
        let (vs, _) = build(&config, 0);
        for (name, t) in vs.variables() {
            let input_embedding =
                name.ends_with("embed_in.weight") || name.ends_with("embed_tokens.weight");
            let matrix = t.dim() == 2;
            assert_eq!(
                decay_mask(&name, false),
                matrix && !input_embedding,
                "{name}"
            );
            assert_eq!(decay_mask(&name, true), matrix, "{name}");
        }
    }
}

#[test]
fn arch_matches_family() {
    let (_vs, neox) = build(&ModelConfig::tiny(), 0);
    assert!(matches!(neox.arch(), Arch::Neox(m) if m.layers.len() == 2 && m.head.is_some()));
    let (_vs, llama) = build(&ModelConfig::tiny_llama(), 0);
    assert!(matches!(llama.arch(), Arch::Llama(m) if m.head.is_none()));
    assert_eq!(llama.config().family, Family::Llama);
}

/// Activation checkpointing gives the loss bit for bit and the gradients within rounding of the usual
/// backward pass, for every family, tied and untied, with a z-loss and over two accumulated micro-batches.
#[test]
fn recomputed_blocks_give_the_same_loss_and_gradients() {
    let mut configs = vec![ModelConfig::tiny(), ModelConfig::tiny_llama()];
    configs.extend(llama_like_variants());
    for config in configs {
        let (vs, model) = build(&config, 7);
        let batches = [tokens(&config, 2, 17, 1), tokens(&config, 2, 17, 2)];
        let grads = |recompute: bool| {
            vs.variables().values().for_each(|t| {
                let mut g = t.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            });
            let mut losses = Vec::new();
            for window in &batches {
                let (x, y) = (window.narrow(1, 0, 16), window.narrow(1, 1, 16));
                let (loss, seed) = match recompute {
                    true => model.f_loss_for_backward_recompute(&x, &y, 0.5, 1e-4),
                    false => model.f_loss_for_backward_z(&x, &y, 0.5, 1e-4),
                }
                .unwrap();
                seed.backward();
                losses.push(loss.double_value(&[]));
            }
            let grads: BTreeMap<String, Tensor> = vs
                .variables()
                .into_iter()
                .map(|(k, t)| (k, t.grad().copy()))
                .collect();
            (losses, grads)
        };
        let (plain_loss, plain) = grads(false);
        let (loss, recomputed) = grads(true);
        assert_eq!(loss, plain_loss, "{:?}", config.family);
        for (name, g) in &plain {
            let diff = (g - &recomputed[name]).abs().max().double_value(&[]);
            let scale = g.abs().max().double_value(&[]).max(1e-12);
            assert!(
                diff <= 1e-5 * scale,
                "{:?} {name}: |Δ| {diff} of {scale}",
                config.family
            );
        }
    }
}
