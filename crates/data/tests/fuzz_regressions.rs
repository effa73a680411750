//! Inputs the fuzz targets (fuzz/, `scripts/fuzz.sh`) found to crash or hang a reader, kept as tests: each
//! must now give an error naming the file. Inputs live in tests/fixtures/fuzz/ or inline.

use rewarm_data::manifest::Manifest;
use rewarm_data::TokenizerInfo;
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// fuzz target `manifest`: a tokenizer hash with a multi-byte character around byte 12 panicked in the
/// tokenizer check's message (`&hash[..12]` split the character).
#[test]
fn manifest_with_a_non_ascii_tokenizer_hash_is_refused() {
    let text = String::from_utf8_lossy(&fixture("manifest-multibyte-hash.json")).into_owned();
    let err = Manifest::parse(Path::new("p/manifest.json"), &text)
        .expect_err("a hash with non-ASCII characters is refused")
        .to_string();
    assert!(
        err.contains("p/manifest.json") && err.contains("tokenizer.hash") && err.contains("HINT"),
        "{err}"
    );
    // Shard checksums are checked the same way.
    let good = String::from_utf8(fixture("manifest-valid.json")).unwrap();
    assert!(Manifest::parse(Path::new("m.json"), &good).is_ok());
    let bad = good.replace("\"8c372d2321fb62d6\"", "\"8c372d2321fb62é\"");
    let err = Manifest::parse(Path::new("m.json"), &bad)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("train-00000.tok") && err.contains("16 hex digits"),
        "{err}"
    );
}

/// The tokenizer check's message shortens hashes by characters, so even a manifest built in memory
/// (not through `parse`) with any hash cannot make it panic.
#[test]
fn tokenizer_mismatch_message_never_splits_a_character() {
    let info = |hash: &str| TokenizerInfo {
        kind: "hf".into(),
        name: "t".into(),
        hash: hash.into(),
        vocab_size: 10,
        eot_id: 0,
    };
    assert_eq!(info("0123456789abcdef").short_hash(12), "0123456789ab");
    assert_eq!(info("ab").short_hash(12), "ab");
    assert_eq!(info("ééééééééé").short_hash(4), "éééé");
    let good = String::from_utf8(fixture("manifest-valid.json")).unwrap();
    let mut m = Manifest::parse(Path::new("m.json"), &good).unwrap();
    m.tokenizer.hash = "f\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}9481764297".into();
    let err = m
        .check_tokenizer(Path::new("d"), &info("0123456789abcdef0123"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("0123456789ab"), "{err}");
}
