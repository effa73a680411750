//! Hostile corpus folders (issue 7, hostile inputs): huge lines, mixed encodings, binary files, symbolic
//! link loops and broken links either prepare correctly or fail with a message that names the file and
//! what to do, and never leave a half-written output.

use rewarm_data::corpus::{read_documents, CorpusOptions, DocMode, InputFile, InputKind};
use rewarm_data::prepare::{prepare, PrepareOptions, Quiet};
use rewarm_data::{PreparedSource, Tokenizer};
use std::path::{Path, PathBuf};

fn options(inputs: Vec<PathBuf>, out: PathBuf, doc_mode: DocMode, lossy: bool) -> PrepareOptions {
    let mut opts = PrepareOptions::new(inputs, out);
    opts.split = rewarm_data::SplitRule::None;
    opts.corpus = CorpusOptions {
        doc_mode,
        lossy,
        ..Default::default()
    };
    opts
}

fn prepare_err(opts: &PrepareOptions) -> String {
    match prepare(opts, &Tokenizer::gpt2(), &Quiet) {
        Ok(_) => panic!("prepare of {:?} succeeded", opts.inputs),
        Err(e) => {
            assert!(
                !opts.out.exists(),
                "a failed prepare left {}",
                opts.out.display()
            );
            e.to_string()
        }
    }
}

/// The error of preparing every file of the folder `input` as one document each.
fn folder_err(input: &Path, out: PathBuf, lossy: bool) -> String {
    prepare_err(&options(vec![input.to_owned()], out, DocMode::File, lossy))
}

/// Text of about `bytes` bytes on one line: words, no newline.
fn one_line(bytes: usize) -> String {
    let words = [
        "continual",
        "pre-training",
        "rewarms",
        "the",
        "learning",
        "rate",
        "42",
        "über",
    ];
    let mut s = String::with_capacity(bytes + 16);
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(words[i % words.len()]);
        s.push(if i % 17 == 16 { ',' } else { ' ' });
        i += 1;
    }
    s.push('.');
    s
}

#[test]
fn a_huge_single_line_is_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    // 16 MiB of words on one line in a .txt read line by line, the same as one JSONL record, and a
    // 1 MiB "word" without any whitespace (a minified or base64 blob): one BPE piece.
    let line = one_line(16 << 20);
    std::fs::write(input.join("a-line.txt"), &line).unwrap();
    let record = serde_json::json!({ "text": line }).to_string();
    std::fs::write(input.join("b-record.jsonl"), format!("{record}\n")).unwrap();
    let blob: String = (0..1 << 20)
        .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
        .collect();
    std::fs::write(input.join("c-blob.txt"), format!("short line\n{blob}\n")).unwrap();

    let out = dir.path().join("out");
    let report = prepare(
        &options(vec![input], out.clone(), DocMode::Line, false),
        &Tokenizer::gpt2(),
        &Quiet,
    )
    .unwrap();
    let m = &report.manifest;
    assert_eq!(
        m.train.documents, 4,
        "the line, the record, `short line`, the blob"
    );
    assert_eq!(
        m.train.source_bytes,
        2 * line.len() as u64 + 10 + blob.len() as u64
    );
    assert!(
        m.train.tokens > 2 * (line.len() as u64) / 8,
        "{} tokens",
        m.train.tokens
    );
    let src = PreparedSource::open(&out).unwrap();
    assert_eq!(src.train.len(), m.train.tokens);
}

#[test]
fn mixed_encodings_in_one_folder_name_the_file_and_the_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let text = "Grüße aus Köln, café au lait.";
    std::fs::write(input.join("a-utf8.txt"), text).unwrap();
    std::fs::write(
        input.join("b-utf8-bom.txt"),
        [b"\xEF\xBB\xBF", text.as_bytes()].concat(),
    )
    .unwrap();
    std::fs::write(
        input.join("c-crlf.jsonl"),
        "{\"text\": \"one\"}\r\n{\"text\": \"two\"}\r\n",
    )
    .unwrap();
    let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    std::fs::write(input.join("d-latin1.txt"), &latin1).unwrap();
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    std::fs::write(input.join("e-utf16.txt"), &utf16).unwrap();
    let out = dir.path().join("out");

    // Of two bad files, the first in name order is named.
    let err = folder_err(&input, out.clone(), false);
    assert!(
        err.contains("d-latin1.txt")
            && err.contains("invalid UTF-8 at byte offset 2")
            && err.contains("--lossy"),
        "{err}"
    );
    // --lossy replaces Latin-1's bytes but does not read UTF-16 as garbage.
    let err = folder_err(&input, out.clone(), true);
    assert!(
        err.contains("e-utf16.txt")
            && err.contains("UTF-16 (little-endian)")
            && err.contains("iconv -f UTF-16LE"),
        "{err}"
    );
    // UTF-16 without a byte-order mark is caught by its NUL bytes, with the re-encoding hint.
    std::fs::write(input.join("e-utf16.txt"), &utf16[2..]).unwrap();
    let err = folder_err(&input, out.clone(), true);
    assert!(
        err.contains("e-utf16.txt")
            && err.contains("NUL byte at offset 1")
            && err.contains("iconv"),
        "{err}"
    );
    // UTF-32 is named too.
    std::fs::write(input.join("e-utf16.txt"), [0xFF, 0xFE, 0, 0, b'h', 0, 0, 0]).unwrap();
    let err = folder_err(&input, out.clone(), true);
    assert!(err.contains("UTF-32 (little-endian)"), "{err}");

    std::fs::remove_file(input.join("e-utf16.txt")).unwrap();
    let m = prepare(
        &options(vec![input.clone()], out.clone(), DocMode::File, true),
        &Tokenizer::gpt2(),
        &Quiet,
    )
    .unwrap()
    .manifest;
    assert_eq!(
        m.train.documents, 5,
        "utf8, utf8-bom, two JSONL records, latin1"
    );
    // The UTF-8 byte-order mark is not text: both UTF-8 files give the same tokens.
    let src = PreparedSource::open(&out).unwrap();
    let tok = Tokenizer::gpt2();
    let n = tok.encode(text).unwrap().len() + 1;
    let mut first = vec![0; 2 * n];
    src.train.copy(0, &mut first);
    assert_eq!(first[..n], first[n..], "a BOM changed the tokens");
    // CRLF line ends are not part of JSONL records or lines.
    let crlf = InputFile {
        path: input.join("c-crlf.jsonl"),
        kind: InputKind::Jsonl,
        bytes: 0,
    };
    assert_eq!(
        read_documents(&crlf, &CorpusOptions::default()).unwrap(),
        ["one", "two"]
    );
    std::fs::write(&crlf.path, "one\r\ntwo\r\n").unwrap();
    let lines = CorpusOptions {
        doc_mode: DocMode::Line,
        ..Default::default()
    };
    let crlf = InputFile {
        kind: InputKind::Txt,
        ..crlf
    };
    assert_eq!(read_documents(&crlf, &lines).unwrap(), ["one", "two"]);
}

#[test]
fn binary_files_are_skipped_by_extension_or_refused_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("a.txt"), "some text").unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    std::fs::write(input.join("image.png"), png).unwrap();
    std::fs::write(input.join("model.bin"), [0u8, 1, 2, 3]).unwrap();
    let out = dir.path().join("out");
    let report = prepare(
        &options(vec![input.clone()], out.clone(), DocMode::File, false),
        &Tokenizer::gpt2(),
        &Quiet,
    )
    .unwrap();
    assert_eq!(report.skipped_files, 2);
    assert_eq!(report.manifest.train.documents, 1);

    // Binary content under a text name: NUL bytes, or (without any) invalid UTF-8.
    std::fs::write(input.join("b.txt"), png).unwrap();
    let err = folder_err(&input, dir.path().join("o2"), true);
    assert!(
        err.contains("b.txt") && err.contains("binary file (NUL byte at offset 8)"),
        "{err}"
    );
    std::fs::write(input.join("b.txt"), b"\x89PNG\xff\xfe\xfd").unwrap();
    let err = folder_err(&input, dir.path().join("o3"), false);
    assert!(
        err.contains("b.txt") && err.contains("invalid UTF-8 at byte offset 0"),
        "{err}"
    );
    // A binary .jsonl names the line.
    std::fs::write(input.join("b.txt"), "fine").unwrap();
    std::fs::write(
        input.join("c.jsonl"),
        b"{\"text\": \"ok\"}\n\x89PNG\x01\x02\n",
    )
    .unwrap();
    let err = folder_err(&input, dir.path().join("o4"), true);
    assert!(
        err.contains("c.jsonl:2") && err.contains("not JSON"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn symbolic_link_loops_and_broken_links_are_named() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(input.join("sub/a.txt"), "text").unwrap();
    symlink(&input, input.join("sub/loop")).unwrap();
    let err = folder_err(&input, dir.path().join("out"), false);
    assert!(
        err.contains("sub/loop") && err.contains("symbolic link loop") && err.contains("HINT"),
        "{err}"
    );

    std::fs::remove_file(input.join("sub/loop")).unwrap();
    symlink(input.join("missing.txt"), input.join("sub/dangling.txt")).unwrap();
    let err = folder_err(&input, dir.path().join("out"), false);
    assert!(
        err.contains("dangling.txt")
            && err.contains("broken symbolic link")
            && err.contains("HINT"),
        "{err}"
    );

    // A link to a folder outside, without a loop, is followed.
    std::fs::remove_file(input.join("sub/dangling.txt")).unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("b.txt"), "more text").unwrap();
    symlink(&other, input.join("linked")).unwrap();
    let m = prepare(
        &options(vec![input], dir.path().join("out"), DocMode::File, false),
        &Tokenizer::gpt2(),
        &Quiet,
    )
    .unwrap()
    .manifest;
    assert_eq!(m.train.documents, 2);
}
