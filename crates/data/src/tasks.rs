//! Downstream tasks as lm-evaluation-harness scores multiple choice: a JSONL file of questions
//! (`{"context": …, "choices": [...], "gold": i}`), each choice scored by the summed log-probability of
//! its tokens after the context; accuracy takes the best sum, length-normalised accuracy the best sum
//! per byte of the choice's text (`acc` and `acc_norm` in the harness). docs/interop.md#rewarm-eval.

use serde::Deserialize;
use std::path::Path;

use crate::error::io;
use crate::{DataError, Result};

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
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let line_error = |line: usize, why: String, fix: &str| DataError::Jsonl {
        path: path.to_owned(),
        line,
        why,
        fix: fix.into(),
    };
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item: TaskItem = serde_json::from_str(line).map_err(|e| {
            line_error(
                i + 1,
                e.to_string(),
                "each line is {\"context\": \"…\", \"choices\": [\"…\", …], \"gold\": INDEX} \
                 (scripts/convert-task.py converts HellaSwag, ARC and PIQA files)",
            )
        })?;
        if item.choices.len() < 2 || item.gold >= item.choices.len() {
            return Err(line_error(
                i + 1,
                format!("{} choices and gold {}", item.choices.len(), item.gold),
                "give at least two choices and a gold index among them (from 0)",
            ));
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(DataError::Input(format!(
            "{}: no questions\nHINT: one JSON object per line",
            path.display()
        )));
    }
    Ok(items)
}

/// The (context, continuation) token ids of each of `item`'s choices, `encode` giving the ids of a text
/// and `prefix` (e.g. a BOS id) going before every context. A choice's tokens are those that encoding
/// context + choice adds after the context's own (so a choice starting with a space merges as it would
/// in running text), else the choice encoded alone.
pub fn choice_pairs(
    item: &TaskItem,
    prefix: &[i64],
    encode: &dyn Fn(&str) -> Result<Vec<i64>>,
) -> Result<Vec<(Vec<i64>, Vec<i64>)>> {
    let context = encode(&item.context)?;
    let prefixed: Vec<i64> = prefix.iter().chain(&context).copied().collect();
    let mut pairs = Vec::with_capacity(item.choices.len());
    for choice in &item.choices {
        let whole = encode(&format!("{}{choice}", item.context))?;
        let continuation = if whole.len() > context.len() && whole.starts_with(&context) {
            whole[context.len()..].to_vec()
        } else {
            encode(choice)?
        };
        pairs.push((prefixed.clone(), continuation));
    }
    Ok(pairs)
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
    fn a_choice_keeps_the_tokens_it_merges_into_after_the_context() {
        // A toy encoder: one id per word, a leading space kept with its word.
        let encode = |text: &str| -> Result<Vec<i64>> {
            Ok(text.split_inclusive(' ').map(|w| w.len() as i64).collect())
        };
        let q = TaskItem {
            context: "the cat".into(),
            choices: vec![" sat".into(), " ran off".into()],
            gold: 0,
        };
        let pairs = choice_pairs(&q, &[], &encode).unwrap();
        // "the cat" → [4, 3]; "the cat sat" → [4, 4, 3]: the context's tokens differ ("cat" became
        // "cat "), so the choice is encoded alone: " sat" → [1, 3].
        assert_eq!(pairs[0], (vec![4, 3], vec![1, 3]));
        let q = TaskItem {
            context: "the cat ".into(),
            choices: vec!["sat".into(), "ran off".into()],
            gold: 0,
        };
        // "the cat " → [4, 4] is a prefix of "the cat sat" → [4, 4, 3]: the continuation is [3]. A
        // prefix (BOS 0) goes before the context only.
        let pairs = choice_pairs(&q, &[0], &encode).unwrap();
        assert_eq!(pairs[0], (vec![0, 4, 4], vec![3]));
        assert_eq!(pairs[1], (vec![0, 4, 4], vec![4, 3]));
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
        assert!(e.contains("t.jsonl:2:") && e.contains("HINT"), "{e}");
        std::fs::write(
            &path,
            "{\"context\":\"a\",\"choices\":[\"b\",\"c\"],\"gold\":2}\n",
        )
        .unwrap();
        let e = read_task(&path).unwrap_err().to_string();
        assert!(e.contains("t.jsonl:1: 2 choices and gold 2"), "{e}");
    }
}
