//! Downstream tasks as lm-evaluation-harness scores multiple choice: a JSONL file of questions
//! (`{"context": …, "choices": [...], "gold": i}`), each choice scored by the summed log-probability of
//! its tokens after the context; accuracy takes the best sum, length-normalised accuracy the best sum
//! per byte of the choice's text (`acc` and `acc_norm` in the harness). docs/interop.md#rewarm-eval.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

/// One question.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskItem {
    pub context: String,
    pub choices: Vec<String>,
    /// Index of the right choice.
    pub gold: usize,
}

/// Reads a task file; errors name the line and what to fix.
pub fn read_task(path: &Path) -> Result<Vec<TaskItem>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item: TaskItem = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "{}: line {}: {e}\nHINT: each line is {{\"context\": \"…\", \"choices\": [\"…\", …], \"gold\": INDEX}} (scripts/convert-task.py converts HellaSwag, ARC and PIQA files)",
                path.display(),
                i + 1
            )
        })?;
        if item.choices.len() < 2 || item.gold >= item.choices.len() {
            bail!(
                "{}: line {}: {} choices and gold {}\nHINT: give at least two choices and a gold index among them (from 0)",
                path.display(),
                i + 1,
                item.choices.len(),
                item.gold
            );
        }
        items.push(item);
    }
    if items.is_empty() {
        bail!(
            "{}: no questions\nHINT: one JSON object per line",
            path.display()
        );
    }
    Ok(items)
}

/// A task's scores: accuracy and length-normalised accuracy with their standard errors
/// (√(p(1 − p)/(n − 1)), as the harness reports them).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskScore {
    pub n: usize,
    pub acc: f64,
    pub acc_stderr: f64,
    pub acc_norm: f64,
    pub acc_norm_stderr: f64,
}

/// Scores from each question's per-choice summed log-probabilities.
pub fn score(items: &[TaskItem], logprobs: &[Vec<f64>]) -> TaskScore {
    let argmax = |v: &[f64]| {
        (0..v.len())
            .max_by(|&a, &b| v[a].total_cmp(&v[b]).then(b.cmp(&a)))
            .unwrap_or(0)
    };
    let (mut acc, mut norm) = (0usize, 0usize);
    for (item, lp) in items.iter().zip(logprobs) {
        acc += usize::from(argmax(lp) == item.gold);
        let per_byte: Vec<f64> = lp
            .iter()
            .zip(&item.choices)
            .map(|(l, c)| l / c.len().max(1) as f64)
            .collect();
        norm += usize::from(argmax(&per_byte) == item.gold);
    }
    let n = items.len();
    let p = |k: usize| k as f64 / n.max(1) as f64;
    let se = |p: f64| (p * (1.0 - p) / (n.max(2) - 1) as f64).sqrt();
    TaskScore {
        n,
        acc: p(acc),
        acc_stderr: se(p(acc)),
        acc_norm: p(norm),
        acc_norm_stderr: se(p(norm)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(choices: &[&str], gold: usize) -> TaskItem {
        TaskItem {
            context: "c".into(),
            choices: choices.iter().map(|s| s.to_string()).collect(),
            gold,
        }
    }

    #[test]
    fn accuracy_takes_the_best_sum_and_acc_norm_the_best_per_byte() {
        // Q1: sums −4 ("ab", 2 bytes: −2/byte) and −5 ("abcde", 5 bytes: −1/byte); gold 1. acc picks 0
        // (wrong), acc_norm picks 1 (right). Q2: −1 vs −3, gold 0: both right.
        let items = [item(&["ab", "abcde"], 1), item(&["x", "y"], 0)];
        let s = score(&items, &[vec![-4.0, -5.0], vec![-1.0, -3.0]]);
        assert_eq!((s.n, s.acc, s.acc_norm), (2, 0.5, 1.0));
        // √(0.5 · 0.5 / 1) = 0.5; p = 1 has no spread.
        assert_eq!((s.acc_stderr, s.acc_norm_stderr), (0.5, 0.0));
    }

    #[test]
    fn bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(
            &path,
            "{\"context\":\"a\",\"choices\":[\"b\",\"c\"],\"gold\":0}\n{\"context\":1}\n",
        )
        .unwrap();
        let e = read_task(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("HINT"), "{e}");
        std::fs::write(
            &path,
            "{\"context\":\"a\",\"choices\":[\"b\",\"c\"],\"gold\":2}\n",
        )
        .unwrap();
        let e = read_task(&path).unwrap_err().to_string();
        assert!(e.contains("line 1: 2 choices and gold 2"), "{e}");
    }
}
