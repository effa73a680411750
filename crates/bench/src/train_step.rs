//! `rewarm bench train`: the throughput of exactly the step `rewarm train` takes (forward, loss, backward,
//! global gradient norm, clipping, AdamW; see [`accumulate_gradients`] and [`AdamW::step`]) on a preset
//! with random weights and random tokens, with model FLOPs utilization (MFU) against a stated peak.
//!
//! MFU = tokens/s · [`ModelConfig::flops_per_token`] / peak (PaLM, Chowdhery et al. 2022, App. B). The
//! peak on CPU is measured in the same run as the best f32 throughput of a large square matmul, so the
//! number says how close the step gets to what this machine's BLAS can do; on CUDA it is the device's
//! published dense bf16 peak, looked up by name.

use rewarm_arch::TrainingMemory;
use rewarm_model::weights::sorted_variables;
use rewarm_model::{decay_mask, Model, ModelConfig};
use rewarm_plan::config::{OptimizerConfig, Precision};
use rewarm_train::error::{TrainError, TrainResult};
use rewarm_train::optim::AdamW;
use rewarm_train::step::{accumulate_gradients, window_tensors, Execution};
use serde::Serialize;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

/// What to measure.
#[derive(Clone, Debug)]
pub struct TrainBenchOptions {
    pub device: Device,
    /// T: positions per sequence (≤ the preset's max_seq_len).
    pub seq_len: usize,
    /// B: sequences per step (one micro-batch).
    pub batch_sequences: usize,
    /// Untimed steps first (allocator and kernel warm-up).
    pub warmup_steps: usize,
    /// Timed steps.
    pub steps: usize,
    /// Torch intra-op threads (`None`: libtorch's default, one per core).
    pub threads: Option<usize>,
    /// Seed of the weights and the tokens.
    pub seed: u64,
    /// Take AdamW as separate tensor ops ([`AdamW::step_unfused`]) instead of the fused kernel, to measure
    /// what the kernel saves.
    pub unfused_adamw: bool,
    /// After the timed steps, time up to 5 more part by part, and the loss head alone.
    pub breakdown: bool,
    /// As `train.precision`: `auto` is bf16 autocast on CUDA, f32 on the CPU.
    pub precision: Precision,
    /// As `train.activation_checkpointing`: recompute each block in the backward pass.
    pub activation_checkpointing: bool,
}

/// Seconds per step spent in each part, from extra steps timed part by part after the timed ones.
#[derive(Clone, Debug, Serialize)]
pub struct StepBreakdown {
    pub steps: usize,
    /// Forward and loss, including the output projection's and cross-entropy's gradients (computed with
    /// the loss, chunk by chunk: `rewarm_model::loss_head`).
    pub forward_loss_seconds: f64,
    /// Backward, including reading the loss back.
    pub backward_seconds: f64,
    /// Global gradient norm, including reading it back.
    pub grad_norm_seconds: f64,
    /// Clipping and AdamW, plus zeroing the gradients for the next step.
    pub optimizer_seconds: f64,
    /// The output projection and cross-entropy with their gradients alone (part of forward+loss), at
    /// several chunk sizes: (rows per chunk, seconds per call).
    pub head_seconds_by_rows: Vec<(i64, f64)>,
}

/// The peak MFU is measured against.
#[derive(Clone, Debug, Serialize)]
pub struct Peak {
    pub flops_per_second: f64,
    /// Where the number comes from, in words (printed next to MFU).
    pub source: String,
}

/// The result, printed as text or JSON.
#[derive(Clone, Debug, Serialize)]
pub struct TrainBenchReport {
    pub model: ModelConfig,
    pub params: u64,
    pub device: String,
    pub threads: i32,
    /// `fused` (libtorch's kernel) or `unfused` (separate tensor ops).
    pub adamw: String,
    /// `bf16` (autocast) or `fp32`.
    pub precision: String,
    pub seq_len: usize,
    pub batch_sequences: usize,
    pub tokens_per_step: usize,
    pub warmup_steps: usize,
    pub steps: usize,
    pub seconds: f64,
    pub step_seconds_mean: f64,
    pub step_seconds_median: f64,
    pub step_seconds_min: f64,
    /// Each timed step's wall time, in order.
    pub step_seconds: Vec<f64>,
    /// Process CPU time over wall time during the timed steps: about `threads` on an otherwise idle
    /// machine (idle OpenMP workers spin), less when other work took CPU from the run.
    pub cpu_cores_used: Option<f64>,
    pub tokens_per_second: f64,
    pub flops_per_token: u64,
    pub achieved_flops_per_second: f64,
    pub peak: Option<Peak>,
    pub mfu: Option<f64>,
    /// CPU: the process's peak resident memory (VmHWM), everything included; CUDA: not measured.
    pub peak_memory_bytes: Option<u64>,
    pub peak_memory_note: String,
    pub activation_checkpointing: bool,
    /// What rewarm's memory check counts for this step ([`TrainingMemory::at_least`]): a lower bound.
    pub memory_lower_bound_bytes: u64,
    pub first_loss: f64,
    pub last_loss: f64,
    pub breakdown: Option<StepBreakdown>,
}

/// Learning rate of the benchmark steps: a typical peak LR, so the update path is the real one.
const BENCH_LR: f64 = 3e-4;

/// Distinct random batches cycled through (token ids are drawn once, outside the timed loop).
const DISTINCT_BATCHES: usize = 8;

/// Builds `config` with random weights and measures `opts.steps` training steps after
/// `opts.warmup_steps`; on the CPU also the matmul peak (before and after) and, if asked, a breakdown.
pub fn bench_train(
    config: &ModelConfig,
    opts: &TrainBenchOptions,
) -> TrainResult<TrainBenchReport> {
    check(config, opts)?;
    if let Some(threads) = opts.threads {
        tch::set_num_threads(threads as i32);
    }
    if opts.device == Device::Cpu {
        rewarm_train::backend::host_memory::reuse_freed_memory(); // as `rewarm train` does
    }
    let bf16 = opts.precision.bf16_on(opts.device == Device::Cpu);
    // The CPU peak is measured before and after the steps and the better kept, so that a burst of other
    // work on the machine during one of the two does not understate it; in the precision the step's
    // matmuls run in.
    let matmul_kind = if bf16 { Kind::BFloat16 } else { Kind::Float };
    let peak_before = (opts.device == Device::Cpu).then(|| cpu_matmul_peak(2048, 5, matmul_kind));
    let mut bench = Bench::new(config, opts, bf16)?;
    let timing = bench.run()?;
    let breakdown = match opts.device {
        // Part by part, the device synchronized at each part's end so that the parts add up to a step.
        _ if opts.breakdown => Some(breakdown(
            &bench.model,
            &mut bench.opt,
            &bench.batches,
            opts,
            bf16,
        )?),
        _ => None,
    };
    let peak = match opts.device {
        Device::Cpu => {
            let after = cpu_matmul_peak(2048, 5, matmul_kind);
            peak_before
                .filter(|b| b.flops_per_second > after.flops_per_second)
                .or(Some(after))
        }
        Device::Cuda(i) => cuda_bf16_peak(i, bf16),
        _ => None,
    };
    Ok(TrainBenchReport::new(
        config, opts, bf16, timing, peak, breakdown,
    ))
}

fn check(config: &ModelConfig, opts: &TrainBenchOptions) -> TrainResult<()> {
    if opts.seq_len == 0 || opts.seq_len > config.max_seq_len {
        return Err(TrainError::Config(format!(
            "--seq-len {} is outside 1..={} (the preset's max_seq_len)\nHINT: pick a shorter sequence length",
            opts.seq_len, config.max_seq_len
        )));
    }
    if opts.batch_sequences == 0 || opts.steps == 0 {
        return Err(TrainError::Config(
            "--batch and --steps must be at least 1\nHINT: e.g. --batch 8 --steps 20".into(),
        ));
    }
    Ok(())
}

/// The model, its optimizer and the random batches the steps cycle through.
struct Bench<'a> {
    opts: &'a TrainBenchOptions,
    model: Model,
    _vs: nn::VarStore,
    opt: AdamW,
    batches: Vec<Vec<u32>>,
    exec: Execution<'static>,
    steps_taken: usize,
}

/// What the timed steps measured.
struct Timing {
    seconds: f64,
    step_seconds: Vec<f64>,
    losses: Vec<f64>,
    cpu_cores_used: Option<f64>,
    peak_memory_bytes: Option<u64>,
}

impl<'a> Bench<'a> {
    fn new(config: &ModelConfig, opts: &'a TrainBenchOptions, bf16: bool) -> TrainResult<Self> {
        tch::manual_seed(opts.seed as i64);
        let vs = nn::VarStore::new(opts.device);
        let model = Model::new(&vs.root(), config)?;
        let optimizer = OptimizerConfig::default();
        let decay_embeddings = optimizer.decay_embeddings;
        let opt = AdamW::new(optimizer, sorted_variables(&vs), |n| {
            decay_mask(n, decay_embeddings)
        });
        let (b, t) = (opts.batch_sequences, opts.seq_len);
        let batches = (0..DISTINCT_BATCHES)
            .map(|_| random_tokens(config.vocab_size, b * (t + 1)))
            .collect();
        Ok(Bench {
            opts,
            model,
            _vs: vs,
            opt,
            batches,
            exec: Execution {
                bf16,
                group: None,
                z_loss: 0.0,
                recompute: opts.activation_checkpointing,
            },
            steps_taken: 0,
        })
    }

    /// One step as `rewarm train` takes it between read-backs: nothing is read back (the unfused
    /// variant reads the gradient norm); the loss stays on the device.
    fn step(&mut self) -> TrainResult<Tensor> {
        let (b, t, device) = (
            self.opts.batch_sequences,
            self.opts.seq_len,
            self.opts.device,
        );
        let tokens = &self.batches[self.steps_taken % DISTINCT_BATCHES];
        self.steps_taken += 1;
        let (inputs, targets) = window_tensors(tokens, t, 0, b, device);
        let micro = [(inputs, targets, 1.0)];
        let (loss, grad_norm) = accumulate_gradients(&self.model, &mut self.opt, micro, self.exec)?;
        if self.opts.unfused_adamw {
            self.opt.step_unfused(BENCH_LR, grad_norm.double_value(&[]));
        } else {
            let non_finite = loss
                .isfinite()
                .logical_and(&grad_norm.isfinite())
                .logical_not();
            let skip = non_finite.to_kind(Kind::Float);
            self.opt.step(BENCH_LR, &grad_norm, Some(&skip));
        }
        Ok(loss)
    }

    /// The warm-up steps, then the timed ones; losses read back after the timing.
    fn run(&mut self) -> TrainResult<Timing> {
        let device = self.opts.device;
        let mut losses = Vec::new();
        for _ in 0..self.opts.warmup_steps {
            losses.push(self.step()?);
        }
        synchronize(device);
        let memory_after_warmup = device_memory(device);
        let mut step_seconds = Vec::with_capacity(self.opts.steps);
        let cpu_before = process_cpu_seconds();
        let started = Instant::now();
        for _ in 0..self.opts.steps {
            let s = Instant::now();
            losses.push(self.step()?);
            step_seconds.push(s.elapsed().as_secs_f64());
        }
        synchronize(device);
        let seconds = started.elapsed().as_secs_f64();
        let losses = finite_losses(&losses)?;
        let cpu_cores_used = cpu_before
            .filter(|_| device == Device::Cpu)
            .zip(process_cpu_seconds())
            .map(|(before, after)| (after - before) / seconds);
        let peak_memory_bytes = match device {
            Device::Cpu => vm_hwm_bytes(),
            _ => memory_after_warmup.max(device_memory(device)),
        };
        Ok(Timing {
            seconds,
            step_seconds,
            losses,
            cpu_cores_used,
            peak_memory_bytes,
        })
    }
}

/// `n` token ids drawn uniformly from the vocabulary (libtorch's generator, seeded by the caller).
fn random_tokens(vocab_size: usize, n: usize) -> Vec<u32> {
    let ids = Tensor::randint(vocab_size as i64, [n as i64], (Kind::Int64, Device::Cpu));
    Vec::<i64>::try_from(&ids)
        .expect("int64 ids")
        .into_iter()
        .map(|x| x as u32)
        .collect()
}

/// The losses read back, all finite (else the step that was not is named).
fn finite_losses(losses: &[Tensor]) -> TrainResult<Vec<f64>> {
    let losses: Vec<f64> = losses.iter().map(|l| l.double_value(&[])).collect();
    match losses.iter().position(|l| !l.is_finite()) {
        Some(i) => Err(TrainError::Config(format!(
            "non-finite loss {} at benchmark step {}",
            losses[i],
            i + 1
        ))),
        None => Ok(losses),
    }
}

impl TrainBenchReport {
    fn new(
        config: &ModelConfig,
        opts: &TrainBenchOptions,
        bf16: bool,
        timing: Timing,
        peak: Option<Peak>,
        breakdown: Option<StepBreakdown>,
    ) -> Self {
        let (b, t) = (opts.batch_sequences, opts.seq_len);
        let tokens_per_step = b * t;
        let tokens_per_second = (tokens_per_step * opts.steps) as f64 / timing.seconds;
        let flops_per_token = config.flops_per_token(t);
        let achieved = tokens_per_second * flops_per_token as f64;
        let mut sorted = timing.step_seconds.clone();
        sorted.sort_by(f64::total_cmp);
        TrainBenchReport {
            model: config.clone(),
            params: config.num_params(),
            device: format!("{:?}", opts.device),
            threads: tch::get_num_threads(),
            adamw: if opts.unfused_adamw { "unfused" } else { "fused" }.into(),
            precision: if bf16 { "bf16" } else { "fp32" }.into(),
            seq_len: t,
            batch_sequences: b,
            tokens_per_step,
            warmup_steps: opts.warmup_steps,
            steps: opts.steps,
            seconds: timing.seconds,
            step_seconds_mean: timing.seconds / opts.steps as f64,
            step_seconds_median: sorted[sorted.len() / 2],
            step_seconds_min: sorted[0],
            step_seconds: timing.step_seconds,
            cpu_cores_used: timing.cpu_cores_used,
            tokens_per_second,
            flops_per_token,
            achieved_flops_per_second: achieved,
            mfu: peak.as_ref().map(|p| achieved / p.flops_per_second),
            peak,
            peak_memory_bytes: timing.peak_memory_bytes,
            peak_memory_note: match opts.device {
                Device::Cpu => "process high-water mark (VmHWM), weights, optimizer state, activations and libtorch included".into(),
                _ => "device memory in use after the warm-up and the timed steps (cudaMemGetInfo: total − free), libtorch's cached blocks and the CUDA context included".into(),
            },
            activation_checkpointing: opts.activation_checkpointing,
            memory_lower_bound_bytes: TrainingMemory::at_least(
                config,
                b as u64,
                t as u64,
                opts.activation_checkpointing,
            )
            .total(),
            first_loss: timing.losses[0],
            last_loss: *timing.losses.last().expect("at least one step"),
            breakdown,
        }
    }
}

/// The same step as `bench_train`'s, timed part by part (the device synchronized at each part's end), then
/// the loss head alone at several chunk sizes.
fn breakdown(
    model: &Model,
    opt: &mut AdamW,
    batches: &[Vec<u32>],
    opts: &TrainBenchOptions,
    bf16: bool,
) -> TrainResult<StepBreakdown> {
    let (t, b, unfused_adamw) = (opts.seq_len, opts.batch_sequences, opts.unfused_adamw);
    let steps = opts.steps.clamp(1, 5);
    let mut parts = [0.0f64; 4];
    for (i, tokens) in batches.iter().cycle().take(steps).enumerate() {
        let (inputs, targets) = window_tensors(tokens, t, 0, b, opts.device);
        synchronize(opts.device);
        let mut clock = Instant::now();
        let mut lap = |k: usize| {
            synchronize(opts.device);
            parts[k] += clock.elapsed().as_secs_f64();
            clock = Instant::now();
        };
        if i == 0 {
            opt.zero_grad();
        }
        let (l, seed) = rewarm_train::backend::autocast::bf16(bf16, opts.device, || {
            model.f_loss_for_backward(&inputs, &targets, 1.0)
        })?;
        lap(0);
        seed.backward();
        let _ = l.double_value(&[]);
        lap(1);
        let grad_norm = opt.grad_norm();
        let _ = grad_norm.double_value(&[]);
        lap(2);
        if unfused_adamw {
            opt.step_unfused(BENCH_LR, grad_norm.double_value(&[]));
        } else {
            opt.step(BENCH_LR, &grad_norm, None);
        }
        opt.zero_grad();
        lap(3);
    }
    let per = |x: f64| x / steps as f64;
    let head_seconds_by_rows = time_head(model, &batches[0], opts, bf16)?;
    Ok(StepBreakdown {
        steps,
        forward_loss_seconds: per(parts[0]),
        backward_seconds: per(parts[1]),
        grad_norm_seconds: per(parts[2]),
        optimizer_seconds: per(parts[3]),
        head_seconds_by_rows,
    })
}

/// Seconds per call of the loss head with gradients ([`rewarm_model::loss_head::chunked`]) on one batch's
/// final hidden states, with 2²⁵, 2²⁷ and 2²⁸ logits per chunk and the whole batch as one chunk.
fn time_head(
    model: &Model,
    tokens: &[u32],
    opts: &TrainBenchOptions,
    bf16: bool,
) -> TrainResult<Vec<(i64, f64)>> {
    let (t, b, device) = (opts.seq_len, opts.batch_sequences, opts.device);
    let (inputs, targets) = window_tensors(tokens, t, 0, b, device);
    let w = model.output_weight().detach();
    let n = (b * t) as i64;
    let v = w.size()[0];
    let mut out = Vec::new();
    for rows in [(1 << 25) / v, (1 << 27) / v, (1 << 28) / v, n] {
        let rows = rows.clamp(1, n);
        if out.iter().any(|(r, _)| *r == rows) {
            continue;
        }
        let seconds = rewarm_train::backend::autocast::bf16(bf16, device, || {
            let hidden = tch::no_grad(|| model.f_hidden(&inputs))?;
            let hidden = hidden.reshape([n, -1]);
            let y = targets.reshape([-1]);
            let call = || rewarm_model::loss_head::chunked(&hidden, &w, &y, 1.0, true, rows);
            drop(call()); // warm-up
            synchronize(device);
            let clock = Instant::now();
            for _ in 0..3 {
                drop(call());
            }
            synchronize(device);
            Ok::<_, rewarm_model::ModelError>(clock.elapsed().as_secs_f64() / 3.0)
        })?;
        out.push((rows, seconds));
    }
    Ok(out)
}

/// CUDA: bytes in use on the device (see [`rewarm_train::backend::cuda::device_memory_in_use`]); `None` on the CPU.
fn device_memory(device: Device) -> Option<u64> {
    match device {
        Device::Cuda(i) => rewarm_train::backend::cuda::device_memory_in_use(i).ok(),
        _ => None,
    }
}

fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Best throughput of an n×n by n×n matmul of `kind` (f32 or bf16) over `reps` timed runs (2n³ FLOPs
/// each), on the CPU with the current thread count.
pub fn cpu_matmul_peak(n: i64, reps: usize, kind: Kind) -> Peak {
    let a = Tensor::randn([n, n], (kind, Device::Cpu));
    let b = Tensor::randn([n, n], (kind, Device::Cpu));
    let out = Tensor::empty([n, n], (kind, Device::Cpu));
    let _ = a.mm_out(&out, &b); // warm up
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let s = Instant::now();
        let _ = a.mm_out(&out, &b);
        best = best.min(s.elapsed().as_secs_f64());
    }
    let flops = 2.0 * (n as f64).powi(3) / best;
    Peak {
        flops_per_second: flops,
        source: format!(
            "measured {} matmul peak {:.1} GFLOP/s ({n}×{n}×{n}, best of {reps}, {} threads)",
            if kind == Kind::BFloat16 {
                "bf16"
            } else {
                "f32"
            },
            flops / 1e9,
            tch::get_num_threads()
        ),
    }
}

/// Published dense bf16 tensor-core peaks (no sparsity), by a substring of the device name.
const CUDA_BF16_PEAKS: &[(&str, f64)] = &[
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12), // SXM
    ("A100", 312e12),
    ("L4", 121e12),
    ("A10G", 70e12),
];

/// The device's dense bf16 peak from [`CUDA_BF16_PEAKS`], its name read with `nvidia-smi` (tch has no
/// binding for the device name); `None` when the name is unknown.
fn cuda_bf16_peak(index: usize, bf16: bool) -> Option<Peak> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name",
            "--format=csv,noheader",
            &format!("--id={index}"),
        ])
        .output()
        .ok()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (_, peak) = CUDA_BF16_PEAKS.iter().find(|(k, _)| name.contains(k))?;
    Some(Peak {
        flops_per_second: *peak,
        source: format!(
            "{name} dense bf16 peak {:.0} TFLOP/s (published{})",
            peak / 1e12,
            if bf16 { "" } else { "; this step runs in f32" }
        ),
    })
}

/// User + system CPU time of the whole process (all threads) so far, from /proc/self/stat.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name: state is field 3, utime 14, stime 15 (man 5 proc).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / CLOCK_TICKS_PER_SECOND)
}

/// `sysconf(_SC_CLK_TCK)`, 100 on every Linux architecture rewarm builds for.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The process's peak resident set size (VmHWM in /proc/self/status), in bytes.
pub fn vm_hwm_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl TrainBenchReport {
    /// A few lines to paste into BENCHMARKS.md.
    pub fn to_text(&self) -> String {
        self.shape_and_speed() + &self.utilisation() + &self.breakdown_and_loss()
    }

    /// The model, the step, tokens/s and step times, FLOPs.
    fn shape_and_speed(&self) -> String {
        let mut s = String::new();
        let m = &self.model;
        s += &format!(
            "model: {:?} L={} C={} H={} V={} ({:.1}M params), device {}, {} threads, AdamW {}, {}\n",
            m.family,
            m.num_layers,
            m.hidden_size,
            m.num_heads,
            m.vocab_size,
            self.params as f64 / 1e6,
            self.device,
            self.threads,
            self.adamw,
            self.precision
        );
        s += &format!(
            "step: B={} × T={} = {} tokens, {} warm-up + {} timed steps in {:.2} s\n",
            self.batch_sequences,
            self.seq_len,
            self.tokens_per_step,
            self.warmup_steps,
            self.steps,
            self.seconds
        );
        s += &format!(
            "  {:.0} tokens/s; step time mean {:.1} ms, median {:.1} ms, min {:.1} ms\n",
            self.tokens_per_second,
            self.step_seconds_mean * 1e3,
            self.step_seconds_median * 1e3,
            self.step_seconds_min * 1e3
        );
        s += &format!(
            "  model FLOPs/token {:.3} M (6·(N + V·C) + 12·L·T·C); achieved {:.4} TFLOP/s\n",
            self.flops_per_token as f64 / 1e6,
            self.achieved_flops_per_second / 1e12
        );
        s
    }

    /// CPU use, MFU and peak memory.
    fn utilisation(&self) -> String {
        let mut s = String::new();
        if let Some(cores) = self.cpu_cores_used {
            s += &format!(
                "  CPU use during the timed steps: {cores:.2} cores for {} threads{}\n",
                self.threads,
                if cores < 0.9 * self.threads as f64 {
                    " (other work on the machine took CPU: re-measure when it is idle)"
                } else {
                    ""
                }
            );
        }
        match (&self.peak, self.mfu) {
            (Some(p), Some(mfu)) => s += &format!("  MFU {:.1}% vs {}\n", mfu * 100.0, p.source),
            _ => s += "  MFU n/a (peak unknown for this device)\n",
        }
        match self.peak_memory_bytes {
            Some(bytes) => {
                s += &format!(
                    "  peak memory {:.0} MiB ({})\n",
                    bytes as f64 / (1 << 20) as f64,
                    self.peak_memory_note
                )
            }
            None => s += &format!("  peak memory {}\n", self.peak_memory_note),
        }
        s += &format!(
            "  memory check's lower bound {:.0} MiB (activation checkpointing {})\n",
            self.memory_lower_bound_bytes as f64 / (1 << 20) as f64,
            if self.activation_checkpointing {
                "on"
            } else {
                "off"
            }
        );
        s
    }

    /// Time per part of the step (when measured) and the losses.
    fn breakdown_and_loss(&self) -> String {
        let mut s = String::new();
        if let Some(b) = &self.breakdown {
            let total = b.forward_loss_seconds
                + b.backward_seconds
                + b.grad_norm_seconds
                + b.optimizer_seconds;
            let pct = |x: f64| 100.0 * x / total;
            s += &format!(
                "  per step ({} extra steps): forward+loss {:.1} ms ({:.0}%), backward {:.1} ms ({:.0}%), grad norm {:.1} ms ({:.0}%), clip+AdamW {:.1} ms ({:.0}%)\n",
                b.steps,
                b.forward_loss_seconds * 1e3,
                pct(b.forward_loss_seconds),
                b.backward_seconds * 1e3,
                pct(b.backward_seconds),
                b.grad_norm_seconds * 1e3,
                pct(b.grad_norm_seconds),
                b.optimizer_seconds * 1e3,
                pct(b.optimizer_seconds)
            );
            let heads: Vec<String> = b
                .head_seconds_by_rows
                .iter()
                .map(|(rows, secs)| format!("{rows} rows/chunk {:.1} ms", secs * 1e3))
                .collect();
            s += &format!("  loss head with gradients alone: {}\n", heads.join(", "));
        }
        s += &format!(
            "  loss {:.3} → {:.3} (random tokens: ln V = {:.3})\n",
            self.first_loss,
            self.last_loss,
            (self.model.vocab_size as f64).ln()
        );
        s
    }
}
