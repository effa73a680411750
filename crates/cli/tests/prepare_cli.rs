//! The `rewarm` binary's data commands end to end: `prepare` and `inspect` (document modes, splits, the
//! errors bad input gets, each naming the file and ending with a HINT) and `tokenizer train`.

mod common;
use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------------------
// prepare and inspect

#[test]
fn prepare_then_inspect_reports_documents_tokens_and_bytes_per_token() {
    let dir = tempdir();
    let d = dir.path();
    copy_sample("en/validation.jsonl", d, "en.jsonl");
    write(d, "extra.txt", "A small text file, read as one document.\n");
    let out = ok(d, "prepare en.jsonl extra.txt --tokenizer gpt2 --out prep");
    assert_has(
        &out,
        &["prepared prep:", "train documents", "validation documents"],
    );
    assert!(d.join("prep/manifest.json").is_file());
    assert!(d.join("prep/train-00000.tok").is_file());

    let m = read_json(&d.join("prep/manifest.json"));
    let (train, val) = (&m["train"], &m["validation"]);
    // 501 jsonl records + 1 text file; the default hash split holds out about 5%.
    let docs = train["documents"].as_u64().unwrap() + val["documents"].as_u64().unwrap();
    assert_eq!(docs, 502);
    assert!(
        (10..50).contains(&val["documents"].as_u64().unwrap()),
        "{val}"
    );
    assert_eq!(m["tokenizer"]["name"], "gpt2");

    let out = ok(d, "inspect prep");
    assert_has(
        &out,
        &[
            "all 2 shards match manifest.json",
            "gpt2",
            "documents",
            "tokens",
            "bytes/token",
        ],
    );
    // The summary's rows are the manifest's numbers.
    for (name, split) in [("train", train), ("validation", val)] {
        let row: Vec<&str> = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no `{name}` row in:\n{out}"))
            .split_whitespace()
            .collect();
        assert_eq!(row[1], split["documents"].to_string(), "{out}");
        assert_eq!(row[2], split["tokens"].to_string(), "{out}");
        assert_eq!(row[3], split["source_bytes"].to_string(), "{out}");
        let bpt = split["source_bytes"].as_f64().unwrap() / split["tokens"].as_f64().unwrap();
        assert_eq!(row[4], format!("{bpt:.3}"), "{out}");
        // English is about 4 bytes per GPT-2 token.
        assert!((3.0..6.0).contains(&bpt), "{bpt}");
    }
}

#[test]
fn inspect_json_is_the_manifest() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.txt", "one document\n");
    ok(d, "prepare a.txt --out prep --split none");
    let out = ok(d, "inspect prep --json");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    assert_eq!(v, read_json(&d.join("prep/manifest.json")));
    assert_eq!(v["format"], "rewarm-prepared");
    assert_eq!(v["train"]["documents"], 1);
}

#[test]
fn inspect_with_another_tokenizer_fails_naming_manifest() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.txt", generated_lines(WORDS_A, 50));
    ok(d, "prepare a.txt --out prep --tokenizer gpt2");
    ok(d, "tokenizer train a.txt --vocab-size 300 --out other.json");
    ok(d, "inspect prep --tokenizer gpt2");
    let err = fails(d, "inspect prep --tokenizer other.json");
    assert_has(
        &err,
        &["prep/manifest.json", "`gpt2`", "other.json", "HINT"],
    );
}

#[test]
fn doc_modes_cut_text_into_lines_blocks_or_files() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "d.txt", "one\ntwo\n\n\nthree four\nfive\n\nsix\n");
    for (mode, documents) in [("line", 5), ("blank-line", 3), ("file", 1)] {
        let out = format!("prep-{mode}");
        ok(
            d,
            &format!("prepare d.txt --out {out} --doc-mode {mode} --split none"),
        );
        let m = read_json(&d.join(&out).join("manifest.json"));
        assert_eq!(m["train"]["documents"], documents, "--doc-mode {mode}");
        assert_eq!(m["validation"]["documents"], 0, "--doc-mode {mode}");
        assert_eq!(m["corpus"]["doc_mode"], mode);
    }
}

#[test]
fn split_every_n_holds_out_every_nth_document() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "l.txt", generated_lines(WORDS_A, 30));
    ok(
        d,
        "prepare l.txt --out prep --doc-mode line --split every:10",
    );
    let m = read_json(&d.join("prep/manifest.json"));
    assert_eq!(m["train"]["documents"], 27);
    assert_eq!(m["validation"]["documents"], 3);
    assert_eq!(m["split"], serde_json::json!({ "kind": "every", "n": 10 }));
    let err = fails(d, "prepare l.txt --out p2 --split every:x");
    assert_has(&err, &["--split `every:x`", "every:N"]);
}

#[test]
fn val_files_become_the_validation_split() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "train.txt", generated_lines(WORDS_A, 30));
    write(d, "val.txt", generated_lines(WORDS_B, 4));
    ok(
        d,
        "prepare train.txt --val val.txt --out prep --doc-mode line",
    );
    let m = read_json(&d.join("prep/manifest.json"));
    // Every training document stays in train: --split is not used with --val.
    assert_eq!(m["train"]["documents"], 30);
    assert_eq!(m["validation"]["documents"], 4);
    assert_eq!(m["split"]["kind"], "given");
    assert_eq!(m["validation_inputs"], serde_json::json!(["val.txt"]));
    assert!(d.join("prep/validation-00000.tok").is_file());
}

// ---------------------------------------------------------------------------------------------------------
// prepare: bad input

#[test]
fn non_utf8_input_names_file_and_offset_and_lossy_accepts_it() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "bad.txt", b"caf\xe9 au lait\n");
    let err = fails(d, "prepare bad.txt --out prep");
    assert_has(&err, &["bad.txt", "byte offset 3", "HINT", "--lossy"]);
    assert!(!d.join("prep").exists());
    ok(d, "prepare bad.txt --out prep --lossy --split none");
    let m = read_json(&d.join("prep/manifest.json"));
    assert_eq!(m["train"]["documents"], 1);
    assert_eq!(m["corpus"]["lossy"], true);
}

#[test]
fn jsonl_line_without_text_field_names_file_line_and_flag() {
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "d.jsonl",
        "{\"text\": \"fine\"}\n{\"body\": \"no text here\"}\n",
    );
    let err = fails(d, "prepare d.jsonl --out prep");
    assert_has(
        &err,
        &["d.jsonl:2", "`text`", "body", "HINT", "--text-field"],
    );
    // Naming the field that every line has works.
    write(d, "e.jsonl", "{\"body\": \"one\"}\n{\"body\": \"two\"}\n");
    ok(
        d,
        "prepare e.jsonl --out prep --text-field body --split none",
    );
    assert_eq!(
        read_json(&d.join("prep/manifest.json"))["train"]["documents"],
        2
    );
}

#[test]
fn empty_corpus_is_refused_with_a_hint() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::create_dir(d.join("nothing")).unwrap();
    write(d, "nothing/notes.md", "not a .txt or .jsonl file");
    let err = fails(d, "prepare nothing --out prep");
    assert_has(&err, &["no .txt or .jsonl files in nothing", "HINT"]);
    write(d, "blank.txt", "\n  \n\n");
    let err = fails(d, "prepare blank.txt --out prep");
    assert_has(&err, &["no training documents in blank.txt", "HINT"]);
    assert!(!d.join("prep").exists());
    // No temporary folder is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unknown_tokenizer_name_is_refused_with_a_hint() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.txt", "text\n");
    let err = fails(d, "prepare a.txt --out prep --tokenizer bert");
    assert_has(
        &err,
        &[
            "unknown tokenizer `bert`",
            "HINT",
            "gpt2",
            "tokenizer train",
        ],
    );
    let err = fails(d, "prepare a.txt --out prep --tokenizer missing.json");
    assert_has(&err, &["missing.json"]);
}

#[test]
fn existing_out_needs_force() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.txt", "first version\n");
    write(d, "b.txt", "second version, a little longer\n");
    ok(d, "prepare a.txt --out prep --split none");
    let before = std::fs::read(d.join("prep/manifest.json")).unwrap();
    let err = fails(d, "prepare b.txt --out prep --split none");
    assert_has(&err, &["prep: already exists", "HINT", "--force"]);
    assert_eq!(std::fs::read(d.join("prep/manifest.json")).unwrap(), before);
    ok(d, "prepare b.txt --out prep --split none --force");
    assert_eq!(
        read_json(&d.join("prep/manifest.json"))["inputs"],
        serde_json::json!(["b.txt"])
    );
}

#[cfg(unix)]
#[test]
fn symlink_loop_in_input_folder_is_named() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "corpus/a.txt", "text\n");
    std::os::unix::fs::symlink("..", d.join("corpus/loop")).unwrap();
    let err = fails(d, "prepare corpus --out prep");
    assert_has(&err, &["corpus/loop", "symbolic link loop", "HINT"]);
}

#[test]
fn binary_file_is_refused_naming_it() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "corpus/good.txt", "text\n");
    write(d, "corpus/blob.txt", b"\x7fELF\x02\x01\x01\0\0\0");
    let err = fails(d, "prepare corpus --out prep");
    assert_has(&err, &["corpus/blob.txt", "binary", "offset 7", "HINT"]);
}

#[test]
fn truncated_shard_fails_inspect_naming_the_shard() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.txt", generated_lines(WORDS_A, 40));
    ok(
        d,
        "prepare a.txt --out prep --doc-mode line --split every:10",
    );
    let shard = d.join("prep/train-00000.tok");
    let len = std::fs::metadata(&shard).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let err = fails(d, "inspect prep");
    assert_has(&err, &["prep/train-00000.tok", "truncated", "HINT"]);
    // Cut into the header: still named, as not a shard at all.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap()
        .set_len(30)
        .unwrap();
    let err = fails(d, "inspect prep");
    assert_has(&err, &["prep/train-00000.tok", "header", "HINT"]);
}

#[test]
fn manifest_with_unknown_key_fails_naming_the_key() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.txt", "text\n");
    ok(d, "prepare a.txt --out prep --split none");
    let path = d.join("prep/manifest.json");
    let mut m = read_json(&path);
    m["colour"] = "blue".into();
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let err = fails(d, "inspect prep");
    assert_has(
        &err,
        &["prep/manifest.json", "unknown field `colour`", "HINT"],
    );
}

// ---------------------------------------------------------------------------------------------------------
// tokenizer train

#[test]
fn trained_tokenizer_is_accepted_by_prepare_and_inspect() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.txt", generated_lines(WORDS_B, 200));
    let out = ok(d, "tokenizer train a.txt --vocab-size 300 --out tok.json");
    assert_has(&out, &["wrote tok.json", "byte-level BPE"]);
    let tok = read_json(&d.join("tok.json"));
    assert_eq!(tok["model"]["type"], "BPE");
    ok(
        d,
        "prepare a.txt --out prep --tokenizer tok.json --doc-mode line",
    );
    let m = read_json(&d.join("prep/manifest.json"));
    assert_eq!(m["tokenizer"]["kind"], "hf");
    assert!(m["tokenizer"]["vocab_size"].as_u64().unwrap() <= 300);
    assert_eq!(m["token_dtype"], "u16");
    ok(d, "inspect prep --tokenizer tok.json");
    // Too small a vocabulary to hold the 256 bytes is refused before any work.
    let err = fails(d, "tokenizer train a.txt --vocab-size 100 --out t.json");
    assert_has(&err, &["vocab size 100", "HINT"]);
}
