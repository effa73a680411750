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
            for note in &summary.notes {
                eprintln!("note: {note}");
            }
            Ok(())
        }
    }
}
