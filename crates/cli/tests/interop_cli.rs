//! `rewarm export` and `rewarm sample` end to end on a tiny Llama checkpoint: the exported folder samples
//! the same text as the checkpoint, sampling is reproducible by seed, and errors end with a HINT.

use rewarm_model::{Model, ModelConfig};
use rewarm_train::checkpoint::{self, CheckpointData, TrainState};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use tch::{nn, Device};

fn rewarm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewarm"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the rewarm binary runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = rewarm(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "`rewarm {args:?}` failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = rewarm(dir, args);
    assert_eq!(out.status.code(), Some(1), "`rewarm {args:?}` should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A random tiny-llama checkpoint under `dir/run/ckpt` and a 300-token BPE tokenizer in `dir`.
fn setup(dir: &Path) {
    let config = ModelConfig::tiny_llama();
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    Model::new(&vs.root(), &config).unwrap();
    let mut vars: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let state = TrainState {
        step: 1,
        optimizer_step: 1,
        lr_scale: 1.0,
        rollbacks: 0,
        tokens_by_source: BTreeMap::new(),
        data_fingerprint: String::new(),
        rewarm_version: "test".into(),
    };
    let plan_json = serde_json::json!({ "plan": {}, "model": config }).to_string();
    let data = CheckpointData {
        weights: vars.iter().map(|(n, t)| (n.clone(), t)).collect(),
        optimizer: vec![],
        state: &state,
        plan_json: &plan_json,
    };
    checkpoint::save(&dir.join("run/ckpt"), &data).unwrap();
    let docs = (0..100).map(|i| format!("the quick brown fox {i} jumps over the lazy dog"));
    let tokenizer = rewarm_data::tokenizer::train_bpe(docs, 300).unwrap();
    std::fs::write(dir.join("tok.json"), tokenizer).unwrap();
}

#[test]
fn export_and_sample_are_reproducible_and_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir);

    let err = fails(dir, &["sample", "run", "--prompt", "the fox"]);
    assert!(err.contains("--tokenizer") && err.contains("HINT"), "{err}");

    let sample = |model: &str, extra: &[&str]| {
        let mut args = vec![
            "sample",
            model,
            "--prompt",
            "the quick",
            "--max-tokens",
            "12",
            "--ignore-eos",
        ];
        if model == "run" {
            args.extend(["--tokenizer", "tok.json"]);
        }
        args.extend(extra);
        ok(dir, &args)
    };
    let greedy = sample("run", &[]);
    assert!(greedy.starts_with("the quick"), "{greedy}");
    let seeded = sample(
        "run",
        &[
            "--temperature",
            "1.0",
            "--top-k",
            "50",
            "--top-p",
            "0.9",
            "--seed",
            "7",
        ],
    );
    assert_eq!(
        seeded,
        sample(
            "run",
            &[
                "--temperature",
                "1.0",
                "--top-k",
                "50",
                "--top-p",
                "0.9",
                "--seed",
                "7"
            ]
        )
    );
    assert_ne!(
        seeded,
        sample("run", &["--temperature", "1.0", "--seed", "8"])
    );

    ok(
        dir,
        &["export", "run", "--hf", "hf", "--tokenizer", "tok.json"],
    );
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(dir.join("hf").join(file).is_file(), "{file}");
    }
    // The exported folder carries its tokenizer and gives the same text.
    assert_eq!(sample("hf", &[]), greedy);

    let err = fails(dir, &["export", "run", "--hf", "hf"]);
    assert!(err.contains("not empty") && err.contains("HINT"), "{err}");
    let err = fails(dir, &["sample", "hf", "--prompt", "x", "--temperature=-1"]);
    assert!(err.contains("--temperature"), "{err}");
}
