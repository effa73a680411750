//! Token shard files: a 64-byte header, then little-endian tokens.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RWSHARD\0` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | bytes per token: 2 (u16) or 4 (u32) |
//! | 16 | 8 | token count |
//! | 24 | 8 | document count (each document ends with the end-of-text id) |
//! | 32 | 8 | xxh3-64 checksum of the token bytes |
//! | 40 | 24 | zero |
//!
//! Readers memory-map the file and check magic, version, length and checksum on open (llm.c habit: every
//! binary file carries magic + version + length), so a truncated or edited shard fails at open.

use crate::error::{io, DataError, Result};
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

pub const MAGIC: &[u8; 8] = b"RWSHARD\0";
pub const VERSION: u32 = 1;
pub const HEADER_BYTES: usize = 64;

/// How tokens are stored: u16 when the vocabulary fits, else u32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDtype {
    U16,
    U32,
}

impl TokenDtype {
    pub fn for_vocab(vocab_size: u32) -> Self {
        if vocab_size <= 1 << 16 {
            TokenDtype::U16
        } else {
            TokenDtype::U32
        }
    }
    pub fn bytes(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::U32 => 4,
        }
    }
}

/// What a shard's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardHeader {
    pub dtype: TokenDtype,
    pub tokens: u64,
    pub documents: u64,
    pub checksum: u64,
}

impl ShardHeader {
    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(self.dtype.bytes() as u32).to_le_bytes());
        h[16..24].copy_from_slice(&self.tokens.to_le_bytes());
        h[24..32].copy_from_slice(&self.documents.to_le_bytes());
        h[32..40].copy_from_slice(&self.checksum.to_le_bytes());
        h
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |why: String| DataError::BadShard {
            path: path.to_owned(),
            why,
        };
        if bytes.len() < HEADER_BYTES {
            return Err(bad(format!(
                "{} bytes, shorter than the {HEADER_BYTES}-byte header",
                bytes.len()
            )));
        }
        if &bytes[0..8] != MAGIC {
            return Err(bad("wrong magic number".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}, this rewarm reads version {VERSION}"
            )));
        }
        let dtype = match u32_at(12) {
            2 => TokenDtype::U16,
            4 => TokenDtype::U32,
            other => return Err(bad(format!("{other} bytes per token (expected 2 or 4)"))),
        };
        Ok(ShardHeader {
            dtype,
            tokens: u64_at(16),
            documents: u64_at(24),
            checksum: u64_at(32),
        })
    }
}

/// Streams tokens into a shard file; the header is patched in by [`ShardWriter::finish`].
pub struct ShardWriter {
    path: PathBuf,
    out: BufWriter<File>,
    dtype: TokenDtype,
    hasher: Xxh3,
    tokens: u64,
    documents: u64,
}

impl ShardWriter {
    pub fn create(path: &Path, dtype: TokenDtype) -> Result<Self> {
        let file = File::create(path).map_err(io(path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0u8; HEADER_BYTES]).map_err(io(path))?;
        Ok(ShardWriter {
            path: path.to_owned(),
            out,
            dtype,
            hasher: Xxh3::new(),
            tokens: 0,
            documents: 0,
        })
    }

    /// Appends one document's tokens; the caller includes the end-of-text id.
    pub fn write_document(&mut self, tokens: &[u32]) -> Result<()> {
        let mut buf = Vec::with_capacity(tokens.len() * self.dtype.bytes());
        match self.dtype {
            TokenDtype::U16 => {
                for &t in tokens {
                    let t = u16::try_from(t).map_err(|_| {
                        DataError::Tokenizer(format!("token id {t} does not fit u16 shards"))
                    })?;
                    buf.extend_from_slice(&t.to_le_bytes());
                }
            }
            TokenDtype::U32 => tokens
                .iter()
                .for_each(|t| buf.extend_from_slice(&t.to_le_bytes())),
        }
        self.hasher.update(&buf);
        self.out.write_all(&buf).map_err(io(&self.path))?;
        self.tokens += tokens.len() as u64;
        self.documents += 1;
        Ok(())
    }

    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Writes the header and syncs the file to disk.
    pub fn finish(self) -> Result<ShardHeader> {
        let header = ShardHeader {
            dtype: self.dtype,
            tokens: self.tokens,
            documents: self.documents,
            checksum: self.hasher.digest(),
        };
        let path = self.path;
        let mut file = self.out.into_inner().map_err(|e| DataError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
        file.write_all(&header.encode()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        Ok(header)
    }
}

/// A shard whose header, length and (unless opened unverified) checksum were checked: memory-mapped from
/// its file, or copied from bytes ([`Shard::from_bytes`]).
pub struct Shard {
    path: PathBuf,
    storage: Storage,
    header: ShardHeader,
}

/// Where a shard's bytes live. Both are aligned for u32, so the payload after the 64-byte header can be
/// viewed as u16 or u32 tokens in place.
enum Storage {
    /// Page-aligned.
    Map(Mmap),
    /// Copied into u32 words; `len` is the byte length.
    Owned { words: Vec<u32>, len: usize },
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Map(m) => m,
            Storage::Owned { words, len } => &bytemuck::cast_slice(words)[..*len],
        }
    }
}
/// The tokens of a shard, borrowed from its storage.
#[derive(Clone, Copy)]
pub enum Tokens<'a> {
    U16(&'a [u16]),
    U32(&'a [u32]),
}

impl Tokens<'_> {
    pub fn len(&self) -> usize {
        match self {
            Tokens::U16(t) => t.len(),
            Tokens::U32(t) => t.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, i: usize) -> u32 {
        match self {
            Tokens::U16(t) => t[i] as u32,
            Tokens::U32(t) => t[i],
        }
    }
    /// The first token whose id is `limit` or above, with its index: ids a vocabulary of `limit` ids cannot
    /// hold. One vectorizable pass (the maximum) when there is none.
    pub fn first_at_or_above(&self, limit: u32) -> Option<(usize, u32)> {
        fn find<T: Copy + Ord + Into<u32>>(t: &[T], limit: u32) -> Option<(usize, u32)> {
            let max: u32 = t.iter().copied().max()?.into();
            if max < limit {
                return None;
            }
            let i = t.iter().position(|&x| x.into() >= limit)?;
            Some((i, t[i].into()))
        }
        match self {
            Tokens::U16(t) => find(t, limit),
            Tokens::U32(t) => find(t, limit),
        }
    }

    /// Copies `out.len()` tokens starting at `start` (widening u16 to u32).
    pub fn copy_to(&self, start: usize, out: &mut [u32]) {
        match self {
            Tokens::U16(t) => {
                let n = out.len();
                out.iter_mut()
                    .zip(&t[start..start + n])
                    .for_each(|(o, &x)| *o = x as u32)
            }
            Tokens::U32(t) => out.copy_from_slice(&t[start..start + out.len()]),
        }
    }
}

impl Shard {
    /// Opens and fully validates a shard.
    pub fn open(path: &Path) -> Result<Self> {
        Self::check(path, Self::map(path)?, true)
    }

    /// Opens a shard checking header and length but not the checksum (for tools that report all problems).
    pub fn open_unverified(path: &Path) -> Result<Self> {
        Self::check(path, Self::map(path)?, false)
    }

    /// Validates a shard held in memory (header, length and checksum) exactly as [`Shard::open`] validates
    /// a file; `path` only labels errors. The bytes are copied.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        let storage = Storage::Owned {
            words,
            len: bytes.len(),
        };
        Self::check(path, storage, true)
    }

    fn map(path: &Path) -> Result<Storage> {
        let file = File::open(path).map_err(io(path))?;
        // SAFETY: shards are written once by `prepare` and never modified in place; the mapping is read-only.
        let map = unsafe { Mmap::map(&file) }.map_err(io(path))?;
        Ok(Storage::Map(map))
    }

    fn check(path: &Path, storage: Storage, verify_checksum: bool) -> Result<Self> {
        let bytes = storage.bytes();
        let header = ShardHeader::decode(path, bytes)?;
        let expected = header
            .tokens
            .checked_mul(header.dtype.bytes() as u64)
            .and_then(|b| b.checked_add(HEADER_BYTES as u64))
            .ok_or_else(|| DataError::BadShard {
                path: path.to_owned(),
                why: "absurd token count".into(),
            })?;
        if bytes.len() as u64 != expected {
            return Err(DataError::CorruptShard {
                path: path.to_owned(),
                why: format!(
                    "{} bytes on disk, the header's {} tokens need {expected} (truncated or appended to)",
                    bytes.len(),
                    header.tokens
                ),
            });
        }
        if !cfg!(target_endian = "little") {
            return Err(DataError::BadShard {
                path: path.to_owned(),
                why: "big-endian hosts are not supported".into(),
            });
        }
        if verify_checksum {
            let actual = xxhash_rust::xxh3::xxh3_64(&bytes[HEADER_BYTES..]);
            if actual != header.checksum {
                return Err(DataError::CorruptShard {
                    path: path.to_owned(),
                    why: format!(
                        "checksum {actual:016x} does not match the header's {:016x}",
                        header.checksum
                    ),
                });
            }
        }
        Ok(Shard {
            path: path.to_owned(),
            storage,
            header,
        })
    }

    fn payload(&self) -> &[u8] {
        &self.storage.bytes()[HEADER_BYTES..]
    }

    pub fn header(&self) -> &ShardHeader {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.header.tokens
    }

    pub fn is_empty(&self) -> bool {
        self.header.tokens == 0
    }

    pub fn tokens(&self) -> Tokens<'_> {
        // The storage is aligned for u32 and the header is 64 bytes, so the payload is aligned for u16/u32.
        match self.header.dtype {
            TokenDtype::U16 => Tokens::U16(bytemuck::cast_slice(self.payload())),
            TokenDtype::U32 => Tokens::U32(bytemuck::cast_slice(self.payload())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, dtype: TokenDtype, docs: &[&[u32]]) -> PathBuf {
        let path = dir.join("s.tok");
        let mut w = ShardWriter::create(&path, dtype).unwrap();
        for d in docs {
            w.write_document(d).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn round_trip_u16_and_u32() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in [TokenDtype::U16, TokenDtype::U32] {
            let path = write(dir.path(), dtype, &[&[1, 2, 3, 0], &[65535, 0]]);
            let s = Shard::open(&path).unwrap();
            assert_eq!(s.header().documents, 2);
            assert_eq!(s.len(), 6);
            let mut out = vec![0; 6];
            s.tokens().copy_to(0, &mut out);
            assert_eq!(out, [1, 2, 3, 0, 65535, 0]);
        }
    }

    #[test]
    fn truncated_shard_is_rejected_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), TokenDtype::U16, &[&[1, 2, 3, 4]]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let err = Shard::open(&path).err().unwrap().to_string();
        assert!(err.contains("s.tok") && err.contains("truncated"), "{err}");
    }

    #[test]
    fn flipped_byte_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), TokenDtype::U16, &[&[1, 2, 3, 4]]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_BYTES + 1] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = Shard::open(&path).err().unwrap().to_string();
        assert!(err.contains("checksum"), "{err}");
        assert!(Shard::open_unverified(&path).is_ok());
    }

    #[test]
    fn bytes_are_checked_exactly_as_files_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), TokenDtype::U32, &[&[70_000, 1, 0], &[2, 0]]);
        let bytes = std::fs::read(&path).unwrap();
        let s = Shard::from_bytes(&path, &bytes).unwrap();
        let mut out = vec![0; 5];
        s.tokens().copy_to(0, &mut out);
        assert_eq!(out, [70_000, 1, 0, 2, 0]);
        // Every truncation and a flipped byte fail the same way from bytes as from the file.
        for cut in 0..bytes.len() {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let from_file = Shard::open(&path).err().unwrap().to_string();
            let from_bytes = Shard::from_bytes(&path, &bytes[..cut])
                .err()
                .unwrap()
                .to_string();
            assert_eq!(from_file, from_bytes);
        }
        let mut flipped = bytes.clone();
        flipped[HEADER_BYTES] ^= 1;
        let err = Shard::from_bytes(&path, &flipped)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("checksum") && err.contains("s.tok"), "{err}");
    }

    #[test]
    fn wrong_magic_and_tiny_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tok");
        std::fs::write(&path, b"hello").unwrap();
        assert!(Shard::open(&path)
            .err()
            .unwrap()
            .to_string()
            .contains("header"));
        std::fs::write(&path, [7u8; 80]).unwrap();
        assert!(Shard::open(&path)
            .err()
            .unwrap()
            .to_string()
            .contains("magic"));
    }
}
