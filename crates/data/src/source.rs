//! A prepared folder opened for reading: its manifest and memory-mapped, verified shards, viewed as one
//! token stream per split and cut into fixed-length training sequences.

use crate::error::{DataError, Result};
use crate::manifest::{Manifest, Split, SplitInfo};
use crate::shard::Shard;
use std::path::{Path, PathBuf};

/// The shards of one split, concatenated in manifest order.
pub struct TokenStream {
    shards: Vec<Shard>,
    /// Token offset of each shard in the stream.
    starts: Vec<u64>,
    total: u64,
}

impl TokenStream {
    pub fn new(shards: Vec<Shard>) -> Self {
        let mut starts = Vec::with_capacity(shards.len());
        let mut total = 0;
        for s in &shards {
            starts.push(total);
            total += s.len();
        }
        TokenStream {
            shards,
            starts,
            total,
        }
    }

    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Copies tokens `[start, start + out.len())`, across shard boundaries if needed.
    pub fn copy(&self, start: u64, out: &mut [u32]) {
        assert!(
            start + out.len() as u64 <= self.total,
            "read past the end of a token stream"
        );
        let mut shard = self.starts.partition_point(|&s| s <= start) - 1;
        let mut pos = start;
        let mut filled = 0;
        while filled < out.len() {
            let s = &self.shards[shard];
            let offset = (pos - self.starts[shard]) as usize;
            let n = (s.len() as usize - offset).min(out.len() - filled);
            s.tokens().copy_to(offset, &mut out[filled..filled + n]);
            filled += n;
            pos += n as u64;
            shard += 1;
        }
    }

    /// Number of training sequences of `seq_len` targets: windows of `seq_len + 1` tokens with stride
    /// `seq_len`, so every token is a target exactly once per epoch.
    pub fn sequences(&self, seq_len: usize) -> u64 {
        sequences_in(self.total, seq_len)
    }

    /// Copies sequence `j` (`seq_len + 1` tokens: inputs are the first `seq_len`, targets the last).
    pub fn copy_sequence(&self, j: u64, seq_len: usize, out: &mut [u32]) {
        debug_assert_eq!(out.len(), seq_len + 1);
        self.copy(j * seq_len as u64, out);
    }
}

/// Sequences of `seq_len` targets in a stream of `tokens` tokens.
pub fn sequences_in(tokens: u64, seq_len: usize) -> u64 {
    if tokens <= seq_len as u64 {
        0
    } else {
        (tokens - 1) / seq_len as u64
    }
}

/// A prepared source: manifest plus both splits' token streams.
pub struct PreparedSource {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub train: TokenStream,
    pub validation: TokenStream,
}

impl PreparedSource {
    /// Opens a prepared folder, checking every shard against the manifest (header, length, checksum).
    pub fn open(dir: &Path) -> Result<Self> {
        let manifest = Manifest::load(dir)?;
        let train = open_split(dir, &manifest, Split::Train)?;
        let validation = open_split(dir, &manifest, Split::Validation)?;
        Ok(PreparedSource {
            dir: dir.to_owned(),
            manifest,
            train,
            validation,
        })
    }

    pub fn stream(&self, split: Split) -> &TokenStream {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
        }
    }
}

fn open_split(dir: &Path, manifest: &Manifest, split: Split) -> Result<TokenStream> {
    let info: &SplitInfo = manifest.split(split);
    let mut shards = Vec::with_capacity(info.shards.len());
    let (mut tokens, mut documents) = (0, 0);
    for s in &info.shards {
        let path = dir.join(&s.file);
        if s.file.contains('/') || s.file.contains('\\') || s.file.starts_with('.') {
            return Err(mismatch(
                dir,
                format!("shard name `{}` leaves the folder", s.file),
            ));
        }
        let shard = Shard::open(&path)?;
        let h = shard.header();
        let problem = if h.dtype != manifest.token_dtype {
            Some(format!(
                "token type {:?}, the manifest says {:?}",
                h.dtype, manifest.token_dtype
            ))
        } else if h.tokens != s.tokens || h.documents != s.documents {
            Some(format!(
                "{} tokens / {} documents, the manifest says {} / {}",
                h.tokens, h.documents, s.tokens, s.documents
            ))
        } else if format!("{:016x}", h.checksum) != s.checksum {
            Some(format!(
                "checksum {:016x}, the manifest says {}",
                h.checksum, s.checksum
            ))
        } else {
            out_of_vocabulary(&shard, manifest.tokenizer.vocab_size)
        };
        if let Some(why) = problem {
            return Err(DataError::CorruptShard {
                path,
                why: format!("does not match manifest.json: {why}"),
            });
        }
        tokens += h.tokens;
        documents += h.documents;
        shards.push(shard);
    }
    if tokens != info.tokens || documents != info.documents {
        return Err(mismatch(
            dir,
            format!(
                "{} split: shards hold {tokens} tokens / {documents} documents, the totals say {} / {}",
                split.name(),
                info.tokens,
                info.documents
            ),
        ));
    }
    Ok(TokenStream::new(shards))
}

/// Ids the manifest's tokenizer cannot produce would index past the model's embedding: a shard written
/// with another tokenizer, or edited with its checksum recomputed, is refused here rather than at a
/// training step.
fn out_of_vocabulary(shard: &Shard, vocab_size: u32) -> Option<String> {
    let (offset, id) = shard.tokens().first_at_or_above(vocab_size)?;
    Some(format!(
        "token {offset} is id {id}, outside the tokenizer's {vocab_size} ids although the checksum matches (written with another tokenizer, or edited)"
    ))
}

fn mismatch(dir: &Path, why: String) -> DataError {
    DataError::Manifest {
        path: Manifest::path(dir),
        why,
        fix: "prepare the source again".into(),
    }
}
