//! `rewarm prepare`: text → token shards + manifest, in a temporary folder renamed into place at the end,
//! so an interrupted prepare never leaves something that looks valid.

use crate::corpus::{list_inputs, CorpusOptions, Documents, InputFile};
use crate::error::{io, DataError, Result};
use crate::manifest::{
    Manifest, ShardInfo, Split, SplitInfo, SplitRule, FORMAT, FORMAT_VERSION, MANIFEST_FILE,
};
use crate::shard::{ShardWriter, TokenDtype};
use crate::tokenizer::{Tokenizer, TokenizerInfo};
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
    /// What `rewarm prepare` prints about the folder written to `out` with `threads` threads.
    pub fn to_text(&self, out: &Path, threads: usize) -> String {
        let m = &self.manifest;
        let mut text = format!(
            "prepared {}: {} train documents / {} tokens, {} validation documents / {} tokens ({} shards)\n",
            out.display(),
            m.train.documents,
            m.train.tokens,
            m.validation.documents,
            m.validation.tokens,
            m.train.shards.len() + m.validation.shards.len()
        );
        text += &format!(
            "{:.1} MB of text in {:.2} s: {:.1} MB/s, {:.0} tokens/s on {threads} threads\n",
            self.source_bytes as f64 / 1e6,
            self.seconds,
            self.megabytes_per_second(),
            self.tokens_per_second(),
        );
        if self.skipped_files > 0 {
            text += &format!(
                "skipped {} files that are neither .txt nor .jsonl\n",
                self.skipped_files
            );
        }
        text
    }

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

/// The temporary folder a prepare writes into, beside the output; removed on drop unless committed.
struct TempDir {
    path: PathBuf,
    committed: bool,
}

impl TempDir {
    /// Creates `.NAME.partial-PID` beside `out` (and `out`'s parent when missing), replacing a leftover.
    fn beside(out: &Path) -> Result<TempDir> {
        let name = out
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("prepared");
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(io(&tmp))?;
        Ok(TempDir {
            path: tmp,
            committed: false,
        })
    }

    /// Moves the finished folder to `out` (see [`commit`]); from then on it is no longer removed.
    fn commit(mut self, out: &Path) -> Result<()> {
        commit(&self.path, out)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Documents are tokenized in parallel batches of about this many bytes (order is kept).
const BATCH_BYTES: u64 = 8 << 20;

/// Text → token shards + manifest in `opts.out`: lists the inputs, tokenizes them into a temporary folder
/// beside it, writes the manifest there, then renames the folder into place.
pub fn prepare(
    opts: &PrepareOptions,
    tokenizer: &Tokenizer,
    progress: &dyn Progress,
) -> Result<PrepareReport> {
    let started = Instant::now();
    check_replaceable(&opts.out, opts.force)?;
    let inputs = Inputs::list(opts)?;
    progress.start(inputs.total_bytes);
    let tmp = TempDir::beside(&opts.out)?;
    let info = tokenizer.info().clone();
    let dtype = TokenDtype::for_vocab(info.vocab_size);
    let splits = tokenize(opts, &inputs, tokenizer, progress, &tmp.path, dtype)?;
    let manifest = manifest(opts, inputs.split, info, dtype, splits);
    write_manifest(&tmp.path, &manifest)?;
    tmp.commit(&opts.out)?;
    Ok(PrepareReport {
        manifest,
        seconds: started.elapsed().as_secs_f64(),
        source_bytes: inputs.total_bytes,
        skipped_files: inputs.skipped,
    })
}

/// `out` may be written: it does not exist, or `force` is set and it is a prepared folder (it holds a
/// manifest.json) or an empty folder — never a file, a link or a folder of something else, which `--force`
/// would otherwise delete.
fn check_replaceable(out: &Path, force: bool) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    let refuse = |why: &str| {
        Err(DataError::Input(format!(
            "{}: {why}\nHINT: choose another --out, or remove it yourself if it should go",
            out.display()
        )))
    };
    if !force {
        return Err(DataError::Input(format!(
            "{}: already exists\nHINT: choose another --out, or pass --force to replace it",
            out.display()
        )));
    }
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link; --force replaces only a prepared folder, not what a link points to");
    }
    if !meta.is_dir() {
        return refuse("is a file; --force replaces only a prepared folder");
    }
    let empty = std::fs::read_dir(out).map_err(io(out))?.next().is_none();
    if !empty && !Manifest::path(out).is_file() {
        return refuse("exists and holds no manifest.json, so it is not a prepared folder; --force replaces only prepared folders");
    }
    Ok(())
}

/// What a prepare reads: the training and validation files, and the rule that splits documents.
struct Inputs {
    train: Vec<InputFile>,
    validation: Vec<InputFile>,
    /// `Given` when validation files are named, else the options' rule.
    split: SplitRule,
    total_bytes: u64,
    /// Files in the input folders that were neither `.txt` nor `.jsonl`.
    skipped: usize,
}

impl Inputs {
    fn list(opts: &PrepareOptions) -> Result<Inputs> {
        let (train, skipped_train) = list_inputs(&opts.inputs)?;
        let (validation, skipped_val) = if opts.validation_inputs.is_empty() {
            (Vec::new(), 0)
        } else {
            list_inputs(&opts.validation_inputs)?
        };
        let split = if validation.is_empty() {
            opts.split.clone()
        } else {
            SplitRule::Given
        };
        let total_bytes = train.iter().chain(&validation).map(|f| f.bytes).sum();
        Ok(Inputs {
            train,
            validation,
            split,
            total_bytes,
            skipped: skipped_train + skipped_val,
        })
    }
}

/// The tokenizing pass: the training files' documents go to train or validation by the split rule, the
/// validation files' to validation. Returns the (train, validation) shards written into `dir`; a
/// prepare without a training document is an error.
fn tokenize(
    opts: &PrepareOptions,
    inputs: &Inputs,
    tokenizer: &Tokenizer,
    progress: &dyn Progress,
    dir: &Path,
    dtype: TokenDtype,
) -> Result<(SplitInfo, SplitInfo)> {
    let mut train = SplitWriter::new(dir, Split::Train, dtype, opts.shard_tokens);
    let mut val = SplitWriter::new(dir, Split::Validation, dtype, opts.shard_tokens);
    let mut doc_index = 0u64;
    for_each_batch(
        &inputs.train,
        &opts.corpus,
        tokenizer,
        progress,
        |doc, tokens| {
            let target = if inputs.split.is_validation(doc_index, doc) {
                &mut val
            } else {
                &mut train
            };
            doc_index += 1;
            target.write(tokens, doc.len() as u64)
        },
    )?;
    for_each_batch(
        &inputs.validation,
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
    Ok((train, validation))
}

/// The prepared folder's manifest: format, tokenizer, what was read and how, and each split's shards.
fn manifest(
    opts: &PrepareOptions,
    split: SplitRule,
    tokenizer: TokenizerInfo,
    token_dtype: TokenDtype,
    (train, validation): (SplitInfo, SplitInfo),
) -> Manifest {
    let paths = |ps: &[PathBuf]| ps.iter().map(|p| p.display().to_string()).collect();
    Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        rewarm_version: env!("CARGO_PKG_VERSION").into(),
        tokenizer,
        token_dtype,
        inputs: paths(&opts.inputs),
        validation_inputs: paths(&opts.validation_inputs),
        corpus: opts.corpus.clone(),
        split,
        train,
        validation,
    }
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let json = serde_json::to_string_pretty(manifest).expect("manifest serializes");
    write_synced(&dir.join(MANIFEST_FILE), json.as_bytes())
}

/// A run of documents of about [`BATCH_BYTES`], and how many bytes of the files were read for it.
struct Batch {
    docs: Vec<String>,
    bytes_read: u64,
}

/// Reads files in order, a document at a time, on a thread of its own, while the documents read before
/// are tokenized in parallel batches; hands each document with its tokens (end-of-text appended) to
/// `sink`, in input order. Memory is bounded by a few batches and the longest document, whatever the
/// files' sizes.
fn for_each_batch(
    files: &[InputFile],
    corpus: &CorpusOptions,
    tokenizer: &Tokenizer,
    progress: &dyn Progress,
    mut sink: impl FnMut(&str, &[u32]) -> Result<()>,
) -> Result<()> {
    std::thread::scope(|scope| {
        // One batch waits while one is tokenized; dropping the receiver (an error below) stops the reader.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            if let Err(e) = read_batches(files, corpus, |batch| tx.send(Ok(batch)).is_ok()) {
                let _ = tx.send(Err(e));
            }
        });
        for batch in rx {
            let batch = batch?;
            tokenize_batch(&batch.docs, tokenizer, &mut sink)?;
            progress.advance(batch.bytes_read);
        }
        Ok(())
    })
}

/// Cuts the files' documents into batches and hands them to `send` until it returns false.
fn read_batches(
    files: &[InputFile],
    corpus: &CorpusOptions,
    mut send: impl FnMut(Batch) -> bool,
) -> Result<()> {
    let mut batch = Batch {
        docs: Vec::new(),
        bytes_read: 0,
    };
    let mut bytes = 0;
    for file in files {
        let mut docs = Documents::open(file, corpus)?;
        let mut counted = 0;
        while let Some(doc) = docs.next() {
            let doc = doc?;
            bytes += doc.len() as u64;
            batch.docs.push(doc);
            if bytes >= BATCH_BYTES {
                batch.bytes_read += docs.bytes_read() - counted;
                counted = docs.bytes_read();
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        docs: Vec::new(),
                        bytes_read: 0,
                    },
                );
                bytes = 0;
                if !send(full) {
                    return Ok(());
                }
            }
        }
        batch.bytes_read += docs.bytes_read() - counted;
    }
    send(batch);
    Ok(())
}

/// Tokenizes `docs` in parallel and hands them to `sink` in order; of several failures the first in
/// input order is returned, whatever the threads' timing.
fn tokenize_batch(
    docs: &[String],
    tokenizer: &Tokenizer,
    sink: &mut impl FnMut(&str, &[u32]) -> Result<()>,
) -> Result<()> {
    let eot = tokenizer.info().eot_id;
    let tokens: Vec<Result<Vec<u32>>> = docs
        .par_iter()
        .map(|d| {
            let mut t = tokenizer.encode(d)?;
            t.push(eot);
            Ok(t)
        })
        .collect();
    for (doc, toks) in docs.iter().zip(tokens) {
        sink(doc, &toks?)?;
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
