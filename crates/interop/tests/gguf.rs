//! The GGUF reader on files this test writes itself (a minimal GGUF writer: header, metadata, tensor
//! table, aligned data): every type against hand-built blocks and against gguf-py's dequantization, a
//! tiny Llama imported back to its Hugging Face weights exactly, and hostile files refused cleanly.

use rewarm_interop::gguf::{GgufFile, Value};
use rewarm_interop::quant::{dequantize, GgmlType};
use serde_json::Value as Json;
use std::io::Cursor;

// ---------------------------------------------------------------------------------------------------
// A minimal GGUF writer.

enum Meta {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(&'static str),
    Strs(Vec<String>),
    I32s(Vec<i32>),
}

struct Tensor {
    name: String,
    dims: Vec<u64>,
    ty: u32,
    data: Vec<u8>,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// A GGUF v3 file; tensors are laid out in order, each aligned to 32 bytes. `offsets` overrides them.
fn gguf(meta: &[(&str, Meta)], tensors: &[Tensor], offsets: Option<&[u64]>) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((meta.len() as u64).to_le_bytes());
    for (key, value) in meta {
        string(&mut out, key);
        match value {
            Meta::U32(v) => out.extend(4u32.to_le_bytes().into_iter().chain(v.to_le_bytes())),
            Meta::F32(v) => out.extend(6u32.to_le_bytes().into_iter().chain(v.to_le_bytes())),
            Meta::Bool(v) => out.extend(7u32.to_le_bytes().into_iter().chain([*v as u8])),
            Meta::Str(s) => {
                out.extend(8u32.to_le_bytes());
                string(&mut out, s);
            }
            Meta::Strs(items) => {
                out.extend(9u32.to_le_bytes().into_iter().chain(8u32.to_le_bytes()));
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|s| string(&mut out, s));
            }
            Meta::I32s(items) => {
                out.extend(9u32.to_le_bytes().into_iter().chain(5u32.to_le_bytes()));
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|v| out.extend(v.to_le_bytes()));
            }
        }
    }
    let mut offset = 0u64;
    let mut placed = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        string(&mut out, &t.name);
        out.extend((t.dims.len() as u32).to_le_bytes());
        t.dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
        out.extend(t.ty.to_le_bytes());
        let at = offsets.map_or(offset, |o| o[i]);
        out.extend(at.to_le_bytes());
        placed.push(at);
        offset = (offset + t.data.len() as u64).div_ceil(32) * 32;
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    let data_start = out.len();
    for (t, at) in tensors.iter().zip(placed) {
        let end = data_start + at as usize + t.data.len();
        if out.len() < end {
            out.resize(end, 0);
        }
        out[data_start + at as usize..end].copy_from_slice(&t.data);
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    out
}

fn open(bytes: Vec<u8>) -> Result<GgufFile<Cursor<Vec<u8>>>, String> {
    GgufFile::from_reader(Cursor::new(bytes), "test.gguf").map_err(|e| e.to_string())
}

fn f16(v: f32) -> [u8; 2] {
    // Only for values exactly representable as normal halves (the scales below).
    let bits = v.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    assert!(
        (1..31).contains(&exponent) && bits & 0x1fff == 0,
        "{v} is not an exact half"
    );
    (((bits >> 16) & 0x8000) as u16 | (exponent as u16) << 10 | ((bits >> 13) & 0x3ff) as u16)
        .to_le_bytes()
}

fn read_one(ty: GgmlType, numel: u64, data: Vec<u8>) -> Vec<f32> {
    let t = Tensor {
        name: "t".into(),
        dims: vec![numel],
        ty: ty.id(),
        data,
    };
    let mut g = open(gguf(&[], &[t], None)).unwrap();
    let info = g.tensors[0].clone();
    g.read_f32(&info).unwrap()
}

// ---------------------------------------------------------------------------------------------------
// Every type against hand-built blocks, read through the file reader.

#[test]
fn float_types_by_hand() {
    let data = [1.5f32, -2.25]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(read_one(GgmlType::F32, 2, data), [1.5, -2.25]);
    let data = [0x3c00u16, 0xc100, 0x0001]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(
        read_one(GgmlType::F16, 3, data),
        [1.0, -2.5, 2f32.powi(-24)]
    );
    let data = [0x3f80u16, 0xc040]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(read_one(GgmlType::BF16, 2, data), [1.0, -3.0]);
}

/// 16 bytes whose low nibbles are 0..15 and high nibbles 15..0: values j and j + 16 of a block.
fn nibbles() -> Vec<u8> {
    (0..16u8).map(|j| j | (15 - j) << 4).collect()
}

#[test]
fn q4_0_and_q4_1_by_hand() {
    let block: Vec<u8> = f16(0.5).into_iter().chain(nibbles()).collect();
    let expected: Vec<f32> = (0..16)
        .map(|j| (j - 8) as f32 * 0.5)
        .chain((0..16).map(|j| (7 - j) as f32 * 0.5))
        .collect();
    assert_eq!(read_one(GgmlType::Q4_0, 32, block), expected);

    let block: Vec<u8> = f16(0.25)
        .into_iter()
        .chain(f16(-1.0))
        .chain(nibbles())
        .collect();
    let expected: Vec<f32> = (0..16)
        .map(|j| j as f32 * 0.25 - 1.0)
        .chain((0..16).map(|j| (15 - j) as f32 * 0.25 - 1.0))
        .collect();
    assert_eq!(read_one(GgmlType::Q4_1, 32, block), expected);
}

#[test]
fn q5_0_and_q5_1_by_hand() {
    // Block 1 holds the 5-bit values 0..31 (fifth bit set for values 16..31 → qh bits 16..31);
    // block 2 holds 31..0 (fifth bit set for values 0..15 → qh bits 0..15).
    let up: Vec<u8> = (0..16u8).map(|j| j | j << 4).collect();
    let down: Vec<u8> = (0..16u8).map(|j| (15 - j) | (15 - j) << 4).collect();
    let q5_0: Vec<u8> = [
        f16(1.0).as_slice(),
        &0xffff_0000u32.to_le_bytes(),
        &up,
        &f16(2.0),
        &0x0000_ffffu32.to_le_bytes(),
        &down,
    ]
    .concat();
    let expected: Vec<f32> = (0..32)
        .map(|i| (i - 16) as f32)
        .chain((0..32).map(|i| 2.0 * (15 - i) as f32))
        .collect();
    assert_eq!(read_one(GgmlType::Q5_0, 64, q5_0), expected);

    let q5_1: Vec<u8> = [
        f16(0.5).as_slice(),
        &f16(2.0),
        &0xffff_0000u32.to_le_bytes(),
        &up,
    ]
    .concat();
    let expected: Vec<f32> = (0..32).map(|i| i as f32 * 0.5 + 2.0).collect();
    assert_eq!(read_one(GgmlType::Q5_1, 32, q5_1), expected);
}

#[test]
fn q8_0_by_hand() {
    let qs: Vec<u8> = (0..32)
        .map(|i| {
            if i == 0 {
                -128i8 as u8
            } else {
                (i as i8 - 16) as u8
            }
        })
        .collect();
    let block: Vec<u8> = f16(0.125).into_iter().chain(qs).collect();
    let expected: Vec<f32> = (0..32)
        .map(|i| {
            if i == 0 {
                -16.0
            } else {
                (i - 16) as f32 * 0.125
            }
        })
        .collect();
    assert_eq!(read_one(GgmlType::Q8_0, 32, block), expected);
}

#[test]
fn q4_k_by_hand() {
    // Sub-block j has scale sc[j] and min m[j], six bits each: j < 4 in the low bits of bytes j and
    // j + 4; j ≥ 4 as a low nibble in byte j + 4 plus two high bits in the top of bytes j − 4 / j.
    let sc = [1u8, 2, 3, 4, 5, 37, 7, 8];
    let m = [0u8, 1, 2, 3, 4, 5, 50, 7];
    let mut scales = [0u8; 12];
    for j in 0..4 {
        scales[j] = sc[j] | (sc[j + 4] >> 4) << 6;
        scales[j + 4] = m[j] | (m[j + 4] >> 4) << 6;
        scales[j + 8] = (sc[j + 4] & 0xf) | (m[j + 4] & 0xf) << 4;
    }
    let qs: Vec<u8> = (0..128)
        .map(|l| (l % 16) as u8 | (15 - (l % 16) as u8) << 4)
        .collect();
    let block: Vec<u8> = [f16(1.0).as_slice(), &f16(0.5), &scales, &qs].concat();
    let mut expected = Vec::new();
    for chunk in 0..4 {
        for (s, high) in [(2 * chunk, false), (2 * chunk + 1, true)] {
            for l in 0..32 {
                let q = if high { 15 - l % 16 } else { l % 16 };
                expected.push(sc[s] as f32 * q as f32 - 0.5 * m[s] as f32);
            }
        }
    }
    assert_eq!(read_one(GgmlType::Q4_K, 256, block), expected);
}

#[test]
fn every_type_matches_gguf_py() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ggml_dequant_reference.json"
    );
    let fixture: Json = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let fixture = fixture.as_object().unwrap();
    assert_eq!(fixture.len(), 10);
    for (name, case) in fixture {
        let ty = GgmlType::from_id(case["id"].as_u64().unwrap() as u32).unwrap();
        let bytes: Vec<u8> = case["bytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        let expected: Vec<f32> = case["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let mut ours = Vec::new();
        dequantize(ty, &bytes, &mut ours).unwrap();
        assert_eq!(ours.len(), expected.len(), "{name}");
        for (i, (a, b)) in ours.iter().zip(&expected).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "{name}[{i}]: {a} vs gguf-py {b}"
            );
        }
        // And through the reader: the same bytes as a one-tensor file.
        assert_eq!(read_one(ty, expected.len() as u64, bytes), ours, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------------
// A tiny Llama: GGUF (permuted q/k, mixed types) → Hugging Face folder → the original weights, exactly.

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

fn tiny_llama_gguf(architecture: &'static str, extra_tensor: bool) -> Vec<u8> {
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
    if extra_tensor {
        tensors.push(Tensor {
            name: "rope_freqs.weight".into(),
            dims: vec![8],
            ty: 0,
            data: vec![0; 32],
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
    std::fs::write(&file, tiny_llama_gguf("llama", false)).unwrap();
    let out = dir.path().join("hf");
    let summary = rewarm_interop::import_gguf(&file, &out).unwrap();
    assert_eq!(summary.types.values().sum::<usize>(), 12);
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
    let err = rewarm_interop::import_gguf(&file, &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not empty") && err.contains("HINT"), "{err}");
}

#[test]
fn import_refuses_other_architectures_and_unknown_tensors() {
    let dir = tempfile::tempdir().unwrap();
    for (bytes, expected) in [
        (tiny_llama_gguf("gpt2", false), "`gpt2`"),
        (tiny_llama_gguf("llama", true), "rope_freqs.weight"),
    ] {
        let file = dir.path().join("bad.gguf");
        std::fs::write(&file, bytes).unwrap();
        let err = rewarm_interop::import_gguf(&file, &dir.path().join("out"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected) && err.contains("HINT"), "{err}");
        assert!(
            !dir.path().join("out").exists(),
            "nothing is written for a refused file"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// Hostile files: clear errors naming the field or tensor, never a panic or a huge allocation.

fn one(name: &str, dims: Vec<u64>, ty: u32, data_len: usize) -> Tensor {
    Tensor {
        name: name.into(),
        dims,
        ty,
        data: vec![0; data_len],
    }
}

fn error_of(bytes: Vec<u8>) -> String {
    match open(bytes) {
        Ok(_) => panic!("a hostile file was accepted"),
        Err(e) => e,
    }
}

#[test]
fn every_truncation_is_an_error_and_no_corruption_panics() {
    let meta = [
        ("general.name", Meta::Str("t")),
        (
            "tokenizer.ggml.tokens",
            Meta::Strs(vec!["a".into(), "b".into()]),
        ),
    ];
    let tensors = [
        one("a", vec![32, 2], GgmlType::Q8_0.id(), 68),
        one("b", vec![3], 0, 12),
    ];
    let file = gguf(&meta, &tensors, None);
    let data_end = file.len() - (file.len() - 1) % 32 + 12 - 1; // last tensor ends 12 bytes into its slot
    for cut in 0..file.len() {
        let result = open(file[..cut].to_vec());
        if cut < data_end {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("prefix of {cut} bytes accepted"));
            assert!(err.contains("HINT"), "{err}");
        }
    }
    for at in 0..file.len() {
        for flip in [0xffu8, 0x80, 0x01] {
            let mut bad = file.clone();
            bad[at] ^= flip;
            if let Ok(mut g) = open(bad) {
                for info in g.tensors.clone() {
                    let _ = g.read_f32(&info); // may fail, must not panic
                }
            }
        }
    }
}

#[test]
fn hostile_headers_name_the_field() {
    let ok = gguf(
        &[("general.name", Meta::Str("t"))],
        &[one("w", vec![4], 0, 16)],
        None,
    );
    let with = |range: std::ops::Range<usize>, bytes: &[u8]| {
        let mut b = ok.clone();
        b[range].copy_from_slice(bytes);
        b
    };
    assert!(error_of(with(0..4, b"GGML")).contains("not a GGUF file"));
    assert!(error_of(with(4..8, &1u32.to_le_bytes())).contains("v1"));
    assert!(error_of(with(4..8, &3u32.to_be_bytes())).contains("big-endian"));
    assert!(error_of(with(8..16, &(1u64 << 60).to_le_bytes())).contains("tensor_count"));
    assert!(error_of(with(16..24, &u64::MAX.to_le_bytes())).contains("metadata_count"));
    // The first key's length: far past the end of the file.
    let err = error_of(with(24..32, &u64::MAX.to_le_bytes()));
    assert!(
        err.contains("metadata key #0") && err.contains("file ends"),
        "{err}"
    );
    // An array claiming 2⁶⁰ strings is refused before anything is allocated.
    let meta = [("tokenizer.ggml.tokens", Meta::Strs(vec!["a".into()]))];
    let mut arr = gguf(&meta, &[], None);
    let count_at = 24 + 8 + "tokenizer.ggml.tokens".len() + 4 + 4;
    arr[count_at..count_at + 8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(error_of(arr).contains("tokenizer.ggml.tokens"));
}

#[test]
fn hostile_tensor_tables_name_the_tensor() {
    let cases: Vec<(Vec<Tensor>, Option<Vec<u64>>, &[&str])> = vec![
        (vec![one("w", vec![4], 99, 16)], None, &["`w`", "99"]),
        (vec![one("w", vec![256], 11, 110)], None, &["`w`", "Q3_K"]),
        (
            vec![one("w", vec![u64::MAX, 2], 0, 16)],
            None,
            &["`w`", "positive size"],
        ),
        (
            vec![one("w", vec![1 << 40, 1 << 40], 0, 16)],
            None,
            &["`w`"],
        ),
        (
            vec![one("w", vec![1; 5], 0, 4)],
            None,
            &["`w`", "5 dimensions"],
        ),
        (
            vec![one("w", vec![16], GgmlType::Q8_0.id(), 34)],
            None,
            &["`w`", "blocks"],
        ),
        (
            vec![one("w", vec![1 << 30], 0, 16)],
            None,
            &["`w`", "truncated"],
        ),
        (
            vec![one("w", vec![16], 0, 64), one("x", vec![4], 0, 16)],
            Some(vec![0, 32]),
            &["`x`", "overlaps tensor `w`"],
        ),
        (
            vec![one("w", vec![4], 0, 16)],
            Some(vec![8]),
            &["`w`", "alignment"],
        ),
        (
            vec![one("w", vec![4], 0, 16), one("w", vec![4], 0, 16)],
            None,
            &["`w`", "twice"],
        ),
    ];
    for (tensors, offsets, needles) in cases {
        let err = error_of(gguf(&[], &tensors, offsets.as_deref()));
        for needle in needles {
            assert!(err.contains(needle), "expected `{needle}` in: {err}");
        }
        assert!(err.contains("test.gguf") && err.contains("HINT"), "{err}");
    }
}

#[test]
fn metadata_values_and_alignment() {
    let meta = [
        ("general.alignment", Meta::U32(64)),
        ("x.f", Meta::F32(0.5)),
        ("x.b", Meta::Bool(true)),
    ];
    let g = open(gguf(&meta, &[], None)).unwrap();
    assert_eq!((g.version, g.alignment), (3, 64));
    assert_eq!(g.get("x.f"), Some(&Value::F32(0.5)));
    assert_eq!(g.get("x.b"), Some(&Value::Bool(true)));
    let bad = [("general.alignment", Meta::U32(48))];
    assert!(error_of(gguf(&bad, &[], None)).contains("general.alignment"));
}
