//! Synthetic prepared folders for tests and benchmarks: tokens are given directly, so a test can make
//! tokens encode (source, position) and see where every batch row came from.

use crate::corpus::CorpusOptions;
use crate::error::Result;
use crate::manifest::{
    Manifest, ShardInfo, SplitInfo, SplitRule, FORMAT, FORMAT_VERSION, MANIFEST_FILE,
};
use crate::shard::{ShardWriter, TokenDtype};
use crate::tokenizer::TokenizerInfo;
use std::path::Path;

/// The tokenizer identity recorded for synthetic folders.
pub fn synthetic_tokenizer(vocab_size: u32) -> TokenizerInfo {
    TokenizerInfo {
        kind: "synthetic".into(),
        name: format!("synthetic-{vocab_size}"),
        hash: format!("synthetic-{vocab_size}"),
        vocab_size,
        eot_id: 0,
    }
}

fn write_split(
    dir: &Path,
    prefix: &str,
    tokens: &[u32],
    dtype: TokenDtype,
    shard_tokens: usize,
) -> Result<SplitInfo> {
    let mut info = SplitInfo::default();
    for (i, chunk) in tokens.chunks(shard_tokens.max(1)).enumerate() {
        let file = format!("{prefix}-{i:05}.tok");
        let mut w = ShardWriter::create(&dir.join(&file), dtype)?;
        w.write_document(chunk)?;
        let h = w.finish()?;
        // Pretend 4 source bytes per token.
        let source_bytes = 4 * h.tokens;
        info.tokens += h.tokens;
        info.documents += h.documents;
        info.source_bytes += source_bytes;
        info.shards.push(ShardInfo {
            file,
            tokens: h.tokens,
            documents: h.documents,
            source_bytes,
            checksum: format!("{:016x}", h.checksum),
        });
    }
    Ok(info)
}

/// Writes a prepared folder whose train split holds `train` and validation split holds `validation`,
/// cut into shards of `shard_tokens` tokens (one "document" per shard).
pub fn write_source(
    dir: &Path,
    vocab_size: u32,
    train: &[u32],
    validation: &[u32],
    shard_tokens: usize,
) -> Result<Manifest> {
    std::fs::create_dir_all(dir).map_err(crate::error::io(dir))?;
    let dtype = TokenDtype::for_vocab(vocab_size);
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        rewarm_version: env!("CARGO_PKG_VERSION").into(),
        tokenizer: synthetic_tokenizer(vocab_size),
        token_dtype: dtype,
        inputs: vec!["synthetic".into()],
        validation_inputs: vec![],
        corpus: CorpusOptions::default(),
        split: SplitRule::Given,
        train: write_split(dir, "train", train, dtype, shard_tokens)?,
        validation: write_split(dir, "validation", validation, dtype, shard_tokens)?,
    };
    let path = dir.join(MANIFEST_FILE);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&manifest).expect("serializes"),
    )
    .map_err(crate::error::io(&path))?;
    Ok(manifest)
}

/// `tokens` ids of a deterministic "language" (ids 1..=250, 0 between documents): each token follows from
/// the previous one by a rule that depends on `seed`, and documents have pseudo-random lengths, so a model
/// can learn it and sources with different seeds are told apart. Pure: the same arguments, the same ids.
pub fn language(seed: u32, tokens: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(tokens);
    let mut x = seed;
    let mut t = 1 + seed % 200;
    while out.len() < tokens {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        if (x >> 16) % 50 == 0 {
            out.push(0);
            t = 1 + (x >> 8) % 200;
            continue;
        }
        t = (t * (3 + seed % 4) + 7 + seed) % 250 + 1;
        out.push(t);
    }
    out
}
