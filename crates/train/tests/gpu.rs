//! GPU tests, opt-in: they run with `REWARM_GPU_TESTS=1` on a machine where libtorch's CUDA library loads
//! (LD_LIBRARY_PATH = a CUDA PyTorch's torch/lib) and fail there if CUDA does not work. Without the
//! variable each test returns at once, saying so.

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
        let mode = Execution { bf16, group: None };
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
