//! rewarm's plans: config structs, validation, and LR / batch-size schedules as pure functions of
//! progress. No tensors, no I/O beyond parsing.

pub mod config;
pub mod plan;
pub mod schedule;
pub mod study;
pub mod summary;
pub mod sweep;

pub use config::PlanConfig;
pub use plan::{Plan, PlanError, StepInfo};
