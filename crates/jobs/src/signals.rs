//! SIGTERM and SIGINT (a scheduler pre-empting the job, Ctrl-C): the first asks the run to finish its
//! step and write a checkpoint, a second ends the process at once, with status 128 + the signal as the
//! default action would. A run stopped this way ends with [`Stopped`], which the binary prints as a note,
//! not an error, and exits with that same status, so a script can tell "stopped, resumable" from "done".

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The signals that stop a run.
pub const STOP_SIGNALS: [i32; 2] = [libc::SIGTERM, libc::SIGINT];

/// A run (or every rank of a launch) stopped early by `signal`, its checkpoint written.
#[derive(Debug)]
pub struct Stopped {
    pub signal: i32,
    pub message: String,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Stopped {}

impl Stopped {
    /// The exit status of a process a signal ended (the shell's convention).
    pub fn exit_status(&self) -> u8 {
        (128 + self.signal.clamp(0, 127)) as u8
    }
}

/// Sets `flag` to the number of the signal that arrives, from now on; a second one exits at once.
pub fn on_stop_signals(flag: Arc<AtomicUsize>) -> std::io::Result<()> {
    let seen = Arc::new(AtomicBool::new(false));
    for signal in STOP_SIGNALS {
        // The order matters: the shutdown does nothing on the first signal, which then arms it.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, seen.clone())?;
        signal_hook::flag::register(signal, seen.clone())?;
        signal_hook::flag::register_usize(signal, flag.clone(), signal as usize)?;
    }
    Ok(())
}

/// `SIGTERM`, `SIGINT`, … by number; 0 is a stop asked by another process of a data-parallel group.
pub fn signal_name(signal: i32) -> String {
    match signal {
        0 => "a signal to another process of the group".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        s => format!("signal {s}"),
    }
}

/// The signal that arrived since the last call, if one did (for a flag [`on_stop_signals`] sets).
pub fn take(flag: &AtomicUsize) -> Option<i32> {
    match flag.swap(0, Ordering::SeqCst) {
        0 => None,
        s => Some(s as i32),
    }
}

/// This process's [`rewarm_train::Interrupt`], connected to SIGTERM and SIGINT on first use (once per
/// process: runs trained one after another share it).
#[cfg(feature = "torch")]
pub fn interrupt() -> std::io::Result<rewarm_train::Interrupt> {
    static INTERRUPT: std::sync::Mutex<Option<rewarm_train::Interrupt>> =
        std::sync::Mutex::new(None);
    let mut slot = INTERRUPT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = &*slot {
        return Ok(i.clone());
    }
    let i = rewarm_train::Interrupt::new();
    on_stop_signals(i.flag())?;
    *slot = Some(i.clone());
    Ok(i)
}
