//! `import`: a model from another tool's format into a Hugging Face folder rewarm can train from. No
//! tensors (the conversion is byte work in `rewarm_interop`).

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
