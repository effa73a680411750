//! What the loop reports as it goes: the binary draws a progress bar from it, tests ignore it.

use rewarm_plan::Plan;
use std::path::Path;

/// Called by the loop at each event; every method does nothing by default.
pub trait Observer {
    fn started(&self, _plan: &Plan, _resumed_from: Option<u64>) {}
    fn step(&self, _record: &StepRecord) {}
    fn eval(&self, _step: u64, _set: &str, _loss: f64) {}
    fn checkpoint(&self, _step: u64, _dir: &Path) {}
    fn note(&self, _message: &str) {}
}

/// An observer that ignores everything.
pub struct NoProgress;
impl Observer for NoProgress {}

/// One optimizer step as the observer sees it.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub step: u64,
    pub stage: String,
    /// Loss, gradient norm and speed are known at read-back steps only (see the loop's `train_step`).
    pub loss: Option<f64>,
    pub lr: f64,
    pub grad_norm: Option<f64>,
    pub tokens: u64,
    pub tokens_per_second: Option<f64>,
}
