//! Hostile GGUF files: truncated, corrupted, absurd counts and sizes, overlapping or misaligned tensors,
//! unknown types. Each gives an error naming the field or tensor, never a panic, an out-of-bounds read or
//! an allocation beyond the file's size.

mod common;

use common::*;
use rewarm_interop::gguf::Value;
use rewarm_interop::quant::GgmlType;

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
    type Case = (Vec<Tensor>, Option<Vec<u64>>, &'static [&'static str]);
    let cases: Vec<Case> = vec![
        (vec![one("w", vec![4], 99, 16)], None, &["`w`", "99"]),
        (vec![one("w", vec![256], 16, 66)], None, &["`w`", "IQ2_XXS"]),
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
