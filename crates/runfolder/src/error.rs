//! The crate's one error: which file, what is wrong, and what to do.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RunFolderError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that does not hold what rewarm writes there.
    #[error("{path}: {why}\nHINT: {hint}")]
    Format {
        path: PathBuf,
        why: String,
        hint: String,
    },
    /// Another process holds the run folder.
    #[error("{0}")]
    Locked(String),
}

impl RunFolderError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        RunFolderError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub fn format(path: &Path, why: impl Into<String>, hint: impl Into<String>) -> Self {
        RunFolderError::Format {
            path: path.to_owned(),
            why: why.into(),
            hint: hint.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, RunFolderError>;
