//! The safetensors reader every weight load goes through (`hf::read_safetensors`; checkpoints and Hugging
//! Face folders in rewarm-train): lying headers, truncations and unknown types are errors naming the
//! file, never a panic or an out-of-bounds read. Fuzzed by fuzz target `safetensors`.

use rewarm_interop::hf::{read_safetensors, SafetensorsWriter, WeightDtype};
use std::path::Path;

/// A safetensors file: 8-byte little-endian header length, JSON header, data.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn error(bytes: &[u8]) -> String {
    match read_safetensors(bytes, Path::new("w.safetensors")) {
        Ok(t) => panic!("hostile file accepted: {t:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn tensors_come_sorted_with_their_bytes_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let tensors = vec![("b".to_string(), vec![2, 3]), ("a".to_string(), vec![1])];
    let mut w = SafetensorsWriter::create(&path, &tensors).unwrap();
    w.write("b", &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]).unwrap();
    w.write("a", &[0.25]).unwrap();
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let t = read_safetensors(&bytes, &path).unwrap();
    assert_eq!(
        t.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(t[1].dtype, Some(WeightDtype::F32));
    assert_eq!(t[1].shape, [2, 3]);
    assert_eq!(&t[1].data[20..24], &(-6.5f32).to_le_bytes());

    // Types rewarm does not load are listed (a caller may skip them, like a causal-mask buffer) but
    // marked, so that using one is an error naming the type.
    let mixed = file(
        r#"{"mask":{"dtype":"BOOL","shape":[2,2],"data_offsets":[0,4]},"h":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}}"#,
        &[1, 0, 0, 1, 0, 0x3c, 0, 0x40],
    );
    let t = read_safetensors(&mixed, Path::new("m.safetensors")).unwrap();
    assert_eq!(
        (t[0].name.as_str(), t[0].dtype),
        ("h", Some(WeightDtype::F16))
    );
    assert_eq!(
        (t[1].name.as_str(), t[1].dtype, t[1].dtype_name.as_str()),
        ("mask", None, "BOOL")
    );
}

#[test]
fn lying_headers_are_errors_naming_the_file() {
    let data = [0u8; 24];
    for header in [
        r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,48]}}"#,
        r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"v":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}}"#,
        r#"{"w":{"dtype":"F13","shape":[2,3],"data_offsets":[0,24]}}"#,
        r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]}}"#,
        r#"{"w":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,24]}}"#,
        r#"{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}}"#,
        r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}}"#,
        r#"{"w": nope"#,
        r#"[]"#,
    ] {
        let err = error(&file(header, &data));
        assert!(
            err.contains("w.safetensors") && err.contains("HINT"),
            "{header}: {err}"
        );
    }
    // Header lengths past the end of the file, or absurd ones, allocate nothing.
    for len in [u64::MAX, u64::MAX / 2, 1 << 40, 200_000_000, 3] {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(
            error(&bytes).contains("w.safetensors"),
            "header length {len}"
        );
    }
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error() {
    let good = file(
        r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[24,30]}}  "#,
        &[7u8; 30],
    );
    assert_eq!(
        read_safetensors(&good, Path::new("w.safetensors"))
            .unwrap()
            .len(),
        2
    );
    for cut in 0..good.len() {
        error(&good[..cut]);
    }
    // Trailing bytes after the last tensor are refused too: the offsets must cover the data exactly.
    let mut long = good.clone();
    long.push(0);
    error(&long);
}
