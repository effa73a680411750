//! rewarm's run folder: the one interface between training and reporting (ARCHITECTURE.md rule 3), as
//! types with no tensors. `rewarm-train` writes these types; `rewarm-report`, `rewarm-plan` and the jobs
//! read them.
//!
//! - [`layout`]: where each file lives ([`RunDir`], [`CheckpointDir`], [`SweepDir`]);
//! - [`records`]: the `metrics.jsonl` records, tagged by `kind`, with a schema version; [`metrics_log`]
//!   appends and reads them, mirroring them into a TensorBoard event file ([`tensorboard`]);
//! - [`PlanFile`] (`plan.json`), [`Environment`] (`environment.json`), [`Baselines`] (`baselines.json`), [`SweepIndex`] (`sweep.json`), [`TrainState`] (a checkpoint's
//!   `state.json`);
//! - [`checkpoints`]: complete checkpoints, retention, safe removal, and the content hashes their `DONE`
//!   records ([`CheckpointDir::verify`]); [`lock`]: one writer per folder;
//! - [`atomic`]: the one way files are written so that a crash never leaves one half-written;
//! - [`fault`]: the reliability tests' fault injection (inert unless `REWARM_FAULT` is set).

pub mod atomic;
mod baselines;
pub mod checkpoints;
mod consumed;
mod content;
mod environment;
mod error;
pub mod fault;
mod json_file;
pub mod layout;
pub mod lock;
pub mod metrics_log;
mod plan_file;
pub mod records;
mod state;
mod sweep_index;
pub mod tensorboard;

pub use baselines::{Baselines, SetBaseline};
pub use consumed::{ConsumedSegment, Consumption, SourceConsumption};
pub use environment::Environment;
pub use error::{Result, RunFolderError};
pub use layout::{step_dir_name, CheckpointDir, RunDir, SweepDir};
pub use lock::RunLock;
pub use metrics_log::MetricsLog;
pub use plan_file::{model_of, PlanFile};
pub use records::{
    EvalRecord, LayerStats, Record, RepresentationRecord, RollbackRecord, TaskRecord, TrainRecord,
};
pub use state::{SpikeWindow, TrainState};
pub use sweep_index::{SweepEntry, SweepIndex};
