//! `prepare` end to end on small generated corpora: shards match the manifest, splits are stable, bad input
//! fails naming the file, and an existing or interrupted output is never mistaken for a valid one.

use rewarm_data::corpus::{CorpusOptions, DocMode};
use rewarm_data::eval::EvalSet;
use rewarm_data::prepare::{prepare, PrepareOptions, Quiet};
use rewarm_data::{Manifest, PreparedSource, SplitRule, Tokenizer};
use std::path::Path;

fn corpus(dir: &Path, docs: usize) -> std::path::PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut jsonl = String::new();
    for i in 0..docs {
        jsonl.push_str(&serde_json::json!({ "text": format!("Document {i}: the quick brown fox jumps over the lazy dog {i} times.") }).to_string());
        jsonl.push('\n');
    }
    std::fs::write(input.join("a.jsonl"), jsonl).unwrap();
    std::fs::write(input.join("b.txt"), "First block.\n\nSecond block.\n").unwrap();
    std::fs::write(input.join("ignored.csv"), "x,y").unwrap();
    input
}

#[test]
fn prepare_writes_verified_shards_and_a_manifest_with_byte_counts() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 400);
    let mut opts = PrepareOptions::new(vec![input.clone()], dir.path().join("out"));
    opts.shard_tokens = 2_000;
    opts.corpus = CorpusOptions {
        doc_mode: DocMode::BlankLine,
        ..Default::default()
    };
    let tok = Tokenizer::gpt2();
    let report = prepare(&opts, &tok, &Quiet).unwrap();
    assert_eq!(report.skipped_files, 1);
    let m = &report.manifest;
    assert_eq!(m.train.documents + m.validation.documents, 402);
    assert!(m.train.shards.len() > 1, "several shards of ~2000 tokens");
    assert!(
        m.validation.documents > 5 && m.validation.documents < 45,
        "~5% held out: {}",
        m.validation.documents
    );
    assert!(m.train.bytes_per_token() > 2.0 && m.train.bytes_per_token() < 6.0);
    let src = PreparedSource::open(&dir.path().join("out")).unwrap();
    assert_eq!(src.train.len(), m.train.tokens);
    // Documents end with the end-of-text id.
    let mut first = vec![0u32; 40];
    src.train.copy(0, &mut first);
    assert!(first.contains(&50256));
    // No temporary folder is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());

    // Deterministic: preparing again gives identical shards and the same split.
    let mut again = opts.clone();
    again.out = dir.path().join("out2");
    let m2 = prepare(&again, &tok, &Quiet).unwrap().manifest;
    assert_eq!(m2.train, m.train);
    assert_eq!(m2.validation, m.validation);

    // A fixed eval set: identical tokens every time.
    let e1 = EvalSet::new("v", &src, 16, 160).unwrap();
    let e2 = EvalSet::new(
        "v",
        &PreparedSource::open(&dir.path().join("out2")).unwrap(),
        16,
        160,
    )
    .unwrap();
    assert_eq!(e1.sequences(), 10);
    assert_eq!(e1, e2);
}

#[test]
fn existing_output_is_refused_without_force_and_replaced_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 20);
    let mut opts = PrepareOptions::new(vec![input], dir.path().join("out"));
    opts.split = SplitRule::None;
    prepare(&opts, &Tokenizer::gpt2(), &Quiet).unwrap();
    let err = prepare(&opts, &Tokenizer::gpt2(), &Quiet)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    opts.force = true;
    prepare(&opts, &Tokenizer::gpt2(), &Quiet).unwrap();
}

/// `--force` replaces a prepared folder (or an empty one) and nothing else: a folder of other files, a
/// file and a symbolic link are refused and left as they were.
#[test]
fn force_replaces_only_a_prepared_folder() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 20);
    let refused = |out: &Path| {
        let mut opts = PrepareOptions::new(vec![input.clone()], out.to_owned());
        opts.force = true;
        prepare(&opts, &Tokenizer::gpt2(), &Quiet)
            .err()
            .map(|e| e.to_string())
    };
    let other = dir.path().join("notes");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("thesis.txt"), "years of work").unwrap();
    let err = refused(&other).expect("a folder of other files is refused");
    assert!(
        err.contains("not a prepared folder") && err.contains("HINT"),
        "{err}"
    );
    assert!(other.join("thesis.txt").is_file(), "left as it was");

    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    assert!(refused(&file).unwrap().contains("is a file"));

    let prepared = dir.path().join("prepared");
    assert_eq!(refused(&prepared), None, "a new folder is written");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&prepared, &link).unwrap();
    assert!(refused(&link).unwrap().contains("symbolic link"));
    assert_eq!(refused(&prepared), None, "a prepared folder is replaced");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(refused(&empty), None, "an empty folder is used");
}

#[test]
fn failed_prepare_leaves_no_output_and_no_temporary_folder() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 20);
    std::fs::write(input.join("c.txt"), b"valid then \xff invalid").unwrap();
    let out = dir.path().join("out");
    let err = prepare(
        &PrepareOptions::new(vec![input], out.clone()),
        &Tokenizer::gpt2(),
        &Quiet,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("c.txt") && err.contains("offset 11") && err.contains("--lossy"),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the input folder remains"
    );
}

#[test]
fn given_validation_inputs_and_every_nth_split() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 40);
    let val = dir.path().join("val.txt");
    std::fs::write(&val, "held out text\n\nmore held out text\n").unwrap();
    let mut opts = PrepareOptions::new(vec![input.join("a.jsonl")], dir.path().join("given"));
    opts.validation_inputs = vec![val];
    opts.corpus.doc_mode = DocMode::BlankLine;
    let m = prepare(&opts, &Tokenizer::gpt2(), &Quiet).unwrap().manifest;
    assert_eq!((m.train.documents, m.validation.documents), (40, 2));
    assert_eq!(m.split, SplitRule::Given);

    let mut opts = PrepareOptions::new(vec![input.join("a.jsonl")], dir.path().join("every"));
    opts.split = SplitRule::Every { n: 10 };
    let m = prepare(&opts, &Tokenizer::gpt2(), &Quiet).unwrap().manifest;
    assert_eq!((m.train.documents, m.validation.documents), (36, 4));
}

#[test]
fn shards_from_another_tokenizer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 50);
    let out = dir.path().join("out");
    prepare(
        &PrepareOptions::new(vec![input.clone()], out.clone()),
        &Tokenizer::gpt2(),
        &Quiet,
    )
    .unwrap();
    let docs = (0..100).map(|i| format!("some words {i} and more words"));
    let json = rewarm_data::tokenizer::train_bpe(docs, 300).unwrap();
    let tj = dir.path().join("tokenizer.json");
    std::fs::write(&tj, json).unwrap();
    let other = Tokenizer::from_hf_file(&tj, None).unwrap();
    let m = Manifest::load(&out).unwrap();
    let err = m
        .check_tokenizer(&out, other.info())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("manifest.json") && err.contains("gpt2") && err.contains("HINT"),
        "{err}"
    );
    assert!(m.check_tokenizer(&out, Tokenizer::gpt2().info()).is_ok());
}

#[test]
fn tampered_shard_or_manifest_fails_open_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 50);
    let out = dir.path().join("out");
    let m = prepare(
        &PrepareOptions::new(vec![input], out.clone()),
        &Tokenizer::gpt2(),
        &Quiet,
    )
    .unwrap()
    .manifest;
    let shard = out.join(&m.train.shards[0].file);
    let mut bytes = std::fs::read(&shard).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&shard, &bytes).unwrap();
    let err = PreparedSource::open(&out).err().unwrap().to_string();
    assert!(
        err.contains("train-00000.tok") && err.contains("checksum"),
        "{err}"
    );

    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    std::fs::write(
        out.join("manifest.json"),
        text.replacen(
            "\"format_version\"",
            "\"surprise\": 1, \"format_version\"",
            1,
        ),
    )
    .unwrap();
    let err = Manifest::load(&out).err().unwrap().to_string();
    assert!(
        err.contains("surprise") && err.contains("manifest.json"),
        "{err}"
    );
}

/// A shard whose checksum matches but which holds an id its tokenizer cannot produce (another tokenizer's
/// data, or an edit with the checksum recomputed) is refused when the source is opened, naming the shard,
/// the offset and the id, before any batch could reach the model's embedding.
#[test]
fn ids_outside_the_vocabulary_fail_open_naming_shard_offset_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut train: Vec<u32> = (0..2000).map(|i| i % 500).collect();
    train[1234] = 700;
    let validation: Vec<u32> = (0..200).map(|i| i % 500).collect();
    rewarm_data::synthetic::write_source(dir.path(), 512, &train, &validation, 1000).unwrap();
    let err = PreparedSource::open(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains("train-00001.tok")
            && err.contains("token 234 is id 700")
            && err.contains("512 ids")
            && err.contains("HINT"),
        "{err}"
    );
    // In range everywhere: opens.
    train[1234] = 511;
    let ok = dir.path().join("ok");
    rewarm_data::synthetic::write_source(&ok, 512, &train, &validation, 1000).unwrap();
    assert!(PreparedSource::open(&ok).is_ok());
}

#[test]
fn empty_corpus_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.txt"), "   \n\n").unwrap();
    let err = prepare(
        &PrepareOptions::new(vec![dir.path().join("e.txt")], dir.path().join("o")),
        &Tokenizer::gpt2(),
        &Quiet,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("no training documents"), "{err}");
}
