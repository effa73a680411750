//! The small JSON files of a run folder that may be absent (written by a later rewarm, or not yet).

use crate::error::{Result, RunFolderError};
use serde::de::DeserializeOwned;
use std::path::Path;

/// The file at `path`, parsed; `None` when it cannot be read (absent). One that does not parse is an
/// error naming the file, with `hint` saying how to get it rewritten.
pub(crate) fn read_if_present<T: DeserializeOwned>(path: &Path, hint: &str) -> Result<Option<T>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| RunFolderError::format(path, e.to_string(), hint))
}
