//! Helpers shared by the `rewarm` binary's test files (each test file is its own crate and uses some).
#![allow(dead_code)]

pub mod faults;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// A JSON file, parsed; panics naming the file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `<run>/metrics.jsonl`, one value per line.
pub fn metrics(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad metrics line {l}: {e}")))
        .collect()
}

/// Every name in `<run>/ckpt`, sorted (temporary folders included, so leftovers show).
pub fn checkpoint_names(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join("ckpt"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs `rewarm` in `dir` with `args` split at whitespace (tests use paths without spaces).
pub fn rewarm(dir: &Path, args: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewarm"))
        .args(args.split_whitespace())
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the rewarm binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `rewarm args` and returns its standard output; panics with stderr unless it exits 0.
pub fn ok(dir: &Path, args: &str) -> String {
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
pub fn fails(dir: &Path, args: &str) -> String {
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
pub fn assert_has(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "expected `{n}` in:\n{haystack}");
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}

pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Copies a file of the vendored sample corpus (data/sample) into `dir` as `name`.
pub fn copy_sample(rel: &str, dir: &Path, name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/sample")
        .join(rel);
    std::fs::copy(&path, dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// `n` lines of deterministic text over `words`, each line ending with its number.
pub fn generated_lines(words: &[&str], n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let line: Vec<&str> = (0..12)
            .map(|j| words[(i * 7 + j * 13 + i * j) % words.len()])
            .collect();
        out.push_str(&format!("{} {i}.\n", line.join(" ")));
    }
    out
}

pub const WORDS_A: &[&str] = &[
    "the", "cat", "sat", "on", "a", "mat", "and", "then", "ran", "to", "red", "barn", "where",
    "dogs", "sleep",
];
pub const WORDS_B: &[&str] = &[
    "der", "hund", "lief", "schnell", "über", "die", "straße", "und", "dann", "zum", "alten",
    "haus", "zurück",
];

/// A two-stage plan (`first` on source a, `second` on b with 25% replay of a): 8 steps of 256 tokens
/// with the `tiny` preset at sequence length 32; eval and checkpoint every 2 steps.
pub const PLAN: &str = r#"seed = 3

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
pub const PLAN_STEPS: u64 = 8;

/// Writes two small generated corpora, trains a 512-token BPE on them (the `tiny` model's vocabulary),
/// prepares them as `pa` and `pb`, and writes [`PLAN`] as `plan.toml`.
pub fn build_tiny_project(dir: &Path) {
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
pub fn tiny_project(dir: &Path) {
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

pub fn copy_tree(from: &Path, to: &Path) {
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
pub fn train(dir: &Path, run: &str, extra: &str) -> Output {
    rewarm(
        dir,
        &format!("train plan.toml --run {run} --device cpu {extra}"),
    )
}

/// Every value of every F32 tensor of a safetensors file (8-byte header length, JSON header, data).
pub fn safetensors_f32_values(path: &Path) -> Vec<f32> {
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

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// A child process that is killed when the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
