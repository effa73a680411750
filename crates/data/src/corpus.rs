//! Reading text inputs into documents: files or folders of `.txt` (a document per file, per blank-line-
//! separated block, or per line) and `.jsonl` (one document per line, in a named field).

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
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes bytes as UTF-8, naming the file and byte offset of the first bad byte unless `lossy`. A UTF-8
/// byte-order mark is dropped; a UTF-16 or UTF-32 one is an error naming the encoding, even if `lossy`
/// (replacing every other byte would turn the text into garbage).
pub fn decode_text(path: &Path, mut bytes: Vec<u8>, lossy: bool) -> Result<String> {
    if let Some(&(_, encoding, iconv)) =
        FOREIGN_BOMS.iter().find(|(bom, ..)| bytes.starts_with(bom))
    {
        return Err(DataError::Encoding {
            path: path.to_owned(),
            encoding,
            iconv,
        });
    }
    let skipped = if bytes.starts_with(UTF8_BOM) {
        bytes.drain(..UTF8_BOM.len());
        UTF8_BOM.len()
    } else {
        0
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) if lossy => Ok(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        Err(e) => Err(DataError::NotUtf8 {
            path: path.to_owned(),
            offset: skipped + e.utf8_error().valid_up_to(),
        }),
    }
}

/// Reads one input file into its documents (empty ones dropped). Files in UTF-16/32 (by their byte-order
/// mark), with NUL bytes (binary), or with invalid UTF-8 (unless `lossy`) are errors naming the file.
pub fn read_documents(file: &InputFile, opts: &CorpusOptions) -> Result<Vec<String>> {
    let bytes = std::fs::read(&file.path).map_err(io(&file.path))?;
    if let Some(&(_, encoding, iconv)) =
        FOREIGN_BOMS.iter().find(|(bom, ..)| bytes.starts_with(bom))
    {
        return Err(DataError::Encoding {
            path: file.path.clone(),
            encoding,
            iconv,
        });
    }
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(DataError::Binary {
            path: file.path.clone(),
            offset,
        });
    }
    let text = decode_text(&file.path, bytes, opts.lossy)?;
    let docs: Vec<String> = match file.kind {
        InputKind::Txt => match opts.doc_mode {
            DocMode::File => vec![text],
            DocMode::Line => text.lines().map(str::to_owned).collect(),
            DocMode::BlankLine => split_blocks(&text),
        },
        InputKind::Jsonl => read_jsonl(&file.path, &text, &opts.text_field)?,
    };
    Ok(docs.into_iter().filter(|d| !d.trim().is_empty()).collect())
}

fn split_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

fn read_jsonl(path: &Path, text: &str, field: &str) -> Result<Vec<String>> {
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |why: String, fix: &str| DataError::Jsonl {
            path: path.to_owned(),
            line: i + 1,
            why,
            fix: fix.into(),
        };
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            err(
                format!("not JSON ({e})"),
                "each line must be one JSON object",
            )
        })?;
        match value.get(field) {
            Some(serde_json::Value::String(s)) => docs.push(s.clone()),
            Some(_) => {
                return Err(err(
                    format!("field `{field}` is not a string"),
                    "store the document text as a JSON string",
                ))
            }
            None => {
                let keys: Vec<String> = value
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                return Err(err(
                    format!("no field `{field}` (fields: {})", keys.join(", ")),
                    "name the text field with --text-field",
                ));
            }
        }
    }
    Ok(docs)
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
