//! The continual pre-training table the quickstart prints: each run's final loss per validation set next
//! to the model it continued from, with forgetting on the sets that model was trained on and adaptation
//! on the others, in the report's conventions (both positive for what the names say: forgetting > 0 is
//! loss gained on old data, adaptation > 0 is loss lost on new data). Below the runs, the count models'
//! losses on each set (baselines.json); a loss not below the bigram's is flagged. The table is printed in
//! nats per token and again in bits per byte.

use crate::counts::{CountBaselines, FLAG, FLAG_NOTE};
use crate::measures::{final_loss, value_at};
use crate::run::RunData;
use crate::sections::Unit;
use std::iter::once;

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
    /// "unigram (counts)" and "bigram (counts)": the count models' losses per set, from the first of the
    /// pretraining run and the runs that has baselines.json; empty when none has.
    pub baselines: Vec<ContinualRow>,
    /// UTF-8 bytes per token of each set's text (the first run that knows it), for bits per byte.
    pub bytes_per_token: Vec<Option<f64>>,
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
        let all: Vec<&RunData> = once(pretrain).chain(runs.iter().map(|(_, r)| r)).collect();
        ContinualTable {
            start: ContinualRow {
                label: format!("pretrained on {}", pretrained_on(pretrain, &sets, &old)),
                losses: start_losses,
                changes: vec![None; sets.len()],
            },
            baselines: count_rows(&CountBaselines::of(all.iter().copied()), &sets),
            bytes_per_token: sets
                .iter()
                .map(|s| all.iter().find_map(|r| r.bytes_per_token.get(s).copied()))
                .collect(),
            sets,
            old,
            runs: rows,
        }
    }

    /// Whether `loss` on set `i` is not below the set's bigram (false without one).
    pub fn not_below_bigram(&self, i: usize, loss: Option<f64>) -> bool {
        let bigram = self.baselines.get(1).and_then(|b| b.losses[i]);
        matches!((loss, bigram), (Some(l), Some(b)) if l >= b)
    }

    /// `nats` per token on set `i` in bits per byte (`None` without its bytes per token).
    pub fn bits_per_byte(&self, i: usize, nats: Option<f64>) -> Option<f64> {
        Unit::BitsPerByte.with(nats, self.bytes_per_token[i])
    }

    /// Forgetting (old sets) or adaptation (new sets) of a row's set `i`: the change with the sign that
    /// makes the name true.
    pub fn effect(&self, row: &ContinualRow, i: usize) -> Option<f64> {
        let change = row.changes[i]?;
        Some(if self.old[i] { change } else { -change })
    }

    /// Fixed-width text: losses per set, then forgetting per old set and adaptation per new set, then the
    /// count baselines; in nats per token, then again in bits per byte when the sets' bytes are known.
    pub fn to_text(&self) -> String {
        let mut out = self.block(Unit::Nats);
        let flagged = once(&self.start)
            .chain(&self.runs)
            .any(|r| (0..self.sets.len()).any(|i| self.not_below_bigram(i, r.losses[i])));
        if flagged {
            out += &format!("{FLAG_NOTE}\n");
        }
        if self.bytes_per_token.iter().any(Option::is_some) {
            out += "\n";
            out += &self.block(Unit::BitsPerByte);
        }
        out
    }

    /// Room for a flag after each loss: none in a table without count baselines (nothing is flagged).
    fn flag_width(&self) -> usize {
        usize::from(!self.baselines.is_empty())
    }

    /// The table in `unit`.
    fn block(&self, unit: Unit) -> String {
        let title = match unit {
            Unit::Nats => "validation loss (nats/token)",
            Unit::BitsPerByte => "validation loss (bits/byte)",
        };
        let mut out = format!("{title:<30}");
        for s in &self.sets {
            out += &format!(" {s:>9}{:w$}", "", w = self.flag_width());
        }
        for (s, old) in self.sets.iter().zip(&self.old) {
            let what = if *old { "forgetting" } else { "adaptation" };
            out += &format!(" {:>18}", format!("{s} {what}"));
        }
        out.push('\n');
        out += &self.row_text(&self.start, Kind::Start, unit);
        for row in &self.runs {
            out += &self.row_text(row, Kind::Run, unit);
        }
        for row in &self.baselines {
            out += &self.row_text(row, Kind::Count, unit);
        }
        out
    }

    /// One row in `unit`: its losses (a model's flagged where not below the bigram) and, for a run, its
    /// forgetting and adaptation.
    fn row_text(&self, row: &ContinualRow, kind: Kind, unit: Unit) -> String {
        let mut out = format!("{:<30}", row.label);
        for (i, l) in row.losses.iter().enumerate() {
            let flag = if kind != Kind::Count && self.not_below_bigram(i, *l) {
                FLAG
            } else {
                ""
            };
            let shown = unit.with(*l, self.bytes_per_token[i]);
            let number = shown.map_or("–".into(), |l| format!("{l:.3}"));
            out += &format!(" {number:>9}{flag:w$}", w = self.flag_width());
        }
        for i in (0..self.sets.len()).filter(|_| kind == Kind::Run) {
            let e = unit.with(self.effect(row, i), self.bytes_per_token[i]);
            out += &e.map_or(format!(" {:>18}", "–"), |e| format!(" {e:>+18.3}"));
        }
        // An unflagged last loss leaves its flag's room at the end of the line.
        format!("{}\n", out.trim_end())
    }
}

/// What a row of the table is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The starting model: losses only.
    Start,
    /// A continued run: losses, forgetting and adaptation.
    Run,
    /// A count model: losses only, never flagged.
    Count,
}

/// The rows "unigram (counts)" and "bigram (counts)" over `sets`; none without baselines.
fn count_rows(counts: &CountBaselines, sets: &[String]) -> Vec<ContinualRow> {
    if counts.sets.is_empty() {
        return Vec::new();
    }
    let row = |label: &str, pick: fn(&rewarm_runfolder::SetBaseline) -> f64| ContinualRow {
        label: label.into(),
        losses: sets
            .iter()
            .map(|s| counts.sets.get(s).map(|b| pick(&b.baseline)))
            .collect(),
        changes: vec![None; sets.len()],
    };
    vec![
        row("unigram (counts)", |b| b.unigram),
        row("bigram (counts)", |b| b.bigram),
    ]
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
    use crate::run::{EvalPoint, StageInfo};
    use std::collections::BTreeMap;

    fn run(name: &str, trains: &[&str], evals: &[(&str, &[(u64, f64)])]) -> RunData {
        RunData {
            name: name.into(),
            method: name.into(),
            stages: vec![StageInfo {
                name: "s".into(),
                first_step: 0,
                tokens_before: 0,
                sources: trains.iter().map(|s| s.to_string()).collect(),
                replay_fraction: 0.0,
            }],
            planned_steps: Some(10),
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
            ..RunData::default()
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
        assert!(
            !text.contains("counts") && !text.contains("bits/byte"),
            "{text}"
        );
    }

    #[test]
    fn count_baselines_are_rows_a_loss_not_below_the_bigram_is_flagged_and_bits_per_byte_follow() {
        let mut pretrain = run("pretrain", &["en"], &[("en", &[(0, 9.0), (10, 5.0)])]);
        let mut cpt = run(
            "cpt",
            &["de"],
            &[
                ("de", &[(0, 8.0), (10, 6.0)]),
                ("en", &[(0, 5.0), (10, 6.5)]),
            ],
        );
        let baseline = |bigram| rewarm_runfolder::SetBaseline {
            unigram: 7.0,
            bigram,
            targets: 10,
            bytes_per_token: None,
        };
        // The bigram is 6.0 on both sets: cpt's en (6.5) and de (6.0) are not below it.
        cpt.baselines = Some(rewarm_runfolder::Baselines {
            sets: BTreeMap::from([
                ("en".to_owned(), baseline(6.0)),
                ("de".to_owned(), baseline(6.0)),
            ]),
        });
        // 2 bytes per token: 1 nat = 1 / ln 2 / 2 ≈ 0.721 bits per byte.
        pretrain.bytes_per_token = BTreeMap::from([("en".to_owned(), 2.0)]);
        cpt.bytes_per_token = BTreeMap::from([("de".to_owned(), 2.0), ("en".to_owned(), 4.0)]);
        let t = ContinualTable::new(&pretrain, &[("rewarm".into(), cpt)], 1);
        assert_eq!(t.bytes_per_token, [Some(2.0), Some(2.0)]);
        assert_eq!(t.baselines[1].label, "bigram (counts)");
        assert_eq!(t.baselines[1].losses, [Some(6.0), Some(6.0)]);
        assert!(t.not_below_bigram(0, Some(6.5)) && !t.not_below_bigram(1, Some(5.9)));
        let text = t.to_text();
        let line = |start: &str, nth: usize| -> String {
            let found = text.lines().filter(|l| l.starts_with(start)).nth(nth);
            found
                .unwrap_or_else(|| panic!("no {start} in\n{text}"))
                .to_owned()
        };
        // Forgetting and adaptation keep their signs: en forgot 1.5 nats, de gained 2.0.
        assert!(line("rewarm", 0).contains("6.500†") && line("rewarm", 0).contains("+1.500"));
        assert!(line("bigram (counts)", 0).contains("6.000"), "{text}");
        assert!(text.contains(FLAG_NOTE), "{text}");
        // In bits per byte: en 6.5 / ln 2 / 2 = 4.689, forgetting 1.5 / ln 2 / 2 = +1.082.
        let bpb = line("rewarm", 1);
        assert!(bpb.contains("4.689†") && bpb.contains("+1.082"), "{text}");
        assert!(line("validation loss (bits/byte)", 0).contains("en"));
    }
}
