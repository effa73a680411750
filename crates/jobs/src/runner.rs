//! How a job trains one run: the caller decides (the binary trains in its own process with a progress
//! bar, or starts itself as a child process; tests stand in a fake), so that the jobs' logic — which runs
//! to train, claiming, skipping, failing — is a library that unit tests reach.

use anyhow::Result;
use std::path::Path;
use std::process::Command;

pub trait RunTrainer {
    /// Trains the plan at `plan` into the run folder `run` in this process (resuming it if it holds a
    /// checkpoint).
    fn train(&self, plan: &Path, run: &Path) -> Result<()>;

    /// The command that trains `plan` into `run` in a child process with `threads` torch threads (a
    /// sweep's `--parallel`).
    fn command(&self, plan: &Path, run: &Path, threads: usize) -> Result<Command>;
}
