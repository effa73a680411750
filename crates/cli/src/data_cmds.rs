//! `prepare`, `inspect` and `tokenizer` commands.

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use rewarm_data::corpus::{CorpusOptions, DocMode};
use rewarm_data::prepare::{prepare as run_prepare, PrepareOptions};
use rewarm_data::{PreparedSource, SplitRule, Tokenizer, TokenizerSpec};
use rewarm_jobs::progress::BytesBar;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum DocModeArg {
    File,
    BlankLine,
    Line,
}

impl From<DocModeArg> for DocMode {
    fn from(m: DocModeArg) -> Self {
        match m {
            DocModeArg::File => DocMode::File,
            DocModeArg::BlankLine => DocMode::BlankLine,
            DocModeArg::Line => DocMode::Line,
        }
    }
}

#[derive(Args)]
pub struct CorpusArgs {
    /// How a .txt file is cut into documents.
    #[arg(long, value_enum, default_value = "file")]
    doc_mode: DocModeArg,
    /// Field of each .jsonl object that holds the text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// Replace invalid UTF-8 with U+FFFD instead of failing.
    #[arg(long)]
    lossy: bool,
}

impl CorpusArgs {
    fn options(&self) -> CorpusOptions {
        CorpusOptions {
            doc_mode: self.doc_mode.into(),
            text_field: self.text_field.clone(),
            lossy: self.lossy,
        }
    }
}

#[derive(Args)]
pub struct PrepareArgs {
    /// Text inputs: .txt / .jsonl files, or folders of them (read recursively, in name order).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder (written to a temporary folder and renamed at the end).
    #[arg(long, short)]
    out: PathBuf,
    /// `gpt2` (tiktoken r50k, offline) or the path of a Hugging Face tokenizer.json.
    #[arg(long, default_value = "gpt2")]
    tokenizer: String,
    /// The token that ends each document (HF tokenizers; default: the first of <|endoftext|>, </s>, … present).
    #[arg(long)]
    eot_token: Option<String>,
    /// Validation inputs given separately (then --split is not used).
    #[arg(long = "val", value_name = "PATH")]
    validation: Vec<PathBuf>,
    /// How whole documents are held out: `hash:FRACTION` (stable hash of the text), `every:N`, or `none`.
    #[arg(long, default_value = "hash:0.05")]
    split: String,
    #[command(flatten)]
    corpus: CorpusArgs,
    /// Tokens per shard file.
    #[arg(long, default_value_t = 128 << 20)]
    shard_tokens: u64,
    /// Replace an existing prepared folder (one with a manifest.json) once the new one is complete.
    #[arg(long)]
    force: bool,
}

pub fn prepare(args: PrepareArgs) -> Result<()> {
    let spec: TokenizerSpec = args.tokenizer.parse()?;
    let tokenizer = Tokenizer::load(&spec, args.eot_token.as_deref())?;
    let mut opts = PrepareOptions::new(args.inputs, args.out.clone());
    opts.validation_inputs = args.validation;
    opts.split = args.split.parse::<SplitRule>()?;
    opts.corpus = args.corpus.options();
    opts.shard_tokens = args.shard_tokens;
    opts.force = args.force;
    let report = run_prepare(&opts, &tokenizer, &BytesBar::new("prepare"))?;
    print!(
        "{}",
        report.to_text(&args.out, rayon::current_num_threads())
    );
    Ok(())
}

#[derive(Args)]
pub struct InspectArgs {
    /// A folder written by `rewarm prepare`.
    dir: PathBuf,
    /// Also fail unless the shards were made with this tokenizer (`gpt2` or a tokenizer.json).
    #[arg(long)]
    tokenizer: Option<String>,
    /// Print the manifest as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

pub fn inspect(args: InspectArgs) -> Result<()> {
    let src = PreparedSource::open(&args.dir)?;
    let m = &src.manifest;
    if let Some(t) = &args.tokenizer {
        let expected = Tokenizer::load(&t.parse()?, None)?;
        m.check_tokenizer(&args.dir, expected.info())?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(m)?);
        return Ok(());
    }
    print!("{}", m.summary(&args.dir));
    Ok(())
}

#[derive(Subcommand)]
pub enum TokenizerCommand {
    /// Fit a byte-level BPE of a chosen vocabulary size on text, and write it as tokenizer.json.
    Train {
        /// Text inputs (.txt / .jsonl files or folders).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long, default_value_t = 8192)]
        vocab_size: u32,
        /// Where to write tokenizer.json.
        #[arg(long, short)]
        out: PathBuf,
        #[command(flatten)]
        corpus: CorpusArgs,
    },
}

pub fn tokenizer(cmd: TokenizerCommand) -> Result<()> {
    match cmd {
        TokenizerCommand::Train {
            inputs,
            vocab_size,
            out,
            corpus,
        } => {
            let started = std::time::Instant::now();
            let json =
                rewarm_data::tokenizer::train_bpe_on_files(&inputs, &corpus.options(), vocab_size)?;
            std::fs::write(&out, json).with_context(|| format!("writing {}", out.display()))?;
            let tok = Tokenizer::from_hf_file(&out, None)?;
            println!(
                "wrote {}: byte-level BPE, {} tokens, end-of-text id {} ({:.1} s)",
                out.display(),
                tok.info().vocab_size,
                tok.info().eot_id,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}
