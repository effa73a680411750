//! rewarm's training: the loop, AdamW, evaluation on fixed validation sets, checkpoints with bit-exact
//! resume, and the non-finite guard. Tensors live here and in `rewarm-model` only; the run folder's
//! files are `rewarm-runfolder`'s types.
//!
//! - [`train_loop`]: `train` and the `Trainer` it drives; [`open`]: how a run starts; [`step`]: one step's tensor work;
//! - [`resume`]: where a run starts from (checkpoint or `init_from`); [`checkpoint`]: saving and loading
//!   the tensors; [`run_data`]: the sources, mixture and evaluation sets a plan reads;
//! - [`optim`]: AdamW; [`backend`]: device, autocast, fused kernels, data parallelism;
//! - [`spikes`]: the loss-spike guard; [`ema`]: the weights' moving average; [`reptile`]: Reptile's
//!   meta-update (both on [`weight_copy`]); [`observer`]: progress callbacks; [`interrupt`]: stopping early with a checkpoint (SIGTERM);
//!   [`inject`]: the reliability tests' non-finite injection.

pub mod backend;
pub mod checkpoint;
pub mod ema;
pub mod error;
pub mod inject;
pub mod interrupt;
pub mod memory;
pub mod monitor;
pub mod observer;
pub mod open;
pub mod optim;
pub mod perturb;
pub mod reptile;
pub mod resume;
pub mod run_data;
pub mod spikes;
pub mod step;
pub mod tasks;
pub mod train_loop;
pub mod weight_copy;

pub use backend::parse_device;
pub use error::{TrainError, TrainResult};
pub use inject::{InjectSite, Injection};
pub use interrupt::Interrupt;
pub use observer::{NoProgress, Observer, StepRecord};
pub use run_data::open_data;
pub use step::{accumulate_gradients, evaluate_set, window_tensors, Execution};
pub use train_loop::{train, TrainOptions};
