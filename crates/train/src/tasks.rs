//! `[eval] tasks`: multiple-choice tasks scored at every evaluation, as `rewarm eval --task` scores them
//! (each choice by the summed log-probability of its tokens after the context), so that a continued
//! model's forgetting is tracked on tasks as well as in the loss. The questions are tokenized once, when
//! the run opens, with the tokenizer the data was prepared with. Scoring reads the model and draws no
//! random number: a run with tasks trains bit-identically to one without.

use crate::error::{TrainError, TrainResult};
use rewarm_data::tasks::{choice_pairs, read_task, score, TaskItem, TaskScore};
use rewarm_data::{PreparedSource, Tokenizer, TokenizerSpec};
use rewarm_model::Model;
use rewarm_plan::Plan;
use std::path::PathBuf;

/// One task, tokenized: per question, the (context, continuation) ids of each choice.
pub struct TaskSet {
    pub name: String,
    items: Vec<TaskItem>,
    pairs: Vec<Vec<(Vec<i64>, Vec<i64>)>>,
}

impl TaskSet {
    /// The plan's tasks (none without `[eval] tasks`), read and tokenized with the data's tokenizer.
    pub fn open_all(plan: &Plan, first: &PreparedSource) -> TrainResult<Vec<TaskSet>> {
        if plan.config.eval.tasks.is_empty() {
            return Ok(Vec::new());
        }
        let tokenizer = data_tokenizer(plan, first)?;
        let encode = |text: &str| -> rewarm_data::Result<Vec<i64>> {
            Ok(tokenizer.encode(text)?.into_iter().map(i64::from).collect())
        };
        let mut sets = Vec::new();
        for (name, file) in &plan.config.eval.tasks {
            let path = plan.base_dir.join(file);
            let items = read_task(&path).map_err(|e| task_error(name, e))?;
            let pairs = items
                .iter()
                .map(|item| choice_pairs(item, &[], &encode))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| task_error(name, e))?;
            sets.push(TaskSet {
                name: name.clone(),
                items,
                pairs,
            });
        }
        Ok(sets)
    }

    /// The accuracy of guessing: the mean of 1 / choices over the questions.
    pub fn chance(&self) -> f64 {
        let sum: f64 = self
            .items
            .iter()
            .map(|i| 1.0 / i.choices.len() as f64)
            .sum();
        sum / self.items.len().max(1) as f64
    }

    /// Questions in the task.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `model`'s accuracy and length-normalised accuracy on every question.
    pub fn score(&self, model: &Model) -> TrainResult<TaskScore> {
        let logprobs = self
            .pairs
            .iter()
            .map(|pairs| model.f_continuation_logprobs(pairs))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                TrainError::Config(format!(
                    "eval.tasks.{}: {e}\nHINT: shorten the task's questions to fit max_seq_len",
                    self.name
                ))
            })?;
        Ok(score(&self.items, &logprobs))
    }
}

fn task_error(name: &str, e: rewarm_data::DataError) -> TrainError {
    TrainError::Config(format!("eval.tasks.{name}: {e}"))
}

/// The tokenizer the data was prepared with: `[data] tokenizer` when the plan sets it, else the one the
/// first source's manifest names (GPT-2, or the tokenizer.json at the path it records, checked against
/// its hash).
fn data_tokenizer(plan: &Plan, first: &PreparedSource) -> TrainResult<Tokenizer> {
    let info = &first.manifest.tokenizer;
    let spec = match crate::run_data::plan_tokenizer(plan)? {
        Some(spec) => spec,
        None if info.kind == "gpt2" => TokenizerSpec::Gpt2,
        None => {
            let recorded = PathBuf::from(&info.name);
            let candidates = [recorded.clone(), plan.base_dir.join(&recorded)];
            match candidates.into_iter().find(|p| p.is_file()) {
                Some(path) => TokenizerSpec::HfFile(path),
                None => return Err(no_tokenizer(&info.name)),
            }
        }
    };
    let tokenizer = Tokenizer::load(&spec, None)?;
    if tokenizer.info().hash != info.hash {
        return Err(no_tokenizer(&info.name));
    }
    Ok(tokenizer)
}

fn no_tokenizer(recorded: &str) -> TrainError {
    TrainError::Config(format!(
        "eval.tasks: scoring tasks needs the tokenizer the data was prepared with, and `{recorded}` (the \
         path its manifest records) is not found or is another tokenizer\nHINT: set [data] tokenizer = \
         \"path/to/tokenizer.json\" (the one given to `rewarm prepare`)"
    ))
}
