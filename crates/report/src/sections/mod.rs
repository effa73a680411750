//! The sections of a report, one file each, in the order they are printed:
//!
//! - [`runs`]: stages, steps, tokens and notes per run, and each run's LR figure;
//! - [`final_loss`]: final loss per set and AVG, and the loss curves;
//! - [`forgetting`]: forgetting, MER score and adaptation, also plotted against replay and peak LR;
//! - [`stability_gap`]: the stability gap after every boundary;
//! - [`cost`]: tokens and FLOPs relative to the union baseline;
//! - [`time_to_target`]: time to target per workload, then [`profiles`]: performance profiles across them.
//!
//! Every section reads a [`Ctx`] and adds its figures to [`Figures`].

pub(crate) mod cost;
pub(crate) mod final_loss;
pub(crate) mod forgetting;
pub(crate) mod profiles;
pub(crate) mod runs;
pub(crate) mod stability_gap;
pub(crate) mod time_to_target;

use crate::measures;
use crate::outcomes::{set_outcomes, SetOutcome};
use crate::plot::Chart;
use crate::report::{Figure, ReportOptions};
use crate::run::RunData;
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
