//! The crate's one error type: every message names what is wrong and ends with a HINT.

/// Errors from validating a [`crate::ModelConfig`], checking model inputs, or libtorch itself.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A config field has a value no model can be built from.
    #[error("model config: `{field}` {problem}. HINT: {hint}")]
    Config {
        /// The offending field, spelled as in the config file.
        field: &'static str,
        /// What is wrong with its value.
        problem: String,
        /// What to change.
        hint: String,
    },
    /// A tensor passed to `forward` or `loss` has the wrong shape or type.
    #[error("model input: {problem}. HINT: {hint}")]
    Input {
        /// What is wrong with the tensor.
        problem: String,
        /// What to change.
        hint: String,
    },
    /// libtorch refused an operation (out of memory, unsupported device, ...).
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl ModelError {
    pub(crate) fn config(
        field: &'static str,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        ModelError::Config {
            field,
            problem: problem.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn input(problem: impl Into<String>, hint: impl Into<String>) -> Self {
        ModelError::Input {
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}
