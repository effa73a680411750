//! `rewarm export`, `rewarm sample` and `rewarm logits` end to end on tiny checkpoints: the exported folder
//! samples the same text and gives the same logits as the checkpoint, sampling is reproducible by seed, the
//! logits JSON is consistent with itself and with the model, and errors end with a HINT.

mod common;
use common::read_json;
use rewarm_model::{Model, ModelConfig};
use rewarm_runfolder::{RunDir, TrainState};
use rewarm_train::checkpoint::{self, CheckpointData};
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
    setup_model(dir, &ModelConfig::tiny_llama());
}

/// A random checkpoint of `config` under `dir/run/ckpt` and a 300-token BPE tokenizer in `dir`.
fn setup_model(dir: &Path, config: &ModelConfig) {
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    Model::new(&vs.root(), config).unwrap();
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
        spikes_skipped: 0,
        spike_window: None,
    };
    // Norms and biases away from their initial ones and zeros, so that a mix-up of them shows.
    tch::no_grad(|| {
        for (name, tensor) in &mut vars {
            if name.contains("norm") || name.ends_with(".bias") {
                let _ = tensor.g_add_(&(tch::Tensor::randn_like(tensor) * 0.3));
            }
        }
    });
    let plan_json = serde_json::json!({ "plan": {}, "model": config }).to_string();
    let data = CheckpointData {
        weights: vars.iter().map(|(n, t)| (n.clone(), t)).collect(),
        optimizer: vec![],
        ema: vec![],
        reptile_anchor: vec![],
        state: &state,
        plan_json: &plan_json,
        consumed_json: "{}",
    };
    checkpoint::save(&RunDir::new(dir.join("run")), &data).unwrap();
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
    // Two prompts in one batch: each continued as it is alone (the second one is shorter, so padded).
    let batched = sample("run", &["--prompt", "the"]);
    let alone = ok(
        dir,
        &[
            "sample",
            "run",
            "--prompt",
            "the",
            "--max-tokens",
            "12",
            "--ignore-eos",
            "--tokenizer",
            "tok.json",
        ],
    );
    assert_eq!(
        batched,
        format!("--- prompt 1\n{greedy}--- prompt 2\n{alone}"),
        "{batched}"
    );

    ok(
        dir,
        &["export", "run", "--hf", "hf", "--tokenizer", "tok.json"],
    );
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(dir.join("hf").join(file).is_file(), "{file}");
    }
    // The exported folder carries its tokenizer and gives the same text; its config names the tokenizer's
    // document separator (id 0 in a trained BPE) as the start and end of sequences, for transformers.
    assert_eq!(sample("hf", &[]), greedy);
    let config = read_json(&dir.join("hf/config.json"));
    assert_eq!(
        (
            config["bos_token_id"].as_u64(),
            config["eos_token_id"].as_u64()
        ),
        (Some(0), Some(0))
    );

    let err = fails(dir, &["export", "run", "--hf", "hf"]);
    assert!(err.contains("not empty") && err.contains("HINT"), "{err}");
    let err = fails(dir, &["sample", "hf", "--prompt", "x", "--temperature=-1"]);
    assert!(err.contains("--temperature"), "{err}");
}

fn floats(value: &serde_json::Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ints(value: &serde_json::Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// The JSON of `rewarm logits` without the field that names where the model came from.
fn without_source(mut json: serde_json::Value) -> serde_json::Value {
    json.as_object_mut().unwrap().remove("source");
    json
}

#[test]
fn logits_are_consistent_and_the_export_gives_the_checkpoints_logits_exactly() {
    const TEXT: &str = "the quick brown fox 17 jumps over the lazy dog, and the dog sleeps";
    for config in [ModelConfig::tiny(), ModelConfig::tiny_llama()] {
        let family = format!("{:?}", config.family);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        setup_model(dir, &config);
        let v = config.vocab_size;

        ok(
            dir,
            &[
                "logits",
                "run",
                "--text",
                TEXT,
                "--tokenizer",
                "tok.json",
                "--device",
                "cpu",
                "--out",
                "ckpt.json",
            ],
        );
        let json = read_json(&dir.join("ckpt.json"));
        assert_eq!(json["source"]["kind"], "checkpoint", "{family}");
        assert_eq!(json["dtype"], "float", "{family}");
        assert_eq!(json["text"], TEXT);

        // The ids are the tokenizer's ordinary encoding of the text.
        let tokens = ints(&json["tokens"]);
        let tokenizer = rewarm_data::Tokenizer::load(
            &rewarm_data::TokenizerSpec::HfFile(dir.join("tok.json")),
            None,
        )
        .unwrap();
        let expected: Vec<i64> = tokenizer
            .encode(TEXT)
            .unwrap()
            .into_iter()
            .map(i64::from)
            .collect();
        assert_eq!(tokens, expected, "{family}");
        let t = tokens.len();
        assert!(t > 10, "{t} tokens");

        // Shapes: every vocabulary id at every position (stride 1).
        let logit_ids = ints(&json["logit_ids"]);
        assert_eq!(logit_ids, (0..v as i64).collect::<Vec<_>>(), "{family}");
        let rows: Vec<Vec<f64>> = json["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect();
        assert_eq!(rows.len(), t, "{family}");
        assert!(rows.iter().all(|r| r.len() == v), "{family}");
        let (lse, logprob) = (floats(&json["logsumexp"]), floats(&json["target_logprob"]));
        let argmax = ints(&json["argmax"]);
        assert_eq!((lse.len(), logprob.len(), argmax.len()), (t, t - 1, t));

        // The statistics are those of the logits written: log-sum-exp, argmax, the next token's
        // log-probability, and the mean loss as their negated mean.
        for (p, row) in rows.iter().enumerate() {
            // f32 values written in full (serde_json's default float parser may be 1 ulp of f64 off).
            assert!(row
                .iter()
                .all(|x| x.is_finite() && (*x as f32 as f64 - x).abs() <= 1e-15 * x.abs()));
            let top = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let ours = top + row.iter().map(|x| (x - top).exp()).sum::<f64>().ln();
            assert!(
                (ours - lse[p]).abs() < 1e-12,
                "{family} position {p}: {ours} vs {}",
                lse[p]
            );
            let first_max = row.iter().position(|x| *x == top).unwrap();
            assert_eq!(argmax[p], first_max as i64, "{family} position {p}");
            if p + 1 < t {
                let expected = row[tokens[p + 1] as usize] - lse[p];
                assert!(
                    (expected - logprob[p]).abs() < 1e-12,
                    "{family} position {p}"
                );
            }
        }
        let mean_loss = json["mean_loss"].as_f64().unwrap();
        let expected = -logprob.iter().sum::<f64>() / (t - 1) as f64;
        assert!((mean_loss - expected).abs() < 1e-12, "{family}");

        // …and the model's own training loss on those tokens (computed in this process).
        let (model, _vs, _) =
            rewarm_model::pretrained::load_model(&dir.join("run"), Device::Cpu).unwrap();
        let ids = tch::Tensor::from_slice(&tokens).unsqueeze(0);
        let loss = tch::no_grad(|| {
            model.loss(
                &ids.narrow(1, 0, t as i64 - 1),
                &ids.narrow(1, 1, t as i64 - 1),
            )
        })
        .double_value(&[]);
        assert!(
            (loss - mean_loss).abs() < 1e-5,
            "{family}: loss {loss} vs logits {mean_loss}"
        );

        // The same ids given as --ids give the same numbers; --stride keeps every N-th column of them.
        let id_list: Vec<String> = tokens.iter().map(i64::to_string).collect();
        let id_list = id_list.join(",");
        ok(
            dir,
            &[
                "logits", "run", "--ids", &id_list, "--stride", "7", "--device", "cpu", "--out",
                "ids.json",
            ],
        );
        let by_ids = read_json(&dir.join("ids.json"));
        assert_eq!(by_ids["text"], serde_json::Value::Null);
        for key in [
            "tokens",
            "logsumexp",
            "target_logprob",
            "argmax",
            "mean_loss",
            "model",
        ] {
            assert_eq!(by_ids[key], json[key], "{family} {key}");
        }
        let strided_ids: Vec<i64> = (0..v as i64).step_by(7).collect();
        assert_eq!(ints(&by_ids["logit_ids"]), strided_ids);
        for (p, row) in by_ids["logits"].as_array().unwrap().iter().enumerate() {
            let expected: Vec<f64> = strided_ids.iter().map(|&i| rows[p][i as usize]).collect();
            assert_eq!(floats(row), expected, "{family} position {p}");
        }

        // Exported, the folder gives the checkpoint's logits bit for bit (its tokenizer.json included).
        ok(
            dir,
            &["export", "run", "--hf", "hf", "--tokenizer", "tok.json"],
        );
        ok(
            dir,
            &[
                "logits", "hf", "--text", TEXT, "--device", "cpu", "--out", "hf.json",
            ],
        );
        let exported = read_json(&dir.join("hf.json"));
        assert_eq!(exported["source"]["kind"], "hf_folder");
        assert_eq!(without_source(exported), without_source(json), "{family}");

        // Without --out the JSON goes to standard output.
        let stdout = ok(
            dir,
            &[
                "logits", "hf", "--ids", &id_list, "--stride", "7", "--device", "cpu",
            ],
        );
        let printed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(printed["logits"], by_ids["logits"]);

        // Errors say what is wrong and how to fix it.
        let err = fails(dir, &["logits", "run", "--text", TEXT]);
        assert!(err.contains("--tokenizer") && err.contains("HINT"), "{err}");
        let err = fails(
            dir,
            &[
                "logits",
                "hf",
                "--ids",
                &format!("1,{v}"),
                "--device",
                "cpu",
            ],
        );
        assert!(
            err.contains(&format!("token {v} at position 1")) && err.contains("HINT"),
            "{err}"
        );
        let err = fails(dir, &["logits", "hf", "--ids", "1", "--stride", "0"]);
        assert!(err.contains("--stride"), "{err}");
        let long: Vec<String> = (0..config.max_seq_len + 1)
            .map(|_| "1".to_string())
            .collect();
        let err = fails(
            dir,
            &["logits", "hf", "--ids", &long.join(","), "--device", "cpu"],
        );
        assert!(err.contains("max_seq_len"), "{err}");
    }
}

#[test]
fn eval_scores_a_converted_task_and_names_bad_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir);
    // An ARC-style file through the converter, then scored.
    let arc = r#"{"question": {"stem": "What does the quick fox do?", "choices": [{"text": "jumps over the lazy dog", "label": "A"}, {"text": "sleeps", "label": "B"}]}, "answerKey": "A"}"#;
    std::fs::write(dir.join("arc.jsonl"), format!("{arc}\n{arc}\n{arc}\n")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/convert-task.py");
    let converted = std::process::Command::new("python3")
        .arg(&script)
        .args(["arc", "arc.jsonl", "--out", "task.jsonl"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        converted.status.success(),
        "{}",
        String::from_utf8_lossy(&converted.stderr)
    );
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("task.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        first["context"],
        "Question: What does the quick fox do?\nAnswer:"
    );
    assert_eq!(first["choices"][0], " jumps over the lazy dog");
    assert_eq!(first["gold"], 0);
    let out = ok(
        dir,
        &[
            "eval",
            "run",
            "--task",
            "task.jsonl",
            "--tokenizer",
            "tok.json",
        ],
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("task.jsonl"))
        .expect(&out);
    // Three identical questions: all right or all wrong, so accuracy is 0 or 1 with no spread.
    assert!(
        row.contains(" 3 ") && (row.contains("1.0000 ± 0.0000") || row.contains("0.0000 ± 0.0000")),
        "{row}"
    );
    std::fs::write(
        dir.join("bad.jsonl"),
        "{\"context\": \"a\", \"choices\": [\"b\"], \"gold\": 0}\n",
    )
    .unwrap();
    let err = fails(
        dir,
        &[
            "eval",
            "run",
            "--task",
            "bad.jsonl",
            "--tokenizer",
            "tok.json",
        ],
    );
    assert!(
        err.contains("bad.jsonl:1:") && err.contains("HINT"),
        "{err}"
    );
}
