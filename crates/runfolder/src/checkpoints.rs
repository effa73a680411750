//! Which checkpoints a run folder holds, and removing them safely. A checkpoint is written under a
//! temporary name (`.step_XXXXXXXX.partial-<pid>`), finished by `DONE`, and renamed into place (by
//! `rewarm-train`); loaders ignore any folder without `DONE` (llm.c habit), so a crash mid-write never
//! leaves a checkpoint that looks complete.

use crate::atomic::sync_dir;
use crate::error::{Result, RunFolderError};
use crate::{CheckpointDir, RunDir};
use std::path::Path;

impl RunDir {
    /// Complete checkpoints (those with `DONE`), oldest first.
    pub fn complete_checkpoints(&self) -> Vec<CheckpointDir> {
        let Ok(entries) = std::fs::read_dir(self.checkpoints()) else {
            return Vec::new();
        };
        let mut found: Vec<CheckpointDir> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let step = name.strip_prefix("step_")?.parse().ok()?;
                let ckpt = CheckpointDir {
                    step,
                    path: e.path(),
                };
                ckpt.done().is_file().then_some(ckpt)
            })
            .collect();
        found.sort_by_key(|c| c.step);
        found
    }

    /// The newest complete checkpoint.
    pub fn latest_checkpoint(&self) -> Option<CheckpointDir> {
        self.complete_checkpoints().pop()
    }

    /// The newest complete checkpoint's step, if it reaches `total_steps`: the run is finished.
    pub fn finished(&self, total_steps: u64) -> bool {
        self.latest_checkpoint()
            .is_some_and(|c| c.step >= total_steps)
    }

    /// Removes checkpoint folders a killed writer left half-written (call while holding the run lock).
    pub fn remove_partial_checkpoints(&self) {
        let Ok(entries) = std::fs::read_dir(self.checkpoints()) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().contains(".partial-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// The temporary folder a new checkpoint of `step` is written in before it is renamed into place.
    pub fn partial_checkpoint(&self, step: u64) -> std::path::PathBuf {
        let name = crate::step_dir_name(step);
        self.checkpoints()
            .join(format!(".{name}.partial-{}", std::process::id()))
    }
}

/// Deletes a checkpoint folder without ever leaving a half-deleted folder under a checkpoint's name: it
/// is first renamed to `.step_XXXXXXXX.partial-delete-<pid>` (atomic; loaders ignore that name and the
/// next start removes it if this process dies first), then removed.
pub fn remove(dir: &Path) -> Result<()> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let aside = dir.with_file_name(format!(".{name}.partial-delete-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::rename(dir, &aside).map_err(|e| RunFolderError::io(dir, e))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent).map_err(|e| RunFolderError::io(parent, e))?;
    }
    crate::fault::point("retention:mid-delete").map_err(|e| RunFolderError::io(&aside, e))?;
    std::fs::remove_dir_all(&aside).map_err(|e| RunFolderError::io(&aside, e))
}

/// Keep or delete, for one checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retain {
    Keep,
    Delete,
}

/// Which checkpoints to keep: the newest `keep_last`, every stage end if `keep_stage_ends`, and always the
/// newest one (so retention never deletes the last complete checkpoint). Pure: `steps` sorted ascending.
pub fn retention(
    steps: &[u64],
    is_stage_end: impl Fn(u64) -> bool,
    keep_last: usize,
    keep_stage_ends: bool,
) -> Vec<(u64, Retain)> {
    let n = steps.len();
    steps
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let newest = i + keep_last.max(1) >= n;
            let keep = newest || (keep_stage_ends && is_stage_end(s));
            (s, if keep { Retain::Keep } else { Retain::Delete })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_newest_and_stage_ends() {
        let steps = [10, 20, 30, 40, 50];
        let plan = retention(&steps, |s| s == 20, 2, true);
        let kept: Vec<u64> = plan
            .iter()
            .filter(|(_, r)| *r == Retain::Keep)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(kept, [20, 40, 50]);
        // keep_last = 0 still keeps the newest complete checkpoint.
        let plan = retention(&steps, |_| false, 0, false);
        assert_eq!(plan.iter().filter(|(_, r)| *r == Retain::Keep).count(), 1);
        assert_eq!(plan[4], (50, Retain::Keep));
    }

    #[test]
    fn folders_without_done_are_not_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        for (step, done) in [(7, true), (9, false), (3, true)] {
            let c = run.checkpoint(step);
            std::fs::create_dir_all(&c.path).unwrap();
            if done {
                std::fs::write(c.done(), b"").unwrap();
            }
        }
        let steps: Vec<u64> = run.complete_checkpoints().iter().map(|c| c.step).collect();
        assert_eq!(steps, [3, 7]);
        assert!(run.finished(7) && !run.finished(8));
        remove(&run.checkpoint(7).path).unwrap();
        assert_eq!(run.latest_checkpoint().unwrap().step, 3);
    }
}
