//! `metrics.jsonl`: one JSON object per line (schema in docs/metrics.md). On resume, lines of steps after
//! the checkpoint are dropped before appending, so redone steps are never duplicated.

use crate::error::{TrainError, TrainResult};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const METRICS_FILE: &str = "metrics.jsonl";

pub struct MetricsWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsWriter {
    /// Opens `<run>/metrics.jsonl` for appending, first dropping every line whose `step` is after
    /// `keep_through` (the checkpoint being resumed); `None` (a fresh start) drops every line.
    pub fn open(run_dir: &Path, keep_through: Option<u64>) -> TrainResult<Self> {
        let path = run_dir.join(METRICS_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
            let kept: String = text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                        .is_some_and(|s| keep_through.is_some_and(|k| s <= k))
                })
                .map(|l| format!("{l}\n"))
                .collect();
            if kept.len() != text.len() {
                let tmp = path.with_extension("jsonl.tmp");
                crate::checkpoint::write_synced(&tmp, kept.as_bytes())?;
                std::fs::rename(&tmp, &path).map_err(|e| TrainError::io(&path, e))?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(MetricsWriter { path, file })
    }

    pub fn write(&mut self, record: &serde_json::Value) -> TrainResult<()> {
        let mut line = serde_json::to_string(record).expect("json serializes");
        line.push('\n');
        let mut bytes = line.as_bytes();
        if crate::fault::armed("metrics:mid-line") {
            // Testing aid: a torn line, as a kill or a full disk in the middle of a write leaves.
            let (head, tail) = bytes.split_at(bytes.len() / 2);
            self.file
                .write_all(head)
                .and_then(|()| crate::fault::point("metrics:mid-line"))
                .map_err(|e| TrainError::io(&self.path, e))?;
            bytes = tail;
        }
        self.file
            .write_all(bytes)
            .map_err(|e| TrainError::io(&self.path, e))
    }

    pub fn sync(&mut self) -> TrainResult<()> {
        self.file
            .sync_data()
            .map_err(|e| TrainError::io(&self.path, e))
    }
}

/// Reads every record of a metrics file (for tests and reports).
pub fn read(path: &Path) -> TrainResult<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| TrainError::Checkpoint(format!("{}: bad line ({e})", path.display())))
        })
        .collect()
}
