//! Tokenizers: GPT-2 BPE offline (tiktoken's `r50k_base` ranks, embedded in `tiktoken-rs`), any Hugging Face
//! `tokenizer.json`, and BPE training on one's own text.
//!
//! Every tokenizer has an identity (`kind`, `name`) and a `hash` that manifests store, so shards made with
//! one tokenizer are refused when another is requested (STYLE habit 11).

use crate::error::{DataError, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The GPT-2 end-of-text id.
pub const GPT2_EOT: u32 = 50256;
/// Special tokens tried, in order, as a Hugging Face tokenizer's document separator.
pub const EOT_CANDIDATES: [&str; 5] = [
    "<|endoftext|>",
    "<|end_of_text|>",
    "</s>",
    "<eos>",
    "<|im_end|>",
];

/// What a manifest records about the tokenizer that made its shards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerInfo {
    /// `gpt2` or `hf`.
    pub kind: String,
    /// Human-readable: `gpt2` or the tokenizer.json path it was loaded from.
    pub name: String,
    /// sha256 of the tokenizer's definition (for `hf`, of tokenizer.json's bytes).
    pub hash: String,
    pub vocab_size: u32,
    pub eot_id: u32,
}

impl TokenizerInfo {
    /// The first `n` characters of the hash, for messages (never splits a character, whatever the hash
    /// holds: a hand-edited manifest may hold anything).
    pub fn short_hash(&self, n: usize) -> &str {
        let end = self
            .hash
            .char_indices()
            .nth(n)
            .map_or(self.hash.len(), |(i, _)| i);
        &self.hash[..end]
    }
}

/// Which tokenizer to use, as given on a command line or in a config: `gpt2` or a path to a tokenizer.json.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenizerSpec {
    Gpt2,
    HfFile(PathBuf),
}

impl std::str::FromStr for TokenizerSpec {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gpt2" | "r50k" | "r50k_base" => Ok(TokenizerSpec::Gpt2),
            path if path.ends_with(".json") => Ok(TokenizerSpec::HfFile(PathBuf::from(path))),
            other => Err(DataError::Tokenizer(format!(
                "unknown tokenizer `{other}`\nHINT: use `gpt2` or the path of a Hugging Face tokenizer.json \
                 (make one with `rewarm tokenizer train`)"
            ))),
        }
    }
}

enum Inner {
    Gpt2(&'static tiktoken_rs::CoreBPE),
    Hf(Box<tokenizers::Tokenizer>),
}

/// A loaded tokenizer. Cheap to share across threads.
pub struct Tokenizer {
    inner: Inner,
    info: TokenizerInfo,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Tokenizer {
    pub fn load(spec: &TokenizerSpec, eot_token: Option<&str>) -> Result<Self> {
        match spec {
            TokenizerSpec::Gpt2 => {
                if eot_token.is_some_and(|t| t != "<|endoftext|>") {
                    return Err(DataError::Tokenizer(
                        "gpt2's end-of-text token is <|endoftext|>".into(),
                    ));
                }
                Ok(Self::gpt2())
            }
            TokenizerSpec::HfFile(path) => Self::from_hf_file(path, eot_token),
        }
    }

    pub fn gpt2() -> Self {
        let bpe = tiktoken_rs::r50k_base_singleton();
        // tiktoken-rs embeds the ranks without exposing their bytes; hash a fixed identity plus a probe's
        // encoding, so that a different ranks table would change the hash.
        let probe = bpe.encode_ordinary("rewarm probe: Hello world! Grüße, 日本語 1234567890.");
        let ident = format!("tiktoken r50k_base {probe:?}");
        Tokenizer {
            inner: Inner::Gpt2(bpe),
            info: TokenizerInfo {
                kind: "gpt2".into(),
                name: "gpt2".into(),
                hash: sha256_hex(ident.as_bytes()),
                vocab_size: 50257,
                eot_id: GPT2_EOT,
            },
        }
    }

    pub fn from_hf_file(path: &Path, eot_token: Option<&str>) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(crate::error::io(path))?;
        Self::from_hf_bytes(path, &bytes, eot_token)
    }

    /// A Hugging Face tokenizer from the bytes of its tokenizer.json, read from `path` (named in errors).
    pub fn from_hf_bytes(path: &Path, bytes: &[u8], eot_token: Option<&str>) -> Result<Self> {
        let not_a_tokenizer = |e: &dyn std::fmt::Display| {
            DataError::Tokenizer(format!(
                "{}: not a Hugging Face tokenizer.json ({e})\nHINT: pass a tokenizer.json saved by `tokenizers` or `rewarm tokenizer train`",
                path.display()
            ))
        };
        // UTF-8 and the JSON syntax are checked first: `tokenizers` 0.22 panics on some syntax errors
        // inside its decoder section instead of returning them (fuzz/regressions/tokenizer_json/); a
        // panic it still has (huggingface/tokenizers#2151) is caught and reported the same way.
        let text = std::str::from_utf8(bytes).map_err(|e| not_a_tokenizer(&e))?;
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| not_a_tokenizer(&e))?;
        let tok = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_bytes(bytes))
            .map_err(|_| not_a_tokenizer(&"the tokenizers library panicked reading it"))?
            .map_err(|e| not_a_tokenizer(&e))?;
        let eot_id = match eot_token {
            Some(t) => tok.token_to_id(t).ok_or_else(|| {
                DataError::Tokenizer(format!("{}: has no token `{t}` to end documents with", path.display()))
            })?,
            None => EOT_CANDIDATES.iter().find_map(|t| tok.token_to_id(t)).ok_or_else(|| {
                DataError::Tokenizer(format!(
                    "{}: none of {EOT_CANDIDATES:?} is in the vocabulary\nHINT: name the document separator with --eot-token",
                    path.display()
                ))
            })?,
        };
        // The ids span 0..=max id, which is more than the number of entries when the file skips an id
        // (an edited vocab): a count would let encoded ids reach past the model's embedding.
        let max_id = tok.get_vocab(true).into_values().max().unwrap_or(0);
        let vocab_size = (tok.get_vocab_size(true) as u32).max(max_id.saturating_add(1));
        Ok(Tokenizer {
            info: TokenizerInfo {
                kind: "hf".into(),
                name: path.display().to_string(),
                hash: sha256_hex(bytes),
                vocab_size,
                eot_id,
            },
            inner: Inner::Hf(Box::new(tok)),
        })
    }

    pub fn info(&self) -> &TokenizerInfo {
        &self.info
    }

    /// Encodes text as ordinary text: special-token strings inside a document are not special.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match &self.inner {
            Inner::Gpt2(bpe) => Ok(bpe.encode_ordinary(text)),
            Inner::Hf(tok) => self
                .unpanicked("encoding", || encode_ordinary(tok, text))?
                .map_err(|e| DataError::Tokenizer(format!("{}: {e}", self.info.name))),
        }
    }

    /// Runs a call into the `tokenizers` library, which panics on some crafted tokenizer.json files
    /// (huggingface/tokenizers#2151), turning a panic into an error naming the tokenizer.
    fn unpanicked<T>(&self, doing: &str, f: impl FnOnce() -> T) -> Result<T> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
            DataError::Tokenizer(format!(
                "{}: the tokenizers library panicked {doing} with this tokenizer\nHINT: the tokenizer.json is malformed; use the one the model was published with",
                self.info.name
            ))
        })
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.inner {
            Inner::Gpt2(bpe) => bpe
                .decode(ids)
                .map_err(|e| DataError::Tokenizer(e.to_string())),
            Inner::Hf(tok) => self
                .unpanicked("decoding", || tok.decode(ids, false))?
                .map_err(|e| DataError::Tokenizer(e.to_string())),
        }
    }
}

/// A Hugging Face tokenizer's pipeline without its added vocabulary: normalizer, pre-tokenizer and model
/// only, so a special-token string inside a document (`<|endoftext|>` in a forum post) stays ordinary text
/// instead of becoming a document separator — as tiktoken's `encode_ordinary` does for GPT-2.
fn encode_ordinary(tok: &tokenizers::Tokenizer, text: &str) -> tokenizers::Result<Vec<u32>> {
    use tokenizers::{Model, Normalizer, OffsetType, PreTokenizedString, PreTokenizer};
    let mut pre = PreTokenizedString::from(text);
    if let Some(n) = tok.get_normalizer() {
        pre.normalize(|s| n.normalize(s))?;
    }
    if let Some(p) = tok.get_pre_tokenizer() {
        p.pre_tokenize(&mut pre)?;
    }
    let model = tok.get_model();
    pre.tokenize(|s| model.tokenize(s.get()))?;
    Ok(pre
        .into_encoding(None, 0, OffsetType::Byte)?
        .get_ids()
        .to_vec())
}

/// Fits a byte-level BPE of `vocab_size` tokens on the documents of text inputs (.txt / .jsonl files or
/// folders of them, read as `opts` says) and returns the tokenizer.json text.
pub fn train_bpe_on_files(
    inputs: &[PathBuf],
    opts: &crate::corpus::CorpusOptions,
    vocab_size: u32,
) -> Result<String> {
    let (files, _) = crate::corpus::list_inputs(inputs)?;
    let mut docs = Vec::new();
    for f in &files {
        docs.extend(crate::corpus::read_documents(f, opts)?);
    }
    train_bpe(docs.into_iter(), vocab_size)
}

/// Fits a byte-level BPE (GPT-2 style pre-tokenization, `<|endoftext|>` as its only special token) of
/// `vocab_size` tokens on `documents` and returns the tokenizer.json text.
pub fn train_bpe<I>(documents: I, vocab_size: u32) -> Result<String>
where
    I: Iterator<Item = String> + Send,
{
    use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{AddedToken, TokenizerBuilder};
    if vocab_size < 257 + 1 {
        return Err(DataError::Tokenizer(format!(
            "vocab size {vocab_size} is too small: a byte-level BPE needs 256 byte tokens + <|endoftext|>\nHINT: use --vocab-size 4096 or more"
        )));
    }
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size as usize)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tok = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_normalizer(None::<tokenizers::NormalizerWrapper>)
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(Some(ByteLevel::new(false, true, true)))
        .with_decoder(Some(ByteLevel::new(false, true, true)))
        .build()
        .map_err(|e| DataError::Tokenizer(e.to_string()))?;
    tok.train(&mut trainer, documents)
        .map_err(|e| DataError::Tokenizer(e.to_string()))?;
    let tok: tokenizers::Tokenizer = tok.into();
    tok.to_string(true)
        .map_err(|e| DataError::Tokenizer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_known_ids() {
        let t = Tokenizer::gpt2();
        assert_eq!(t.encode("Hello world").unwrap(), vec![15496, 995]);
        assert_eq!(t.decode(&[15496, 995]).unwrap(), "Hello world");
        // A literal end-of-text string in a document is ordinary text, not a separator.
        assert!(!t.encode("a <|endoftext|> b").unwrap().contains(&GPT2_EOT));
    }

    #[test]
    fn trained_bpe_round_trips_and_has_eot() {
        let docs = (0..200)
            .map(|i| format!("der Hund {i} läuft über die Straße. The dog runs {i} times."));
        let json = train_bpe(docs, 400).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, &json).unwrap();
        let t = Tokenizer::from_hf_file(&path, None).unwrap();
        assert_eq!(t.info().eot_id, 0);
        assert!(t.info().vocab_size <= 400);
        let text = "Der Hund läuft über die Straße.";
        assert_eq!(t.decode(&t.encode(text).unwrap()).unwrap(), text);
        // Special-token text inside a document is ordinary text, as with gpt2.
        let ids = t.encode("a <|endoftext|> b").unwrap();
        assert!(!ids.contains(&t.info().eot_id), "{ids:?}");
        assert_eq!(t.decode(&ids).unwrap(), "a <|endoftext|> b");
    }

    #[test]
    fn unknown_tokenizer_names_the_fix() {
        let err = "bert".parse::<TokenizerSpec>().err().unwrap().to_string();
        assert!(err.contains("bert") && err.contains("HINT"), "{err}");
    }
}
