//! Reliability of the `rewarm` binary (docs/reliability.md): `kill -9` at many moments and resume, storage
//! faults while checkpointing, and two sweeps sharing one output folder (SIGTERM and SIGINT: preemption.rs).
//! Runs are the `tiny` preset on synthetic sources (no tokenizer), CPU, one thread.

mod common;
use common::checkpoint_names;
use common::faults::*;
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------------------
// Kill test

/// Where a kill lands: a named point inside rewarm (`REWARM_FAULT=POINT@N=kill`, so windows of a few
/// microseconds such as "between the weights and the optimizer file" are hit for sure), or a `SIGKILL`
/// from outside after a random number of new steps plus a random delay (anywhere: start-up, the lock,
/// the metrics rewrite, a step, an evaluation, a checkpoint).
const KILL_POINTS: &[(&str, u64)] = &[
    // (point, visits in one process to choose N from)
    ("checkpoint:begin", 3),
    ("checkpoint:after-weights", 3),
    ("checkpoint:after-optimizer", 3),
    ("checkpoint:before-done", 3),
    ("checkpoint:before-rename", 3),
    ("checkpoint:after-rename", 3),
    ("retention:mid-delete", 2),
    ("eval:mid", 3),
    ("metrics:mid-line", 6),
    ("step:after-update", 6),
];

/// `kill -9` at `REWARM_KILLS` (default 24) seeded (`REWARM_KILL_SEED`, default 1) moments, resuming after
/// each; the result equals an uninterrupted run's bit for bit: final weights, Adam moments and state, and
/// metrics.jsonl line for line (apart from `tokens_per_second`), so no step is logged twice.
/// `scripts/kill-test.sh` runs it with more kills and other seeds.
#[test]
fn kill_9_at_random_moments_then_resume_equals_an_uninterrupted_run() {
    let kills = env_u64("REWARM_KILLS", 24);
    let seed = env_u64("REWARM_KILL_SEED", 1);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Each kill costs a few steps of progress at most: the plan is long enough that the kills end first.
    let steps = kills * 3;
    let total = 2 * steps;
    project(d, steps);

    let t0 = Instant::now();
    let straight = d.join("straight");
    train_ok(d, &straight, &[]);
    let want = outcome(&straight, total);
    let straight_s = t0.elapsed().as_secs_f64();

    let run = d.join("run");
    let (mut done, mut by_point, mut from_outside) = (0u64, Vec::new(), 0u64);
    let mut finished = false;
    while done < kills {
        let resume_from = complete(&run).last().copied().unwrap_or(0);
        let hook = done % 2 == 0;
        let fault = hook.then(|| {
            let (point, visits) = KILL_POINTS[(done / 2) as usize % KILL_POINTS.len()];
            (point, format!("{point}@{}=kill", 1 + rng.below(visits)))
        });
        // Lines of steps after `resume_from` that the last process logged are still there until the
        // new one starts: count new steps from the last logged one.
        let logged = last_logged_step(&run).max(resume_from);
        let log = d.join("stderr.log");
        let mut child = KillOnDrop(Some(
            train_cmd(d, &run, &[], fault.as_ref().map(|f| f.1.as_str()))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        ));
        if !hook {
            // From outside: after 0–3 new logged steps (0: during start-up), then 0–20 ms into whatever
            // comes next.
            let new_steps = rng.below(4);
            let delay = Duration::from_micros(rng.below(20_000));
            let started = Instant::now();
            loop {
                if child.child().try_wait().unwrap().is_some() {
                    break;
                }
                let progressed = last_logged_step(&run) >= logged + new_steps;
                if progressed || started.elapsed() > Duration::from_secs(60) {
                    std::thread::sleep(delay);
                    let _ = child.child().kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let out = child.wait();
        match out.status.signal() {
            Some(9) => {
                done += 1;
                match &fault {
                    Some((point, _)) => by_point.push(*point),
                    None => from_outside += 1,
                }
            }
            _ if out.status.success() => {
                // Nothing left to do before the kill came (the point was never reached, or the kill was
                // too late): fine unless the run is over.
                if complete(&run).last() == Some(&total) {
                    finished = true;
                    break;
                }
            }
            _ => panic!(
                "rewarm failed after a kill (fault {:?}): {:?}\n{}",
                fault,
                out.status,
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
        assert_checkpoints_whole(&run);
    }
    assert!(
        !finished,
        "the run finished after {done} of {kills} kills; make the plan longer"
    );
    let killed_at = complete(&run).last().copied().unwrap_or(0);
    train_ok(d, &run, &[]);
    let got = outcome(&run, total);
    eprintln!(
        "{done} kills (seed {seed}; {from_outside} from outside, {} at named points: {by_point:?}); the last resume was from step {killed_at} of {total}; {:.1} s in all, the uninterrupted run took {straight_s:.1} s",
        by_point.len(),
        t0.elapsed().as_secs_f64()
    );
    for point in [
        "checkpoint:after-weights",
        "checkpoint:before-rename",
        "eval:mid",
    ] {
        assert!(
            by_point.contains(&point),
            "no kill at {point}: {by_point:?}"
        );
    }
    assert_same_outcome(&got, &want);
    // Nothing half-written is left behind, and the last trainer released the lock.
    assert!(
        checkpoint_names(&run)
            .iter()
            .all(|n| n.starts_with("step_")),
        "{:?}",
        checkpoint_names(&run)
    );
    assert!(!run.join("LOCK").exists());
    assert!(!run.join("metrics.jsonl.tmp").exists());
}

// ---------------------------------------------------------------------------------------------------------
// Storage faults

/// How a storage fault is made: a real file system where the test may mount one (root with
/// CAP_SYS_ADMIN: a small tmpfs for a full disk, a read-only bind mount), `chmod` where it may not but
/// permissions bind (not root), else rewarm's fault injection (`REWARM_FAULT=…=enospc|erofs`).
#[derive(Debug, PartialEq)]
enum Method {
    Mount,
    Chmod,
    Injection,
}

/// `REWARM_STORAGE_FAULT=injection` forces the fault-injection path (to test it where mounting works).
fn injection_forced() -> bool {
    std::env::var("REWARM_STORAGE_FAULT").is_ok_and(|v| v == "injection")
}

/// The method a storage-fault test settled on, printed; with `REWARM_STORAGE_FAULT=real` a fall-back to
/// fault injection fails the test instead (for machines that are meant to exercise the real file system).
fn settle(test: &str, method: Method) -> Method {
    eprintln!("{test}: storage fault made by {method:?}");
    let real_required = std::env::var("REWARM_STORAGE_FAULT").is_ok_and(|v| v == "real");
    assert!(
        !(real_required && method == Method::Injection),
        "{test}: REWARM_STORAGE_FAULT=real, but this machine cannot make the fault for real (a tmpfs mount needs root with CAP_SYS_ADMIN; chmod binds only for a non-root user)"
    );
    method
}

/// A mount point unmounted (lazily) when the test ends, however it ends.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str], target: &Path) -> Option<Mounted> {
    let ok = Command::new("mount")
        .args(args)
        .arg(target)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mounted(target.to_owned()))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs writes into the struct we pass; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_bavail as u64 * st.f_frsize as u64
}

/// Runs the plan to step 4 (checkpoints 2 and 4), breaks storage with `break_it`, runs again: the
/// checkpoint of step 6 fails. Checks the error, the exit code and that checkpoint 4 is intact; then
/// `repair` and a resume finish the run with the same result as an uninterrupted one.
fn checkpoint_fault(
    run: &Path,
    d: &Path,
    fault: Option<&str>,
    breaks: impl FnOnce(),
    repair: impl FnOnce(),
    error_has: &[&str],
) {
    let total = 16;
    train_ok(d, run, &["--stop-at-step", "4"]);
    assert_eq!(complete(run), [2, 4]);
    let before = metrics(run);
    breaks();
    let out = train_cmd(d, run, &[], fault).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "error: could not write the checkpoint of step 6",
        "ckpt/.step_00000006.partial-",
        "HINT",
        "last complete checkpoint (step 4)",
    ]
    .iter()
    .chain(error_has)
    {
        assert!(stderr.contains(needle), "expected `{needle}` in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Retention did not run, nothing half-written is left, the lock is released.
    assert_eq!(checkpoint_names(run), ["step_00000002", "step_00000004"]);
    assert_checkpoints_whole(run);
    assert!(!run.join("LOCK").exists());
    // The metrics of steps 5 and 6 were written before the failed checkpoint; the resume drops them
    // before it redoes those steps.
    assert!(metrics(run).len() > before.len());
    repair();
    train_ok(d, run, &[]);
    let env: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("environment.json")).unwrap())
            .unwrap();
    assert_eq!(env["resumed_from_step"], 4);
    let straight = d.join("straight");
    if !straight.join(format!("ckpt/step_{total:08}")).exists() {
        train_ok(d, &straight, &[]);
    }
    assert_same_outcome(&outcome(run, total), &outcome(&straight, total));
}

/// A full disk while checkpointing: a clear error naming the file, exit code 1, the previous complete
/// checkpoint kept and resumable once space is free again.
#[test]
fn full_disk_while_checkpointing_fails_cleanly_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 8);
    let fs = d.join("fs");
    std::fs::create_dir(&fs).unwrap();
    // Room for the run folder with two checkpoints (~2 MB each) and a third one being written.
    let mounted = (is_root() && !injection_forced())
        .then(|| mount(&["-t", "tmpfs", "-o", "size=12m", "tmpfs"], &fs))
        .flatten();
    let method = settle(
        "full disk",
        if mounted.is_some() {
            Method::Mount
        } else {
            Method::Injection
        },
    );
    let run = fs.join("run");
    let filler = fs.join("filler");
    match method {
        Method::Mount => checkpoint_fault(
            &run,
            d,
            None,
            || {
                // Leave 100 KB: enough for metrics lines, not for a checkpoint's weights.
                let n = free_bytes(&fs).saturating_sub(100_000);
                std::fs::write(&filler, vec![0u8; n as usize]).unwrap();
            },
            || std::fs::remove_file(&filler).unwrap(),
            &["No space left on device"],
        ),
        _ => checkpoint_fault(
            &run,
            d,
            Some("checkpoint:after-weights=enospc"),
            || {},
            || {},
            &["optimizer.safetensors: No space left on device"],
        ),
    }
    drop(mounted);
}

/// A read-only checkpoint folder: the same guarantees as a full disk.
#[test]
fn read_only_run_folder_while_checkpointing_fails_cleanly_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 8);
    let run = d.join("run");
    let ckpt = run.join("ckpt");
    let method = if injection_forced() {
        Method::Injection
    } else if !is_root() {
        Method::Chmod
    } else {
        // Probe: may we mount here at all?
        let probe = d.join("probe");
        std::fs::create_dir(&probe).unwrap();
        match mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &probe) {
            Some(_) => Method::Mount,
            None => Method::Injection,
        }
    };
    let method = settle("read-only", method);
    let mounted = std::cell::RefCell::new(None);
    let fault = (method == Method::Injection).then_some("checkpoint:begin=erofs");
    let error_has: &[&str] = match method {
        Method::Chmod => &["Permission denied"],
        _ => &["Read-only file system"],
    };
    checkpoint_fault(
        &run,
        d,
        fault,
        || match method {
            Method::Chmod => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&ckpt, std::fs::Permissions::from_mode(0o555)).unwrap();
            }
            Method::Mount => {
                let bind = mount(&["--bind", ckpt.to_str().unwrap()], &ckpt).expect("bind mount");
                let ro = Command::new("mount")
                    .args(["-o", "remount,bind,ro"])
                    .arg(&ckpt)
                    .status()
                    .unwrap();
                assert!(ro.success());
                *mounted.borrow_mut() = Some(bind);
            }
            Method::Injection => {}
        },
        || match method {
            Method::Chmod => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&ckpt, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            Method::Mount => drop(mounted.borrow_mut().take()),
            Method::Injection => {}
        },
        error_has,
    );
}

// ---------------------------------------------------------------------------------------------------------
// Sweeps sharing an output folder

/// Two `rewarm sweep` processes on one output folder (one sequential, one `--parallel 2`): every run is
/// trained by exactly one of them, the other skips it naming the holder, and every run ends complete. No
/// timing decides the outcome: the first stops itself (`SIGSTOP`, fault action `stop`) at its first
/// run's third step while it holds that run; the second runs from start to end meanwhile, then the first
/// is continued.
#[test]
fn two_sweeps_on_one_output_folder_train_each_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 12);
    std::fs::write(
        d.join("sweep.toml"),
        "base = \"plan.toml\"\n[grid]\nseed = [1, 2, 3, 4, 5]\n",
    )
    .unwrap();
    let sweep = |extra: &[&str], fault: &str| {
        Command::new(env!("CARGO_BIN_EXE_rewarm"))
            .current_dir(d)
            .args(["sweep", "sweep.toml", "--out", "out", "--device", "cpu"])
            .args(extra)
            .env("REWARM_FAULT", fault)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = KillOnDrop(Some(sweep(&[], "step:after-update@3=stop")));
    let first_pid = first.0.as_ref().unwrap().id();
    wait_until_stopped(first_pid);
    let b = KillOnDrop(Some(sweep(&["--parallel", "2"], ""))).wait();
    // SAFETY: a plain libc call on our own child.
    assert_eq!(unsafe { libc::kill(first_pid as i32, libc::SIGCONT) }, 0);
    let a = first.wait();
    for (name, out) in [("first", &a), ("second", &b)] {
        assert!(
            out.status.success(),
            "{name} sweep failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/sweep.json")).unwrap()).unwrap();
    let ids: Vec<&str> = index
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5);
    // A run trained by a sweep prints `== run ID (LABEL)…` (sequential) or `== run ID started (pid …)`
    // (parallel).
    let trained = |out: &Output, id: &str| {
        text(&out.stdout)
            .lines()
            .filter(|l| {
                l.starts_with(&format!("== run {id} ("))
                    || l.starts_with(&format!("== run {id} started"))
            })
            .count()
    };
    for id in &ids {
        let (ta, tb) = (trained(&a, id), trained(&b, id));
        assert_eq!(
            ta + tb,
            1,
            "run {id} trained {ta} times by the first sweep and {tb} by the second:\n{}\n{}",
            text(&a.stdout),
            text(&b.stdout)
        );
        let run = d.join("out").join(id);
        assert_eq!(complete(&run).last(), Some(&24), "run {id}");
        let steps: Vec<u64> = metrics(&run)
            .iter()
            .filter(|r| r["kind"] == "train")
            .map(|r| r["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, (1..=24).collect::<Vec<_>>(), "run {id}");
        assert!(!run.join("SWEEP_LOCK").exists() && !run.join("LOCK").exists());
    }
    // The first trained only the run it held when it stopped; the second all the others.
    let by_first: usize = ids.iter().map(|id| trained(&a, id)).sum();
    assert_eq!(by_first, 1, "{}", text(&a.stdout));
    // The second really met the run the first held, and named the holder.
    let second_out = text(&b.stdout);
    assert!(
        second_out.contains("skipped: out/")
            && second_out.contains(&format!("in use by pid {first_pid} on ")),
        "{second_out}"
    );
}
