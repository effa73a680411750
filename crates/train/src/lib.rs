//! rewarm's training: the loop, AdamW, evaluation on fixed validation sets, metrics, atomic checkpoints
//! with bit-exact resume, and the non-finite guard. Tensors live here and in `rewarm-model` only.

pub mod autocast;
pub mod bench;
pub mod checkpoint;
pub mod cuda;
pub mod dist;
pub mod error;
pub mod fault;
pub mod host_memory;
pub mod lock;
pub mod metrics;
pub mod optim;
pub mod pretrained;
pub mod setup;
pub mod step;
pub mod trainer;

pub use error::{TrainError, TrainResult};
pub use setup::{open_data, resolve_model};
pub use step::{accumulate_gradients, evaluate_set, window_tensors, StepMode};
pub use trainer::{train, InjectSite, Injection, Observer, Silent, StepRecord, TrainOptions};
