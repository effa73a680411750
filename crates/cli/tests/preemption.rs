//! Pre-emption of the `rewarm` binary (docs/reliability.md): SIGTERM and SIGINT to one process and to a
//! data-parallel launch finish the step, checkpoint it and exit 128 + the signal; resuming is bit-identical
//! to a run never stopped. The signals land at known steps: the processes stop themselves there first
//! (fault action `stop`), so no timing decides the outcome.

mod common;
use common::faults::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Starts `rewarm train` on `dir`'s plan, waits until it stops itself at step `at` (fault action `stop`,
/// so the signals land at a known step), sends it `signals`, continues it and returns its output.
fn signalled_at_step(dir: &Path, run: &Path, at: u64, signals: &[i32]) -> Output {
    let fault = format!("step:after-update@{at}=stop");
    let mut cmd = train_cmd(dir, run, &[], Some(&fault));
    let mut child = KillOnDrop(Some(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let pid = child.child().id();
    wait_until_stopped(pid);
    for &signal in signals.iter().chain(&[libc::SIGCONT]) {
        // SAFETY: kill on the pid of a child we have not reaped.
        assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    }
    child.wait()
}

/// SIGTERM during step 5 of 12: the run finishes that step, checkpoints it, says how to resume (a note,
/// not an error) and exits with 143 (128 + SIGTERM) like a process the signal ended; running the same
/// command again ends bit-identical to an uninterrupted run.
#[test]
fn sigterm_checkpoints_the_step_and_resuming_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 6);
    let straight = dir.path().join("straight");
    train_ok(dir.path(), &straight, &[]);
    let run = dir.path().join("run");
    let out = signalled_at_step(dir.path(), &run, 5, &[libc::SIGTERM]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    for words in [
        "stopped by SIGTERM after step 5 of 12",
        "run the same command again",
    ] {
        assert!(stderr.contains(words), "no `{words}` in:\n{stderr}");
    }
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(complete(&run).last(), Some(&5));
    assert_checkpoints_whole(&run);
    train_ok(dir.path(), &run, &[]);
    assert_same_outcome(&outcome(&run, 12), &outcome(&straight, 12));
}

/// A second signal ends the run at once (SIGINT and SIGTERM arrive together): no checkpoint of that
/// step, nothing half-written, and the run resumes from the one before to the same end.
#[test]
fn a_second_signal_exits_at_once_and_the_run_still_resumes() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 6);
    let straight = dir.path().join("straight");
    train_ok(dir.path(), &straight, &[]);
    let run = dir.path().join("run");
    let out = signalled_at_step(dir.path(), &run, 3, &[libc::SIGTERM, libc::SIGINT]);
    let code = out.status.code();
    assert!(
        matches!(code, Some(130 | 143)),
        "{code:?}: {}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("stopped by"));
    assert_eq!(
        complete(&run),
        [2],
        "the checkpoint before the signals, and no other"
    );
    assert_checkpoints_whole(&run);
    train_ok(dir.path(), &run, &[]);
    assert_same_outcome(&outcome(&run, 12), &outcome(&straight, 12));
}

/// `rewarm launch --nproc 2 -- train …` in `dir`, with `REWARM_FAULT` if given (every rank inherits it).
fn launch_cmd(dir: &Path, run: &Path, fault: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rewarm"));
    cmd.current_dir(dir)
        .args([
            "launch",
            "--nproc",
            "2",
            "--",
            "train",
            "plan.toml",
            "--device",
            "cpu",
            "--run",
        ])
        .arg(run)
        .env_remove("REWARM_FAULT")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if let Some(f) = fault {
        cmd.env("REWARM_FAULT", f);
    }
    cmd
}

/// The processes whose parent is `pid`, waiting until there are `n` of them.
fn children_of(pid: u32, n: usize) -> Vec<u32> {
    let started = Instant::now();
    loop {
        let children: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                let ppid = stat
                    .rsplit_once(") ")
                    .and_then(|(_, r)| r.split(' ').nth(1));
                ppid == Some(&pid.to_string())
            })
            .collect();
        if children.len() == n {
            return children;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{pid} has {children:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `signal` is pending for process `pid` (its `ShdPnd` mask in /proc/PID/status).
fn wait_until_pending(pid: u32, signal: i32) {
    let started = Instant::now();
    let pending = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let mask = status.lines().find_map(|l| l.strip_prefix("ShdPnd:"));
        mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & (1 << (signal - 1)) != 0)
    };
    while !pending() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "signal {signal} never reached {pid}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Data parallel: SIGTERM to the launcher while both ranks are in step 5 (each stopped itself there) is
/// passed on to them once; they agree to stop after step 5, rank 0 checkpoints it, the launcher exits
/// with 143 saying so, and the same command resumes to the end of a two-process run never stopped.
#[test]
fn sigterm_to_a_launch_stops_every_rank_after_the_same_step_with_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 6);
    let straight = dir.path().join("straight");
    assert!(launch_cmd(dir.path(), &straight, None)
        .status()
        .unwrap()
        .success());
    let run = dir.path().join("run");
    let mut launcher = KillOnDrop(Some(
        launch_cmd(dir.path(), &run, Some("step:after-update@5=stop"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let ranks = children_of(launcher.child().id(), 2);
    ranks.iter().for_each(|&r| wait_until_stopped(r));
    // SAFETY: kill on pids of live processes this test started (the launcher and its ranks).
    unsafe { libc::kill(launcher.child().id() as i32, libc::SIGTERM) };
    for &r in &ranks {
        wait_until_pending(r, libc::SIGTERM);
        assert_eq!(unsafe { libc::kill(r as i32, libc::SIGCONT) }, 0);
    }
    let out = launcher.wait();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    for words in [
        "every rank was sent SIGTERM",
        "stopped by SIGTERM after step 5 of 12",
    ] {
        assert!(stderr.contains(words), "no `{words}` in:\n{stderr}");
    }
    assert_eq!(complete(&run).last(), Some(&5));
    assert!(launch_cmd(dir.path(), &run, None)
        .status()
        .unwrap()
        .success());
    assert_same_outcome(&outcome(&run, 12), &outcome(&straight, 12));
}
