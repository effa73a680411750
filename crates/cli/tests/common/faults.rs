//! What the reliability and pre-emption tests share: a two-stage `tiny` project on synthetic sources, the
//! `rewarm train` command with a fault rule, what a run folder ends with (for bit-exact comparisons), and
//! process helpers (a child killed on drop, waiting for a process to stop).

use rewarm_data::synthetic;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Sources `a` and `b` and `plan.toml`: two stages of `steps` steps each (256 tokens per step), the second
/// on `b` with 25% replay of `a`; evaluation every 3 steps on both, a checkpoint every 2, the newest 2 kept
/// plus stage ends.
pub fn project(dir: &Path, steps: u64) {
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
pub fn train_cmd(dir: &Path, run: &Path, extra: &[&str], fault: Option<&str>) -> Command {
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn train_ok(dir: &Path, run: &Path, extra: &[&str]) {
    let out = train_cmd(dir, run, extra, None).output().unwrap();
    assert!(out.status.success(), "train failed:\n{}", text(&out.stderr));
}

/// metrics.jsonl without the wall-clock field, one value per line.
pub fn metrics(run: &Path) -> Vec<Value> {
    super::metrics(run)
        .into_iter()
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("tokens_per_second");
            v
        })
        .collect()
}

/// Steps of the complete checkpoints (`step_N` with `DONE`), ascending.
pub fn complete(run: &Path) -> Vec<u64> {
    rewarm_runfolder::RunDir::new(run)
        .complete_checkpoints()
        .into_iter()
        .map(|c| c.step)
        .collect()
}

/// Every folder a loader would take as a checkpoint really is one: all files present, tensors parse, the
/// state names the folder's step.
pub fn assert_checkpoints_whole(run: &Path) {
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
pub struct Outcome {
    pub metrics: Vec<Value>,
    model: Vec<u8>,
    optimizer: Vec<u8>,
    state: String,
}

pub fn outcome(run: &Path, total: u64) -> Outcome {
    let last = run.join(format!("ckpt/step_{total:08}"));
    Outcome {
        metrics: metrics(run),
        model: std::fs::read(last.join("model.safetensors")).unwrap(),
        optimizer: std::fs::read(last.join("optimizer.safetensors")).unwrap(),
        state: std::fs::read_to_string(last.join("state.json")).unwrap(),
    }
}

#[track_caller]
pub fn assert_same_outcome(got: &Outcome, want: &Outcome) {
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
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

/// The highest `step` of a train record in metrics.jsonl (0 if none), tolerating a torn last line.
pub fn last_logged_step(run: &Path) -> u64 {
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
pub struct KillOnDrop(pub Option<Child>);
impl KillOnDrop {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
    pub fn wait(mut self) -> Output {
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

/// Waits until process `pid` is stopped (state `T` in /proc/PID/stat), failing after a minute.
pub fn wait_until_stopped(pid: u32) {
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
