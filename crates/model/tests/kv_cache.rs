//! Decoding with a KV cache gives what the whole window's forward pass gives: the same last-position
//! logits after a prefill and each decoded token, and the same generated text, also once the text
//! outgrows max_seq_len. Every family: Llama with grouped-query attention, Qwen3 with q/k norms and a
//! head_dim of its own, Mistral with a window (5) shorter than the text, Llama 3's RoPE scaling.

use rewarm_model::generate::{generate, SamplingOptions};
use rewarm_model::{Family, KvCache, Model, ModelConfig, RopeScaling};
use tch::{nn, Device, Tensor};

fn build(config: &ModelConfig) -> (nn::VarStore, Model) {
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = Model::new(&vs.root(), config).unwrap();
    (vs, model)
}

fn configs() -> Vec<(&'static str, ModelConfig)> {
    let llama = ModelConfig {
        num_kv_heads: 2,
        ..ModelConfig::tiny_llama()
    };
    let neox_serial = ModelConfig {
        use_parallel_residual: false,
        ..ModelConfig::tiny()
    };
    let qwen3 = ModelConfig {
        family: Family::Qwen3,
        head_dim: Some(32),
        ..llama.clone()
    };
    let mistral = ModelConfig {
        family: Family::Mistral,
        sliding_window: Some(5),
        ..llama.clone()
    };
    let llama3 = ModelConfig {
        rope_scaling: Some(RopeScaling {
            original_max_position_embeddings: 16,
            ..RopeScaling::llama3_2()
        }),
        ..llama.clone()
    };
    let qwen2 = ModelConfig {
        family: Family::Qwen2,
        ..llama.clone()
    };
    vec![
        ("neox", ModelConfig::tiny()),
        ("neox serial", neox_serial),
        ("llama gqa", llama),
        ("qwen2", qwen2),
        ("qwen3", qwen3),
        ("mistral window", mistral),
        ("llama3 scaling", llama3),
    ]
}

/// The last position's logits (V) of a full forward pass over `tokens`.
fn full_last(model: &Model, tokens: &[i64]) -> Tensor {
    let input = Tensor::from_slice(tokens).view([1, -1]);
    let logits = tch::no_grad(|| model.forward(&input));
    logits.select(1, tokens.len() as i64 - 1).view([-1])
}

#[test]
fn cached_decoding_gives_the_full_forward_passs_logits() {
    for (name, config) in configs() {
        let (_vs, model) = build(&config);
        let text: Vec<i64> = (0..20)
            .map(|i| (i * 37 + 5) % config.vocab_size as i64)
            .collect();
        let mut cache = KvCache::new(&model);
        let prompt = Tensor::from_slice(&text[..8]).view([1, -1]);
        let mut cached = tch::no_grad(|| model.f_next_logits(&prompt, &mut cache)).unwrap();
        for n in 8..=text.len() {
            let full = full_last(&model, &text[..n]);
            let diff = (cached.view([-1]) - &full).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{name}: {n} tokens, max |Δ| {diff}");
            assert_eq!(cache.len(), n as i64);
            if n < text.len() {
                let next = Tensor::from_slice(&text[n..n + 1]).view([1, 1]);
                cached = tch::no_grad(|| model.f_next_logits(&next, &mut cache)).unwrap();
            }
        }
        // Several tokens after cached ones, or past max_seq_len, are refused with what to do.
        let two = Tensor::from_slice(&text[..2]).view([1, 2]);
        let e = model
            .f_next_logits(&two, &mut cache)
            .unwrap_err()
            .to_string();
        assert!(e.contains("one token at a time"), "{e}");
        let mut full = KvCache::new(&model);
        let window: Vec<i64> = vec![1; config.max_seq_len];
        let prefill = Tensor::from_slice(&window).view([1, -1]);
        let _ = tch::no_grad(|| model.f_next_logits(&prefill, &mut full)).unwrap();
        let one = Tensor::from_slice(&[1i64]).view([1, 1]);
        let e = model
            .f_next_logits(&one, &mut full)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exceed max_seq_len"), "{e}");
    }
}

/// Greedy decoding without a cache: the whole (last max_seq_len) window every step.
fn greedy_uncached(model: &Model, prompt: &[i64], n: usize) -> Vec<i64> {
    let window = model.config().max_seq_len;
    let mut tokens = prompt.to_vec();
    for _ in 0..n {
        let context = &tokens[tokens.len().saturating_sub(window)..];
        let last = full_last(model, context);
        tokens.push(last.argmax(0, false).int64_value(&[]));
    }
    tokens[prompt.len()..].to_vec()
}

#[test]
fn generated_text_is_the_same_with_the_cache_also_past_the_window() {
    for (name, config) in configs() {
        let config = ModelConfig {
            max_seq_len: 16,
            ..config
        };
        let (_vs, model) = build(&config);
        // 10 prompt tokens + 20 new ones: the text outgrows the 16-token window after 6.
        let prompt: Vec<i64> = (0..10).map(|i| (i * 13 + 3) % 512).collect();
        let cached =
            generate(&model, &prompt, 20, &SamplingOptions::greedy(), &[], |_| {}).unwrap();
        assert_eq!(cached, greedy_uncached(&model, &prompt, 20), "{name}");
    }
}

/// Prompts of different lengths in one batch (left-padded, the padding masked) give each the text
/// `generate` gives it alone, greedy and sampled, in every family; a row stops at its stop id.
#[test]
fn a_batch_of_prompts_gives_each_the_text_it_gets_alone() {
    use rewarm_model::generate::generate_batch;
    for (name, config) in configs() {
        let (_vs, model) = build(&config);
        let v = config.vocab_size as i64;
        let prompts: Vec<Vec<i64>> = [3usize, 9, 6]
            .iter()
            .enumerate()
            .map(|(r, &n)| {
                (0..n as i64)
                    .map(|i| (i * 31 + 7 * r as i64 + 3) % v)
                    .collect()
            })
            .collect();
        let sampled = SamplingOptions {
            temperature: 1.0,
            top_k: Some(50),
            top_p: Some(0.95),
            seed: 5,
        };
        for opts in [SamplingOptions::greedy(), sampled] {
            let alone: Vec<Vec<i64>> = prompts
                .iter()
                .map(|p| generate(&model, p, 10, &opts, &[], |_| {}).unwrap())
                .collect();
            let batched = generate_batch(&model, &prompts, 10, &opts, &[]).unwrap();
            assert_eq!(batched, alone, "{name} {opts:?}");
            // The second row stops at its fourth token when that is a stop id; the others go on.
            let stop = [alone[1][3]];
            let stopped = generate_batch(&model, &prompts, 10, &opts, &stop).unwrap();
            assert_eq!(stopped[1].last(), Some(&stop[0]), "{name}");
            assert!(stopped[1].len() <= 4, "{name}");
        }
        let e = generate_batch(
            &model,
            &prompts,
            config.max_seq_len,
            &SamplingOptions::greedy(),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_seq_len"), "{e}");
    }
}
