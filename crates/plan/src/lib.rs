//! rewarm's plans: config structs, validation, and LR / batch-size schedules as pure functions of
//! progress. No tensors, no I/O beyond parsing.

pub mod config;
pub mod extend;
mod load;
pub mod mixture;
pub mod resolved;
pub mod schedule;
pub mod study;
pub mod summary;
pub mod sweep;
mod validate;

pub use config::PlanConfig;
pub use load::{plan_file, PlanFile};
pub use resolved::{Plan, StepInfo};
pub use rewarm_arch::{ModelConfig, ModelTable};
pub use validate::PlanError;
