//! The sections of a report, one file each, in the order they are printed (the answer first):
//!
//! - [`summary`]: one table of final losses beside the count baselines, AVG, forgetting, adaptation, tokens
//!   and the verdict against the union retrain, and one loss figure per validation set;
//! - [`final_loss`]: final loss per set and AVG beside the count baselines, and each method's loss curves;
//! - [`forgetting`]: forgetting, MER score and adaptation, also plotted against replay and peak LR;
//! - [`against_union`]: each method's AVG against its union baseline's, "≈" within 2σ;
//! - [`stability_gap`]: the stability gap after every boundary;
//! - [`representation`]: `[monitor]`'s RankMe, α-ReQ and dormant units at boundaries (when measured);
//! - [`cost`]: tokens and FLOPs relative to the union baseline;
//! - [`time_to_target`]: time to target per workload, then [`profiles`]: performance profiles across them;
//! - [`runs`]: stages, steps, tokens and notes per run, and one figure of every run's LR.
//!
//! Every section reads a [`Ctx`] and adds its figures to [`Figures`]. Sections other than the runs table
//! report per method ([`crate::method`]): a cell of a method with several runs is mean ± sd (n)
//! ([`Ctx::stat`], [`crate::render::stat`]); a loss table comes in each of [`Ctx::units`].

pub(crate) mod against_union;
pub(crate) mod cost;
pub(crate) mod final_loss;
pub(crate) mod forgetting;
pub(crate) mod profiles;
pub(crate) mod representation;
pub(crate) mod runs;
pub(crate) mod stability_gap;
pub(crate) mod summary;
pub(crate) mod tasks;
pub(crate) mod time_to_target;

use crate::measures;
use crate::method::{group_by_method, Method};
use crate::outcomes::{set_outcomes, SetOutcome};
use crate::plot::Chart;
use crate::report::{Figure, ReportOptions};
use crate::run::RunData;
use crate::stat::Stat;
use std::collections::BTreeSet;

/// What every section reads.
pub(crate) struct Ctx<'a> {
    pub(crate) runs: &'a [RunData],
    /// Evaluations averaged for a final loss.
    pub(crate) k: usize,
    /// Run → its union baseline.
    pub(crate) baseline_of: Vec<Option<usize>>,
    pub(crate) outcomes: Vec<Vec<SetOutcome>>,
    pub(crate) options: &'a ReportOptions,
    /// The runs grouped by method (runs that differ only by seed), sorted by name.
    pub(crate) methods: Vec<Method>,
}

impl<'a> Ctx<'a> {
    /// The context of `runs`; `baseline` forces the union baseline (an index into `runs`).
    pub(crate) fn new(
        runs: &'a [RunData],
        baseline: Option<usize>,
        options: &'a ReportOptions,
    ) -> Self {
        let k = options.last_k.max(1);
        Ctx {
            runs,
            k,
            baseline_of: (0..runs.len())
                .map(|i| baseline.or_else(|| find_baseline(runs, i)))
                .collect(),
            outcomes: runs.iter().map(|r| set_outcomes(r, k)).collect(),
            options,
            methods: group_by_method(runs),
        }
    }

    /// Statistics over method `m`'s runs of `f(run index)` (runs without a value do not count).
    pub(crate) fn stat(&self, m: &Method, f: impl Fn(usize) -> Option<f64>) -> Option<Stat> {
        Stat::of_some(m.runs.iter().map(|&i| f(i)))
    }

    /// The method of the union baseline of method `m`'s first run.
    pub(crate) fn baseline_method(&self, m: &Method) -> Option<usize> {
        let b = self.baseline_of[m.first()]?;
        self.methods.iter().position(|x| x.runs.contains(&b))
    }

    /// Whether some method has several runs (seeds).
    pub(crate) fn seeded(&self) -> bool {
        self.methods.iter().any(|m| m.runs.len() > 1)
    }

    /// The first column's header of a per-method table: "run" while every method is one run.
    pub(crate) fn who(&self) -> &'static str {
        if self.seeded() {
            "method"
        } else {
            "run"
        }
    }

    /// The units of loss tables: nats, and bits per byte when some run knows a set's bytes per token.
    pub(crate) fn units(&self) -> Vec<Unit> {
        if self.runs.iter().any(|r| !r.bytes_per_token.is_empty()) {
            vec![Unit::Nats, Unit::BitsPerByte]
        } else {
            vec![Unit::Nats]
        }
    }

    /// Run `i`'s final loss on `set` in `unit`.
    pub(crate) fn final_loss(&self, i: usize, set: &str, unit: Unit) -> Option<f64> {
        let o = self.outcomes[i].iter().find(|o| o.set == set)?;
        unit.of(&self.runs[i], set, o.final_loss)
    }

    /// Run `i`'s AVG in `unit`: the mean of its final losses over its sets.
    pub(crate) fn avg(&self, i: usize, unit: Unit) -> Option<f64> {
        let run = &self.runs[i];
        mean(
            self.outcomes[i]
                .iter()
                .map(|o| unit.of(run, &o.set, o.final_loss)),
        )
    }
}

/// The unit a loss table is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Nats per token, as trained and logged.
    Nats,
    /// Bits per byte of the set's UTF-8 text: comparable across tokenizers.
    BitsPerByte,
}

impl Unit {
    /// `nats` per token on `set` of `run` in this unit.
    pub(crate) fn of(self, run: &RunData, set: &str, nats: Option<f64>) -> Option<f64> {
        self.with(nats, run.bytes_per_token.get(set).copied())
    }

    /// `nats` per token in this unit, given the set's bytes per token.
    pub(crate) fn with(self, nats: Option<f64>, bytes_per_token: Option<f64>) -> Option<f64> {
        match self {
            Unit::Nats => nats,
            Unit::BitsPerByte => Some(nats? / std::f64::consts::LN_2 / bytes_per_token?),
        }
    }

    /// The line above a table in this unit (none for nats, the report's unit).
    pub(crate) fn caption(self) -> Option<String> {
        match self {
            Unit::Nats => None,
            Unit::BitsPerByte => Some(
                "In bits per byte (nats / ln 2 / the set's UTF-8 bytes per token), comparable across \
                 tokenizers:"
                    .into(),
            ),
        }
    }
}

/// The union baseline of run `i`: a union-like run (single stage mixing ≥ 2 sources, or labelled `union`
/// by `rewarm sweep`) of the same sweep folder, else of any input; the first by name.
fn find_baseline(runs: &[RunData], i: usize) -> Option<usize> {
    let union = |r: &RunData| r.looks_like_union() || r.method == "union";
    let same = (0..runs.len()).find(|&j| runs[j].group == runs[i].group && union(&runs[j]));
    same.or_else(|| (0..runs.len()).find(|&j| union(&runs[j])))
}

/// The figures drawn so far, with unique file stems.
#[derive(Default)]
pub(crate) struct Figures {
    pub(crate) list: Vec<Figure>,
    stems: BTreeSet<String>,
}

impl Figures {
    /// A file stem not used yet (`name`, else `name-2`, `name-3`, …).
    fn stem(&mut self, name: String) -> String {
        let mut candidate = name.clone();
        let mut n = 2;
        while !self.stems.insert(candidate.clone()) {
            candidate = format!("{name}-{n}");
            n += 1;
        }
        candidate
    }

    /// Adds a figure under a unique stem derived from `name`, and returns the stem.
    pub(crate) fn add(&mut self, name: String, chart: Chart) -> String {
        let stem = self.stem(name);
        self.list.push(Figure {
            stem: stem.clone(),
            chart,
        });
        stem
    }
}

/// Mean over the `Some`s; `None` if there are none.
pub(crate) fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    measures::average(&v)
}
