//! Errors of training: each says what failed, where, and what to do.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Data(#[from] rewarm_data::DataError),
    #[error(transparent)]
    Plan(#[from] rewarm_plan::PlanError),
    #[error(transparent)]
    Model(#[from] rewarm_model::ModelError),
    #[error(transparent)]
    RunFolder(#[from] rewarm_runfolder::RunFolderError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("{0}")]
    Config(String),
    #[error("data parallel: {0}")]
    Distributed(String),
    #[error("could not write the checkpoint of step {step}: {cause}\nHINT: {hint}")]
    CheckpointWrite {
        step: u64,
        cause: Box<TrainError>,
        hint: String,
    },
    #[error("stopped by signal {signal} after step {step} of {total_steps}; its checkpoint is written\nHINT: run the same command again to resume from step {step}")]
    Interrupted {
        step: u64,
        total_steps: u64,
        /// The signal's number (0: another process of the group was signalled).
        signal: i32,
    },
    #[error("non-finite {what} at step {step} (stage `{stage}`, lr {lr:.3e})\nHINT: lower the stage's max_lr, raise optimizer.clip's strictness, check the data; or set guard.non_finite = \"rollback\" to restart from the last checkpoint with a lower LR. Nothing non-finite was saved.")]
    NonFinite {
        what: String,
        step: u64,
        stage: String,
        lr: f64,
    },
}

impl TrainError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

pub type TrainResult<T> = Result<T, TrainError>;
