//! One trainer per run folder: `LOCK` holds the owner's pid and host, and the owner holds an advisory
//! `flock` on it for as long as it runs (the kernel drops it when the process dies, however it dies). A
//! second `rewarm train` is refused naming the holder; a lock left by a process that no longer runs on
//! this host is taken over. `rewarm sweep` claims runs with the same mechanism under another file name
//! ([`SWEEP_LOCK`]), so two sweeps on one output folder never train the same run.

use crate::error::{Result, RunFolderError};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The trainer's lock file in a run folder.
pub const LOCK: &str = "LOCK";
/// The lock file a sweep holds on a run folder while that run is its to train.
pub const SWEEP_LOCK: &str = "SWEEP_LOCK";

pub struct RunLock {
    path: PathBuf,
    /// Open for as long as we hold the lock: closing it releases the `flock`.
    _file: std::fs::File,
}

pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// `flock(LOCK_EX | LOCK_NB)`: true if we got it, false if another open file holds it. On a file system
/// without `flock` support it says true, and the pid and host in the file are all that protect the lock.
fn try_flock(file: &std::fs::File) -> std::io::Result<bool> {
    // SAFETY: a plain syscall on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::EINVAL) => Ok(true),
        _ => Err(e),
    }
}

/// (pid, host) written in a lock file, if it is readable.
fn holder(text: &str) -> (Option<u32>, String) {
    let mut parts = text.split_whitespace();
    let pid = parts.next().and_then(|p| p.parse().ok());
    (pid, parts.next().unwrap_or("").to_owned())
}

impl RunLock {
    /// Takes `<run_dir>/LOCK` for a trainer.
    pub fn acquire(run_dir: &Path) -> Result<Self> {
        Self::acquire_named(run_dir, LOCK)
    }

    /// Takes the lock file `name` in `run_dir`. It is ours when we hold its `flock` and its text names
    /// no live process on this host but us (a file written by hand, or by a trainer that does not
    /// `flock`, is respected too); a lock naming another host is never taken over.
    pub fn acquire_named(run_dir: &Path, name: &str) -> Result<Self> {
        let path = run_dir.join(name);
        let me = format!("{} {}\n", std::process::id(), host());
        let refuse = |text: &str| {
            let (pid, their_host) = holder(text);
            RunFolderError::Locked(format!(
                "{}: run folder in use by pid {} on {}\nHINT: wait for it to finish, stop it, or train into another --run folder",
                run_dir.display(),
                pid.map_or("?".into(), |p| p.to_string()),
                if their_host.is_empty() { "unknown host" } else { &their_host }
            ))
        };
        for _ in 0..100 {
            let mut file = crate::atomic::open_in_place(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false),
                &path,
            )?;
            if !try_flock(&file).map_err(|e| RunFolderError::io(&path, e))? {
                // Held by a live process. Its text may be a moment away (it is written after the flock).
                let mut text = String::new();
                for _ in 0..20 {
                    text = std::fs::read_to_string(&path).unwrap_or_default();
                    if holder(&text).0.is_some() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                return Err(refuse(&text));
            }
            // We hold the flock, but of the file we opened: if its holder removed it meanwhile (a
            // finished trainer unlinks it, then unlocks), start over on the current file.
            let same = std::fs::metadata(&path)
                .ok()
                .zip(file.metadata().ok())
                .is_some_and(|(p, f)| p.ino() == f.ino() && p.dev() == f.dev());
            if !same {
                continue;
            }
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let (pid, their_host) = holder(&text);
            if let Some(pid) = pid {
                let elsewhere = their_host != host();
                let live_other = !elsewhere && pid != std::process::id() && alive(pid);
                if elsewhere || live_other {
                    return Err(refuse(&text));
                }
            }
            // Empty (a holder killed before it wrote), or a dead process on this host: ours now.
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(me.as_bytes()))
                .and_then(|()| file.sync_all())
                .map_err(|e| RunFolderError::io(&path, e))?;
            return Ok(RunLock { path, _file: file });
        }
        Err(RunFolderError::Locked(format!(
            "{}: could not take the lock (it kept being replaced)",
            path.display()
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Unlink first, then unlock (when the file closes): a waiter that got the flock of the unlinked
        // file sees that the path no longer names it and starts over.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_and_is_free_again_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK)).unwrap();
        assert_eq!(text, format!("{} {}\n", std::process::id(), host()));
        // Another open file description: flock refuses it although the text names this very process.
        let err = RunLock::acquire(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        // Another name is another lock.
        let claim = RunLock::acquire_named(dir.path(), SWEEP_LOCK).unwrap();
        drop(first);
        assert!(!dir.path().join(LOCK).exists());
        let again = RunLock::acquire(dir.path()).unwrap();
        drop((again, claim));
        assert!(!dir.path().join(SWEEP_LOCK).exists());
    }

    #[test]
    fn an_empty_lock_file_without_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK), "").unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert!(std::fs::read_to_string(dir.path().join(LOCK))
            .unwrap()
            .starts_with(&std::process::id().to_string()));
        drop(lock);
    }

    #[test]
    fn racing_takeovers_of_a_stale_lock_have_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..20 {
            // A pid that is not running (pid_max is far below u32::MAX / 2).
            std::fs::write(
                dir.path().join(LOCK),
                format!("{} {}\n", u32::MAX / 2 + round, host()),
            )
            .unwrap();
            let barrier = std::sync::Barrier::new(4);
            let winners: Vec<RunLock> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            RunLock::acquire(dir.path()).ok()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect()
            });
            assert_eq!(winners.len(), 1, "round {round}");
        }
    }
}
