//! Reliability of the `rewarm` binary (docs/reliability.md): `kill -9` at many moments and resume, SIGTERM
//! and SIGINT (one process and a launch), storage faults while checkpointing, and two sweeps sharing one
//! output folder. Runs are the `tiny` preset on synthetic sources (no tokenizer), CPU, one thread.

mod common;
use common::checkpoint_names;
use rewarm_data::synthetic;
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------------------
// Helpers

/// Sources `a` and `b` and `plan.toml`: two stages of `steps` steps each (256 tokens per step), the second
/// on `b` with 25% replay of `a`; evaluation every 3 steps on both, a checkpoint every 2, the newest 2 kept
/// plus stage ends.
fn project(dir: &Path, steps: u64) {
    for (name, seed) in [("a", 1u32), ("b", 2)] {
        let toks = synthetic::language(seed, 24_000);
        let (train, val) = toks.split_at(20_000);
        synthetic::write_source(&dir.join(name), 512, train, val, 8_000).unwrap();
    }
    let tokens = steps * 256;
    let plan = format!(
        r#"seed = 5
[model]
preset = "tiny"
max_seq_len = 32
[data]
sources = {{ a = "a", b = "b" }}
[train]
batch_tokens = 256
threads = 1
[eval]
every_steps = 3
tokens = 256
[checkpoint]
every_steps = 2
keep_last = 2
[[stages]]
name = "s0"
tokens = {tokens}
mixture = {{ a = 1.0 }}
schedule = {{ kind = "cosine", max_lr = 1e-2, min_lr = 1e-3, warmup = 0.1 }}
[[stages]]
name = "s1"
tokens = {tokens}
mixture = {{ b = 1.0 }}
replay = {{ fraction = 0.25 }}
schedule = {{ kind = "cosine", max_lr = 1e-2, min_lr = 1e-3, warmup = 0.1 }}
"#
    );
    std::fs::write(dir.join("plan.toml"), plan).unwrap();
}

/// `rewarm train plan.toml --run <run> --device cpu [extra]` in `dir`, with `REWARM_FAULT` if given.
fn train_cmd(dir: &Path, run: &Path, extra: &[&str], fault: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rewarm"));
    cmd.current_dir(dir)
        .args(["train", "plan.toml", "--run"])
        .arg(run)
        .args(["--device", "cpu"])
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .env_remove("REWARM_FAULT")
        .stdin(Stdio::null());
    if let Some(f) = fault {
        cmd.env("REWARM_FAULT", f);
    }
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn train_ok(dir: &Path, run: &Path, extra: &[&str]) {
    let out = train_cmd(dir, run, extra, None).output().unwrap();
    assert!(out.status.success(), "train failed:\n{}", text(&out.stderr));
}

/// metrics.jsonl without the wall-clock field, one value per line.
fn metrics(run: &Path) -> Vec<Value> {
    common::metrics(run)
        .into_iter()
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("tokens_per_second");
            v
        })
        .collect()
}

/// Steps of the complete checkpoints (`step_N` with `DONE`), ascending.
fn complete(run: &Path) -> Vec<u64> {
    rewarm_runfolder::RunDir::new(run)
        .complete_checkpoints()
        .into_iter()
        .map(|c| c.step)
        .collect()
}

/// Every folder a loader would take as a checkpoint really is one: all files present, tensors parse, the
/// state names the folder's step.
fn assert_checkpoints_whole(run: &Path) {
    for c in rewarm_runfolder::RunDir::new(run).complete_checkpoints() {
        let (step, dir) = (c.step, c.path);
        for file in ["model.safetensors", "optimizer.safetensors"] {
            let bytes = std::fs::read(dir.join(file))
                .unwrap_or_else(|e| panic!("step {step}: {file}: {e}"));
            safetensors::SafeTensors::deserialize(&bytes)
                .unwrap_or_else(|e| panic!("step {step}: {file}: {e}"));
        }
        let state: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap())
                .unwrap();
        assert_eq!(state["step"], step);
        assert!(dir.join("plan.json").is_file());
    }
}

/// The files an uninterrupted run ends with, for comparison.
struct Outcome {
    metrics: Vec<Value>,
    model: Vec<u8>,
    optimizer: Vec<u8>,
    state: String,
}

fn outcome(run: &Path, total: u64) -> Outcome {
    let last = run.join(format!("ckpt/step_{total:08}"));
    Outcome {
        metrics: metrics(run),
        model: std::fs::read(last.join("model.safetensors")).unwrap(),
        optimizer: std::fs::read(last.join("optimizer.safetensors")).unwrap(),
        state: std::fs::read_to_string(last.join("state.json")).unwrap(),
    }
}

#[track_caller]
fn assert_same_outcome(got: &Outcome, want: &Outcome) {
    assert_eq!(got.metrics.len(), want.metrics.len(), "metrics line count");
    for (i, (g, w)) in got.metrics.iter().zip(&want.metrics).enumerate() {
        assert_eq!(g, w, "metrics line {}", i + 1);
    }
    assert!(got.model == want.model, "final model.safetensors differs");
    assert!(
        got.optimizer == want.optimizer,
        "final optimizer.safetensors differs"
    );
    assert_eq!(got.state, want.state);
}

/// SplitMix64: the test's own seeded random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

/// The highest `step` of a train record in metrics.jsonl (0 if none), tolerating a torn last line.
fn last_logged_step(run: &Path) -> u64 {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "train")
        .filter_map(|v| v["step"].as_u64())
        .max()
        .unwrap_or(0)
}

/// A child process that is killed when the test ends, however it ends.
struct KillOnDrop(Option<Child>);
impl KillOnDrop {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

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
// Pre-emption: SIGTERM and SIGINT

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

/// Waits until process `pid` is stopped (state `T` in /proc/PID/stat), failing after a minute.
fn wait_until_stopped(pid: u32) {
    let started = Instant::now();
    let state = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
    };
    while state() != Some('T') {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "process {pid} never stopped (state {:?})",
            state()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

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
    // A run trained by a sweep prints `== run ID` (sequential) or `== run ID started (pid …)` (parallel).
    let trained = |out: &Output, id: &str| {
        text(&out.stdout)
            .lines()
            .filter(|l| {
                *l == format!("== run {id}") || l.starts_with(&format!("== run {id} started"))
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
