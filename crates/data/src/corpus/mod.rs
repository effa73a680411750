//! Reading text inputs into documents: files or folders of `.txt` (a document per file, per blank-line-
//! separated block, or per line) and `.jsonl` (one document per line, in a named field).

mod documents;

pub use documents::{Documents, MAX_DOCUMENT_BYTES};

use crate::error::{io, DataError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a `.txt` file is cut into documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocMode {
    /// The whole file is one document.
    #[default]
    File,
    /// Blocks separated by one or more blank lines.
    BlankLine,
    /// Every non-empty line.
    Line,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusOptions {
    pub doc_mode: DocMode,
    /// The field of a `.jsonl` object that holds the text.
    pub text_field: String,
    /// Replace invalid UTF-8 with U+FFFD instead of failing.
    pub lossy: bool,
}

impl Default for CorpusOptions {
    fn default() -> Self {
        CorpusOptions {
            doc_mode: DocMode::File,
            text_field: "text".into(),
            lossy: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Txt,
    Jsonl,
}

#[derive(Clone, Debug)]
pub struct InputFile {
    pub path: PathBuf,
    pub kind: InputKind,
    pub bytes: u64,
}

fn kind_of(path: &Path) -> Option<InputKind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl") => Some(InputKind::Jsonl),
        Some("txt") => Some(InputKind::Txt),
        _ => None,
    }
}

/// Expands files and folders (recursively, following links, sorted by name) into input files.
/// Folders contribute their `.txt` and `.jsonl` files; a file named explicitly is read as `.jsonl` if it
/// ends so, else as text. Returns the files and how many other files the folders held.
pub fn list_inputs(paths: &[PathBuf]) -> Result<(Vec<InputFile>, usize)> {
    let mut files = Vec::new();
    let mut skipped = 0;
    for path in paths {
        let meta = std::fs::metadata(path).map_err(io(path))?;
        if meta.is_file() {
            files.push(InputFile {
                path: path.clone(),
                kind: kind_of(path).unwrap_or(InputKind::Txt),
                bytes: meta.len(),
            });
            continue;
        }
        for entry in walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| {
                let at = e.path().map(|p| p.display().to_string()).unwrap_or_else(|| path.display().to_string());
                if e.loop_ancestor().is_some() {
                    DataError::Input(format!("{at}: symbolic link loop\nHINT: remove the link or list the folders to read explicitly"))
                } else if e.path().is_some_and(|p| p.is_symlink() && !p.exists()) {
                    DataError::Input(format!("{at}: broken symbolic link (its target does not exist)\nHINT: remove the link or fix its target"))
                } else {
                    DataError::Input(format!("{at}: {e}"))
                }
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            match kind_of(entry.path()) {
                Some(kind) => {
                    let bytes = entry
                        .metadata()
                        .map_err(|e| DataError::Input(format!("{}: {e}", entry.path().display())))?
                        .len();
                    files.push(InputFile {
                        path: entry.path().to_owned(),
                        kind,
                        bytes,
                    })
                }
                None => skipped += 1,
            }
        }
    }
    if files.is_empty() {
        let list: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(DataError::Input(format!(
            "no .txt or .jsonl files in {}\nHINT: name text files or folders that contain them",
            list.join(", ")
        )));
    }
    Ok((files, skipped))
}

/// Byte-order marks of encodings rewarm does not read: (mark, name, iconv's name). UTF-32 LE before
/// UTF-16 LE, whose mark is its prefix.
const FOREIGN_BOMS: &[(&[u8], &str, &str)] = &[
    (b"\x00\x00\xFE\xFF", "UTF-32 (big-endian)", "UTF-32BE"),
    (b"\xFF\xFE\x00\x00", "UTF-32 (little-endian)", "UTF-32LE"),
    (b"\xFE\xFF", "UTF-16 (big-endian)", "UTF-16BE"),
    (b"\xFF\xFE", "UTF-16 (little-endian)", "UTF-16LE"),
];

/// UTF-8's byte-order mark, which some editors write; it is dropped, not read as text.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A UTF-16 or UTF-32 byte-order mark at the start of `head` is an error naming the encoding.
pub(crate) fn check_byte_order_mark(path: &Path, head: &[u8]) -> Result<()> {
    match FOREIGN_BOMS.iter().find(|(bom, ..)| head.starts_with(bom)) {
        Some(&(_, encoding, iconv)) => Err(DataError::Encoding {
            path: path.to_owned(),
            encoding,
            iconv,
        }),
        None => Ok(()),
    }
}

/// Decodes bytes found at byte `offset` of `path` as UTF-8: a NUL byte is an error (binary), invalid UTF-8
/// is one naming its offset unless `lossy`, which replaces it with U+FFFD.
pub(crate) fn decode_at(path: &Path, bytes: Vec<u8>, offset: u64, lossy: bool) -> Result<String> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(DataError::Binary {
            path: path.to_owned(),
            offset: (offset + at as u64) as usize,
        });
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) if lossy => Ok(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        Err(e) => Err(DataError::NotUtf8 {
            path: path.to_owned(),
            offset: (offset + e.utf8_error().valid_up_to() as u64) as usize,
        }),
    }
}

/// Reads one input file into its documents (empty ones dropped): [`Documents`] collected. Files in
/// UTF-16/32 (by their byte-order mark), with NUL bytes (binary), or with invalid UTF-8 (unless `lossy`)
/// are errors naming the file.
pub fn read_documents(file: &InputFile, opts: &CorpusOptions) -> Result<Vec<String>> {
    Documents::open(file, opts)?.collect()
}

/// The documents of a text file held whole in one string, cut as `mode` says (empty ones dropped): what
/// [`Documents`] must give for valid UTF-8 text, kept as the reference the streaming reader is tested
/// and fuzzed against (and how rewarm cut files before it streamed them).
pub fn cut_whole_text(text: &str, mode: DocMode) -> Vec<String> {
    let docs: Vec<String> = match mode {
        DocMode::File => vec![text.to_owned()],
        DocMode::Line => text.lines().map(str::to_owned).collect(),
        DocMode::BlankLine => text
            .lines()
            .collect::<Vec<_>>()
            .split(|l| l.trim().is_empty())
            .filter(|b| !b.is_empty())
            .map(|b| b.join("\n"))
            .collect(),
    };
    docs.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, bytes: &[u8]) -> InputFile {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        InputFile {
            kind: kind_of(&path).unwrap_or(InputKind::Txt),
            bytes: bytes.len() as u64,
            path,
        }
    }

    #[test]
    fn doc_modes() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "a.txt", b"one\ntwo\n\n\nthree\n");
        let mut o = CorpusOptions::default();
        assert_eq!(read_documents(&f, &o).unwrap().len(), 1);
        o.doc_mode = DocMode::Line;
        assert_eq!(read_documents(&f, &o).unwrap(), ["one", "two", "three"]);
        o.doc_mode = DocMode::BlankLine;
        assert_eq!(read_documents(&f, &o).unwrap(), ["one\ntwo", "three"]);
    }

    #[test]
    fn streaming_cuts_documents_as_the_whole_text_would() {
        // Lines of many lengths, CRLF and LF ends, blank and whitespace-only lines, multi-byte characters,
        // a final `\r` without `\n`: 3 MB, so lines cross the 8 KiB sniffed head and the 1 MiB buffer.
        let mut text = String::new();
        let mut i = 0u64;
        while text.len() < 3 << 20 {
            i += 1;
            let len = (i * 7919 % 5000) as usize;
            text.extend((0..len).map(|k| ['a', 'ü', ' ', '€', 'z'][(k + i as usize) % 5]));
            text.push_str(["\n", "\r\n", "\n\n", "\n \t\n", "\r\n\r\n\n"][i as usize % 5]);
        }
        text.push_str("last\r");
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "big.txt", text.as_bytes());
        for mode in [DocMode::File, DocMode::Line, DocMode::BlankLine] {
            let o = CorpusOptions {
                doc_mode: mode,
                ..Default::default()
            };
            let got = read_documents(&f, &o).unwrap();
            assert_eq!(got, cut_whole_text(&text, mode), "{mode:?}");
        }
    }

    #[test]
    fn a_document_over_the_limit_is_an_error_naming_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"short\n".to_vec();
        bytes.resize(bytes.len() + MAX_DOCUMENT_BYTES + 1, b'a');
        let f = file(dir.path(), "huge.txt", &bytes);
        for (mode, fix) in [
            (DocMode::Line, "several lines"),
            (DocMode::File, "--doc-mode line"),
        ] {
            let o = CorpusOptions {
                doc_mode: mode,
                ..Default::default()
            };
            let mut docs = Documents::open(&f, &o).unwrap();
            if mode == DocMode::Line {
                assert_eq!(docs.next().unwrap().unwrap(), "short");
            }
            let err = docs.next().unwrap().unwrap_err().to_string();
            let offset = if mode == DocMode::Line { 6 } else { 0 };
            assert!(
                err.contains("huge.txt")
                    && err.contains(&format!("byte offset {offset} is longer than 64 MiB"))
                    && err.contains(fix),
                "{err}"
            );
            assert!(docs.next().is_none(), "the reader ends after an error");
        }
    }

    #[test]
    fn non_utf8_names_file_and_offset_unless_lossy() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "bad.txt", b"caf\xe9 ok");
        let err = read_documents(&f, &CorpusOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("bad.txt") && err.contains("offset 3") && err.contains("--lossy"),
            "{err}"
        );
        let o = CorpusOptions {
            lossy: true,
            ..Default::default()
        };
        assert_eq!(read_documents(&f, &o).unwrap(), ["caf\u{FFFD} ok"]);
    }

    #[test]
    fn jsonl_missing_field_names_line_and_fields() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(
            dir.path(),
            "d.jsonl",
            b"{\"text\": \"a\"}\n{\"body\": \"b\"}\n",
        );
        let err = read_documents(&f, &CorpusOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("d.jsonl:2") && err.contains("body") && err.contains("--text-field"),
            "{err}"
        );
    }

    #[test]
    fn binary_files_and_empty_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "x.txt", b"ab\0cd");
        assert!(read_documents(&f, &CorpusOptions::default())
            .err()
            .unwrap()
            .to_string()
            .contains("binary"));
        let empty = tempfile::tempdir().unwrap();
        assert!(list_inputs(&[empty.path().to_owned()])
            .err()
            .unwrap()
            .to_string()
            .contains("no .txt or .jsonl"));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        let err = list_inputs(&[dir.path().to_owned()])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("loop"), "{err}");
    }
}
