//! Errors of the data path. Each names the file (and byte offset or field) and ends with what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a rewarm token shard ({why})\nHINT: re-create it with `rewarm prepare`; shards written by other tools are not readable")]
    BadShard { path: PathBuf, why: String },
    #[error("{path}: shard is corrupted ({why})\nHINT: the file was truncated or modified after `rewarm prepare` wrote it; prepare the source again")]
    CorruptShard { path: PathBuf, why: String },
    #[error("{path}: {why}\nHINT: {fix}")]
    Manifest {
        path: PathBuf,
        why: String,
        fix: String,
    },
    #[error("{path}: invalid UTF-8 at byte offset {offset}\nHINT: re-encode the file as UTF-8, or pass --lossy to replace invalid bytes with U+FFFD")]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("{path}: looks like a binary file (NUL byte at offset {offset})\nHINT: remove it from the inputs or list text files explicitly; if it is UTF-16 or UTF-32 text, re-encode it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)")]
    Binary { path: PathBuf, offset: usize },
    #[error("{path}: is {encoding} text (it starts with that byte-order mark); rewarm reads UTF-8\nHINT: re-encode it, e.g. `iconv -f {iconv} -t UTF-8 IN > OUT`")]
    Encoding {
        path: PathBuf,
        encoding: &'static str,
        iconv: &'static str,
    },
    #[error("{path}:{line}: {why}\nHINT: {fix}")]
    Jsonl {
        path: PathBuf,
        line: usize,
        why: String,
        fix: String,
    },
    #[error("{0}")]
    Input(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Mixture(String),
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Attaches the path to an I/O error.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.into();
    move |source| DataError::Io { path, source }
}
