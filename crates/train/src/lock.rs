//! One trainer per run folder: `LOCK` holds the owner's pid and host. A second `rewarm train` is refused
//! naming the holder; a lock left by a process that no longer runs on this host is taken over.

use crate::error::{TrainError, TrainResult};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RunLock {
    path: PathBuf,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl RunLock {
    pub fn acquire(run_dir: &Path) -> TrainResult<Self> {
        let path = run_dir.join("LOCK");
        let me = format!("{} {}\n", std::process::id(), host());
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(me.as_bytes())
                        .map_err(|e| TrainError::io(&path, e))?;
                    f.sync_all().map_err(|e| TrainError::io(&path, e))?;
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut parts = text.split_whitespace();
                    let pid: Option<u32> = parts.next().and_then(|p| p.parse().ok());
                    let their_host = parts.next().unwrap_or("").to_owned();
                    // A file without a pid was left by a crash between creating and writing it (given a
                    // moment, since its writer may be about to fill it in).
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    let unreadable = pid.is_none() && age.is_some_and(|a| a.as_secs() >= 2);
                    let dead = their_host == host()
                        && pid.is_some_and(|p| !alive(p) || p == std::process::id());
                    let stale = unreadable || dead;
                    if !stale {
                        return Err(TrainError::Locked(format!(
                            "{}: run folder in use by pid {} on {}\nHINT: wait for it to finish, stop it, or train into another --run folder",
                            run_dir.display(),
                            pid.map_or("?".into(), |p| p.to_string()),
                            if their_host.is_empty() { "unknown host" } else { &their_host }
                        )));
                    }
                    // Stale: its process is gone. Remove it and retry the atomic create.
                    std::fs::remove_file(&path).map_err(|e| TrainError::io(&path, e))?;
                }
                Err(e) => return Err(TrainError::io(&path, e)),
            }
        }
        Err(TrainError::Locked(format!(
            "{}: could not take the lock",
            path.display()
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
