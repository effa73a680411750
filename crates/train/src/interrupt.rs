//! A request to stop early, as SIGTERM or SIGINT makes it (a scheduler pre-empting the job, Ctrl-C): the
//! loop finishes the step it is in, writes a checkpoint and returns [`TrainError::Interrupted`], from
//! which running the same command again resumes. The binary connects the signals (`rewarm-jobs`); tests
//! request a stop directly.
//!
//! [`TrainError::Interrupted`]: crate::TrainError::Interrupted

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Shared by whoever asks for the stop (a signal handler) and the loop that honours it.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicUsize>);

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the loop to stop after its current step; `signal` (a signal number, > 0) is reported back.
    pub fn request(&self, signal: i32) {
        self.0.store(signal.max(1) as usize, Ordering::SeqCst);
    }

    /// The signal a stop was asked with, if one was.
    pub fn requested(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }

    /// The value a signal handler sets to the signal's number (`signal_hook::flag::register_usize`).
    pub fn flag(&self) -> Arc<AtomicUsize> {
        self.0.clone()
    }
}
