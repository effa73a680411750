//! Readers of prepared data and its inputs: token shards, manifest.json, text corpora, tokenizer.json.

use crate::names;
use rewarm_data::corpus::{cut_whole_text, CorpusOptions, DocMode, Documents, InputKind};
use rewarm_data::manifest::{Manifest, Split, SplitRule};
use rewarm_data::shard::{Shard, HEADER_BYTES};
use rewarm_data::{TokenStream, Tokenizer, TokenizerInfo};
use std::io::Cursor;
use std::path::Path;

/// Token shards (`Shard::from_bytes`, what `Shard::open` checks): refused, or every token readable, alone
/// and in a stream across two copies. Each input is also tried with its checksum fixed up, so that
/// mutations reach the length and token-reading code instead of all stopping at the checksum.
pub fn shard(data: &[u8]) {
    shard_bytes(data);
    if data.len() >= HEADER_BYTES {
        let mut fixed = data.to_vec();
        let sum = xxhash_rust::xxh3::xxh3_64(&fixed[HEADER_BYTES..]);
        fixed[32..40].copy_from_slice(&sum.to_le_bytes());
        shard_bytes(&fixed);
    }
}

fn shard_bytes(bytes: &[u8]) {
    let path = Path::new("fuzz.tok");
    let shard = match Shard::from_bytes(path, bytes) {
        Ok(shard) => shard,
        Err(e) => return names(e, "fuzz.tok"),
    };
    let tokens = shard.tokens();
    let n = tokens.len();
    assert_eq!(n as u64, shard.len());
    assert_eq!(bytes.len(), HEADER_BYTES + n * shard.header().dtype.bytes());
    let mut all = vec![0u32; n];
    tokens.copy_to(0, &mut all);
    for (i, &t) in all.iter().enumerate() {
        assert_eq!(tokens.get(i), t);
    }
    let again = Shard::from_bytes(path, bytes).expect("valid once, valid twice");
    let stream = TokenStream::new(vec![shard, again]);
    assert_eq!(stream.len(), 2 * n as u64);
    for seq_len in [1usize, 3, 7] {
        let count = stream.sequences(seq_len).min(64);
        let mut out = vec![0u32; seq_len + 1];
        for j in 0..count {
            stream.copy_sequence(j, seq_len, &mut out);
            let start = j as usize * seq_len;
            for (k, &t) in out.iter().enumerate() {
                assert_eq!(t, all[(start + k) % n]);
            }
        }
    }
}

/// `manifest.json` (`Manifest::parse`, what `Manifest::load` checks): refused, or a manifest that every
/// accessor, the tokenizer check and a JSON round trip handle. Also the `--split` rule parser.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = text.parse::<SplitRule>();
    let path = Path::new("fuzz/manifest.json");
    let m = match Manifest::parse(path, &text) {
        Ok(m) => m,
        Err(e) => return names(e, "fuzz/manifest.json"),
    };
    for split in [Split::Train, Split::Validation] {
        let s = m.split(split);
        let _ = s.bytes_per_token();
        for (i, shard) in s.shards.iter().enumerate() {
            let _ = m.split.is_validation(i as u64, &shard.file);
        }
    }
    let other = TokenizerInfo {
        kind: "hf".into(),
        name: "other".into(),
        hash: "0123456789abcdef0123456789abcdef".into(),
        vocab_size: 1,
        eot_id: 0,
    };
    let _ = m.check_tokenizer(Path::new("fuzz"), &other);
    let _ = m.check_tokenizer(Path::new("fuzz"), &m.tokenizer);
    let json = serde_json::to_string(&m).expect("a parsed manifest serializes");
    // What rewarm writes it reads back (equality is not asserted: serde_json's default float parsing may
    // differ from the shortest representation by an ulp).
    let back = Manifest::parse(path, &json).expect("a written manifest parses");
    assert_eq!(back.train.shards, m.train.shards);
    assert_eq!(back.tokenizer, m.tokenizer);
}

/// Text corpora (`Documents`, what `rewarm prepare` and `rewarm tokenizer train` read). The first byte
/// picks the format (JSONL, or text cut per file, line or blank-line block) and `--lossy`; the rest is the
/// file. Refused with an error naming the file, or documents that are not blank; and where the file is
/// valid UTF-8 text, exactly the documents that cutting the whole text at once gives.
pub fn corpus(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let (kind, doc_mode) = match mode % 4 {
        0 => (InputKind::Jsonl, DocMode::File),
        1 => (InputKind::Txt, DocMode::File),
        2 => (InputKind::Txt, DocMode::Line),
        _ => (InputKind::Txt, DocMode::BlankLine),
    };
    let opts = CorpusOptions {
        doc_mode,
        lossy: mode & 4 != 0,
        ..Default::default()
    };
    let path = Path::new("fuzz/corpus.txt");
    let docs = Documents::from_reader(path, kind, &opts, Cursor::new(bytes.to_vec()))
        .and_then(|d| d.collect::<Result<Vec<String>, _>>());
    let docs = match docs {
        Ok(docs) => docs,
        Err(e) => return names(e, "fuzz/corpus.txt"),
    };
    assert!(
        docs.iter().all(|d| !d.trim().is_empty()),
        "a blank document"
    );
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes));
    if let (Ok(text), InputKind::Txt) = (text, kind) {
        assert_eq!(docs, cut_whole_text(text, doc_mode));
    }
}

/// A Hugging Face `tokenizer.json` (`Tokenizer::from_hf_bytes`, what `--tokenizer FILE` loads): refused
/// with an error naming the file, or a tokenizer that encodes ordinary and special text into ids inside
/// its vocabulary and decodes them again.
pub fn tokenizer_json(data: &[u8]) {
    let tok = match Tokenizer::from_hf_bytes(Path::new("fuzz/tokenizer.json"), data, None) {
        Ok(tok) => tok,
        Err(e) => return names(e, "fuzz/tokenizer.json"),
    };
    let vocab = tok.info().vocab_size;
    assert!(
        tok.info().eot_id < vocab,
        "end-of-text id outside the vocabulary"
    );
    for text in [
        "",
        "Hello, world! Grüße aus Köln 42.\n\t",
        "<|endoftext|></s> x",
    ] {
        if let Ok(ids) = tok.encode(text) {
            if let Some(&id) = ids.iter().find(|&&id| id >= vocab) {
                panic!("`{text}` encoded to id {id}, outside the vocabulary of {vocab}");
            }
            let _ = tok.decode(&ids);
        }
    }
}
