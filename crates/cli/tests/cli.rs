//! End-to-end tests of the `rewarm` binary: each runs the built binary in its own temporary folder (paths
//! relative to it, so messages are short) and checks exit codes, files written, and that errors name the
//! file or field and end with a HINT. Training runs are a few steps of the `tiny` preset on CPU.

mod common;
use common::{checkpoint_names, metrics, read_json};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------------------
// Helpers

/// Runs `rewarm` in `dir` with `args` split at whitespace (tests use paths without spaces).
fn rewarm(dir: &Path, args: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewarm"))
        .args(args.split_whitespace())
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the rewarm binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `rewarm args` and returns its standard output; panics with stderr unless it exits 0.
fn ok(dir: &Path, args: &str) -> String {
    let out = rewarm(dir, args);
    assert!(
        out.status.success(),
        "`rewarm {}` failed ({:?}):\n{}",
        args,
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `rewarm args`, which must fail with exit code 1 (an error, not a panic), and returns stderr.
fn fails(dir: &Path, args: &str) -> String {
    let out = rewarm(dir, args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "`rewarm {}` should fail with exit code 1; stdout:\n{}\nstderr:\n{stderr}",
        args,
        text(&out.stdout)
    );
    assert!(
        stderr.starts_with("error: ") && !stderr.contains("panicked"),
        "{stderr}"
    );
    stderr
}

/// Asserts that `haystack` contains every needle, showing it whole otherwise.
#[track_caller]
fn assert_has(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "expected `{n}` in:\n{haystack}");
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Copies a file of the vendored sample corpus (data/sample) into `dir` as `name`.
fn copy_sample(rel: &str, dir: &Path, name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/sample")
        .join(rel);
    std::fs::copy(&path, dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// `n` lines of deterministic text over `words`, each line ending with its number.
fn generated_lines(words: &[&str], n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let line: Vec<&str> = (0..12)
            .map(|j| words[(i * 7 + j * 13 + i * j) % words.len()])
            .collect();
        out.push_str(&format!("{} {i}.\n", line.join(" ")));
    }
    out
}

const WORDS_A: &[&str] = &[
    "the", "cat", "sat", "on", "a", "mat", "and", "then", "ran", "to", "red", "barn", "where",
    "dogs", "sleep",
];
const WORDS_B: &[&str] = &[
    "der", "hund", "lief", "schnell", "über", "die", "straße", "und", "dann", "zum", "alten",
    "haus", "zurück",
];

/// A two-stage plan (`first` on source a, `second` on b with 25% replay of a): 8 steps of 256 tokens
/// with the `tiny` preset at sequence length 32; eval and checkpoint every 2 steps.
const PLAN: &str = r#"seed = 3

[model]
preset = "tiny"
max_seq_len = 32

[data]
sources = { a = "pa", b = "pb" }

[train]
batch_tokens = 256
threads = 1

[eval]
every_steps = 2
tokens = 256

[checkpoint]
every_steps = 2

[[stages]]
name = "first"
tokens = 1024
mixture = { a = 1.0 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.25 }

[[stages]]
name = "second"
tokens = 1024
mixture = { b = 1.0 }
replay = { fraction = 0.25, sources = ["a"] }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.25 }
"#;

/// Steps of [`PLAN`]: 2 stages × 1024 tokens / 256 tokens per step.
const PLAN_STEPS: u64 = 8;

/// Writes two small generated corpora, trains a 512-token BPE on them (the `tiny` model's vocabulary),
/// prepares them as `pa` and `pb`, and writes [`PLAN`] as `plan.toml`.
fn build_tiny_project(dir: &Path) {
    write(dir, "a.txt", generated_lines(WORDS_A, 400));
    write(dir, "b.txt", generated_lines(WORDS_B, 400));
    ok(
        dir,
        "tokenizer train a.txt b.txt --vocab-size 512 --out tok.json",
    );
    for (input, out) in [("a.txt", "pa"), ("b.txt", "pb")] {
        ok(
            dir,
            &format!(
                "prepare {input} --out {out} --tokenizer tok.json --doc-mode line --split every:10"
            ),
        );
    }
    write(dir, "plan.toml", PLAN);
}

/// Copies the tiny project (see [`build_tiny_project`]) into `dir`. It is built once per test process
/// (every `rewarm` start costs ~0.3 s of libtorch initialisation) in Cargo's test scratch folder;
/// folders left there by test processes that have exited are removed.
fn tiny_project(dir: &Path) {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let src = BUILT.get_or_init(|| {
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(scratch).unwrap();
        for entry in std::fs::read_dir(scratch).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("cli-fixture-") {
                let exited =
                    Path::new("/proc/self").exists() && !Path::new("/proc").join(pid).exists();
                if exited {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let built = scratch.join(format!("cli-fixture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&built);
        std::fs::create_dir(&built).unwrap();
        build_tiny_project(&built);
        built
    });
    copy_tree(src, dir);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `rewarm train plan.toml --run <run> --device cpu <extra>`.
fn train(dir: &Path, run: &str, extra: &str) -> Output {
    rewarm(
        dir,
        &format!("train plan.toml --run {run} --device cpu {extra}"),
    )
}

/// Every value of every F32 tensor of a safetensors file (8-byte header length, JSON header, data).
fn safetensors_f32_values(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut values = Vec::new();
    for (name, t) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        assert_eq!(t["dtype"], "F32", "{name}");
        let (start, end) = (
            t["data_offsets"][0].as_u64().unwrap() as usize,
            t["data_offsets"][1].as_u64().unwrap() as usize,
        );
        values.extend(
            data[start..end]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap())),
        );
    }
    values
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// A child process that is killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

// ---------------------------------------------------------------------------------------------------------
// plan

#[test]
fn plan_prints_stages_and_replay() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = ok(d, "plan plan.toml");
    assert_has(
        &out,
        &[
            "8 steps, 2048 tokens",
            "sequence length 32",
            "union retrain",
        ],
    );
    let words = |first: &str| -> Vec<Vec<String>> {
        out.lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .filter(|w| w.first().map(String::as_str) == Some(first))
            .collect()
    };
    // stage, first step, steps, tokens, batch, replay.
    assert_eq!(
        words("first")[0][..6],
        ["first", "0", "4", "1024", "256", "0.0%"]
    );
    assert_eq!(
        words("second")[0][..6],
        ["second", "4", "4", "1024", "256", "25.0%"]
    );
    // Source lines: `a` new in stage 1 and replayed in stage 2 (25% of 1024 tokens), `b` new.
    let a: Vec<_> = words("a").into_iter().map(|w| w[1..3].join(" ")).collect();
    assert_eq!(a, ["new 1024", "replay 256"], "{out}");
    assert_eq!(words("b")[0][1..3], ["new", "768"]);
}

#[test]
fn plan_json_parses_with_stages_and_replay() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = ok(d, "plan plan.toml --format json");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    assert_eq!(v["total_steps"], PLAN_STEPS);
    assert_eq!(v["seq_len"], 32);
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0]["name"], "first");
    assert_eq!(stages[1]["name"], "second");
    assert_eq!(stages[1]["replay_fraction"], 0.25);
    let replayed: Vec<_> = stages[1]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["replay"] == true)
        .map(|s| (s["source"].clone(), s["tokens"].clone()))
        .collect();
    assert_eq!(replayed, [("a".into(), 256.into())]);
}

#[test]
fn plan_csv_has_a_header_and_one_row_per_step() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = ok(d, "plan plan.toml --format csv");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len() as u64, PLAN_STEPS + 1, "{out}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[..2], ["step", "stage"]);
    let lr_column = header
        .iter()
        .position(|h| *h == "lr")
        .expect("an lr column");
    for (i, line) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{line}");
        assert_eq!(cells[0], i.to_string());
        assert_eq!(cells[1], if i < 4 { "first" } else { "second" });
        let lr: f64 = cells[lr_column].parse().unwrap();
        assert!((0.0..=1e-3).contains(&lr), "{line}");
    }
}

#[test]
fn plan_plot_writes_an_svg() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = rewarm(d, "plan plan.toml --plot lr.svg");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_has(&text(&out.stderr), &["wrote lr.svg"]);
    let svg = std::fs::read_to_string(d.join("lr.svg")).unwrap();
    assert!(svg.trim_start().starts_with("<svg"), "{}", &svg[..100]);
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn plan_with_unknown_key_fails_naming_it() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    write(
        d,
        "typo.toml",
        PLAN.replace(
            "batch_tokens = 256",
            "batch_tokens = 256\nbatch_tokenz = 512",
        ),
    );
    let err = fails(d, "plan typo.toml");
    assert_has(
        &err,
        &[
            "typo.toml",
            "line 12",
            "unknown field `batch_tokenz`",
            "HINT",
        ],
    );
    write(
        d,
        "model.toml",
        PLAN.replace("max_seq_len = 32", "max_seq_len = 32\nwidth = 64"),
    );
    let err = fails(d, "plan model.toml");
    assert_has(
        &err,
        &["model.toml", "[model]", "unknown field `width`", "HINT"],
    );
}

#[test]
fn plan_with_unknown_source_fails_naming_it() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    write(
        d,
        "mix.toml",
        PLAN.replace("mixture = { b = 1.0 }", "mixture = { c = 1.0 }"),
    );
    let err = fails(d, "plan mix.toml");
    assert_has(
        &err,
        &[
            "mix.toml",
            "stages[1] (second).mixture",
            "unknown source `c`",
            "sources: a, b",
            "HINT",
        ],
    );
    write(
        d,
        "replay.toml",
        PLAN.replace("sources = [\"a\"]", "sources = [\"en\"]"),
    );
    let err = fails(d, "plan replay.toml");
    assert_has(&err, &["replay.sources", "unknown source `en`", "HINT"]);
    // A source whose folder is missing is named by its plan key, not only by its path.
    write(d, "dir.toml", PLAN.replace("b = \"pb\"", "b = \"nowhere\""));
    let err = fails(d, "plan dir.toml");
    assert_has(
        &err,
        &[
            "dir.toml",
            "data.sources.b",
            "nowhere/manifest.json",
            "HINT",
        ],
    );
}

// ---------------------------------------------------------------------------------------------------------
// train

#[test]
fn train_runs_tiny_plan_and_writes_a_self_describing_run_folder() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = train(d, "run", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_has(&text(&out.stdout), &["8 of 8 steps done"]);
    let run = d.join("run");

    let records = metrics(&run);
    let train_lines: Vec<&Value> = records.iter().filter(|r| r["kind"] == "train").collect();
    let steps: Vec<u64> = train_lines
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=PLAN_STEPS).collect::<Vec<_>>());
    for r in &train_lines {
        for field in [
            "kind",
            "step",
            "stage",
            "tokens",
            "tokens_by_source",
            "lr",
            "loss",
            "grad_norm",
        ] {
            assert!(r.get(field).is_some(), "train line without `{field}`: {r}");
        }
        assert!(r["loss"].as_f64().unwrap().is_finite(), "{r}");
        assert!(r["grad_norm"].as_f64().unwrap().is_finite(), "{r}");
        assert_eq!(r["tokens"], r["step"].as_u64().unwrap() * 256, "{r}");
        let by_source: u64 = r["tokens_by_source"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(r["tokens"], by_source, "{r}");
    }
    let last = train_lines.last().unwrap();
    assert_eq!(last["stage"], "second");
    assert_eq!(
        last["tokens_by_source"],
        serde_json::json!({ "a": 1024, "a/replay": 256, "b": 768 })
    );

    let evals: Vec<&Value> = records.iter().filter(|r| r["kind"] == "eval").collect();
    for r in &evals {
        for field in [
            "kind",
            "step",
            "stage",
            "tokens",
            "set",
            "loss",
            "perplexity",
            "bits_per_byte",
        ] {
            assert!(r.get(field).is_some(), "eval line without `{field}`: {r}");
        }
        let loss = r["loss"].as_f64().unwrap();
        assert!((r["perplexity"].as_f64().unwrap() - loss.exp()).abs() < 1e-6 * loss.exp());
        assert!(r["bits_per_byte"].as_f64().unwrap() > 0.0, "{r}");
    }
    // Both sets at step 0 and after every 2 steps.
    let eval_at: Vec<(u64, String)> = evals
        .iter()
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["set"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = (0..=PLAN_STEPS)
        .step_by(2)
        .flat_map(|s| [(s, "a".to_owned()), (s, "b".to_owned())])
        .collect();
    assert_eq!(eval_at, expected);
    // Training lowers each set's loss from its starting point.
    for set in ["a", "b"] {
        let losses: Vec<f64> = evals
            .iter()
            .filter(|r| r["set"] == set)
            .map(|r| r["loss"].as_f64().unwrap())
            .collect();
        assert!(losses.last() < losses.first(), "{set}: {losses:?}");
    }

    let ckpts = checkpoint_names(&run);
    assert!(ckpts.contains(&"step_00000008".to_owned()), "{ckpts:?}");
    assert!(ckpts.iter().all(|c| c.starts_with("step_")), "{ckpts:?}");
    for c in &ckpts {
        for file in [
            "DONE",
            "model.safetensors",
            "optimizer.safetensors",
            "state.json",
            "plan.json",
        ] {
            assert!(run.join("ckpt").join(c).join(file).is_file(), "{c}/{file}");
        }
    }
    assert_eq!(
        read_json(&run.join("ckpt/step_00000008/state.json"))["step"],
        8
    );
    let plan = read_json(&run.join("plan.json"));
    assert_eq!(plan["plan"]["stages"][1]["name"], "second");
    assert_eq!(plan["model"]["max_seq_len"], 32);
    let env = read_json(&run.join("environment.json"));
    assert_has(&env.to_string(), &["rewarm_version", "device", "Cpu"]);
    assert!(
        !run.join("LOCK").exists(),
        "the lock is released at the end"
    );

    // Training a finished run again does nothing and duplicates no metrics.
    let before = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let out = train(d, "run", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_has(&text(&out.stdout), &["8 of 8 steps done"]);
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(),
        before
    );
    assert_eq!(checkpoint_names(&run), ckpts);
    assert_eq!(
        read_json(&run.join("environment.json"))["resumed_from_step"],
        8
    );

    // The metrics as CSV: one train row per step with a column per source, one eval row per record.
    let printed = ok(d, "export-metrics run --out csv");
    assert_has(
        &printed,
        &["csv/train.csv", "csv/eval.csv", "csv/rollbacks.csv"],
    );
    let train_csv = std::fs::read_to_string(d.join("csv/train.csv")).unwrap();
    let rows: Vec<&str> = train_csv.lines().collect();
    assert_eq!(rows.len() as u64, 1 + PLAN_STEPS, "{train_csv}");
    assert!(
        rows[0].ends_with(",tokens:a,tokens:a/replay,tokens:b"),
        "{}",
        rows[0]
    );
    assert!(
        rows[PLAN_STEPS as usize].starts_with("8,second,2048,"),
        "{train_csv}"
    );
    assert!(
        rows[PLAN_STEPS as usize].ends_with(",1024,256,768"),
        "{train_csv}"
    );
    let eval_csv = std::fs::read_to_string(d.join("csv/eval.csv")).unwrap();
    assert_eq!(eval_csv.lines().count(), 1 + evals.len(), "{eval_csv}");
}

#[test]
fn train_resumed_after_stop_matches_an_uninterrupted_run() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    for (run, stops) in [("whole", &[][..]), ("split", &[5][..])] {
        for stop in stops {
            let out = train(d, run, &format!("--stop-at-step {stop}"));
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert_has(&text(&out.stdout), &[&format!("{stop} of 8 steps done")]);
        }
        let out = train(d, run, "");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Everything but the wall-clock speed is identical, line for line.
    let strip = |run: &str| -> Vec<Value> {
        metrics(&d.join(run))
            .into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("tokens_per_second");
                r
            })
            .collect()
    };
    assert_eq!(strip("split"), strip("whole"));
}

#[cfg(target_os = "linux")]
#[test]
fn train_refuses_a_run_folder_locked_by_a_live_process() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let holder = KillOnDrop(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = holder.0.id();
    write(d, "run/LOCK", format!("{pid} {}\n", hostname()));
    let out = train(d, "run", "");
    assert_eq!(out.status.code(), Some(1));
    assert_has(
        &text(&out.stderr),
        &["run: run folder in use by pid", &pid.to_string(), "HINT"],
    );
    assert!(!d.join("run/metrics.jsonl").exists());
    assert!(!d.join("run/ckpt").exists());
    // The holder's lock is left alone.
    assert_eq!(
        std::fs::read_to_string(d.join("run/LOCK")).unwrap(),
        format!("{pid} {}\n", hostname())
    );
    drop(holder);
}

/// The `flock` decides, not the text: while another process (this test) holds the lock file's `flock`,
/// `train` refuses even though the pid written in it is dead and would otherwise be taken over; once the
/// `flock` is released, the same stale lock is taken over and the run trains.
#[cfg(target_os = "linux")]
#[test]
fn train_refuses_a_run_folder_whose_flock_another_process_holds() {
    use std::os::fd::AsRawFd;
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    std::fs::create_dir_all(d.join("run")).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let path = d.join("run/LOCK");
    let lock = std::fs::File::create(&path).unwrap();
    // SAFETY: a plain syscall on a descriptor this test owns.
    let held = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(held, 0, "the test takes the flock");
    let stale = format!("{dead} {}\n", hostname());
    std::fs::write(&path, &stale).unwrap();
    let out = train(d, "run", "");
    assert_eq!(out.status.code(), Some(1));
    assert_has(&text(&out.stderr), &["run folder in use by pid", "HINT"]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        stale,
        "left as it was"
    );
    assert!(!d.join("run/metrics.jsonl").exists());
    drop(lock);
    let out = train(d, "run", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[cfg(target_os = "linux")]
#[test]
fn train_refuses_a_lock_held_on_another_host() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    // A pid that is not running here says nothing about a process on another machine.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    write(d, "run/LOCK", format!("{pid} some-other-host\n"));
    let out = train(d, "run", "");
    assert_eq!(out.status.code(), Some(1));
    assert_has(
        &text(&out.stderr),
        &[&format!("pid {pid} on some-other-host"), "HINT"],
    );
}

#[cfg(target_os = "linux")]
#[test]
fn train_takes_over_a_stale_lock() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    write(d, "run/LOCK", format!("{pid} {}\n", hostname()));
    let out = train(d, "run", "--stop-at-step 2");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(checkpoint_names(&d.join("run")), ["step_00000002"]);
    assert!(!d.join("run/LOCK").exists());
}

#[test]
fn train_stops_at_injected_nan_without_saving_it() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    // Step 2 (steps count from 1, as in metrics.jsonl) is non-finite: the checkpoint due after it is
    // never written.
    let out = train(d, "due", "--inject-nan-at-step 2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_has(
        &text(&out.stderr),
        &["non-finite loss at step 2", "stage `first`", "HINT"],
    );
    assert_eq!(checkpoint_names(&d.join("due")), Vec::<String>::new());

    // Step 3 fails after the checkpoint of step 2: that one stays the only one, and it is finite.
    let run = d.join("run");
    let out = train(d, "run", "--inject-nan-at-step 3");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_has(
        &text(&out.stderr),
        &["non-finite loss at step 3", "stage `first`", "HINT"],
    );
    assert_eq!(checkpoint_names(&run), ["step_00000002"]);
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let values = safetensors_f32_values(&run.join("ckpt/step_00000002").join(file));
        assert!(!values.is_empty());
        assert!(values.iter().all(|v| v.is_finite()), "{file}");
    }
    // The failed step is not logged.
    let last_step = metrics(&run)
        .iter()
        .filter_map(|r| r["step"].as_u64())
        .max();
    assert_eq!(last_step, Some(2));
    assert!(!run.join("LOCK").exists(), "a failed run releases its lock");
    // Without the fault, the run resumes from that checkpoint and finishes.
    let out = train(d, "run", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(checkpoint_names(&run).contains(&"step_00000008".to_owned()));
}

#[test]
fn train_names_a_truncated_shard_before_any_step() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let shard = d.join("pb/train-00000.tok");
    let len = std::fs::metadata(&shard).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap()
        .set_len(len - 2)
        .unwrap();
    let out = train(d, "run", "");
    assert_eq!(out.status.code(), Some(1));
    assert_has(&text(&out.stderr), &["pb/train-00000.tok", "HINT"]);
    assert!(!d.join("run/ckpt").exists());
}

#[test]
fn study_runs_end_to_end_and_a_second_call_skips_the_finished_runs() {
    let tmp = tempdir();
    let dir = tmp.path();
    tiny_project(dir);
    // `union` at 3% of the tiny budgets with 2 seeds: per seed, pretraining on a (3 steps), three
    // continual runs on b from its final checkpoint (replay 0, 5, 25% of what pretraining saw), the
    // union retrain (6 steps) and b from scratch (3 steps); then one report over both seeds.
    let args =
        "study union --data a=pa --data b=pb --out st --size tiny --token-scale 0.03 --seeds 2";
    let first = ok(dir, args);
    assert_has(
        &first,
        &[
            "pretraining on a with seed 1 (3 steps)",
            "pretraining on a with seed 2 (3 steps)",
            "report.md",
        ],
    );
    let index = read_json(&dir.join("st/runs/sweep.json"));
    let runs = index.as_array().unwrap();
    let labels: Vec<&str> = runs.iter().map(|r| r["label"].as_str().unwrap()).collect();
    let methods = [
        "cpt-replay=0",
        "cpt-replay=0.05",
        "cpt-replay=0.25",
        "union",
        "scratch",
    ];
    assert_eq!(labels, [methods, methods].concat());
    let seeds: Vec<u64> = runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [[1; 5], [2; 5]].concat());
    // `rewarm plan` shows a continual run that replays what pretraining saw, as training sees it.
    let replay = &runs[2];
    assert_eq!(replay["label"], "cpt-replay=0.25");
    let plan = format!("st/runs/{}/plan.toml", replay["id"].as_str().unwrap());
    assert_has(&ok(dir, &format!("plan {plan}")), &["replay"]);
    for r in runs {
        let m = metrics(&dir.join("st/runs").join(r["id"].as_str().unwrap()));
        let last = m.iter().filter_map(|r| r["step"].as_u64()).max().unwrap();
        let steps = if r["label"] == "union" { 6 } else { 3 };
        assert_eq!(last, steps, "{}", r["label"]);
    }
    // The report compares the methods over both seeds: the continual runs' English-like set `a` is old
    // (forgetting measured from the pretrained model at step 0), `b` is new.
    let md = std::fs::read_to_string(dir.join("st/report/report.md")).unwrap();
    assert_has(
        &md,
        &["## Forgetting and adaptation", "union baseline", "(2)"],
    );
    // One row per continual method, in nats and again in bits per byte.
    let rows: Vec<&str> = md.lines().filter(|l| l.contains("| a   | old")).collect();
    assert_eq!(rows.len(), 2 * 3, "{md}");
    assert!(
        rows.iter()
            .all(|l| l.matches('+').count() + l.matches('-').count() >= 2),
        "{rows:?}"
    );
    // Everything is finished: a second call trains nothing.
    let second = ok(dir, args);
    assert!(!second.contains("pretraining on"), "{second}");
    assert_eq!(second.matches("all 5 runs done").count(), 2, "{second}");
    // A budget that is no number of tokens is refused.
    let err = fails(
        dir,
        "study union --data a=pa --data b=pb --out st2 --token-scale 0",
    );
    assert_has(&err, &["--token-scale 0", "positive"]);
}

// ---------------------------------------------------------------------------------------------------------
// data parallel (`rewarm launch`, Gloo on the CPU)

/// Asserts that two runs' metrics agree: the same records in the same order, counts and schedules exactly,
/// losses and gradient norms to within floating-point reduction order (summing per-process gradients
/// instead of accumulating all micro-batches in one process).
fn assert_same_run(one: &[Value], other: &[Value]) {
    assert_eq!(one.len(), other.len());
    for (a, b) in one.iter().zip(other) {
        for exact in [
            "kind",
            "step",
            "stage",
            "set",
            "tokens",
            "tokens_by_source",
            "lr",
            "replay_fraction",
        ] {
            assert_eq!(a.get(exact), b.get(exact), "`{exact}`:\n{a}\n{b}");
        }
        for close in ["loss", "grad_norm"] {
            if let (Some(x), Some(y)) = (a[close].as_f64(), b[close].as_f64()) {
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                    "`{close}`: {x} vs {y}\n{a}\n{b}"
                );
            }
        }
    }
}

/// The tiny project (see [`tiny_project`]) in `d`, with the plan trained by one process into `d/one`: the
/// reference the data-parallel runs are compared with.
fn tiny_project_with_one_process_run(d: &Path) {
    tiny_project(d);
    let out = train(d, "one", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn two_processes_reproduce_one_and_resume_on_either_world_size() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project_with_one_process_run(d);

    // Steps 1–4 in two processes (each trains half of every batch), 5–8 resumed in one.
    let stdout = ok(
        d,
        "launch --nproc 2 -- train plan.toml --run two --device cpu --stop-at-step 4",
    );
    assert_has(&stdout, &["4 of 8 steps done"]);
    assert_eq!(
        stdout.matches("steps done").count(),
        1,
        "only rank 0 reports:\n{stdout}"
    );
    assert_eq!(read_json(&d.join("two/environment.json"))["processes"], 2);
    assert_eq!(
        checkpoint_names(&d.join("two")),
        ["step_00000002", "step_00000004"]
    );
    let out = train(d, "two", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_same_run(&metrics(&d.join("one")), &metrics(&d.join("two")));

    // And the other way: one process to step 4, two from there.
    let out = train(d, "three", "--stop-at-step 4");
    assert!(out.status.success(), "{}", text(&out.stderr));
    ok(
        d,
        "launch --nproc 2 -- train plan.toml --run three --device cpu",
    );
    assert_same_run(&metrics(&d.join("one")), &metrics(&d.join("three")));
    assert_eq!(
        checkpoint_names(&d.join("one")),
        checkpoint_names(&d.join("three"))
    );
}

/// Rank 0 killed while writing a checkpoint (only rank 0 writes them): the launcher stops rank 1, which
/// waits for it in the next all-reduce, and the same command resumes from the last complete checkpoint
/// and ends where one uninterrupted process does.
#[test]
fn a_rank_killed_mid_checkpoint_stops_the_others_and_the_same_command_resumes() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project_with_one_process_run(d);
    let launch = "launch --nproc 2 -- train plan.toml --run two --device cpu";
    let out = Command::new(env!("CARGO_BIN_EXE_rewarm"))
        .args(launch.split_whitespace())
        .current_dir(d)
        .env("REWARM_FAULT", "checkpoint:after-weights@2=kill")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_has(&stderr, &["failed", "the other processes were stopped"]);
    let complete: Vec<String> = checkpoint_names(&d.join("two"))
        .into_iter()
        .filter(|n| !n.starts_with('.')) // the torn step-4 checkpoint is a hidden partial folder
        .collect();
    assert_eq!(complete, ["step_00000002"]);
    assert_has(&ok(d, launch), &["8 of 8 steps done"]);
    assert_same_run(&metrics(&d.join("one")), &metrics(&d.join("two")));
    assert_eq!(
        checkpoint_names(&d.join("one")),
        checkpoint_names(&d.join("two"))
    );
}

#[test]
fn a_batch_that_does_not_split_over_the_processes_is_refused_and_stops_them_all() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    // 8 sequences per step do not split over 3 processes.
    let stderr = fails(
        d,
        "launch --nproc 3 -- train plan.toml --run run --device cpu",
    );
    assert_has(
        &stderr,
        &["does not split over 3 processes", "HINT", "failed"],
    );
    let stderr = fails(d, "launch --nproc 2 -- plan plan.toml");
    assert_has(&stderr, &["runs `train`"]);
}

/// Asking for a CUDA device that is not there (no CUDA libtorch on this machine, or no device 7 on a GPU
/// machine) is an error naming the device, with a hint, not a panic.
#[test]
fn an_unavailable_cuda_device_is_refused_with_a_hint() {
    let dir = tempdir();
    tiny_project(dir.path());
    let stderr = fails(dir.path(), "train plan.toml --run run --device cuda:7");
    assert_has(&stderr, &["--device cuda:7", "HINT", "--device cpu"]);
}
