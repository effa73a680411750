//! A tiny Llama written as GGUF the way llama.cpp's converter writes it (q/k rows permuted, mixed types
//! on exact grids) imports back to its Hugging Face weights exactly, with config.json and tokenizer.json.

mod common;

use common::*;
use rewarm_interop::quant::GgmlType;
use serde_json::Value as Json;

const C: usize = 32;
const HD: usize = 16;
const I: usize = 64;
const V: usize = 8;

/// What llama.cpp's converter does to q/k: `w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2)`, written
/// as the new row order (h, i, j) ← HF row h·hd + j·hd/2 + i.
fn converter_permute(w: &[f32], n_head: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len());
    for h in 0..n_head {
        for i in 0..HD / 2 {
            for j in 0..2 {
                let row = h * HD + j * HD / 2 + i;
                out.extend_from_slice(&w[row * cols..(row + 1) * cols]);
            }
        }
    }
    out
}

fn q8_0(values: &[f32], d: f32) -> Vec<u8> {
    values
        .chunks(32)
        .flat_map(|b| {
            f16(d)
                .into_iter()
                .chain(b.iter().map(|v| (v / d).round() as i8 as u8))
        })
        .collect()
}

fn q4_0(values: &[f32], d: f32) -> Vec<u8> {
    let q = |v: f32| (v / d + 8.0) as u8;
    values
        .chunks(32)
        .flat_map(|b| {
            f16(d)
                .into_iter()
                .chain((0..16).map(|j| q(b[j]) | q(b[j + 16]) << 4))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn q4_1(values: &[f32], d: f32, m: f32) -> Vec<u8> {
    let q = |v: f32| ((v - m) / d) as u8;
    values
        .chunks(32)
        .flat_map(|b| {
            f16(d)
                .into_iter()
                .chain(f16(m))
                .chain((0..16).map(|j| q(b[j]) | q(b[j + 16]) << 4))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn f32s(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f16s(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| if v == 0.0 { [0, 0] } else { f16(v) })
        .collect()
}

fn bf16s(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect()
}

/// Deterministic weights on each type's exact grid, keyed by HF name.
fn tiny_llama_weights() -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    let grid = |n: usize, seed: usize, f: &dyn Fn(usize) -> f32| {
        (0..n)
            .map(|k| f((k * 7 + seed * 13) % 251))
            .collect::<Vec<f32>>()
    };
    vec![
        (
            "model.embed_tokens.weight",
            vec![V, C],
            grid(V * C, 1, &|k| (k as f32 - 125.0) / 64.0),
        ),
        (
            "model.layers.0.input_layernorm.weight",
            vec![C],
            grid(C, 2, &|k| 1.0 + k as f32 / 100.0),
        ),
        (
            "model.layers.0.self_attn.q_proj.weight",
            vec![C, C],
            grid(C * C, 3, &|k| ((k % 16) as f32 - 8.0) * 0.25),
        ),
        (
            "model.layers.0.self_attn.k_proj.weight",
            vec![HD, C],
            grid(HD * C, 4, &|k| (k % 16) as f32 * 0.5 - 2.0),
        ),
        (
            "model.layers.0.self_attn.v_proj.weight",
            vec![HD, C],
            grid(HD * C, 5, &|k| (k as f32 - 100.0) / 8.0),
        ),
        (
            "model.layers.0.self_attn.o_proj.weight",
            vec![C, C],
            grid(C * C, 6, &|k| k as f32 * 0.01 - 1.0),
        ),
        (
            "model.layers.0.post_attention_layernorm.weight",
            vec![C],
            grid(C, 7, &|k| 0.5 + k as f32 / 300.0),
        ),
        (
            "model.layers.0.mlp.gate_proj.weight",
            vec![I, C],
            grid(I * C, 8, &|k| (k as f32 - 128.0) / 32.0),
        ),
        (
            "model.layers.0.mlp.up_proj.weight",
            vec![I, C],
            grid(I * C, 9, &|k| (k as f32 - 100.0) / 4.0),
        ),
        (
            "model.layers.0.mlp.down_proj.weight",
            vec![C, I],
            grid(C * I, 10, &|k| (k as f32 - 125.0) / 128.0),
        ),
        (
            "model.norm.weight",
            vec![C],
            grid(C, 11, &|k| 2.0 - k as f32 / 200.0),
        ),
        (
            "lm_head.weight",
            vec![V, C],
            grid(V * C, 12, &|k| -(k as f32) / 1000.0),
        ),
    ]
}

fn tiny_llama_gguf(architecture: &'static str, rope_freqs: Option<&[f32]>) -> Vec<u8> {
    let w: std::collections::HashMap<_, _> = tiny_llama_weights()
        .into_iter()
        .map(|(n, s, v)| (n, (s, v)))
        .collect();
    let t = |name: &str, hf: &str, ty: GgmlType, encode: &dyn Fn(&[f32]) -> Vec<u8>| {
        let (shape, values) = &w[hf];
        let values = match name {
            "blk.0.attn_q.weight" => converter_permute(values, 2, C),
            "blk.0.attn_k.weight" => converter_permute(values, 1, C),
            _ => values.clone(),
        };
        Tensor {
            name: name.into(),
            dims: shape.iter().rev().map(|&d| d as u64).collect(),
            ty: ty.id(),
            data: encode(&values),
        }
    };
    let mut tensors = vec![
        t(
            "token_embd.weight",
            "model.embed_tokens.weight",
            GgmlType::Q8_0,
            &|v| q8_0(v, 1.0 / 64.0),
        ),
        t(
            "blk.0.attn_norm.weight",
            "model.layers.0.input_layernorm.weight",
            GgmlType::F32,
            &f32s,
        ),
        t(
            "blk.0.attn_q.weight",
            "model.layers.0.self_attn.q_proj.weight",
            GgmlType::Q4_0,
            &|v| q4_0(v, 0.25),
        ),
        t(
            "blk.0.attn_k.weight",
            "model.layers.0.self_attn.k_proj.weight",
            GgmlType::Q4_1,
            &|v| q4_1(v, 0.5, -2.0),
        ),
        t(
            "blk.0.attn_v.weight",
            "model.layers.0.self_attn.v_proj.weight",
            GgmlType::F16,
            &f16s,
        ),
        t(
            "blk.0.attn_output.weight",
            "model.layers.0.self_attn.o_proj.weight",
            GgmlType::F32,
            &f32s,
        ),
        t(
            "blk.0.ffn_norm.weight",
            "model.layers.0.post_attention_layernorm.weight",
            GgmlType::F32,
            &f32s,
        ),
        t(
            "blk.0.ffn_gate.weight",
            "model.layers.0.mlp.gate_proj.weight",
            GgmlType::F16,
            &f16s,
        ),
        t(
            "blk.0.ffn_up.weight",
            "model.layers.0.mlp.up_proj.weight",
            GgmlType::BF16,
            &bf16s,
        ),
        t(
            "blk.0.ffn_down.weight",
            "model.layers.0.mlp.down_proj.weight",
            GgmlType::Q8_0,
            &|v| q8_0(v, 1.0 / 128.0),
        ),
        t(
            "output_norm.weight",
            "model.norm.weight",
            GgmlType::F32,
            &f32s,
        ),
        t("output.weight", "lm_head.weight", GgmlType::F32, &f32s),
    ];
    if let Some(divisors) = rope_freqs {
        tensors.push(Tensor {
            name: "rope_freqs.weight".into(),
            dims: vec![divisors.len() as u64],
            ty: 0,
            data: f32s(divisors),
        });
    }
    let tokens = [
        "<|endoftext|>",
        "a",
        "b",
        "ab",
        "Ġ",
        "Ġab",
        "c",
        "<|im_start|>",
    ];
    let meta = [
        ("general.architecture", Meta::Str(architecture)),
        ("llama.block_count", Meta::U32(1)),
        ("llama.context_length", Meta::U32(64)),
        ("llama.embedding_length", Meta::U32(C as u32)),
        ("llama.feed_forward_length", Meta::U32(I as u32)),
        ("llama.attention.head_count", Meta::U32(2)),
        ("llama.attention.head_count_kv", Meta::U32(1)),
        ("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
        ("llama.rope.freq_base", Meta::F32(10_000.0)),
        ("llama.rope.dimension_count", Meta::U32(HD as u32)),
        ("tokenizer.ggml.model", Meta::Str("gpt2")),
        ("tokenizer.ggml.pre", Meta::Str("smollm")),
        (
            "tokenizer.ggml.tokens",
            Meta::Strs(tokens.iter().map(|t| t.to_string()).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Meta::I32s(vec![3, 1, 1, 1, 1, 1, 1, 3]),
        ),
        (
            "tokenizer.ggml.merges",
            Meta::Strs(vec!["a b".into(), "Ġ ab".into()]),
        ),
        ("tokenizer.ggml.bos_token_id", Meta::U32(0)),
        ("tokenizer.ggml.eos_token_id", Meta::U32(0)),
        ("tokenizer.ggml.add_bos_token", Meta::Bool(false)),
    ];
    gguf(&meta, &tensors, None)
}

#[test]
fn tiny_llama_imports_to_its_hugging_face_weights_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.gguf");
    std::fs::write(&file, tiny_llama_gguf("llama", None)).unwrap();
    let out = dir.path().join("hf");
    let told = std::cell::RefCell::new(Vec::new());
    let summary = rewarm_interop::import_gguf(&file, &out, &|read, total| {
        told.borrow_mut().push((read, total))
    })
    .unwrap();
    assert_eq!(summary.types.values().sum::<usize>(), 12);
    // Progress: once per tensor, growing, ending at the total, which the file holds.
    let told = told.into_inner();
    assert_eq!(told.len(), 12);
    assert!(told.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 == w[1].1));
    let (read, total) = told[11];
    assert!(read == total && total < std::fs::metadata(&file).unwrap().len());
    assert!(
        summary.tokenizer && summary.notes.is_empty(),
        "{:?}",
        summary.notes
    );

    let config: Json =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    for (key, value) in [
        ("model_type", Json::from("llama")),
        ("hidden_size", C.into()),
        ("intermediate_size", I.into()),
        ("num_hidden_layers", 1.into()),
        ("num_attention_heads", 2.into()),
        ("num_key_value_heads", 1.into()),
        ("rms_norm_eps", 1e-5.into()),
        ("rope_theta", 10_000.0.into()),
        ("vocab_size", V.into()),
        ("max_position_embeddings", 64.into()),
        ("tie_word_embeddings", false.into()),
        ("eos_token_id", 0.into()),
    ] {
        assert_eq!(config[key], value, "config.json {key}");
    }

    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), 12);
    for (name, shape, values) in tiny_llama_weights() {
        let view = st.tensor(name).unwrap();
        assert_eq!(view.shape(), shape.as_slice(), "{name}");
        let got: Vec<f32> = view
            .data()
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(got, values, "{name}");
    }

    let tok = tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).unwrap();
    assert_eq!(tok.encode("ab ab", false).unwrap().get_ids(), [3, 5]);
    assert_eq!(
        tok.encode("<|im_start|>ab", false).unwrap().get_ids(),
        [7, 3]
    );
    assert_eq!(tok.decode(&[3, 5], false).unwrap(), "ab ab");

    // A second import into the same folder is refused rather than mixed with the first.
    let err = rewarm_interop::import_gguf(&file, &out, &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("not empty") && err.contains("HINT"), "{err}");
}

#[test]
fn import_refuses_other_architectures_and_unknown_tensors() {
    let dir = tempfile::tempdir().unwrap();
    // block_count = 2²⁴: refused before 150M tensor names are listed.
    let mut huge = tiny_llama_gguf("llama", None);
    let key = b"llama.block_count";
    let at = huge.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    huge[at..at + 4].copy_from_slice(&(1u32 << 24).to_le_bytes());
    for (bytes, expected) in [
        (tiny_llama_gguf("gpt2", None), "`gpt2`"),
        (
            tiny_llama_gguf("llama", Some(&[0.0; 8])),
            "rope_freqs.weight",
        ),
        (huge, "llama.block_count"),
    ] {
        let file = dir.path().join("bad.gguf");
        std::fs::write(&file, bytes).unwrap();
        let err = rewarm_interop::import_gguf(&file, &dir.path().join("out"), &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected) && err.contains("HINT"), "{err}");
        assert!(
            !dir.path().join("out").exists(),
            "nothing is written for a refused file"
        );
    }
}

/// A Llama 3.x GGUF: llama.cpp writes its RoPE scaling as `rope_freqs.weight` divisors, which the import
/// turns back into config.json's `rope_scaling` (here with a 16-dim head at θ = 10⁴: wavelengths from 6
/// to 19,869 positions, so one pair in each of the rule's three bands).
#[test]
fn llama_3_rope_divisors_become_its_rope_scaling() {
    let divisors: Vec<f32> = (0..HD / 2)
        .map(|i| {
            let freq = 1.0 / 10_000f64.powf((2 * i) as f64 / HD as f64);
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            let d: f64 = match wavelen {
                w if w < 8192.0 / 4.0 => 1.0,
                w if w > 8192.0 => 32.0,
                w => {
                    let smooth = (8192.0 / w - 1.0) / 3.0;
                    1.0 / ((1.0 - smooth) / 32.0 + smooth)
                }
            };
            d as f32
        })
        .collect();
    assert!(
        divisors.iter().any(|&d| d > 1.0 && d < 32.0),
        "{divisors:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("llama3.gguf");
    std::fs::write(&file, tiny_llama_gguf("llama", Some(&divisors))).unwrap();
    let out = dir.path().join("hf");
    rewarm_interop::import_gguf(&file, &out, &|_, _| {}).unwrap();
    let config: Json =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["rope_scaling"],
        serde_json::json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    );
    let model = rewarm_arch::ModelConfig::from_hf_config(&config).unwrap();
    assert_eq!(
        model.rope_scaling,
        Some(rewarm_arch::RopeScaling::llama3_2())
    );
}
