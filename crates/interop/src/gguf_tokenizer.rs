//! A Hugging Face `tokenizer.json` rebuilt from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! `tokenizer.ggml.model = "gpt2"` (byte-level BPE: `tokens` + `merges`) is rebuilt here and `"llama"`
//! (SentencePiece: `tokens` + `scores`) in [`crate::gguf_spm`]; other models are refused by name. A
//! byte-level BPE's pre-tokenizer is chosen by `tokenizer.ggml.pre`, mirroring the regexes of llama.cpp's
//! `llama-vocab.cpp`:
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

/// GPT-2's own pre-tokenizer: ByteLevel splitting with GPT-2's regex.
fn gpt2_pre_tokenizer(add_prefix_space: bool) -> Json {
    byte_level(add_prefix_space, true)
}

/// Each digit on its own, then GPT-2's pre-tokenizer.
fn digits_then_gpt2(add_prefix_space: bool) -> Json {
    json!({ "type": "Sequence", "pretokenizers": [
        { "type": "Digits", "individual_digits": true },
        gpt2_pre_tokenizer(add_prefix_space),
    ]})
}

/// The pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre = pre`, `None` for one rewarm does not know.
fn known_pre_tokenizer(pre: &str, add_prefix_space: bool) -> Option<Json> {
    Some(match pre {
        "default" | "gpt2" => gpt2_pre_tokenizer(add_prefix_space),
        "smollm" | "starcoder" | "refact" | "codeshell" => digits_then_gpt2(add_prefix_space),
        "llama-bpe" | "llama3" => split(LLAMA3_REGEX, add_prefix_space),
        "qwen2" => split(QWEN2_REGEX, add_prefix_space),
        _ => return None,
    })
}

pub(crate) fn missing(file: &str, key: &str) -> InteropError {
    InteropError::gguf(
        file,
        &format!("metadata `{key}`"),
        "is missing or has the wrong type",
        "the GGUF has no usable tokenizer; take tokenizer.json from the original Hugging Face model",
    )
}

/// The `tokenizer.ggml.*` arrays of a byte-level BPE vocabulary.
struct BpeVocab<'a> {
    tokens: &'a [String],
    merges: &'a [String],
    /// One per token; all 1 (normal) when the file lists none.
    types: Vec<i32>,
}

impl<'a> BpeVocab<'a> {
    /// `Err` unless the model is `gpt2` and its arrays are present with the right types and lengths.
    fn read<R: Read + Seek>(g: &'a GgufFile<R>) -> Result<Self, InteropError> {
        let file = g.name();
        let (tokens, types) = tokens_and_types(g)?;
        let Some(Value::Array(Array::String(merges))) = g.get("tokenizer.ggml.merges") else {
            return Err(missing(file, "tokenizer.ggml.merges"));
        };
        Ok(BpeVocab {
            tokens,
            merges,
            types,
        })
    }
}

/// `tokenizer.ggml.tokens` and their types (all 1, normal, when the file lists none).
pub(crate) fn tokens_and_types<R: Read + Seek>(
    g: &GgufFile<R>,
) -> Result<(&[String], Vec<i32>), InteropError> {
    let file = g.name();
    let Some(Value::Array(Array::String(tokens))) = g.get("tokenizer.ggml.tokens") else {
        return Err(missing(file, "tokenizer.ggml.tokens"));
    };
    let types = match g.get("tokenizer.ggml.token_type") {
        None => vec![1; tokens.len()],
        Some(Value::Array(Array::I32(t))) if t.len() == tokens.len() => t.clone(),
        Some(_) => return Err(missing(file, "tokenizer.ggml.token_type")),
    };
    Ok((tokens, types))
}

/// The token whose id is metadata `key` (BOS or EOS), `None` when the key is absent.
pub(crate) fn special_token<R: Read + Seek>(
    g: &GgufFile<R>,
    key: &str,
    tokens: &[String],
) -> Result<Option<(u32, String)>, InteropError> {
    let Some(v) = g.get(key) else {
        return Ok(None);
    };
    match v.as_u64().filter(|&id| (id as usize) < tokens.len()) {
        Some(id) => Ok(Some((id as u32, tokens[id as usize].clone()))),
        None => Err(InteropError::gguf(
            g.name(),
            &format!("metadata `{key}`"),
            format!("= {v:?} is not a token id below {}", tokens.len()),
            "the file is corrupt",
        )),
    }
}

/// Token → id. A token listed twice keeps its later id, and `notes` says so, since one id of the two
/// can then never be produced.
pub(crate) fn token_ids(tokens: &[String], notes: &mut Vec<String>) -> Map<String, Json> {
    let mut vocab = Map::new();
    for (id, token) in tokens.iter().enumerate() {
        if vocab.insert(token.clone(), json!(id)).is_some() {
            notes.push(format!(
                "token `{token}` appears twice in the vocabulary; id {id} keeps it"
            ));
        }
    }
    vocab
}

/// GGUF merges ("a b") as tokenizer.json pairs (["a", "b"]).
fn merge_pairs(file: &str, merges: &[String]) -> Result<Vec<Json>, InteropError> {
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, merge) in merges.iter().enumerate() {
        let mut parts = merge.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => pairs.push(json!([a, b])),
            _ => {
                return Err(InteropError::gguf(
                    file,
                    &format!("metadata `tokenizer.ggml.merges` #{i}"),
                    format!("= `{merge}` is not two tokens separated by one space"),
                    "the file is corrupt",
                ))
            }
        }
    }
    Ok(pairs)
}

/// Unknown (type 2), control (type 3) and user-defined (type 4) tokens, and BOS/EOS, as added tokens, so
/// that they are never split; only user-defined ones are normalized and not special.
pub(crate) fn added_tokens(
    tokens: &[String],
    types: &[i32],
    special_ids: [Option<u32>; 2],
) -> Vec<Json> {
    types
        .iter()
        .enumerate()
        .filter(|&(id, &ty)| (2..=4).contains(&ty) || special_ids.contains(&Some(id as u32)))
        .map(|(id, &ty)| json!({
            "id": id, "content": tokens[id], "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": ty == 4, "special": ty != 4,
        }))
        .collect()
}

/// BOS before each sequence when the model expects it; otherwise GPT-2's ByteLevel post-processor.
fn post_processor(bos: Option<&(u32, String)>, add_bos: bool) -> Json {
    match (bos, add_bos) {
        (Some(bos), true) => bos_template(bos),
        _ => {
            json!({ "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true })
        }
    }
}

/// The post-processor that puts BOS before each sequence.
pub(crate) fn bos_template((id, text): &(u32, String)) -> Json {
    json!({
            "type": "TemplateProcessing",
            "single": [{ "SpecialToken": { "id": text, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }],
            "pair": [{ "SpecialToken": { "id": text, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } },
                     { "SpecialToken": { "id": text, "type_id": 1 } }, { "Sequence": { "id": "B", "type_id": 1 } }],
            "special_tokens": { text.as_str(): { "id": text, "ids": [id], "tokens": [text] } },
    })
}

/// The tokenizer.json of the GGUF's vocabulary. `Err` if the GGUF has no tokenizer or one of another kind.
pub fn tokenizer_from_gguf<R: Read + Seek>(
    g: &GgufFile<R>,
) -> Result<RebuiltTokenizer, InteropError> {
    let file = g.name();
    let model = g
        .get_str("tokenizer.ggml.model")
        .ok_or_else(|| missing(file, "tokenizer.ggml.model"))?;
    match model {
        "gpt2" => byte_level_bpe(g),
        "llama" => crate::gguf_spm::sentencepiece(g),
        _ => Err(InteropError::invalid(
            file,
            format!("tokenizer.ggml.model is `{model}`; rewarm rebuilds byte-level BPE (`gpt2`) and SentencePiece (`llama`) tokenizers"),
            "take tokenizer.json from the original Hugging Face model",
        )),
    }
}

/// A byte-level BPE (`gpt2`) vocabulary's tokenizer.json.
fn byte_level_bpe<R: Read + Seek>(g: &GgufFile<R>) -> Result<RebuiltTokenizer, InteropError> {
    let file = g.name();
    let vocab = BpeVocab::read(g)?;
    let bos = special_token(g, "tokenizer.ggml.bos_token_id", vocab.tokens)?;
    let eos = special_token(g, "tokenizer.ggml.eos_token_id", vocab.tokens)?;
    let flag = |key: &str| matches!(g.get(key), Some(Value::Bool(true)));
    let add_prefix_space = flag("tokenizer.ggml.add_space_prefix");
    let add_bos = flag("tokenizer.ggml.add_bos_token");

    let mut notes = Vec::new();
    let pre = g.get_str("tokenizer.ggml.pre").unwrap_or("default");
    let pre_tokenizer = known_pre_tokenizer(pre, add_prefix_space).unwrap_or_else(|| {
        notes.push(format!(
            "tokenizer.ggml.pre `{pre}` is not known to rewarm; used GPT-2's pre-tokenizer, so texts may \
             split differently from the original (prefer the original tokenizer.json)"
        ));
        gpt2_pre_tokenizer(add_prefix_space)
    });
    let ids = token_ids(vocab.tokens, &mut notes);
    let pairs = merge_pairs(file, vocab.merges)?;
    let special_ids = [bos.as_ref().map(|b| b.0), eos.as_ref().map(|e| e.0)];
    let json = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(vocab.tokens, &vocab.types, special_ids),
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor(bos.as_ref(), add_bos),
        "decoder": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true },
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": ids, "merges": pairs,
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

/// Checked before anything is written: a tokenizer.json the `tokenizers` crate cannot load is an error.
pub(crate) fn check_loads(file: &str, json: &Json) -> Result<(), InteropError> {
    tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes()).map_err(|e| {
        InteropError::invalid(
            file,
            format!("the tokenizer rebuilt from its metadata does not load ({e})"),
            "take tokenizer.json from the original Hugging Face model",
        )
    })?;
    Ok(())
}
