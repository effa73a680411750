//! Where a run starts from: its newest complete checkpoint (resume: weights, Adam moments and counters,
//! under the plan it was started with, or one that leaves the steps run as they were, and the same data), or a fresh
//! start whose weights may come from `init_from` (weights only). Resume and `init_from` are different
//! things: docs/plan.md; extending a run: docs/checkpoints.md.

use crate::backend::dist::ProcessGroup;
use crate::checkpoint;
use crate::error::{TrainError, TrainResult};
use crate::observer::Observer;
use crate::optim::AdamW;
use crate::run_data::Data;
use rewarm_plan::extend::{self, Extension};
use rewarm_plan::Plan;
use rewarm_runfolder::{CheckpointDir, RunDir, TrainState};
use tch::nn;

/// A checkpoint to resume from, and how this plan extends the one it was written under (nothing
/// appended: the same plan).
pub struct Resume {
    pub ckpt: CheckpointDir,
    pub extension: Extension,
}

/// The checkpoint a run resumes from, if any, after the writer has removed what a killed writer left
/// half-written: the newest complete one whose files match the hashes its `DONE` recorded. A damaged one
/// is passed over for the one before it, and `observer` is told why. A checkpoint made under another
/// plan is refused, naming the first field that differs, unless `plan` leaves the steps the checkpoint
/// ran as they were (it may change, append or stop stages after them: `rewarm_plan::extend`).
pub fn checkpoint_to_resume(
    run: &RunDir,
    writer: bool,
    group: Option<&ProcessGroup>,
    plan: &Plan,
    observer: &dyn Observer,
) -> TrainResult<Option<Resume>> {
    if writer {
        run.remove_partial_checkpoints();
    }
    if let Some(g) = group {
        g.barrier()?; // the others read checkpoints once rank 0 has tidied the folder
    }
    let Some(latest) = newest_intact(run, observer)? else {
        return Ok(None);
    };
    let extension =
        extend::check(&checkpoint::plan_json(&latest)?, plan, latest.step).map_err(|e| {
            TrainError::Config(format!(
                "{}: this run folder was trained with a different plan (saved in {}): {e}",
                run.root().display(),
                latest.path.join("plan.json").display()
            ))
        })?;
    Ok(Some(Resume {
        ckpt: latest,
        extension,
    }))
}

/// The newest complete checkpoint that verifies; each damaged one passed over is reported. `None` when
/// there is no checkpoint; an error when there are some and every one is damaged (starting over would
/// silently discard the run).
fn newest_intact(run: &RunDir, observer: &dyn Observer) -> TrainResult<Option<CheckpointDir>> {
    let mut candidates = run.complete_checkpoints();
    let mut last_error = None;
    while let Some(ckpt) = candidates.pop() {
        match ckpt.verify() {
            Ok(()) => return Ok(Some(ckpt)),
            Err(e) => {
                if let Some(older) = candidates.last() {
                    observer.note(&format!(
                        "checkpoint at step {} is damaged, resuming from step {} instead: {e}",
                        ckpt.step, older.step
                    ));
                }
                last_error = Some(e);
            }
        }
    }
    match last_error {
        None => Ok(None),
        Some(e) => Err(TrainError::Config(format!(
            "{}: every checkpoint is damaged, the newest because {e}\nHINT: restore the checkpoints from a copy, or move {} away to train the run from the start",
            run.root().display(),
            run.checkpoints().display()
        ))),
    }
}

/// The state the loop starts in: the checkpoint's (loaded into `vs` and `opt`), or step 0 with the
/// weights of `init_from` when the plan names one. The sources the checkpoint was trained on must hold
/// the same data; from here on the state fingerprints all of this plan's.
pub fn starting_state(
    plan: &Plan,
    resume: Option<&Resume>,
    vs: &nn::VarStore,
    opt: &mut AdamW,
    data: &Data,
) -> TrainResult<TrainState> {
    let Some(Resume { ckpt, extension }) = resume else {
        if let Some(init) = &plan.config.init_from {
            rewarm_model::pretrained::init_weights(&plan.base_dir.join(init), vs, &plan.model)?;
        }
        return Ok(TrainState::start(data.fingerprint.clone()));
    };
    let mut state = checkpoint::load(ckpt, vs, opt)?;
    if state.data_fingerprint != data.fingerprint_of(plan, &extension.sources_then) {
        return Err(TrainError::Config(format!(
            "{}: the sources' data changed since this checkpoint was written\nHINT: restore the prepared folders it was trained on, or start a new run",
            ckpt.path.display()
        )));
    }
    state.data_fingerprint = data.fingerprint.clone();
    Ok(state)
}
