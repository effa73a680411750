//! A Hugging Face `tokenizer.json` rebuilt from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! Only `tokenizer.ggml.model = "gpt2"` (byte-level BPE: `tokens` + `merges`) is supported. Its
//! pre-tokenizer is chosen by `tokenizer.ggml.pre`, mirroring the regexes of llama.cpp's `llama-vocab.cpp`:
//!
//! | `pre`                                  | pre-tokenizer                                         |
//! |----------------------------------------|-------------------------------------------------------|
//! | absent, `default`, `gpt2`              | ByteLevel with GPT-2's regex                          |
//! | `smollm`, `starcoder`, `refact`, `codeshell` | Digits (one per digit), then ByteLevel with GPT-2's regex |
//! | `llama-bpe`, `llama3`                  | Llama-3's regex (digits in threes), then ByteLevel     |
//! | `qwen2`                                | Qwen2's regex (single digits), then ByteLevel          |
//!
//! Token types 3 (control) and 4 (user-defined), and the BOS/EOS ids, become added tokens so that they
//! are never split; control tokens are special.

use crate::gguf::{Array, GgufFile, Value};
use crate::InteropError;
use serde_json::{json, Map, Value as Json};
use std::io::{Read, Seek};

const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A rebuilt tokenizer: the tokenizer.json value and what else the folder should record.
#[derive(Debug)]
pub struct RebuiltTokenizer {
    /// The tokenizer.json content (already checked to load with the `tokenizers` crate).
    pub json: Json,
    /// BOS token (id, text), if the GGUF names one.
    pub bos: Option<(u32, String)>,
    /// EOS token (id, text), if the GGUF names one.
    pub eos: Option<(u32, String)>,
    /// Whether the model expects BOS before every sequence (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// Things the user should know (e.g. an unknown pre-tokenizer replaced by GPT-2's).
    pub notes: Vec<String>,
}

fn byte_level(add_prefix_space: bool, use_regex: bool) -> Json {
    json!({ "type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": true, "use_regex": use_regex })
}

fn split(regex: &str, add_prefix_space: bool) -> Json {
    json!({ "type": "Sequence", "pretokenizers": [
        { "type": "Split", "pattern": { "Regex": regex }, "behavior": "Isolated", "invert": false },
        byte_level(add_prefix_space, false),
    ]})
}

/// The tokenizer.json of the GGUF's vocabulary. `Err` if the GGUF has no tokenizer or one of another kind.
pub fn tokenizer_from_gguf<R: Read + Seek>(
    g: &GgufFile<R>,
) -> Result<RebuiltTokenizer, InteropError> {
    let file = g.name().to_owned();
    let missing = |key: &str| {
        InteropError::gguf(&file, &format!("metadata `{key}`"), "is missing or has the wrong type", "the GGUF has no usable tokenizer; take tokenizer.json from the original Hugging Face model")
    };
    let model = g
        .get_str("tokenizer.ggml.model")
        .ok_or_else(|| missing("tokenizer.ggml.model"))?;
    if model != "gpt2" {
        return Err(InteropError::invalid(
            &file,
            format!("tokenizer.ggml.model is `{model}`; rewarm rebuilds only byte-level BPE (`gpt2`) tokenizers"),
            "take tokenizer.json from the original Hugging Face model",
        ));
    }
    let Some(Value::Array(Array::String(tokens))) = g.get("tokenizer.ggml.tokens") else {
        return Err(missing("tokenizer.ggml.tokens"));
    };
    let Some(Value::Array(Array::String(merges))) = g.get("tokenizer.ggml.merges") else {
        return Err(missing("tokenizer.ggml.merges"));
    };
    let types: Vec<i32> = match g.get("tokenizer.ggml.token_type") {
        None => vec![1; tokens.len()],
        Some(Value::Array(Array::I32(t))) if t.len() == tokens.len() => t.clone(),
        Some(_) => return Err(missing("tokenizer.ggml.token_type")),
    };
    let id_of = |key: &str| -> Result<Option<(u32, String)>, InteropError> {
        match g.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64().filter(|&id| (id as usize) < tokens.len()) {
                Some(id) => Ok(Some((id as u32, tokens[id as usize].clone()))),
                None => Err(InteropError::gguf(
                    &file,
                    &format!("metadata `{key}`"),
                    format!("= {v:?} is not a token id below {}", tokens.len()),
                    "the file is corrupt",
                )),
            },
        }
    };
    let (bos, eos) = (
        id_of("tokenizer.ggml.bos_token_id")?,
        id_of("tokenizer.ggml.eos_token_id")?,
    );
    let flag = |key: &str| matches!(g.get(key), Some(Value::Bool(true)));
    let add_prefix_space = flag("tokenizer.ggml.add_space_prefix");
    let add_bos = flag("tokenizer.ggml.add_bos_token");

    let mut notes = Vec::new();
    let pre = g.get_str("tokenizer.ggml.pre").unwrap_or("default");
    let pre_tokenizer = match pre {
        "default" | "gpt2" => byte_level(add_prefix_space, true),
        "smollm" | "starcoder" | "refact" | "codeshell" => {
            json!({ "type": "Sequence", "pretokenizers": [
                { "type": "Digits", "individual_digits": true },
                byte_level(add_prefix_space, true),
            ]})
        }
        "llama-bpe" | "llama3" => split(LLAMA3_REGEX, add_prefix_space),
        "qwen2" => split(QWEN2_REGEX, add_prefix_space),
        other => {
            notes.push(format!(
                "tokenizer.ggml.pre `{other}` is not known to rewarm; used GPT-2's pre-tokenizer, so texts may \
                 split differently from the original (prefer the original tokenizer.json)"
            ));
            byte_level(add_prefix_space, true)
        }
    };

    let mut vocab = Map::new();
    for (id, token) in tokens.iter().enumerate() {
        if vocab.insert(token.clone(), json!(id)).is_some() {
            notes.push(format!(
                "token `{token}` appears twice in the vocabulary; id {id} keeps it"
            ));
        }
    }
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, merge) in merges.iter().enumerate() {
        let mut parts = merge.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => pairs.push(json!([a, b])),
            _ => {
                return Err(InteropError::gguf(
                    &file,
                    &format!("metadata `tokenizer.ggml.merges` #{i}"),
                    format!("= `{merge}` is not two tokens separated by one space"),
                    "the file is corrupt",
                ))
            }
        }
    }
    let special_ids = [bos.as_ref().map(|b| b.0), eos.as_ref().map(|e| e.0)];
    let added: Vec<Json> = types
        .iter()
        .enumerate()
        .filter(|&(id, &ty)| ty == 3 || ty == 4 || special_ids.contains(&Some(id as u32)))
        .map(|(id, &ty)| json!({
            "id": id, "content": tokens[id], "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": ty == 4, "special": ty != 4,
        }))
        .collect();
    let post_processor = match (&bos, add_bos) {
        (Some((id, text)), true) => json!({
            "type": "TemplateProcessing",
            "single": [{ "SpecialToken": { "id": text, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }],
            "pair": [{ "SpecialToken": { "id": text, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } },
                     { "SpecialToken": { "id": text, "type_id": 1 } }, { "Sequence": { "id": "B", "type_id": 1 } }],
            "special_tokens": { text.as_str(): { "id": text, "ids": [id], "tokens": [text] } },
        }),
        _ => {
            json!({ "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true })
        }
    };
    let json = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true },
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": pairs,
        },
    });
    tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes()).map_err(|e| {
        InteropError::invalid(
            &file,
            format!("the tokenizer rebuilt from its metadata does not load ({e})"),
            "take tokenizer.json from the original Hugging Face model",
        )
    })?;
    Ok(RebuiltTokenizer {
        json,
        bos,
        eos,
        add_bos,
        notes,
    })
}
