//! `import`, `export`, `sample` and `logits`: moving models between rewarm and other tools, and looking at
//! what a model generates and the logits it computes.

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

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

/// A model loaded for inference (`sample`, `logits`) with what its folder says about encoding text.
struct LoadedModel {
    model: rewarm_model::Model,
    _vs: tch::nn::VarStore,
    /// The path given on the command line, for messages.
    path: PathBuf,
    source: rewarm_train::pretrained::Source,
    /// config.json of a Hugging Face folder.
    hf_config: Option<serde_json::Value>,
}

impl LoadedModel {
    /// The model at `path` (a Hugging Face folder, a checkpoint or a run folder) on `device`.
    fn load(path: &Path, device: tch::Device) -> Result<Self> {
        let (model, vs, source) = rewarm_train::pretrained::load_model(path, device)?;
        let hf_config = match &source {
            rewarm_train::pretrained::Source::HfFolder(dir) => {
                Some(rewarm_interop::hf::read_config(dir)?)
            }
            _ => None,
        };
        Ok(LoadedModel {
            model,
            _vs: vs,
            path: path.to_owned(),
            source,
            hf_config,
        })
    }

    fn hf_dir(&self) -> Option<&Path> {
        match &self.source {
            rewarm_train::pretrained::Source::HfFolder(dir) => Some(dir),
            _ => None,
        }
    }

    /// `--tokenizer` if given, else the Hugging Face folder's tokenizer.json.
    fn tokenizer(&self, spec: Option<&str>) -> Result<rewarm_data::Tokenizer> {
        use anyhow::{bail, Context};
        use rewarm_data::{Tokenizer, TokenizerSpec};
        let spec: TokenizerSpec = match (spec, self.hf_dir()) {
            (Some(t), _) => t.parse()?,
            (None, Some(dir)) if dir.join("tokenizer.json").is_file() => {
                TokenizerSpec::HfFile(dir.join("tokenizer.json"))
            }
            _ => bail!(
                "{}: no tokenizer to encode the text with\nHINT: pass --tokenizer gpt2 or --tokenizer <tokenizer.json> (the one the data was prepared with)",
                self.path.display()
            ),
        };
        Tokenizer::load(&spec, None).context("loading the tokenizer")
    }

    /// The ids of `text` as the model reads it: the tokenizer's ordinary encoding, after the folder's BOS
    /// when its tokenizer_config.json says `add_bos_token`.
    fn encode(&self, tokenizer: &rewarm_data::Tokenizer, text: &str) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = tokenizer.encode(text)?.into_iter().map(i64::from).collect();
        if let (Some(dir), Some(config)) = (self.hf_dir(), &self.hf_config) {
            let tok_config = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok();
            let tok_config: serde_json::Value = tok_config
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            if tok_config["add_bos_token"] == serde_json::Value::Bool(true) {
                ids.splice(0..0, ids_in(&config["bos_token_id"]));
            }
        }
        Ok(ids)
    }

    /// The ids that end generation: the tokenizer's end-of-text and the folder's `eos_token_id`.
    fn stop_ids(&self, tokenizer: &rewarm_data::Tokenizer) -> Vec<i64> {
        let mut stop = vec![tokenizer.info().eot_id as i64];
        if let Some(config) = &self.hf_config {
            stop.extend(ids_in(&config["eos_token_id"]));
        }
        stop
    }
}

pub fn sample(args: SampleArgs) -> Result<()> {
    use anyhow::bail;
    use rewarm_model::generate::{generate, SamplingOptions};
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
    let loaded = LoadedModel::load(&args.model, device)?;
    let tokenizer = loaded.tokenizer(args.tokenizer.as_deref())?;
    let prompt = loaded.encode(&tokenizer, &args.prompt)?;
    let mut stop = loaded.stop_ids(&tokenizer);
    if args.ignore_eos {
        stop.clear();
    }
    let model = &loaded.model;
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
    let new = generate(model, &prompt, args.max_tokens, &opts, &stop, |token| {
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

/// Per-position statistics of one sequence's logits, computed in f64 from the model's f32 logits.
struct LogitStats {
    logsumexp: Vec<f64>,
    /// log p(tokens[t + 1] | tokens[..=t]) for t < T − 1.
    target_logprob: Vec<f64>,
    /// The first id of the largest logit (NaN never wins).
    argmax: Vec<usize>,
}

/// `logits` is (T, V) row-major; `tokens` the T ids it was computed from.
fn logit_stats(logits: &[f32], v: usize, tokens: &[i64]) -> LogitStats {
    let rows: Vec<&[f32]> = logits.chunks_exact(v).collect();
    let argmax = rows
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(best, top), (i, &x)| {
                    if x > top {
                        (i, x)
                    } else {
                        (best, top)
                    }
                })
                .0
        })
        .collect();
    let logsumexp: Vec<f64> = rows
        .iter()
        .map(|row| {
            let top = row
                .iter()
                .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
            let sum: f64 = row.iter().map(|&x| (f64::from(x) - top).exp()).sum();
            top + sum.ln()
        })
        .collect();
    let target_logprob = (0..tokens.len().saturating_sub(1))
        .map(|t| f64::from(rows[t][tokens[t + 1] as usize]) - logsumexp[t])
        .collect();
    LogitStats {
        logsumexp,
        target_logprob,
        argmax,
    }
}

pub fn logits(args: LogitsArgs) -> Result<()> {
    use anyhow::{bail, Context};
    use serde_json::json;
    use tch::{Kind, Tensor};

    if args.stride == 0 {
        bail!("--stride must be ≥ 1 (1 writes every logit)");
    }
    let device = crate::train_cmds::parse_device(args.device.as_deref())?;
    let loaded = LoadedModel::load(&args.model, device)?;
    let config = loaded.model.config();
    let v = config.vocab_size;
    let tokens: Vec<i64> = match (&args.text, &args.ids) {
        (Some(text), _) => {
            let tokenizer = loaded.tokenizer(args.tokenizer.as_deref())?;
            loaded.encode(&tokenizer, text)?
        }
        (None, Some(ids)) => ids.clone(),
        (None, None) => unreachable!("clap requires --text or --ids"),
    };
    if tokens.is_empty() {
        bail!("no tokens to run the model on\nHINT: give a non-empty --text or --ids");
    }
    if let Some((t, id)) = tokens
        .iter()
        .enumerate()
        .find(|(_, &id)| !(0..v as i64).contains(&id))
    {
        bail!(
            "token {id} at position {t} is outside the model's vocabulary (0..{v})\nHINT: the ids must come from the tokenizer the model was trained with"
        );
    }

    let input = Tensor::from_slice(&tokens).to(device).unsqueeze(0); // (1, T)
    let logits = tch::no_grad(|| loaded.model.f_forward(&input))?; // (1, T, V)
    let dtype = format!("{:?}", logits.kind()).to_lowercase();
    let logits = Vec::<f32>::try_from(
        logits
            .squeeze_dim(0)
            .to_kind(Kind::Float)
            .to(tch::Device::Cpu)
            .reshape([-1]),
    )
    .context("copying the logits to the host")?; // (T·V)
    let stats = logit_stats(&logits, v, &tokens);
    let mean_loss = (!stats.target_logprob.is_empty())
        .then(|| -stats.target_logprob.iter().sum::<f64>() / stats.target_logprob.len() as f64);
    let logit_ids: Vec<usize> = (0..v).step_by(args.stride).collect();
    // f32 logits written as the f64 of the same value, so the JSON holds them exactly.
    let kept: Vec<Vec<f64>> = logits
        .chunks_exact(v)
        .map(|row| logit_ids.iter().map(|&i| f64::from(row[i])).collect())
        .collect();
    let source = match &loaded.source {
        rewarm_train::pretrained::Source::Checkpoint(dir) => {
            json!({ "kind": "checkpoint", "path": dir })
        }
        rewarm_train::pretrained::Source::HfFolder(dir) => {
            json!({ "kind": "hf_folder", "path": dir })
        }
        rewarm_train::pretrained::Source::File(file) => json!({ "kind": "file", "path": file }),
    };
    let out = json!({
        "model": config,
        "source": source,
        "device": format!("{device:?}").to_lowercase(),
        "dtype": dtype,
        "text": args.text,
        "tokens": tokens,
        "mean_loss": mean_loss,
        "logsumexp": stats.logsumexp,
        "target_logprob": stats.target_logprob,
        "argmax": stats.argmax,
        "logit_ids": logit_ids,
        "logits": kept,
    });
    match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("{}: cannot create", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            serde_json::to_writer(&mut writer, &out)?;
            std::io::Write::flush(&mut writer)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        None => println!("{out}"),
    }
    eprintln!(
        "{} tokens, mean next-token loss {}{}",
        tokens.len(),
        mean_loss.map_or("– (one token)".into(), |l| format!("{l:.6} nats")),
        args.out
            .as_ref()
            .map_or(String::new(), |p| format!("; wrote {}", p.display()))
    );
    Ok(())
}
