//! A Hugging Face `tokenizer.json` rebuilt from a GGUF SentencePiece vocabulary
//! (`tokenizer.ggml.model = "llama"`: Llama 1 and 2, Mistral 7B v0.1, TinyLlama, …): `tokens`, their
//! `scores` and `token_type`s.
//!
//! SentencePiece's BPE merges the adjacent pair whose joined piece has the highest score. The file lists
//! pieces, not merges, so the merges are derived as transformers' `SentencePieceExtractor` does: every
//! split of a normal piece into two vocabulary pieces is a merge ranked by the joined piece's score (ties
//! by the ids of the halves). Spaces become `▁`, and `▁` is put before the text when
//! `tokenizer.ggml.add_space_prefix` (default true, as llama.cpp) says so; characters outside the
//! vocabulary fall back to the byte tokens `<0xNN>`. Decoding undoes all three. The result encodes as
//! SentencePiece does (tests/gguf_spm.rs, against a reference made with the sentencepiece library).

use crate::gguf::{Array, GgufFile, Value};
use crate::gguf_tokenizer::{
    added_tokens, bos_template, check_loads, missing, special_token, token_ids, tokens_and_types,
    RebuiltTokenizer,
};
use crate::InteropError;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::io::{Read, Seek};

/// llama.cpp's token types that take part in merges (normal) and that hold the unknown token.
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;

/// The tokenizer.json of a SentencePiece (`llama`) vocabulary.
pub fn sentencepiece<R: Read + Seek>(g: &GgufFile<R>) -> Result<RebuiltTokenizer, InteropError> {
    let file = g.name();
    let (tokens, types) = tokens_and_types(g)?;
    let scores = match g.get("tokenizer.ggml.scores") {
        Some(Value::Array(Array::F32(s))) if s.len() == tokens.len() => s,
        _ => return Err(missing(file, "tokenizer.ggml.scores")),
    };
    let bos = special_token(g, "tokenizer.ggml.bos_token_id", tokens)?;
    let eos = special_token(g, "tokenizer.ggml.eos_token_id", tokens)?;
    let flag = |key: &str, default: bool| match g.get(key) {
        Some(Value::Bool(b)) => *b,
        _ => default,
    };
    let add_bos = flag("tokenizer.ggml.add_bos_token", true);
    let prefix = flag("tokenizer.ggml.add_space_prefix", true);
    let unk = types.iter().position(|&t| t == UNKNOWN);
    let mut notes = Vec::new();
    let json = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(tokens, &types, [bos.as_ref().map(|b| b.0), eos.as_ref().map(|e| e.0)]),
        "normalizer": normalizer(prefix),
        "pre_tokenizer": null,
        "post_processor": match (&bos, add_bos) {
            (Some(b), true) => bos_template(b),
            _ => Json::Null,
        },
        "decoder": decoder(prefix),
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk.map(|i| tokens[i].clone()),
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true,
            "byte_fallback": true, "ignore_merges": false,
            "vocab": token_ids(tokens, &mut notes), "merges": merges(tokens, &types, scores),
        },
    });
    check_loads(file, &json)?;
    Ok(RebuiltTokenizer {
        json,
        bos,
        eos,
        add_bos,
        notes,
    })
}

/// Spaces as `▁`, with one before the text when the vocabulary adds a space prefix.
fn normalizer(prefix: bool) -> Json {
    let replace = json!({ "type": "Replace", "pattern": { "String": " " }, "content": "▁" });
    match prefix {
        true => {
            json!({ "type": "Sequence", "normalizers": [{ "type": "Prepend", "prepend": "▁" }, replace] })
        }
        false => replace,
    }
}

/// `▁` back to spaces, byte tokens back to their bytes, and the prefix space dropped.
fn decoder(prefix: bool) -> Json {
    let mut steps = vec![
        json!({ "type": "Replace", "pattern": { "String": "▁" }, "content": " " }),
        json!({ "type": "ByteFallback" }),
        json!({ "type": "Fuse" }),
    ];
    if prefix {
        steps.push(json!({ "type": "Strip", "content": " ", "start": 1, "stop": 0 }));
    }
    json!({ "type": "Sequence", "decoders": steps })
}

/// Every split of a normal piece into two vocabulary pieces, best score of the joined piece first (ties
/// by the halves' ids), as tokenizer.json pairs.
fn merges(tokens: &[String], types: &[i32], scores: &[f32]) -> Vec<Json> {
    let ids: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let mut found: Vec<(f32, usize, usize)> = Vec::new();
    for (piece, _) in tokens.iter().zip(types).filter(|(_, &ty)| ty == NORMAL) {
        let score = scores[ids[piece.as_str()]];
        for (at, _) in piece.char_indices().skip(1) {
            if let (Some(&l), Some(&r)) = (ids.get(&piece[..at]), ids.get(&piece[at..])) {
                found.push((score, l, r));
            }
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    found
        .into_iter()
        .map(|(_, l, r)| json!([tokens[l], tokens[r]]))
        .collect()
}
