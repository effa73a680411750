//! Streaming an input file's documents: a line (or, for whole-file documents, the file) at a time, so the
//! memory a reader holds is bounded by its longest document, never by the file's size.

use super::{
    check_byte_order_mark, decode_at, CorpusOptions, DocMode, InputFile, InputKind, UTF8_BOM,
};
use crate::error::{io, DataError, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

/// The longest document rewarm reads: a line, a blank-line block, a JSONL line, or a whole file in
/// `--doc-mode file`. Longer ones are an error naming the file and offset, not an allocation that grows
/// with the file.
pub const MAX_DOCUMENT_BYTES: usize = 64 << 20;

/// A NUL byte among a file's first this-many bytes makes it binary before any of its text is read.
const SNIFF_BYTES: u64 = 8 << 10;

/// The documents of one input file, read as they are needed. Empty documents (whitespace only) are
/// skipped. After an error the iterator ends.
pub struct Documents {
    path: PathBuf,
    kind: InputKind,
    opts: CorpusOptions,
    /// The sniffed head, then the rest of the input.
    reader: BufReader<Box<dyn Read + Send>>,
    /// Bytes of the file consumed so far.
    offset: u64,
    /// Lines read so far (the line number of the last one, 1-based).
    line: usize,
    done: bool,
}

impl Documents {
    /// Opens `file`, refusing a UTF-16/32 byte-order mark or a NUL byte in its first 8 KiB (binary), and
    /// skipping a UTF-8 byte-order mark.
    pub fn open(file: &InputFile, opts: &CorpusOptions) -> Result<Documents> {
        let f = File::open(&file.path).map_err(io(&file.path))?;
        Self::from_reader(&file.path, file.kind, opts, f)
    }

    /// The documents of a file of `kind` read from `input` (`path` names it in errors), as [`open`] reads
    /// them.
    ///
    /// [`open`]: Documents::open
    pub fn from_reader(
        path: &Path,
        kind: InputKind,
        opts: &CorpusOptions,
        mut input: impl Read + Send + 'static,
    ) -> Result<Documents> {
        let path = path.to_owned();
        let mut head = Vec::new();
        (&mut input)
            .take(SNIFF_BYTES)
            .read_to_end(&mut head)
            .map_err(io(&path))?;
        check_byte_order_mark(&path, &head)?;
        if let Some(offset) = head.iter().position(|&b| b == 0) {
            return Err(DataError::Binary { path, offset });
        }
        let bom = if head.starts_with(UTF8_BOM) {
            UTF8_BOM.len()
        } else {
            0
        };
        head.drain(..bom);
        let input: Box<dyn Read + Send> = Box::new(Cursor::new(head).chain(input));
        let reader = BufReader::with_capacity(1 << 20, input);
        Ok(Documents {
            path,
            kind,
            opts: opts.clone(),
            reader,
            offset: bom as u64,
            line: 0,
            done: false,
        })
    }

    /// Bytes of the file read so far (progress).
    pub fn bytes_read(&self) -> u64 {
        self.offset
    }

    /// The next document, empty ones included; `None` at the end of the file.
    fn next_document(&mut self) -> Result<Option<String>> {
        match (self.kind, self.opts.doc_mode) {
            (InputKind::Jsonl, _) => self.next_record(),
            (InputKind::Txt, DocMode::Line) => self.next_line(),
            (InputKind::Txt, DocMode::BlankLine) => self.next_block(),
            (InputKind::Txt, DocMode::File) => self.whole_file(),
        }
    }

    /// The rest of the file as one document (`--doc-mode file`), verbatim.
    fn whole_file(&mut self) -> Result<Option<String>> {
        let start = self.offset;
        let mut bytes = Vec::new();
        (&mut self.reader)
            .take(MAX_DOCUMENT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io(&self.path))?;
        self.offset += bytes.len() as u64;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(self.too_long(start, "--doc-mode line or blank-line, or split the file"));
        }
        self.done = true;
        let text = decode_at(&self.path, bytes, start, self.opts.lossy)?;
        Ok(Some(text))
    }

    /// The next line without its `\n` or `\r\n`, as `str::lines` cuts them.
    fn next_line(&mut self) -> Result<Option<String>> {
        let start = self.offset;
        let mut bytes = Vec::new();
        let mut ended = false;
        while !ended {
            let available = self.reader.fill_buf().map_err(io(&self.path))?;
            if available.is_empty() {
                break;
            }
            let (take, newline) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if bytes.len() + take > MAX_DOCUMENT_BYTES + 2 {
                return Err(self.too_long(start, "split it into several lines"));
            }
            bytes.extend_from_slice(&available[..take]);
            self.reader.consume(take);
            self.offset += take as u64;
            ended = newline;
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        if ended {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(self.too_long(start, "split it into several lines"));
        }
        self.line += 1;
        decode_at(&self.path, bytes, start, self.opts.lossy).map(Some)
    }

    /// The next block of non-blank lines, joined by `\n` (`--doc-mode blank-line`).
    fn next_block(&mut self) -> Result<Option<String>> {
        let start = self.offset;
        let mut block = String::new();
        while let Some(line) = self.next_line()? {
            if line.trim().is_empty() {
                if !block.is_empty() {
                    break;
                }
                continue;
            }
            if block.len() + line.len() >= MAX_DOCUMENT_BYTES {
                return Err(self.too_long(start, "separate it into blocks with blank lines"));
            }
            if !block.is_empty() {
                block.push('\n');
            }
            block.push_str(&line);
        }
        Ok((!block.is_empty()).then_some(block))
    }

    /// The text field of the next non-blank JSONL line.
    fn next_record(&mut self) -> Result<Option<String>> {
        loop {
            let Some(line) = self.next_line()? else {
                return Ok(None);
            };
            if !line.trim().is_empty() {
                return json_text(&line, &self.opts.text_field)
                    .map(Some)
                    .map_err(|(why, fix)| DataError::Jsonl {
                        path: self.path.clone(),
                        line: self.line,
                        why,
                        fix: fix.into(),
                    });
            }
        }
    }

    fn too_long(&self, start: u64, fix: &str) -> DataError {
        DataError::Input(format!(
            "{}: the document at byte offset {start} is longer than {} MiB, the most rewarm reads as one document\nHINT: {fix}",
            self.path.display(),
            MAX_DOCUMENT_BYTES >> 20
        ))
    }
}

impl Iterator for Documents {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        while !self.done {
            match self.next_document() {
                Ok(Some(doc)) if doc.trim().is_empty() => continue,
                Ok(Some(doc)) => return Some(Ok(doc)),
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// The string in `field` of one JSONL line, or why not and what to do.
fn json_text(line: &str, field: &str) -> std::result::Result<String, (String, &'static str)> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        (
            format!("not JSON ({e})"),
            "each line must be one JSON object",
        )
    })?;
    match value.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err((
            format!("field `{field}` is not a string"),
            "store the document text as a JSON string",
        )),
        None => {
            let keys: Vec<String> = value
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            Err((
                format!("no field `{field}` (fields: {})", keys.join(", ")),
                "name the text field with --text-field",
            ))
        }
    }
}
