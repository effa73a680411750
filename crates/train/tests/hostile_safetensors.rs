//! Safetensors files with lying headers give clear errors naming the file, never a panic, an out-of-bounds
//! read or an unbounded allocation (issue: interop, hostile files).

use rewarm_model::weights::{load_tensors_into, save_tensors};
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn target() -> Vec<(String, Tensor)> {
    vec![(
        "w".into(),
        Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)),
    )]
}

/// A safetensors file: 8-byte little-endian header length, JSON header, data.
fn file(dir: &Path, name: &str, header: &str, data: &[u8]) -> std::path::PathBuf {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn error(path: &Path) -> String {
    match load_tensors_into(path, &target(), "test weights") {
        Ok(()) => panic!("hostile file {} accepted", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn lying_headers_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = [0u8; 24];
    let cases = [
        (
            "offsets-past-end.safetensors",
            r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,48]}}"#,
        ),
        (
            "overlap.safetensors",
            r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"v":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}}"#,
        ),
        (
            "unknown-dtype.safetensors",
            r#"{"w":{"dtype":"F13","shape":[2,3],"data_offsets":[0,24]}}"#,
        ),
        (
            "absurd-dims.safetensors",
            r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]}}"#,
        ),
        (
            "shape-size-mismatch.safetensors",
            r#"{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}}"#,
        ),
        ("not-json.safetensors", r#"{"w": nope"#),
    ];
    for (name, header) in cases {
        let p = file(dir.path(), name, header, &data);
        let err = error(&p);
        assert!(err.contains(name), "{name}: {err}");
    }
    // A header length pointing past the end of the file.
    let p = dir.path().join("huge-header.safetensors");
    let mut bytes = (u64::MAX / 2).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&p, bytes).unwrap();
    assert!(error(&p).contains("huge-header"));
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    let t = Tensor::arange(6, (Kind::Float, Device::Cpu)).reshape([2, 3]);
    save_tensors(&good, &[("w".into(), &t)]).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    load_tensors_into(&good, &target(), "test weights").unwrap();
    for cut in 0..bytes.len() {
        let p = dir.path().join("cut.safetensors");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert!(
            load_tensors_into(&p, &target(), "test weights").is_err(),
            "truncated at {cut} accepted"
        );
    }
}
