//! A SentencePiece vocabulary as a GGUF file holds it (`tokenizer.ggml.model = "llama"`: tokens, scores,
//! types) rebuilt into a tokenizer.json that encodes texts as SentencePiece itself does — the reference in
//! fixtures/spm_reference.json, made by fixtures/make_spm_reference.py with the sentencepiece library from
//! a 600-piece BPE vocabulary with byte fallback — and decodes them back.

mod common;
use common::{gguf, open, Meta};
use rewarm_interop::gguf_tokenizer::tokenizer_from_gguf;
use serde_json::Value as Json;

fn reference() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/spm_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ints<T: TryFrom<i64>>(v: &Json) -> Vec<T> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| T::try_from(x.as_i64().unwrap()).ok().unwrap())
        .collect()
}

/// The reference vocabulary's metadata, with `extra` keys.
fn spm_gguf(r: &Json, extra: Vec<(&'static str, Meta)>) -> Vec<u8> {
    let tokens = r["tokens"].as_array().unwrap();
    let mut meta = vec![
        ("tokenizer.ggml.model", Meta::Str("llama")),
        (
            "tokenizer.ggml.tokens",
            Meta::Strs(
                tokens
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned())
                    .collect(),
            ),
        ),
        (
            "tokenizer.ggml.scores",
            Meta::F32s(
                r["scores"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_f64().unwrap() as f32)
                    .collect(),
            ),
        ),
        (
            "tokenizer.ggml.token_type",
            Meta::I32s(ints(&r["token_type"])),
        ),
        (
            "tokenizer.ggml.bos_token_id",
            Meta::U32(r["bos_token_id"].as_u64().unwrap() as u32),
        ),
        (
            "tokenizer.ggml.eos_token_id",
            Meta::U32(r["eos_token_id"].as_u64().unwrap() as u32),
        ),
    ];
    meta.extend(extra);
    gguf(&meta, &[], None)
}

#[test]
fn a_sentencepiece_vocabulary_encodes_and_decodes_as_sentencepiece_does() {
    let r = reference();
    let g = open(spm_gguf(&r, vec![])).unwrap();
    let rebuilt = tokenizer_from_gguf(&g).unwrap();
    assert!(rebuilt.notes.is_empty(), "{:?}", rebuilt.notes);
    assert!(
        rebuilt.add_bos,
        "llama.cpp adds BOS to SentencePiece vocabularies unless told not to"
    );
    assert_eq!(rebuilt.bos.as_ref().map(|b| b.1.as_str()), Some("<s>"));
    let tok = tokenizers::Tokenizer::from_bytes(rebuilt.json.to_string().as_bytes()).unwrap();
    let mut byte_fallbacks = 0;
    for case in r["texts"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = ints(&case["sentencepiece"]);
        let got = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(got, want, "{text:?}");
        byte_fallbacks += got.iter().filter(|&&id| (3..259).contains(&id)).count();
        let decoded = tok.decode(&got, false).unwrap();
        assert_eq!(decoded, case["decoded"].as_str().unwrap(), "{text:?}");
        // With special tokens: BOS first.
        let with_bos = tok.encode(text, true).unwrap().get_ids().to_vec();
        assert_eq!(with_bos[0], 1, "{text:?}");
        assert_eq!(&with_bos[1..], &want[..], "{text:?}");
    }
    assert!(byte_fallbacks > 5, "the texts exercise byte fallback");
}

#[test]
fn without_a_space_prefix_or_bos_the_text_is_taken_as_it_is() {
    let r = reference();
    let extra = vec![
        ("tokenizer.ggml.add_space_prefix", Meta::Bool(false)),
        ("tokenizer.ggml.add_bos_token", Meta::Bool(false)),
    ];
    let rebuilt = tokenizer_from_gguf(&open(spm_gguf(&r, extra)).unwrap()).unwrap();
    assert!(!rebuilt.add_bos);
    let tok = tokenizers::Tokenizer::from_bytes(rebuilt.json.to_string().as_bytes()).unwrap();
    let with = |text: &str| tok.encode(text, true).unwrap().get_ids().to_vec();
    // "Hello" alone has no `▁` before it now: it is " Hello" that encodes as the prefixed text did.
    let prefixed: Vec<u32> = ints(&r["texts"][0]["sentencepiece"]);
    assert_eq!(with(" Hello world"), prefixed);
    assert_ne!(with("Hello world"), prefixed);
    assert_eq!(
        tok.decode(&with(" Hello world"), false).unwrap(),
        " Hello world"
    );
}

#[test]
fn a_sentencepiece_vocabulary_without_scores_is_refused_naming_the_key() {
    let r = reference();
    let mut bytes_meta = spm_gguf(&r, vec![]);
    // Rename the scores key so that it is missing (same length keeps the file valid).
    let at = bytes_meta
        .windows(20)
        .position(|w| w == b"tokenizer.ggml.score")
        .unwrap();
    bytes_meta[at + 15] = b'S';
    let e = tokenizer_from_gguf(&open(bytes_meta).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokenizer.ggml.scores"), "{e}");
}
