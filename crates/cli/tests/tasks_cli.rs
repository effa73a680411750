//! `[eval] tasks` end to end: a run scores its task at every evaluation, with the numbers `rewarm eval
//! --task` gives on the same checkpoint, and trains bit-identically to the same plan without tasks; a
//! missing task file is named before any step.

mod common;
use common::{fails, metrics, ok, tiny_project, write, WORDS_A, WORDS_B};
use std::path::Path;

/// Questions from source a's sentences: the first words as context, the next word (gold) against a word
/// of source b; the gold alternates between the two positions.
fn write_task(dir: &Path, n: usize) {
    let text = std::fs::read_to_string(dir.join("a.txt")).unwrap();
    let mut lines = Vec::new();
    for (i, sentence) in text.lines().take(n).enumerate() {
        let words: Vec<&str> = sentence.split(' ').collect();
        let (right, wrong) = (
            format!(" {}", words[5]),
            format!(" {}", WORDS_B[i % WORDS_B.len()]),
        );
        let choices = if i % 2 == 0 {
            [right, wrong]
        } else {
            [wrong, right]
        };
        let q =
            serde_json::json!({"context": words[..5].join(" "), "choices": choices, "gold": i % 2});
        lines.push(q.to_string());
    }
    assert!(WORDS_A.contains(&text.split(' ').next().unwrap()));
    write(dir, "task.jsonl", lines.join("\n") + "\n");
}

#[test]
fn tasks_are_scored_at_every_evaluation_as_eval_scores_them_and_change_no_step() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    tiny_project(dir);
    write_task(dir, 24);
    let plan = std::fs::read_to_string(dir.join("plan.toml")).unwrap();
    std::fs::rename(dir.join("plan.toml"), dir.join("plain.toml")).unwrap();
    let with_tasks = plan.replace("[eval]\n", "[eval]\ntasks = { words = \"task.jsonl\" }\n");
    assert_ne!(with_tasks, plan);
    write(dir, "tasks.toml", &with_tasks);
    ok(dir, "train tasks.toml --run with --device cpu");
    ok(dir, "train plain.toml --run without --device cpu");

    // The same training: every train and eval record, and the final weights, bit for bit.
    let kinds = |run: &str, kind: &str| -> Vec<serde_json::Value> {
        let records = metrics(&dir.join(run));
        let mut out: Vec<_> = records.into_iter().filter(|r| r["kind"] == kind).collect();
        for r in &mut out {
            r.as_object_mut().unwrap().remove("tokens_per_second");
        }
        out
    };
    assert_eq!(kinds("with", "train"), kinds("without", "train"));
    assert_eq!(kinds("with", "eval"), kinds("without", "eval"));
    let weights = |run: &str| {
        std::fs::read(dir.join(run).join("ckpt/step_00000008/model.safetensors")).unwrap()
    };
    assert!(
        weights("with") == weights("without"),
        "the final weights differ"
    );
    assert!(kinds("without", "task").is_empty());

    // One task record per evaluation, over all 24 questions, chance 1/2.
    let tasks = kinds("with", "task");
    let eval_steps: std::collections::BTreeSet<u64> = kinds("with", "eval")
        .iter()
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    let task_steps: Vec<u64> = tasks.iter().map(|t| t["step"].as_u64().unwrap()).collect();
    assert_eq!(task_steps, eval_steps.into_iter().collect::<Vec<_>>());
    for t in &tasks {
        assert_eq!(
            (t["task"].as_str(), t["questions"].as_u64()),
            (Some("words"), Some(24))
        );
        assert_eq!(t["chance"].as_f64(), Some(0.5));
        for key in ["acc", "acc_norm"] {
            let p = t[key].as_f64().unwrap();
            assert!(
                (0.0..=1.0).contains(&p) && (p * 24.0).fract() == 0.0,
                "{key} {p}"
            );
        }
    }
    // `rewarm eval` on the final checkpoint gives the last record's accuracy.
    let last = tasks.last().unwrap();
    let out = ok(dir, "eval with --task task.jsonl --tokenizer tok.json");
    let row = out
        .lines()
        .find(|l| l.starts_with("task.jsonl"))
        .expect(&out);
    let acc = format!("{:.4} ±", last["acc"].as_f64().unwrap());
    let acc_norm = format!("{:.4} ±", last["acc_norm"].as_f64().unwrap());
    assert!(
        row.contains(&acc) && row.contains(&acc_norm),
        "{row} vs {last}"
    );

    // The report has a Tasks section; the exported tables a tasks table.
    ok(dir, "report with --out rep");
    let report = std::fs::read_to_string(dir.join("rep/report.md")).unwrap();
    assert!(
        report.contains("## Tasks") && report.contains("| words |"),
        "{report}"
    );
    ok(dir, "export-metrics with --out csv");
    let csv = std::fs::read_to_string(dir.join("csv/tasks.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + tasks.len(), "{csv}");
}

#[test]
fn a_missing_task_file_is_named_before_any_step() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    tiny_project(dir);
    let plan = std::fs::read_to_string(dir.join("plan.toml")).unwrap();
    write(
        dir,
        "plan.toml",
        plan.replace("[eval]\n", "[eval]\ntasks = { cloze = \"nope.jsonl\" }\n"),
    );
    let err = fails(dir, "train plan.toml --run r --device cpu");
    assert!(
        err.contains("eval.tasks.cloze") && err.contains("nope.jsonl"),
        "{err}"
    );
    assert!(!dir.join("r/metrics.jsonl").exists() || metrics(&dir.join("r")).is_empty());
    let bad = plan.replace("[eval]\n", "[eval]\ntasks = { \"a b\" = \"t.jsonl\" }\n");
    write(dir, "plan.toml", bad);
    let err = fails(dir, "plan plan.toml");
    assert!(err.contains("eval.tasks") && err.contains("HINT"), "{err}");
}
