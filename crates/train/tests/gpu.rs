//! GPU tests, opt-in: they run with `REWARM_GPU_TESTS=1` on a machine where libtorch's CUDA library loads
//! (LD_LIBRARY_PATH = a CUDA PyTorch's torch/lib) and fail there if CUDA does not work. Without the
//! variable each test returns at once, saying so.

mod common;

use common::{final_weights, records};
use rewarm_model::{decay_mask, Model, ModelConfig};
use rewarm_plan::config::OptimizerConfig;
use rewarm_train::optim::AdamW;
use rewarm_train::{accumulate_gradients, window_tensors, Execution};
use tch::{nn, Device, Kind, Tensor};

fn cuda() -> Option<Device> {
    if std::env::var("REWARM_GPU_TESTS").as_deref() != Ok("1") {
        eprintln!("skipped: GPU tests run with REWARM_GPU_TESTS=1");
        return None;
    }
    if let Err(why) = rewarm_train::backend::cuda::check_device(0) {
        panic!("REWARM_GPU_TESTS=1 but {why}");
    }
    Some(Device::Cuda(0))
}

/// The `tiny` preset on `device`, initialised from `seed`, with its optimizer.
fn tiny(device: Device, seed: i64) -> (nn::VarStore, Model, AdamW) {
    let config = ModelConfig::preset("tiny").unwrap();
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = Model::new(&vs.root(), &config).unwrap();
    let mut vs = vs;
    vs.set_device(device);
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let opt = AdamW::new(OptimizerConfig::default(), vars, |n| decay_mask(n, false));
    (vs, model, opt)
}

fn batch(seq_len: usize, rows: usize) -> Vec<u32> {
    tch::manual_seed(1);
    let ids = Tensor::randint(
        512,
        [(rows * (seq_len + 1)) as i64],
        (Kind::Int64, Device::Cpu),
    );
    Vec::<i64>::try_from(&ids)
        .unwrap()
        .into_iter()
        .map(|x| x as u32)
        .collect()
}

/// The same weights give the same loss on the CPU and on the GPU in f32, and the GPU's bf16 autocast loss
/// is within bf16 rounding of it.
#[test]
fn cuda_matches_the_cpu_in_f32_and_bf16_stays_close() {
    let Some(device) = cuda() else { return };
    let tokens = batch(64, 4);
    let loss = |device: Device, bf16: bool| {
        let (_vs, model, mut opt) = tiny(device, 3);
        let (inputs, targets) = window_tensors(&tokens, 64, 0, 4, device);
        let mode = Execution {
            bf16,
            group: None,
            z_loss: 0.0,
            recompute: false,
        };
        let (loss, norm) =
            accumulate_gradients(&model, &mut opt, [(inputs, targets, 1.0)], mode).unwrap();
        (loss.double_value(&[]), norm.double_value(&[]))
    };
    let (cpu, cpu_norm) = loss(Device::Cpu, false);
    let (gpu, gpu_norm) = loss(device, false);
    let (gpu_bf16, _) = loss(device, true);
    assert!(
        (cpu - gpu).abs() < 1e-4,
        "f32 loss: CPU {cpu} vs CUDA {gpu}"
    );
    assert!(
        (cpu_norm - gpu_norm).abs() < 1e-3 * cpu_norm,
        "grad norm: {cpu_norm} vs {gpu_norm}"
    );
    assert!(
        (cpu - gpu_bf16).abs() < 0.05,
        "bf16 loss {gpu_bf16} vs f32 {cpu}"
    );
}

/// bf16 training on the GPU (fused AdamW, f32 master weights) fits a fixed batch.
#[test]
fn bf16_training_on_cuda_lowers_the_loss() {
    let Some(device) = cuda() else { return };
    let tokens = batch(64, 8);
    let (vs, model, mut opt) = tiny(device, 5);
    let mode = Execution {
        bf16: true,
        group: None,
        z_loss: 0.0,
        recompute: false,
    };
    let mut losses = Vec::new();
    for _ in 0..60 {
        let (inputs, targets) = window_tensors(&tokens, 64, 0, 8, device);
        let (loss, norm) =
            accumulate_gradients(&model, &mut opt, [(inputs, targets, 1.0)], mode).unwrap();
        opt.step(3e-3, &norm, None);
        losses.push(loss.double_value(&[]));
    }
    assert!(
        losses[59] < losses[0] - 1.0,
        "loss {} → {}",
        losses[0],
        losses[59]
    );
    for (name, t) in vs.variables() {
        assert_eq!(t.kind(), Kind::Float, "{name}: master weights stay f32");
    }
}

/// A two-stage plan (cosine, then a new source with 25% replay) on two synthetic sources in `dir`,
/// at `tiny` with `extra` at the top level; `precision = "auto"` is bf16 on CUDA.
fn plan(dir: &std::path::Path, extra: &str) -> rewarm_plan::Plan {
    use rewarm_data::synthetic;
    for (name, seed) in [("a", 1u32), ("b", 2)] {
        let toks = synthetic::language(seed, 64_000);
        let (train, val) = toks.split_at(60_000);
        synthetic::write_source(&dir.join(name), 512, train, val, 25_000).unwrap();
    }
    let text = format!(
        r#"
seed = 3
{extra}
[model]
preset = "tiny"
max_seq_len = 64
[data]
sources = {{ a = "a", b = "b" }}
[train]
batch_tokens = 1024
[eval]
every_steps = 10
tokens = 4096
[checkpoint]
every_steps = 10
keep_last = 2
[[stages]]
name = "s0"
tokens = 30720
mixture = {{ a = 1.0 }}
schedule = {{ kind = "cosine", max_lr = 1e-2, min_lr = 1e-3, warmup = 0.1 }}
[[stages]]
name = "s1"
tokens = 30720
mixture = {{ b = 1.0 }}
replay = {{ fraction = 0.25 }}
schedule = {{ kind = "cosine", max_lr = 1e-2, min_lr = 1e-3, warmup = 0.1 }}
"#
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    rewarm_plan::Plan::new(rewarm_plan::PlanConfig::load(&path).unwrap(), &path).unwrap()
}

/// On one GPU, a run stopped mid-stage and at the stage boundary and resumed ends with the same per-step
/// losses, evaluations and weights, bit for bit, as the uninterrupted run (bf16 autocast, fused AdamW).
#[test]
fn stop_and_resume_on_the_gpu_is_bit_identical() {
    use rewarm_train::{train, NoProgress, TrainOptions};
    let Some(device) = cuda() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), "");
    let straight = dir.path().join("straight");
    train(&plan, &TrainOptions::new(&straight, device), &NoProgress).unwrap();
    let resumed = dir.path().join("resumed");
    for stop in [13, plan.stages[0].steps, plan.stages[0].steps + 7] {
        let mut o = TrainOptions::new(&resumed, device);
        o.stop_at_step = Some(stop);
        assert_eq!(train(&plan, &o, &NoProgress).unwrap().step, stop);
    }
    train(&plan, &TrainOptions::new(&resumed, device), &NoProgress).unwrap();
    let losses = |run| records(run, "train");
    let (a, b) = (losses(&straight), losses(&resumed));
    assert_eq!(a.len() as u64, plan.total_steps);
    let pick = |rs: &[serde_json::Value]| -> Vec<(u64, f64)> {
        rs.iter()
            .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(pick(&a), pick(&b), "per-step losses differ");
    let first = a[0]["loss"].as_f64().unwrap();
    let last = a.last().unwrap()["loss"].as_f64().unwrap();
    assert!(last < first - 1.0, "the run learns: {first} → {last}");
    assert!(
        final_weights(&straight) == final_weights(&resumed),
        "final weights differ"
    );
    assert_eq!(records(&straight, "eval"), records(&resumed, "eval"));
}

/// The non-finite guard on the device: a NaN loss at step 15 skips that update on the GPU, is named, and
/// under `rollback` the run restarts from the step-10 checkpoint and finishes with every step logged once.
#[test]
fn the_non_finite_guard_works_on_the_gpu() {
    use rewarm_train::{train, Injection, NoProgress, TrainOptions};
    let Some(device) = cuda() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plan_stop = plan(dir.path(), "");
    let run = dir.path().join("stop");
    let mut o = TrainOptions::new(&run, device);
    o.inject_non_finite = Some(Injection::nan_loss(15));
    let err = train(&plan_stop, &o, &NoProgress)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("non-finite loss at step 15"), "{err}");

    let plan = plan(
        dir.path(),
        "[guard]\nnon_finite = \"rollback\"\nlr_backoff = 0.5",
    );
    let run = dir.path().join("rollback");
    let mut o = TrainOptions::new(&run, device);
    o.inject_non_finite = Some(Injection::nan_loss(15));
    let state = train(&plan, &o, &NoProgress).unwrap();
    assert_eq!((state.step, state.rollbacks), (plan.total_steps, 1));
    let steps: Vec<u64> = records(&run, "train")
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=plan.total_steps).collect::<Vec<_>>());
    // A non-finite loss would be written as null (JSON has no NaN): every logged loss is a number.
    for r in records(&run, "train") {
        let loss = r["loss"].as_f64();
        assert!(
            loss.is_some_and(f64::is_finite),
            "step {}: loss {}",
            r["step"],
            r["loss"]
        );
    }
}

/// NCCL with one rank: the group joins on the GPU and an all-reduce of f32 and bf16 gradients leaves them
/// unchanged (the sum over one process).
#[test]
fn nccl_with_one_rank_sums_to_itself() {
    use rewarm_train::backend::dist::{all_reduce_flat, ProcessGroup, World};
    let Some(device) = cuda() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let world = World {
        rank: 0,
        size: 1,
        local_rank: 0,
        local_size: 1,
        master_addr: "127.0.0.1".into(),
        master_port: port,
    };
    let group = ProcessGroup::join(&world, device).unwrap();
    for kind in [Kind::Float, Kind::BFloat16] {
        let a = Tensor::arange(12, (kind, device)).reshape([3, 4]);
        let b = Tensor::ones([5], (kind, device)) * 0.5;
        let (a0, b0) = (a.copy(), b.copy());
        all_reduce_flat(&group, &[a.shallow_clone(), b.shallow_clone()]).unwrap();
        assert!(
            a.equal(&a0) && b.equal(&b0),
            "{kind:?}: one rank's sum changed the values"
        );
    }
    group.barrier().unwrap();
}
