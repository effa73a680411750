//! Where the SmolLM2 tests find the model (scripts/fetch-smollm2.sh caches it; they skip without it).

use std::path::PathBuf;

pub const GGUF_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// `$REWARM_SMOLLM2_GGUF`, else `~/.cache/rewarm/models/<GGUF_NAME>`, if that file exists.
pub fn gguf_path() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("REWARM_SMOLLM2_GGUF") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let home = std::env::var_os("HOME")?;
    Some(
        PathBuf::from(home)
            .join(".cache/rewarm/models")
            .join(GGUF_NAME),
    )
    .filter(|p| p.is_file())
}
