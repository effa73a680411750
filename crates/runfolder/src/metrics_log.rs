//! Appending to and reading `metrics.jsonl`. On resume, lines of steps after the checkpoint are dropped
//! before appending, so redone steps are never duplicated; a reader skips a torn last line (a crash in
//! the middle of a write) and refuses any other damaged line, naming it.

use crate::atomic::write_atomic;
use crate::error::{Result, RunFolderError};
use crate::records::{Line, Record, SCHEMA_VERSION};
use crate::tensorboard::EventFile;
use crate::RunDir;
use std::path::{Path, PathBuf};

pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
    /// The same records for TensorBoard.
    events: EventFile,
}

impl MetricsLog {
    /// Opens the run's metrics.jsonl for appending, first dropping every line whose step is after
    /// `keep_through` (the checkpoint being resumed); `None` (a fresh start) drops every line. The
    /// TensorBoard event file is written afresh from the lines kept.
    pub fn open(run: &RunDir, keep_through: Option<u64>) -> Result<Self> {
        let path = run.metrics();
        crate::atomic::refuse_link(&path)?;
        Self::truncate(&path, keep_through)?;
        let kept = if path.exists() {
            read(&path)?
        } else {
            Vec::new()
        };
        let events = EventFile::rewrite(run, &kept)?;
        let file = crate::atomic::open_in_place(
            std::fs::OpenOptions::new().create(true).append(true),
            &path,
        )?;
        Ok(MetricsLog { path, file, events })
    }

    /// Drops every line of the file at `path` whose step is after `keep_through` (every line for `None`).
    fn truncate(path: &Path, keep_through: Option<u64>) -> Result<()> {
        if path.exists() {
            let bytes = std::fs::read(path).map_err(|e| RunFolderError::io(path, e))?;
            let kept: String = whole_lines(path, &bytes)?
                .into_iter()
                .filter(|l| {
                    let step = serde_json::from_str::<Line>(l)
                        .ok()
                        .and_then(|l| l.record.step());
                    step.is_some_and(|s| keep_through.is_some_and(|k| s <= k))
                })
                .map(|l| format!("{l}\n"))
                .collect();
            if kept.len() != bytes.len() {
                write_atomic(path, kept.as_bytes()).map_err(|e| RunFolderError::io(path, e))?;
            }
        }
        Ok(())
    }

    /// Appends one record under the current schema version (and its scalars to the event file).
    pub fn write(&mut self, record: Record) -> Result<()> {
        self.events.write(&record)?;
        let line = Line {
            schema: SCHEMA_VERSION,
            record,
        };
        let mut text = serde_json::to_string(&line).expect("records serialize");
        text.push('\n');
        crate::fault::write_all(&mut self.file, text.as_bytes(), "metrics:mid-line")
            .map_err(|e| RunFolderError::io(&self.path, e))
    }

    /// Makes the lines written so far durable (before a checkpoint that refers to them).
    pub fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| RunFolderError::io(&self.path, e))
    }
}

/// The lines of a metrics file. A last line without its newline that is not a whole record — a crash in
/// the middle of a write, possibly inside a multi-byte character — is left out; a damaged byte anywhere
/// else is an error naming its offset.
fn whole_lines<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<&'a str>> {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let (body, tail) = bytes.split_at(end);
    let body = std::str::from_utf8(body).map_err(|e| {
        RunFolderError::format(
            path,
            format!("byte {}: not UTF-8", e.valid_up_to()),
            "metrics.jsonl holds one JSON object per line; restore or remove the damaged line",
        )
    })?;
    let mut lines: Vec<&str> = body.lines().collect();
    let whole = |t: &&str| serde_json::from_str::<Line>(t).is_ok();
    if let Some(tail) = std::str::from_utf8(tail).ok().filter(whole) {
        lines.push(tail);
    }
    Ok(lines)
}

/// Every record of a metrics file, in order, leaving out kinds this build does not know.
pub fn read(path: &Path) -> Result<Vec<Record>> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RunFolderError::format(
            path,
            e.to_string(),
            "the run has not logged anything yet: train it first (`rewarm train PLAN --run DIR`)",
        ),
        _ => RunFolderError::io(path, e),
    })?;
    parse(path, &bytes)
}

/// Every record of the bytes of a metrics file read from `path` (named in errors), as [`read`] gives them.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Record>> {
    let lines = whole_lines(path, bytes)?;
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = match serde_json::from_str(line) {
            Ok(l) => l,
            Err(e) => return Err(RunFolderError::format(
                path,
                format!("line {}: {e}", i + 1),
                "metrics.jsonl holds one JSON object per line; restore or remove the damaged line",
            )),
        };
        if parsed.schema > SCHEMA_VERSION {
            return Err(RunFolderError::format(
                path,
                format!(
                    "line {}: schema {} is newer than this rewarm reads ({SCHEMA_VERSION})",
                    i + 1,
                    parsed.schema
                ),
                "read it with the rewarm version that wrote it, or a newer one",
            ));
        }
        if parsed.record != Record::Unknown {
            records.push(parsed.record);
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RollbackRecord;

    fn rollback(step: u64) -> Record {
        Record::Rollback(RollbackRecord {
            step,
            failed_step: step + 1,
            lr_scale: 1.0,
        })
    }

    #[test]
    fn resume_drops_later_steps_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let mut log = MetricsLog::open(&run, None).unwrap();
        for step in 1..=5 {
            log.write(rollback(step)).unwrap();
        }
        drop(log);
        let mut log = MetricsLog::open(&run, Some(3)).unwrap();
        log.write(rollback(4)).unwrap();
        let steps: Vec<u64> = read(&run.metrics())
            .unwrap()
            .iter()
            .filter_map(Record::step)
            .collect();
        assert_eq!(steps, [1, 2, 3, 4]);
        // The TensorBoard file says the same: its version, then steps 1–4 once each.
        let events = crate::tensorboard::read_events(log.events.path()).unwrap();
        let steps: Vec<i64> = events.iter().map(|e| e.step).collect();
        assert_eq!(steps, [0, 1, 2, 3, 4]);
        assert_eq!(
            std::fs::read_dir(run.tensorboard()).unwrap().count(),
            1,
            "one event file"
        );
        drop(log);
        MetricsLog::open(&run, None).unwrap();
        assert!(read(&run.metrics()).unwrap().is_empty());
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_other_damage_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let good = r#"{"kind":"rollback","step":1,"failed_step":2,"lr_scale":0.5}"#;
        std::fs::write(&path, format!("{good}\n{{\"kind\":\"ro")).unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("{{\"kind\"\n{good}\n")).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("HINT"), "{e}");
        std::fs::write(&path, format!("{}\n", good.replace("{", "{\"schema\":99,"))).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("schema 99"));
        // A whole record whose newline was not written yet is kept.
        std::fs::write(&path, format!("{good}\n{good}")).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
    }

    /// A crash can cut the last line inside a multi-byte character: the report skips it and resume drops it
    /// (the file is not valid UTF-8 until then); a bad byte on an earlier line is named by offset.
    #[test]
    fn a_line_torn_inside_a_utf8_character_is_dropped_on_resume_and_skipped_by_readers() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let good = r#"{"kind":"rollback","step":1,"failed_step":2,"lr_scale":0.5}"#;
        let mut bytes = format!("{good}\n{{\"kind\":\"eval\",\"set\":\"").into_bytes();
        bytes.push("ü".as_bytes()[0]);
        std::fs::write(run.metrics(), &bytes).unwrap();
        assert_eq!(read(&run.metrics()).unwrap().len(), 1);
        MetricsLog::open(&run, Some(1)).unwrap();
        assert_eq!(
            std::fs::read_to_string(run.metrics()).unwrap(),
            format!("{good}\n")
        );
        let mut bad = vec![b'{', 0xff, b'}', b'\n'];
        bad.extend_from_slice(format!("{good}\n").as_bytes());
        std::fs::write(run.metrics(), &bad).unwrap();
        let e = read(&run.metrics()).unwrap_err().to_string();
        assert!(e.contains("byte 1: not UTF-8") && e.contains("HINT"), "{e}");
    }
}
