//! `export`, `sample` and `logits`: a checkpoint written for other tools, and what a model generates and
//! the logits it computes.

use anyhow::Result;
use clap::Args;
use rewarm_jobs::inference::{LoadedModel, LogitsDump, SampleRequest};
use rewarm_model::generate::SamplingOptions;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// A rewarm checkpoint folder (`ckpt/step_…`) or a run folder (its newest checkpoint).
    checkpoint: PathBuf,
    /// The Hugging Face folder to write (must not exist, or be empty).
    #[arg(long)]
    hf: PathBuf,
    /// The tokenizer.json the training data was prepared with, copied into the folder.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Weights as f32 or bf16 (half the size; what most published checkpoints use).
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
    dtype: String,
    /// Largest shard, e.g. 5GB (transformers' default), 500MB or bytes; past it the weights are split
    /// into model-0000k-of-0000n.safetensors with model.safetensors.index.json.
    #[arg(long, default_value = "5GB", value_parser = parse_bytes)]
    max_shard_size: u64,
}

/// "5GB", "500MB", "2kB" (powers of 1000, as transformers reads them) or a plain byte count.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{text}`: give a size like 5GB, 500MB or a byte count"
            ))
        }
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: give a size like 5GB, 500MB or a byte count"))?;
    if !(n > 0.0 && n.is_finite()) {
        return Err(format!("`{text}`: the size must be positive"));
    }
    Ok((n * scale as f64) as u64)
}

pub fn export(args: ExportArgs) -> Result<()> {
    let options = rewarm_model::pretrained::ExportOptions {
        bf16: args.dtype == "bf16",
        max_shard_bytes: args.max_shard_size,
    };
    rewarm_jobs::inference::export(
        &args.checkpoint,
        &args.hf,
        args.tokenizer.as_deref(),
        options,
    )?;
    println!(
        "wrote {}: config.json, the weights ({}){}",
        args.hf.display(),
        args.dtype,
        if args.tokenizer.is_some() {
            ", tokenizer.json"
        } else {
            ""
        }
    );
    if args.tokenizer.is_none() {
        eprintln!("note: no --tokenizer given, so the folder has no tokenizer.json");
    }
    Ok(())
}

#[derive(Args)]
pub struct SampleArgs {
    /// A Hugging Face folder, a rewarm checkpoint folder, or a run folder (its newest checkpoint).
    model: PathBuf,
    /// The text to continue; give it several times to continue several prompts in one batch (each
    /// printed when all are done).
    #[arg(long, required = true)]
    prompt: Vec<String>,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// 0 is greedy; higher values flatten the distribution.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Sample among the k most likely tokens only.
    #[arg(long)]
    top_k: Option<usize>,
    /// Sample among the most likely tokens that together reach probability p.
    #[arg(long)]
    top_p: Option<f64>,
    /// Seed of the draws: the same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `gpt2` or a tokenizer.json (default: the folder's tokenizer.json). Needed for rewarm checkpoints.
    #[arg(long)]
    tokenizer: Option<String>,
    /// Keep generating after the end-of-text token.
    #[arg(long)]
    ignore_eos: bool,
    /// `cpu`, `cuda` or `cuda:N` (default: cuda if available, else cpu).
    #[arg(long)]
    device: Option<String>,
    /// Weights in f32 (default) or bf16: bf16 reads half the bytes per token (SmolLM2-135M on 2 CPU
    /// cores: 34 tokens/s against 20 in f32, BENCHMARKS.md); its logits differ in the last digits.
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
    dtype: String,
}

pub fn sample(args: SampleArgs) -> Result<()> {
    use std::io::Write;
    let device = rewarm_train::parse_device(args.device.as_deref())?;
    let loaded = LoadedModel::load_as(&args.model, device, args.dtype == "bf16")?;
    let tokenizer = loaded.tokenizer(args.tokenizer.as_deref())?;
    let request = SampleRequest {
        prompt: &args.prompt[0],
        max_tokens: args.max_tokens,
        sampling: SamplingOptions {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        },
        ignore_eos: args.ignore_eos,
    };
    let started = std::time::Instant::now();
    if args.prompt.len() > 1 {
        let (texts, tokens) = loaded.sample_batch(&tokenizer, &args.prompt, &request)?;
        for (i, (prompt, text)) in args.prompt.iter().zip(&texts).enumerate() {
            println!("--- prompt {}\n{prompt}{text}", i + 1);
        }
        report_speed(tokens, started);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{}", args.prompt[0])?;
    out.flush()?;
    let tokens = loaded.sample(&tokenizer, &request, |text| {
        write!(out, "{text}")?;
        Ok(out.flush()?)
    })?;
    writeln!(out)?;
    report_speed(tokens, started);
    Ok(())
}

/// `[N tokens in S s, R tokens/s]` on stderr.
fn report_speed(tokens: usize, started: std::time::Instant) {
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "[{tokens} tokens in {seconds:.1} s, {:.1} tokens/s]",
        tokens as f64 / seconds.max(1e-9)
    );
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["text", "ids"])))]
pub struct LogitsArgs {
    /// A Hugging Face folder, a rewarm checkpoint folder, or a run folder (its newest checkpoint).
    model: PathBuf,
    /// The text to run the model on (encoded as `rewarm sample` encodes a prompt).
    #[arg(long)]
    text: Option<String>,
    /// Token ids to run the model on instead of text, comma-separated: `--ids 1,2,3`.
    #[arg(long, value_delimiter = ',')]
    ids: Option<Vec<i64>>,
    /// `gpt2` or a tokenizer.json for --text (default: the folder's tokenizer.json). Needed for rewarm
    /// checkpoints.
    #[arg(long)]
    tokenizer: Option<String>,
    /// Write the logits of every N-th vocabulary id (0, N, 2N, …) at every position; 1 writes them all.
    /// The log-sum-exp, log-probabilities and argmax always use the whole vocabulary.
    #[arg(long, default_value_t = 1)]
    stride: usize,
    /// The JSON file to write (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// `cpu`, `cuda` or `cuda:N` (default: cuda if available, else cpu).
    #[arg(long)]
    device: Option<String>,
}

pub fn logits(args: LogitsArgs) -> Result<()> {
    use anyhow::Context;
    let device = rewarm_train::parse_device(args.device.as_deref())?;
    let loaded = LoadedModel::load(&args.model, device)?;
    let tokens: Vec<i64> = match (&args.text, args.ids) {
        (Some(text), _) => {
            let tokenizer = loaded.tokenizer(args.tokenizer.as_deref())?;
            loaded.encode(&tokenizer, text)?
        }
        (None, Some(ids)) => ids,
        (None, None) => unreachable!("clap requires --text or --ids"),
    };
    let dump = LogitsDump::new(&loaded, args.text, tokens, args.stride)?;
    match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("{}: cannot create", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            serde_json::to_writer(&mut writer, &dump)?;
            std::io::Write::flush(&mut writer)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        None => println!("{}", serde_json::to_string(&dump)?),
    }
    eprintln!(
        "{} tokens, mean next-token loss {}{}",
        dump.tokens.len(),
        dump.mean_loss
            .map_or("– (one token)".into(), |l| format!("{l:.6} nats")),
        args.out
            .as_ref()
            .map_or(String::new(), |p| format!("; wrote {}", p.display()))
    );
    Ok(())
}

#[derive(Args)]
pub struct EvalArgs {
    /// A Hugging Face folder, a rewarm checkpoint folder, or a run folder (its newest checkpoint).
    model: PathBuf,
    /// Multiple-choice task files (JSONL: context, choices, gold); several give a row each.
    #[arg(long = "task", required = true, num_args = 1..)]
    tasks: Vec<PathBuf>,
    /// Score only the first N questions of each task.
    #[arg(long)]
    limit: Option<usize>,
    /// `gpt2` or a tokenizer.json (default: the folder's tokenizer.json). Needed for rewarm checkpoints.
    #[arg(long)]
    tokenizer: Option<String>,
    /// `cpu`, `cuda` or `cuda:N` (default: cuda if available, else cpu).
    #[arg(long)]
    device: Option<String>,
}

/// `rewarm eval`: accuracy and length-normalised accuracy per task, as lm-evaluation-harness reports them.
pub fn eval(args: EvalArgs) -> Result<()> {
    use rewarm_jobs::tasks::{read_task, score};
    let device = rewarm_train::parse_device(args.device.as_deref())?;
    let loaded = LoadedModel::load(&args.model, device)?;
    let tokenizer = loaded.tokenizer(args.tokenizer.as_deref())?;
    println!("{:<32} {:>6} {:>18} {:>18}", "task", "n", "acc", "acc_norm");
    for path in &args.tasks {
        let mut items = read_task(path)?;
        items.truncate(args.limit.unwrap_or(usize::MAX));
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let bar = rewarm_jobs::progress::CountBar::new(&name, items.len() as u64);
        let mut logprobs = Vec::with_capacity(items.len());
        for item in &items {
            logprobs.push(loaded.choice_logprobs(&tokenizer, item)?);
            bar.inc();
        }
        drop(bar);
        let s = score(&items, &logprobs);
        println!(
            "{:<32} {:>6} {:>18} {:>18}",
            name,
            s.n,
            format!("{:.4} ± {:.4}", s.acc, s.acc_stderr),
            format!("{:.4} ± {:.4}", s.acc_norm, s.acc_norm_stderr)
        );
    }
    Ok(())
}
