//! `rewarm prepare`: text → token shards + manifest, in a temporary folder renamed into place at the end,
//! so an interrupted prepare never leaves something that looks valid.

use crate::corpus::{list_inputs, read_documents, CorpusOptions, InputFile};
use crate::error::{io, DataError, Result};
use crate::manifest::{
    Manifest, ShardInfo, Split, SplitInfo, SplitRule, FORMAT, FORMAT_VERSION, MANIFEST_FILE,
};
use crate::shard::{ShardWriter, TokenDtype};
use crate::tokenizer::Tokenizer;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct PrepareOptions {
    pub inputs: Vec<PathBuf>,
    /// Separate validation inputs; when given, `split` is ignored and recorded as `Given`.
    pub validation_inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub split: SplitRule,
    pub corpus: CorpusOptions,
    /// A new shard starts once a shard holds this many tokens.
    pub shard_tokens: u64,
    /// Replace an existing output folder (only after the new one is complete).
    pub force: bool,
}

impl PrepareOptions {
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> Self {
        PrepareOptions {
            inputs,
            validation_inputs: Vec::new(),
            out,
            split: SplitRule::default(),
            corpus: CorpusOptions::default(),
            // 128M tokens: 256 MB u16 shards, few enough files for big corpora, one file for small ones.
            shard_tokens: 128 << 20,
            force: false,
        }
    }
}

/// Progress of a prepare, in source bytes. Implemented by the CLI's progress bar.
pub trait Progress: Sync {
    fn start(&self, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
}

/// No progress display (tests, libraries).
pub struct Quiet;
impl Progress for Quiet {}

pub struct PrepareReport {
    pub manifest: Manifest,
    pub seconds: f64,
    pub source_bytes: u64,
    /// Files in the input folders that were neither `.txt` nor `.jsonl`.
    pub skipped_files: usize,
}

impl PrepareReport {
    pub fn megabytes_per_second(&self) -> f64 {
        self.source_bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
    pub fn tokens_per_second(&self) -> f64 {
        (self.manifest.train.tokens + self.manifest.validation.tokens) as f64
            / self.seconds.max(1e-9)
    }
}

/// Writes one split's shards, rolling to a new file every `shard_tokens` tokens.
struct SplitWriter {
    dir: PathBuf,
    split: Split,
    dtype: TokenDtype,
    shard_tokens: u64,
    current: Option<(ShardWriter, String, u64)>,
    info: SplitInfo,
}

impl SplitWriter {
    fn new(dir: &Path, split: Split, dtype: TokenDtype, shard_tokens: u64) -> Self {
        SplitWriter {
            dir: dir.to_owned(),
            split,
            dtype,
            shard_tokens,
            current: None,
            info: SplitInfo::default(),
        }
    }

    fn write(&mut self, tokens: &[u32], source_bytes: u64) -> Result<()> {
        if self.current.is_none() {
            let name = format!("{}-{:05}.tok", self.split.name(), self.info.shards.len());
            self.current = Some((
                ShardWriter::create(&self.dir.join(&name), self.dtype)?,
                name,
                0,
            ));
        }
        let (writer, _, bytes) = self.current.as_mut().expect("opened above");
        writer.write_document(tokens)?;
        *bytes += source_bytes;
        if writer.tokens() >= self.shard_tokens {
            self.close_shard()?;
        }
        Ok(())
    }

    fn close_shard(&mut self) -> Result<()> {
        if let Some((writer, file, source_bytes)) = self.current.take() {
            let h = writer.finish()?;
            self.info.documents += h.documents;
            self.info.tokens += h.tokens;
            self.info.source_bytes += source_bytes;
            self.info.shards.push(ShardInfo {
                file,
                tokens: h.tokens,
                documents: h.documents,
                source_bytes,
                checksum: format!("{:016x}", h.checksum),
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<SplitInfo> {
        self.close_shard()?;
        Ok(self.info)
    }
}

/// Removes the temporary folder unless the prepare completed.
struct TempDir(Option<PathBuf>);
impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Documents are tokenized in parallel batches of about this many bytes (order is kept).
const BATCH_BYTES: u64 = 8 << 20;

pub fn prepare(
    opts: &PrepareOptions,
    tokenizer: &Tokenizer,
    progress: &dyn Progress,
) -> Result<PrepareReport> {
    let started = Instant::now();
    if opts.out.exists() && !opts.force {
        return Err(DataError::Input(format!(
            "{}: already exists\nHINT: choose another --out, or pass --force to replace it",
            opts.out.display()
        )));
    }
    let (train_files, skipped_train) = list_inputs(&opts.inputs)?;
    let (val_files, skipped_val) = if opts.validation_inputs.is_empty() {
        (Vec::new(), 0)
    } else {
        list_inputs(&opts.validation_inputs)?
    };
    let split = if val_files.is_empty() {
        opts.split.clone()
    } else {
        SplitRule::Given
    };
    let total_bytes: u64 = train_files.iter().chain(&val_files).map(|f| f.bytes).sum();
    progress.start(total_bytes);

    let name = opts
        .out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("prepared");
    let parent = opts
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    let mut guard = TempDir(Some(tmp.clone()));

    let info = tokenizer.info().clone();
    let dtype = TokenDtype::for_vocab(info.vocab_size);
    let mut train = SplitWriter::new(&tmp, Split::Train, dtype, opts.shard_tokens);
    let mut val = SplitWriter::new(&tmp, Split::Validation, dtype, opts.shard_tokens);
    let mut doc_index = 0u64;
    for_each_batch(
        &train_files,
        &opts.corpus,
        tokenizer,
        progress,
        |doc, tokens| {
            let target = if split.is_validation(doc_index, doc) {
                &mut val
            } else {
                &mut train
            };
            doc_index += 1;
            target.write(tokens, doc.len() as u64)
        },
    )?;
    for_each_batch(
        &val_files,
        &opts.corpus,
        tokenizer,
        progress,
        |doc, tokens| val.write(tokens, doc.len() as u64),
    )?;
    let (train, validation) = (train.finish()?, val.finish()?);
    if train.documents == 0 {
        return Err(DataError::Input(format!(
            "no training documents in {} (all empty, or all held out)\nHINT: check the inputs, --doc-mode and --split",
            opts.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        rewarm_version: env!("CARGO_PKG_VERSION").into(),
        tokenizer: info,
        token_dtype: dtype,
        inputs: opts
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        validation_inputs: opts
            .validation_inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        corpus: opts.corpus.clone(),
        split,
        train,
        validation,
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    write_synced(&tmp.join(MANIFEST_FILE), json.as_bytes())?;
    commit(&tmp, &opts.out)?;
    guard.0 = None;
    Ok(PrepareReport {
        manifest,
        seconds: started.elapsed().as_secs_f64(),
        source_bytes: total_bytes,
        skipped_files: skipped_train + skipped_val,
    })
}

/// Reads files in order, tokenizes their documents in parallel batches, and hands each document with its
/// tokens (end-of-text appended) to `sink`, in input order.
fn for_each_batch(
    files: &[InputFile],
    corpus: &CorpusOptions,
    tokenizer: &Tokenizer,
    progress: &dyn Progress,
    mut sink: impl FnMut(&str, &[u32]) -> Result<()>,
) -> Result<()> {
    let eot = tokenizer.info().eot_id;
    let mut start = 0;
    while start < files.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < files.len() && (end == start || bytes < BATCH_BYTES) {
            bytes += files[end].bytes;
            end += 1;
        }
        // Results are collected in order before the first error is taken, so that of several bad files
        // the first in input order is named, whatever the threads' timing.
        let docs: Vec<Result<Vec<String>>> = files[start..end]
            .par_iter()
            .map(|f| read_documents(f, corpus))
            .collect();
        let docs: Vec<String> = docs
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let tokens: Vec<Result<Vec<u32>>> = docs
            .par_iter()
            .map(|d| {
                let mut t = tokenizer.encode(d)?;
                t.push(eot);
                Ok(t)
            })
            .collect();
        let tokens: Vec<Vec<u32>> = tokens.into_iter().collect::<Result<_>>()?;
        for (doc, toks) in docs.iter().zip(&tokens) {
            sink(doc, toks)?;
        }
        progress.advance(bytes);
        start = end;
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Moves the finished temporary folder to `out`, replacing an old one only after the new one is in place.
fn commit(tmp: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        let old = out.with_file_name(format!(
            ".{}.old-{}",
            out.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("prepared"),
            std::process::id()
        ));
        std::fs::rename(out, &old).map_err(io(out))?;
        std::fs::rename(tmp, out).map_err(io(out))?;
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    } else {
        std::fs::rename(tmp, out).map_err(io(out))?;
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
