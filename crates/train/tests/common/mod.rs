//! What the engine's end-to-end tests share: two synthetic sources and a two-stage `tiny` plan over them,
//! and readers of what a run folder holds.
#![allow(dead_code)] // each test file uses its own part

use rewarm_data::synthetic;
use rewarm_plan::{Plan, PlanConfig};
use rewarm_runfolder::RunDir;
use rewarm_train::TrainOptions;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub plan_path: PathBuf,
}

pub fn setup(extra: &str, stage_extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    for (name, seed) in [("a", 1u32), ("b", 2)] {
        let toks = synthetic::language(seed, 64_000);
        let (train, val) = toks.split_at(60_000);
        synthetic::write_source(&dir.path().join(name), 512, train, val, 25_000).unwrap();
    }
    let plan = format!(
        r#"
seed = 3
{extra}
[model]
preset = "tiny"
max_seq_len = 32
[data]
sources = {{ a = "a", b = "b" }}
[train]
batch_tokens = 256
threads = 1
[eval]
every_steps = 10
tokens = 1024
[checkpoint]
every_steps = 10
keep_last = 2
[[stages]]
name = "s0"
tokens = 10240
mixture = {{ a = 1.0 }}
schedule = {{ kind = "cosine", max_lr = 1e-2, min_lr = 1e-3, warmup = 0.1 }}
[[stages]]
name = "s1"
tokens = 10240
mixture = {{ b = 1.0 }}
replay = {{ fraction = 0.25 }}
schedule = {{ kind = "cosine", max_lr = 1e-2, min_lr = 1e-3, warmup = 0.1 }}
{stage_extra}
"#
    );
    let plan_path = dir.path().join("plan.toml");
    std::fs::write(&plan_path, plan).unwrap();
    Setup { dir, plan_path }
}

pub fn load(plan_path: &Path) -> Plan {
    Plan::new(PlanConfig::load(plan_path).unwrap(), plan_path).unwrap()
}

pub fn opts(run: &Path) -> TrainOptions {
    TrainOptions::new(run, tch::Device::Cpu)
}

pub fn records(run: &Path, kind: &str) -> Vec<Value> {
    rewarm_runfolder::metrics_log::read(&RunDir::new(run).metrics())
        .unwrap()
        .into_iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .filter(|r| r["kind"] == kind)
        .collect()
}

pub fn train_losses(run: &Path) -> Vec<(u64, f64)> {
    records(run, "train")
        .iter()
        .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap()))
        .collect()
}

pub fn final_weights(run: &Path) -> Vec<u8> {
    let ckpt = RunDir::new(run).latest_checkpoint().unwrap();
    std::fs::read(ckpt.model()).unwrap()
}
