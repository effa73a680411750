//! The crate's one error type: every message names the file and the field or tensor, and ends with a HINT.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The GGUF file itself is malformed or uses something rewarm cannot read.
    #[error("{file}: GGUF {what} {problem}\nHINT: {hint}")]
    Gguf {
        file: String,
        /// The field or tensor, e.g. "tensor `blk.0.attn_q.weight`".
        what: String,
        problem: String,
        hint: String,
    },
    /// A well-formed file whose content cannot be converted (unsupported architecture, missing tensor,
    /// inconsistent shapes, pickle checkpoints…).
    #[error("{path}: {problem}\nHINT: {hint}")]
    Invalid {
        path: String,
        problem: String,
        hint: String,
    },
    /// A model description (a Hugging Face config.json) no model can be built from.
    #[error("{path}: {source}")]
    Model {
        path: PathBuf,
        #[source]
        source: rewarm_arch::ConfigError,
    },
    /// A rewarm run folder or checkpoint file that cannot be read.
    #[error(transparent)]
    RunFolder(#[from] rewarm_runfolder::RunFolderError),
}

impl InteropError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        InteropError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub fn gguf(file: &str, what: &str, problem: impl Into<String>, hint: &str) -> Self {
        InteropError::Gguf {
            file: file.to_owned(),
            what: what.to_owned(),
            problem: problem.into(),
            hint: hint.to_owned(),
        }
    }

    pub fn invalid(
        path: impl std::fmt::Display,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        InteropError::Invalid {
            path: path.to_string(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}
