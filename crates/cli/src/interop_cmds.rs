//! `import`, `export` and `sample`: moving models between rewarm and other tools, and looking at what a
//! model generates.

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ImportCommand {
    /// A llama.cpp GGUF file (Llama architecture) → a Hugging Face folder (dequantized to f32).
    Gguf(ImportGgufArgs),
}

#[derive(Args)]
pub struct ImportGgufArgs {
    /// The .gguf file.
    file: PathBuf,
    /// The Hugging Face folder to write (must not exist, or be empty).
    #[arg(long)]
    out: PathBuf,
}

pub fn import(cmd: ImportCommand) -> Result<()> {
    match cmd {
        ImportCommand::Gguf(args) => {
            let summary = rewarm_interop::import_gguf(&args.file, &args.out)?;
            let s = &summary.shape;
            let types: Vec<String> = summary
                .types
                .iter()
                .map(|(t, n)| format!("{n} {t}"))
                .collect();
            println!(
                "{}: Llama, {} layers, C={}, {} q / {} kv heads, MLP {}, V={}, θ={}, {}; {} parameters from {} tensors ({})",
                args.out.display(),
                s.num_layers,
                s.hidden_size,
                s.num_heads,
                s.num_kv_heads,
                s.intermediate_size,
                s.vocab_size,
                s.rope_theta,
                if s.tie_embeddings { "tied" } else { "untied" },
                summary.params,
                summary.types.values().sum::<usize>(),
                types.join(", "),
            );
            println!(
                "wrote config.json, model.safetensors (f32){}",
                if summary.tokenizer {
                    ", tokenizer.json, tokenizer_config.json"
                } else {
                    ""
                }
            );
            // The model as a plan's [model] table: what `init_from` this folder checks against.
            let config = rewarm_model::ModelConfig::from_hf_config(&summary.config)?;
            println!(
                "to continue pre-training from it, a plan needs\ninit_from = \"{}\"\n{}",
                args.out.display(),
                rewarm_train::pretrained::model_toml(&config)
            );
            for note in &summary.notes {
                eprintln!("note: {note}");
            }
            Ok(())
        }
    }
}

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
}

pub fn export(args: ExportArgs) -> Result<()> {
    rewarm_train::pretrained::export_hf(&args.checkpoint, &args.hf, args.tokenizer.as_deref())?;
    println!(
        "wrote {}: config.json, model.safetensors{}",
        args.hf.display(),
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
    /// The text to continue.
    #[arg(long)]
    prompt: String,
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
}

/// Ids from a config.json field that may be a number or a list of numbers.
fn ids_in(value: &serde_json::Value) -> Vec<i64> {
    match value {
        serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_i64()).collect(),
        other => other.as_i64().into_iter().collect(),
    }
}

pub fn sample(args: SampleArgs) -> Result<()> {
    use anyhow::{bail, Context};
    use rewarm_data::{Tokenizer, TokenizerSpec};
    use rewarm_model::generate::{generate, SamplingOptions};
    use rewarm_train::pretrained::{load_model, Source};
    use std::io::Write;

    if !(args.temperature >= 0.0 && args.temperature.is_finite()) {
        bail!(
            "--temperature {} must be ≥ 0 (0 is greedy)",
            args.temperature
        );
    }
    if let Some(p) = args.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        bail!("--top-p {p} must be in (0, 1]");
    }
    let device = crate::train_cmds::parse_device(args.device.as_deref())?;
    let (model, _vs, source) = load_model(&args.model, device)?;
    let hf_dir = match &source {
        Source::HfFolder(dir) => Some(dir.clone()),
        _ => None,
    };
    let spec: TokenizerSpec = match (&args.tokenizer, &hf_dir) {
        (Some(t), _) => t.parse()?,
        (None, Some(dir)) if dir.join("tokenizer.json").is_file() => TokenizerSpec::HfFile(dir.join("tokenizer.json")),
        _ => bail!(
            "{}: no tokenizer to encode the prompt with\nHINT: pass --tokenizer gpt2 or --tokenizer <tokenizer.json> (the one the data was prepared with)",
            args.model.display()
        ),
    };
    let tokenizer = Tokenizer::load(&spec, None).context("loading the tokenizer")?;

    let mut prompt: Vec<i64> = tokenizer
        .encode(&args.prompt)?
        .into_iter()
        .map(i64::from)
        .collect();
    let mut stop = vec![tokenizer.info().eot_id as i64];
    if let Some(dir) = &hf_dir {
        let config = rewarm_interop::hf::read_config(dir)?;
        stop.extend(ids_in(&config["eos_token_id"]));
        let tok_config = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok();
        let tok_config: serde_json::Value = tok_config
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if tok_config["add_bos_token"] == serde_json::Value::Bool(true) {
            prompt.splice(0..0, ids_in(&config["bos_token_id"]));
        }
    }
    if args.ignore_eos {
        stop.clear();
    }
    let opts = SamplingOptions {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    };

    // Stream: decode everything generated so far and print what is new, holding back an incomplete
    // UTF-8 sequence (decoded as U+FFFD) until the next token completes it.
    let mut out = std::io::stdout().lock();
    write!(out, "{}", args.prompt)?;
    out.flush()?;
    let mut generated: Vec<u32> = Vec::new();
    let mut printed = String::new();
    let mut emit = |text: String, out: &mut std::io::StdoutLock| -> Result<()> {
        if let Some(new) = text.strip_prefix(printed.as_str()) {
            write!(out, "{new}")?;
            out.flush()?;
            printed = text;
        }
        Ok(())
    };
    let started = std::time::Instant::now();
    let mut failure = None;
    let new = generate(&model, &prompt, args.max_tokens, &opts, &stop, |token| {
        if failure.is_some() || stop.contains(&token) {
            return;
        }
        generated.push(token as u32);
        let result = tokenizer
            .decode(&generated)
            .map_err(anyhow::Error::from)
            .and_then(|text| {
                if text.ends_with('\u{fffd}') {
                    Ok(())
                } else {
                    emit(text, &mut out)
                }
            });
        if let Err(e) = result {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let text = tokenizer.decode(&generated)?;
    emit(text, &mut out)?;
    writeln!(out)?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "[{} tokens in {seconds:.1} s, {:.1} tokens/s]",
        new.len(),
        new.len() as f64 / seconds.max(1e-9)
    );
    Ok(())
}
