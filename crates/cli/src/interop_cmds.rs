//! `import`: a model from another tool's format into a Hugging Face folder rewarm can train from; `merge`:
//! the weighted average of models. No tensors (byte work in `rewarm_interop`).

use anyhow::Result;
use clap::{Args, Subcommand};
use rewarm_jobs::progress::BytesBar;
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
            let bar = BytesBar::new("import");
            let summary = rewarm_interop::import_gguf(&args.file, &args.out, &|read, total| {
                bar.set(read, total)
            })?;
            drop(bar);
            print!("{}", summary.to_text(&args.out));
            // The model as a plan's [model] table: what `init_from` this folder checks against.
            let config = rewarm_plan::ModelConfig::from_hf_config(&summary.config)?;
            println!(
                "to continue pre-training from it, a plan needs\ninit_from = \"{}\"\n{}",
                args.out.display(),
                rewarm_plan::ModelTable::for_config(&config).to_plan_toml()
            );
            for note in &summary.notes {
                eprintln!("note: {note}");
            }
            Ok(())
        }
    }
}

#[derive(Args)]
pub struct MergeArgs {
    /// The models to average: rewarm checkpoints (a run folder: its newest), files in them (a checkpoint's
    /// ema.safetensors) or Hugging Face folders. One model is converted into a Hugging Face folder.
    #[arg(required = true, num_args = 1..)]
    models: Vec<PathBuf>,
    /// One weight per model, comma-separated (normalised to sum to 1). Default: all equal.
    #[arg(long, value_delimiter = ',')]
    weights: Option<Vec<f64>>,
    /// The Hugging Face folder to write (must not exist, or be empty).
    #[arg(long)]
    out: PathBuf,
}

pub fn merge(args: MergeArgs) -> Result<()> {
    let weights = args.weights.unwrap_or_else(|| vec![1.0; args.models.len()]);
    if weights.len() != args.models.len() {
        anyhow::bail!(
            "--weights: {} weights for {} models\nHINT: give one weight per model, in their order",
            weights.len(),
            args.models.len()
        );
    }
    let inputs: Vec<rewarm_interop::merge::MergeInput> = args
        .models
        .iter()
        .zip(weights)
        .map(|(path, weight)| rewarm_interop::merge::MergeInput {
            path: path.clone(),
            weight,
        })
        .collect();
    let summary = rewarm_interop::merge::merge(&inputs, &args.out)?;
    for (m, w) in args.models.iter().zip(&summary.weights) {
        println!("{w:.4} × {}", m.display());
    }
    println!(
        "{}: {} tensors, {} parameters (a Hugging Face folder: init_from, sample, logits and transformers load it)",
        args.out.display(),
        summary.tensors,
        summary.parameters
    );
    Ok(())
}
