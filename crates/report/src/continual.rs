//! The continual pre-training table the quickstart prints: each run's final loss per validation set next
//! to the model it continued from, with forgetting on the sets that model was trained on and adaptation
//! on the others, in the report's conventions (both positive for what the names say: forgetting > 0 is
//! loss gained on old data, adaptation > 0 is loss lost on new data).

use crate::measures::{final_loss, value_at};
use crate::run::RunData;

/// One row: a run and its final loss per set.
#[derive(Clone, Debug, PartialEq)]
pub struct ContinualRow {
    pub label: String,
    /// Final loss per set, in the table's set order.
    pub losses: Vec<Option<f64>>,
    /// Final loss − starting loss per set (`None` for the starting row).
    pub changes: Vec<Option<f64>>,
}

/// The table: the starting model, then every continued run.
#[derive(Clone, Debug, PartialEq)]
pub struct ContinualTable {
    /// Validation sets; the `old` ones were trained on before the runs continued.
    pub sets: Vec<String>,
    pub old: Vec<bool>,
    pub start: ContinualRow,
    pub runs: Vec<ContinualRow>,
}

impl ContinualTable {
    /// `pretrain` (whose trained sets are the old data) and the runs (labelled) that continue from it or
    /// compare with it. The starting loss of a set the pretraining run did not evaluate is taken from the
    /// first run's step-0 evaluation (the pretrained model, before any continued step). `k`: evaluations
    /// averaged for a final loss.
    pub fn new(pretrain: &RunData, runs: &[(String, RunData)], k: usize) -> Self {
        let mut sets: Vec<String> = pretrain.sets();
        for (_, r) in runs {
            for s in r.sets() {
                if !sets.contains(&s) {
                    sets.push(s);
                }
            }
        }
        let old: Vec<bool> = sets
            .iter()
            .map(|s| !pretrain.training_stages(s).is_empty())
            .collect();
        let starting = |set: &String| {
            let own = pretrain.evals.get(set).and_then(|s| final_loss(s, k));
            own.or_else(|| {
                let (_, first) = runs.first()?;
                value_at(first.evals.get(set)?, 0)
            })
        };
        let start_losses: Vec<Option<f64>> = sets.iter().map(starting).collect();
        let rows = runs
            .iter()
            .map(|(label, r)| {
                let losses: Vec<Option<f64>> = sets
                    .iter()
                    .map(|s| r.evals.get(s).and_then(|series| final_loss(series, k)))
                    .collect();
                let changes = losses
                    .iter()
                    .zip(&start_losses)
                    .map(|(l, s)| Some(l.as_ref()? - s.as_ref()?))
                    .collect();
                ContinualRow {
                    label: label.clone(),
                    losses,
                    changes,
                }
            })
            .collect();
        ContinualTable {
            start: ContinualRow {
                label: format!("pretrained on {}", pretrained_on(pretrain, &sets, &old)),
                losses: start_losses,
                changes: vec![None; sets.len()],
            },
            sets,
            old,
            runs: rows,
        }
    }

    /// Forgetting (old sets) or adaptation (new sets) of a row's set `i`: the change with the sign that
    /// makes the name true.
    pub fn effect(&self, row: &ContinualRow, i: usize) -> Option<f64> {
        let change = row.changes[i]?;
        Some(if self.old[i] { change } else { -change })
    }

    /// Fixed-width text: losses per set, then forgetting per old set and adaptation per new set.
    pub fn to_text(&self) -> String {
        let mut out = format!("{:<30}", "validation loss (nats/token)");
        for s in &self.sets {
            out += &format!(" {s:>9}");
        }
        for (s, old) in self.sets.iter().zip(&self.old) {
            let what = if *old { "forgetting" } else { "adaptation" };
            out += &format!(" {:>18}", format!("{s} {what}"));
        }
        out.push('\n');
        out += &self.row_text(&self.start, false);
        for row in &self.runs {
            out += &self.row_text(row, true);
        }
        out
    }

    fn row_text(&self, row: &ContinualRow, effects: bool) -> String {
        let mut out = format!("{:<30}", row.label);
        for l in &row.losses {
            out += &l.map_or(format!(" {:>9}", "–"), |l| format!(" {l:>9.3}"));
        }
        for i in (0..self.sets.len()).filter(|_| effects) {
            out += &self
                .effect(row, i)
                .map_or(format!(" {:>18}", "–"), |e| format!(" {e:>+18.3}"));
        }
        out + "\n"
    }
}

/// The sets the pretraining run trained on, for the first row's label.
fn pretrained_on(pretrain: &RunData, sets: &[String], old: &[bool]) -> String {
    let trained: Vec<&str> = sets
        .iter()
        .zip(old)
        .filter(|(_, o)| **o)
        .map(|(s, _)| s.as_str())
        .collect();
    if trained.is_empty() {
        pretrain.name.clone()
    } else {
        trained.join(" + ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{BoundarySource, EvalPoint, StageInfo};
    use std::collections::BTreeMap;

    fn run(name: &str, trains: &[&str], evals: &[(&str, &[(u64, f64)])]) -> RunData {
        RunData {
            name: name.into(),
            method: name.into(),
            group: None,
            dir: Default::default(),
            stages: vec![StageInfo {
                name: "s".into(),
                first_step: 0,
                tokens_before: 0,
                sources: trains.iter().map(|s| s.to_string()).collect(),
                replay_fraction: 0.0,
            }],
            boundaries_from: BoundarySource::Plan,
            planned_steps: Some(10),
            seq_len: None,
            model: None,
            init_from: None,
            evals: evals
                .iter()
                .map(|(set, points)| {
                    let series = points
                        .iter()
                        .map(|&(step, loss)| EvalPoint {
                            step,
                            tokens: 0,
                            loss,
                        })
                        .collect();
                    (set.to_string(), series)
                })
                .collect::<BTreeMap<_, _>>(),
            train: vec![],
            rollbacks: 0,
            device: None,
            rewarm_version: None,
            seed: None,
            baselines: None,
            bytes_per_token: BTreeMap::new(),
        }
    }

    #[test]
    fn forgetting_on_old_sets_and_adaptation_on_new_ones_are_positive_for_what_they_name() {
        let pretrain = run("pretrain", &["en"], &[("en", &[(0, 9.0), (10, 5.0)])]);
        let cpt = run(
            "cpt",
            &["de"],
            &[
                ("de", &[(0, 8.0), (10, 6.0)]),
                ("en", &[(0, 5.0), (10, 6.5)]),
            ],
        );
        let t = ContinualTable::new(&pretrain, &[("rewarm".into(), cpt)], 1);
        assert_eq!(t.sets, ["en", "de"]);
        assert_eq!(t.old, [true, false]);
        assert_eq!(t.start.losses, [Some(5.0), Some(8.0)]);
        let row = &t.runs[0];
        assert_eq!(t.effect(row, 0), Some(1.5)); // en: 5.0 → 6.5, forgot 1.5
        assert_eq!(t.effect(row, 1), Some(2.0)); // de: 8.0 → 6.0, adapted by 2.0
        let text = t.to_text();
        assert!(
            text.contains("en forgetting") && text.contains("+1.500"),
            "{text}"
        );
        assert!(text.contains("pretrained on en"), "{text}");
    }
}
