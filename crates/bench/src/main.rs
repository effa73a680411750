//! `rewarm-bench …`: measured throughput, printed as a table to paste into BENCHMARKS.md. A binary of its
//! own so that the comparison libraries (Hugging Face `tokenizers` for GPT-2, GitHub's `bpe`) stay out of
//! the `rewarm` binary.

mod sample;
mod train_step;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rayon::prelude::*;
use rewarm_data::corpus::{list_inputs, read_documents, CorpusOptions};
use rewarm_data::mixture::{
    MixtureIndex, MixturePlan, ReplayOrder, ReplayPool, ReplaySpec, SourceMeta, StageSpec,
};
use rewarm_data::{synthetic, Batch, Mixture, PreparedSource, Tokenizer};
use rewarm_model::ModelConfig;
use rewarm_plan::config::Precision;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use train_step::TrainBenchOptions;

#[derive(Parser)]
#[command(
    name = "rewarm-bench",
    version,
    about = "rewarm's benchmarks: tokenization and batch throughput, the training step with MFU."
)]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Tokenization throughput (GPT-2 BPE, 1 thread and all threads, against Hugging Face `tokenizers`)
    /// and batch assembly with replay (one core).
    Data {
        /// Text to tokenize (.txt/.jsonl files or folders).
        #[arg(default_value = "data/sample")]
        inputs: Vec<PathBuf>,
        /// Folder with GPT-2's encoder.json and vocab.bpe for the `tokenizers` comparison (default: the copy
        /// inside the tiktoken-rs crate sources in the cargo registry).
        #[arg(long)]
        gpt2_vocab: Option<PathBuf>,
        #[arg(long, default_value_t = 1024)]
        seq_len: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Training-step throughput of a preset (random weights, random tokens): tokens/s, step time, model
    /// FLOPs per token, achieved TFLOP/s and MFU, peak memory. Compare with scripts/bench_torch.py.
    Train(TrainBenchArgs),
    /// Greedy decoding tokens/s of a model with the KV cache and without, beside the memory-bandwidth
    /// bound (weights read once per token).
    Sample(sample::SampleBenchArgs),
}

#[derive(Args)]
struct TrainBenchArgs {
    /// Model preset (see `rewarm plan` docs): tiny, small, pythia-70m, gpt2-124m, …
    #[arg(long)]
    preset: String,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// T: positions per sequence (default: min(256, the preset's max_seq_len)).
    #[arg(long)]
    seq_len: Option<usize>,
    /// B: sequences per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps before them.
    #[arg(long, default_value_t = 3)]
    warmup_steps: usize,
    /// Torch intra-op threads (default: libtorch's, one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the weights and tokens.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// AdamW as separate tensor ops instead of libtorch's fused kernel (to measure the difference).
    #[arg(long)]
    unfused_adamw: bool,
    /// Also time forward+loss, backward, gradient norm and clip+AdamW separately on a few more steps, and
    /// the loss head alone at several chunk sizes.
    #[arg(long)]
    breakdown: bool,
    /// `auto` (bf16 autocast on CUDA, f32 on the CPU), `fp32` or `bf16`, as the plan's train.precision.
    #[arg(long, default_value = "auto", value_parser = parse_precision)]
    precision: Precision,
    /// Recompute each block in the backward pass, as the plan's train.activation_checkpointing.
    #[arg(long)]
    activation_checkpointing: bool,
    /// Print the report as JSON (model shape included) instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    // libtorch asks about CUDA once per process and keeps the answer: load its library first when asked.
    if std::env::args().any(|a| a.contains("cuda")) {
        let _ = rewarm_train::backend::cuda::load();
    }
    match run(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Data {
            inputs,
            gpt2_vocab,
            seq_len,
            batch,
        } => {
            bench_tokenizers(&inputs, gpt2_vocab)?;
            bench_batches(seq_len, batch)
        }
        BenchCommand::Train(args) => bench_train(args),
        BenchCommand::Sample(args) => sample::bench_sample(args),
    }
}

fn bench_train(args: TrainBenchArgs) -> Result<()> {
    let config = ModelConfig::preset(&args.preset).with_context(|| {
        format!(
            "unknown preset `{}`\nHINT: pick one of {}",
            args.preset,
            rewarm_model::PRESETS.join(", ")
        )
    })?;
    let device = rewarm_train::parse_device(Some(&args.device))?;
    let opts = TrainBenchOptions {
        device,
        seq_len: args.seq_len.unwrap_or(config.max_seq_len.min(256)),
        batch_sequences: args.batch,
        warmup_steps: args.warmup_steps,
        steps: args.steps,
        threads: args.threads,
        seed: args.seed,
        unfused_adamw: args.unfused_adamw,
        breakdown: args.breakdown,
        precision: args.precision,
        activation_checkpointing: args.activation_checkpointing,
    };
    let report = train_step::bench_train(&config, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("rewarm-bench train --preset {}", args.preset);
        print!("{}", report.to_text());
    }
    Ok(())
}

fn parse_precision(s: &str) -> std::result::Result<Precision, String> {
    match s {
        "auto" => Ok(Precision::Auto),
        "fp32" => Ok(Precision::Fp32),
        "bf16" => Ok(Precision::Bf16),
        _ => Err(format!("`{s}`: expected auto, fp32 or bf16")),
    }
}

/// Runs `f` repeatedly for at least `min_secs` and returns seconds per call.
fn time_per_call(min_secs: f64, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut calls = 0;
    while calls == 0 || start.elapsed().as_secs_f64() < min_secs {
        f();
        calls += 1;
    }
    start.elapsed().as_secs_f64() / calls as f64
}

fn find_gpt2_vocab() -> Option<PathBuf> {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .ok()
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|h| PathBuf::from(h).join(".cargo"))
        })?;
    let src = home.join("registry/src");
    std::fs::read_dir(src)
        .ok()?
        .flatten()
        .map(|d| d.path().join("tiktoken-rs-0.12.1/assets"))
        .find(|p| p.join("vocab.bpe").exists())
}

fn hf_gpt2(dir: &std::path::Path) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    let vocab = dir.join("encoder.json");
    let merges = dir.join("vocab.bpe");
    let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
        .build()
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    Ok(tok)
}

/// GitHub's `bpe` crate (rust-gems) with r50k ranks and GPT-2's split pattern, the negative look-ahead
/// `\\s+(?!\\S)` rewritten as bpe-openai does for its own encodings.
fn github_bpe_r50k(dir: &std::path::Path) -> Result<bpe_openai::Tokenizer> {
    let path = dir.join("r50k_base.tiktoken");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let tokens = bpe::byte_pair_encoding::read_tiktoken(&text)?;
    let bpe = bpe::byte_pair_encoding::BytePairEncoding::from_dictionary(tokens, None);
    let pat1 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+$";
    bpe_openai::Tokenizer::new_lookahead(
        bpe,
        &[(pat1, false), ("\\s+\\s", true), ("\\s+", false)],
        false,
    )
    .map_err(|e| anyhow::anyhow!("pattern: {e}"))
}

fn bench_tokenizers(inputs: &[PathBuf], gpt2_vocab: Option<PathBuf>) -> Result<()> {
    let (files, _) = list_inputs(inputs)?;
    let opts = CorpusOptions::default();
    let mut docs = Vec::new();
    for f in &files {
        docs.extend(read_documents(f, &opts)?);
    }
    let bytes: usize = docs.iter().map(|d| d.len()).sum();
    if bytes == 0 {
        bail!("no text in the inputs");
    }
    let tik = Tokenizer::gpt2();
    let tokens: usize = docs
        .iter()
        .map(|d| tik.encode(d).map(|t| t.len()).unwrap_or(0))
        .sum();
    println!(
        "text: {} documents, {:.2} MB, {} GPT-2 tokens ({:.2} bytes/token)",
        docs.len(),
        bytes as f64 / 1e6,
        tokens,
        bytes as f64 / tokens as f64
    );
    let threads = rayon::current_num_threads();
    let report = |name: &str, secs: f64| {
        println!(
            "  {name:<44} {:>8.2} MB/s {:>12.0} tokens/s",
            bytes as f64 / 1e6 / secs,
            tokens as f64 / secs
        );
        secs
    };
    println!("GPT-2 BPE tokenization:");
    let tik1 = report(
        "rewarm (tiktoken-rs r50k), 1 thread",
        time_per_call(2.0, || {
            docs.iter().for_each(|d| drop(tik.encode(d)));
        }),
    );
    let tik_n = report(
        &format!("rewarm (tiktoken-rs r50k), {threads} threads"),
        time_per_call(2.0, || {
            docs.par_iter().for_each(|d| drop(tik.encode(d)));
        }),
    );
    match gpt2_vocab.or_else(find_gpt2_vocab) {
        Some(dir) => {
            let hf = hf_gpt2(&dir).with_context(|| "building the tokenizers GPT-2 BPE")?;
            let same = docs.iter().take(200).all(|d| hf.encode_fast(d.as_str(), false).map(|e| e.get_ids().to_vec()).ok() == tik.encode(d).ok());
            let hf1 = report("HF tokenizers (GPT-2 vocab), 1 thread", time_per_call(2.0, || {
                docs.iter().for_each(|d| drop(hf.encode_fast(d.as_str(), false)));
            }));
            println!("  same ids as rewarm on the first 200 documents: {same}");
            let gh = github_bpe_r50k(&dir)?;
            let same = docs.iter().take(200).all(|d| gh.encode(d.as_str()) == tik.encode(d).unwrap_or_default());
            let gh1 = report("GitHub bpe-openai (r50k ranks), 1 thread", time_per_call(2.0, || {
                docs.iter().for_each(|d| drop(gh.encode(d.as_str())));
            }));
            println!("  same ids as rewarm on the first 200 documents: {same}");
            println!("  rewarm / fastest other, 1 thread: {:.2}x the time", tik1 / hf1.min(gh1).min(tik1));
        }
        None => println!("  (no GPT-2 encoder.json/vocab.bpe found for the tokenizers comparison; pass --gpt2-vocab)"),
    }
    println!("  scaling: {:.2}x on {threads} threads", tik1 / tik_n);
    Ok(())
}

fn bench_batches(seq_len: usize, batch: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let n_tokens = 16 << 20;
    let make = |k: u32| -> Result<Arc<PreparedSource>> {
        let train: Vec<u32> = (0..n_tokens as u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 17) ^ k)
            .collect();
        let path = dir.path().join(format!("s{k}"));
        synthetic::write_source(&path, 50_257, &train, &train[..seq_len * 4], 32 << 20)?;
        Ok(Arc::new(PreparedSource::open(&path)?))
    };
    let sources = vec![make(0)?, make(1)?];
    let n = sources[0].train.sequences(seq_len);
    let stages = vec![
        StageSpec {
            name: "d0".into(),
            sources: vec![(0, 1.0)],
            replay: None,
            sequences: n,
            subset_epochs: None,
        },
        StageSpec {
            name: "d1".into(),
            sources: vec![(1, 1.0)],
            replay: Some(ReplaySpec {
                fraction: 0.25,
                sources: vec![0],
                weights: None,
                pool: ReplayPool::Seen,
                order: ReplayOrder::Shuffled,
                buffer: None,
            }),
            sequences: n,
            subset_epochs: None,
        },
    ];
    let plan = MixturePlan {
        seed: 0,
        max_epochs: 4.0,
        sources: vec![
            SourceMeta {
                name: "old".into(),
                sequences: n,
            },
            SourceMeta {
                name: "new".into(),
                sequences: n,
            },
        ],
        stages,
        earlier: Vec::new(),
    };
    let mixture = Mixture::new(MixtureIndex::new(plan)?, seq_len, sources)?;
    let mut out = Batch::default();
    let steps = n / batch as u64;
    let mut step = 0u64;
    let secs = time_per_call(2.0, || {
        mixture.fill(1, (step % steps) * batch as u64, batch, &mut out);
        step += 1;
    });
    let tokens = (batch * seq_len) as f64;
    println!("batch assembly (25% seen-only replay, u16 shards, {batch} x {seq_len}, one core):");
    println!(
        "  {:>10.1} M tokens/s ({:.1} µs per batch)",
        tokens / secs / 1e6,
        secs * 1e6
    );
    Ok(())
}
