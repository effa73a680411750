//! Every GGML type rewarm reads, through the GGUF reader on files the test writes: against hand-built
//! blocks (the layouts of ggml-quants.c, encoded by hand) and against gguf-py's dequantization of random
//! blocks (tests/fixtures/ggml_dequant_reference.json).

mod common;

use common::*;
use rewarm_interop::quant::{dequantize, GgmlType};
use serde_json::Value as Json;

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
    assert_eq!(fixture.len(), 13);
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
