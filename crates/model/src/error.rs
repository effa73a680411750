//! The crate's one error type: every message names what is wrong and ends with a HINT.

/// Errors from validating a [`crate::ModelConfig`], checking model inputs, reading or writing weights,
/// or libtorch itself.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A config field has a value no model can be built from.
    #[error(transparent)]
    Config(#[from] rewarm_arch::ConfigError),
    /// A tensor passed to `forward` or `loss` has the wrong shape or type.
    #[error("model input: {problem}. HINT: {hint}")]
    Input {
        /// What is wrong with the tensor.
        problem: String,
        /// What to change.
        hint: String,
    },
    /// Weights that cannot be read or written: a missing, damaged or mismatched file, a pickle, a
    /// folder holding no weights. The message names the file and ends with a HINT.
    #[error("{0}")]
    Weights(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// libtorch refused an operation (out of memory, unsupported device, ...).
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl ModelError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn input(problem: impl Into<String>, hint: impl Into<String>) -> Self {
        ModelError::Input {
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}
