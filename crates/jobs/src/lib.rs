//! rewarm's jobs beyond one training run, as a library the binary calls (ARCHITECTURE.md rule 4): loading
//! plans, running sweeps and studies, the quickstart, the batch-size probe, the data-parallel launcher, and a model loaded for
//! inference with its folder's text rules, and the progress display (bars, and the time a sweep has left). The binary parses arguments and
//! prints; everything else is here, with unit tests. How a job trains one run is a [`RunTrainer`]
//! (`LocalTrainer` in the binary, fakes in tests). Training, inference and the training progress display
//! need libtorch and sit behind the default `torch` feature; the rest builds without it.

pub mod branch;
pub mod eta;
#[cfg(feature = "torch")]
pub mod inference;
pub mod launch;
pub mod plan_load;
pub mod probe;
pub mod progress;
pub mod quickstart;
mod runner;
pub mod signals;
pub mod study;
pub mod sweep;
pub use rewarm_data::tasks;
#[cfg(feature = "torch")]
pub mod training;

pub use plan_load::load_plan;
pub use runner::RunTrainer;
pub use signals::Stopped;
#[cfg(feature = "torch")]
pub use training::{train_run, LocalTrainer, TrainRequest};
