//! The one error a schedule can report: a field outside its allowed range.

/// A schedule (or batch-size schedule) field that failed validation.
///
/// `field` is a dotted path such as `schedule.warmup`; a caller that holds several schedules
/// re-roots it with [`ScheduleError::under`] (e.g. `stages[1].schedule.warmup`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} = {got}: expected {expected}\nHINT: {hint}")]
pub struct ScheduleError {
    /// Dotted path of the offending field.
    pub field: String,
    /// The value found, as written back to the user.
    pub got: String,
    /// The allowed range or relation.
    pub expected: String,
    /// What to change.
    pub hint: String,
}

impl ScheduleError {
    pub(crate) fn new(
        field: impl Into<String>,
        got: impl std::fmt::Display,
        expected: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            got: got.to_string(),
            expected: expected.into(),
            hint: hint.into(),
        }
    }

    /// Prefixes the field path: `under("stages[1]")` turns `schedule.warmup` into
    /// `stages[1].schedule.warmup`.
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.field = format!("{prefix}.{}", self.field);
        }
        self
    }
}
