//! `rewarm-bench sample`: greedy decoding speed of a model on the CPU (or a GPU), with the KV cache
//! (`rewarm sample`'s path) against feeding the whole window every token (the path before the cache), in
//! f32 or bf16, beside the memory-bandwidth bound: decoding one token reads every weight once, so tokens/s
//! cannot exceed (bytes/s the machine reads) / (bytes of the weights). The read bandwidth is measured in
//! the same call by summing a 1 GiB tensor.

use anyhow::{Context, Result};
use rewarm_model::generate::{generate, SamplingOptions};
use rewarm_model::Model;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(clap::Args)]
pub struct SampleBenchArgs {
    /// A Hugging Face folder or rewarm checkpoint (e.g. the imported SmolLM2-135M).
    #[arg(long)]
    model: PathBuf,
    /// Prompt length in tokens (ids 1…; the text does not matter for speed).
    #[arg(long, default_value_t = 16)]
    prompt_tokens: usize,
    /// New tokens per timed generation.
    #[arg(long, default_value_t = 64)]
    new_tokens: usize,
    /// f32 or bf16 weights.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Timed rounds (each: cached, then uncached); the median is printed.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Torch intra-op threads (default: libtorch's, one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Threads a one-position product is split over (rewarm_model::gemv; 1: libtorch's own).
    #[arg(long, default_value_t = 1)]
    decode_threads: usize,
}

pub fn bench_sample(args: SampleBenchArgs) -> Result<()> {
    if let Some(t) = args.threads {
        tch::set_num_threads(t as i32);
    }
    rewarm_model::gemv::set_decode_threads(args.decode_threads);
    let (model, mut vs, _) = rewarm_model::pretrained::load_model(&args.model, Device::Cpu)
        .with_context(|| format!("loading {}", args.model.display()))?;
    match args.dtype.as_str() {
        "f32" => {}
        "bf16" => vs.bfloat16(),
        other => anyhow::bail!("--dtype {other}: use f32 or bf16"),
    }
    let bytes: i64 = vs
        .variables()
        .values()
        .map(|t| t.numel() as i64 * t.kind().elt_size_in_bytes() as i64)
        .sum();
    let prompt: Vec<i64> = (1..=args.prompt_tokens as i64).collect();
    let greedy = SamplingOptions::greedy();
    let mut cached = Vec::new();
    let mut uncached = Vec::new();
    for _ in 0..args.rounds {
        cached.push(decode_rate(&model, &prompt, args.new_tokens, &greedy)?);
        uncached.push(uncached_rate(&model, &prompt, args.new_tokens));
    }
    let bandwidth = read_bandwidth();
    let bound = bandwidth / bytes as f64;
    let (c, u) = (median(&mut cached), median(&mut uncached));
    println!(
        "| {} {} | {:.1} | {:.1} | {:.1}× | {:.1} GB/s | {:.1} | {:.0}% |",
        args.model.display(),
        args.dtype,
        c,
        u,
        c / u,
        bandwidth / 1e9,
        bound,
        100.0 * c / bound
    );
    println!(
        "(cached and uncached tokens/s: medians of {} rounds of {} greedy tokens after a {}-token prompt; \
         weights {:.0} MB; bound = read bandwidth / weight bytes)",
        args.rounds,
        args.new_tokens,
        args.prompt_tokens,
        bytes as f64 / 1e6
    );
    Ok(())
}

/// Tokens/s after the first token (which carries the prompt's prefill), with the KV cache.
fn decode_rate(model: &Model, prompt: &[i64], n: usize, opts: &SamplingOptions) -> Result<f64> {
    let mut first: Option<Instant> = None;
    let mut count = 0usize;
    generate(model, prompt, n, opts, &[], |_| {
        count += 1;
        first.get_or_insert_with(Instant::now);
    })?;
    let first = first.context("no token generated")?;
    Ok((count - 1) as f64 / first.elapsed().as_secs_f64())
}

/// Tokens/s of greedy decoding that runs the whole window every token (no cache), after the first.
fn uncached_rate(model: &Model, prompt: &[i64], n: usize) -> f64 {
    let window = model.config().max_seq_len;
    let mut tokens = prompt.to_vec();
    let mut first = None;
    for _ in 0..n {
        let context = &tokens[tokens.len().saturating_sub(window)..];
        let input = Tensor::from_slice(context).view([1, -1]);
        let logits = tch::no_grad(|| model.forward(&input));
        let next = logits.select(1, context.len() as i64 - 1).argmax(-1, false);
        tokens.push(next.int64_value(&[0]));
        first.get_or_insert_with(Instant::now);
    }
    (n - 1) as f64 / first.expect("n ≥ 1").elapsed().as_secs_f64()
}

/// Bytes/s of reading a 1 GiB f32 tensor (its sum), the best of 5: bytes are bytes, and summing bf16 on
/// a CPU is bound by converting, not by memory.
fn read_bandwidth() -> f64 {
    let big = Tensor::ones([1i64 << 28], (Kind::Float, Device::Cpu));
    (0..5)
        .map(|_| {
            let t = Instant::now();
            let _ = big.sum(Kind::Float).double_value(&[]);
            (1u64 << 30) as f64 / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
