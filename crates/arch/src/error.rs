//! The crate's one error: a model description no model can be built from.

/// A config field has a value no model can be built from; the message names the field and ends with a
/// HINT.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("model config: `{field}` {problem}. HINT: {hint}")]
pub struct ConfigError {
    /// The offending field, spelled as in the config file.
    pub field: &'static str,
    /// What is wrong with its value.
    pub problem: String,
    /// What to change.
    pub hint: String,
}

impl ConfigError {
    pub(crate) fn new(
        field: &'static str,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        ConfigError {
            field,
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}
