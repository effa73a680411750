//! Time to target: per workload (a sweep folder with one target set and loss), the steps and tokens each run
//! took to reach the target, and its ratio to the fastest run's tokens. The workloads serve the performance
//! profiles too ([`super::profiles`]).

use super::Ctx;
use crate::measures;
use crate::render::{count, Table};
use crate::report::Section;
use crate::run::{EvalPoint, RunData};
use std::collections::BTreeMap;

/// A time-to-target workload: a group of runs with one target.
pub(crate) struct Workload {
    pub(crate) name: String,
    pub(crate) set: String,
    pub(crate) target: f64,
    /// Where the target came from, for the table's text.
    pub(crate) source: String,
    pub(crate) runs: Vec<usize>,
}

/// One workload per sweep folder (runs given directly form one more), with its target set and loss; a
/// folder without either has none.
pub(crate) fn workloads(ctx: &Ctx) -> Vec<Workload> {
    let mut groups: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for (i, r) in ctx.runs.iter().enumerate() {
        groups.entry(r.group.clone()).or_default().push(i);
    }
    groups
        .into_iter()
        .filter_map(|(group, members)| {
            let baseline = members.iter().find_map(|&i| ctx.baseline_of[i]);
            let set = target_set(ctx, &members)?;
            let (target, source) = target_loss(ctx, &set, baseline)?;
            Some(Workload {
                name: group.unwrap_or_else(|| "(runs)".into()),
                set,
                target,
                source,
                runs: members,
            })
        })
        .collect()
}

/// The given target set, else the new data of the first continual run among `members`: the first source of
/// its last stage's mixture.
fn target_set(ctx: &Ctx, members: &[usize]) -> Option<String> {
    ctx.options.target_set.clone().or_else(|| {
        members
            .iter()
            .map(|&i| &ctx.runs[i])
            .find(|r| r.stages.len() > 1 || r.init_from.is_some())
            .and_then(|r| r.stages.last()?.sources.first().cloned())
    })
}

/// The given target loss, else the baseline's final loss on `set`; with where it came from.
fn target_loss(ctx: &Ctx, set: &str, baseline: Option<usize>) -> Option<(f64, String)> {
    if let Some(x) = ctx.options.target_loss {
        return Some((x, "given".to_owned()));
    }
    let b = &ctx.runs[baseline?];
    let x = b
        .evals
        .get(set)
        .and_then(|s| measures::final_loss(s, ctx.k))?;
    Some((x, format!("final of {}", b.name)))
}

/// Time to target per workload, or what to pass when there is no target.
pub(crate) fn time_to_target_section(ctx: &Ctx, workloads: &[Workload]) -> Section {
    let mut sec = Section::new("Time to target", true);
    if workloads.is_empty() {
        sec.text.push(
            "No target: pass --target-set and --target-loss, or include a union baseline (its final loss on \
             the target set becomes the target)."
                .into(),
        );
        return sec;
    }
    sec.text.push(
        "Steps and tokens until the first evaluation at or below the target loss (AlgoPerf; ∞ = missed). \
         × fastest is the ratio of tokens to the fastest run of the same workload (sweep folder)."
            .into(),
    );
    let mut t = Table::new(&[
        "workload",
        "run",
        "set",
        "target",
        "steps",
        "tokens",
        "× fastest",
    ])
    .left(&[1, 2]);
    for w in workloads {
        t.rows.extend(workload_rows(ctx.runs, w));
    }
    sec.tables.push(t);
    sec
}

/// A row per run of `w`: when it reached the target (∞ if it did not) and its tokens over the fastest's.
fn workload_rows(runs: &[RunData], w: &Workload) -> Vec<Vec<String>> {
    let reached: Vec<Option<EvalPoint>> = w
        .runs
        .iter()
        .map(|&i| {
            runs[i]
                .evals
                .get(&w.set)
                .and_then(|s| measures::time_to_target(s, w.target))
        })
        .collect();
    let times: Vec<Vec<f64>> = reached
        .iter()
        .map(|p| vec![p.map_or(f64::INFINITY, |p| p.tokens as f64)])
        .collect();
    let ratios = measures::performance_ratios(&times);
    w.runs
        .iter()
        .zip(&reached)
        .zip(&ratios)
        .map(|((&i, p), r)| {
            vec![
                w.name.clone(),
                runs[i].name.clone(),
                w.set.clone(),
                format!("{:.4} ({})", w.target, w.source),
                p.map_or("∞".into(), |p| p.step.to_string()),
                p.map_or("∞".into(), |p| count(p.tokens)),
                if r[0].is_finite() {
                    format!("{:.3}×", r[0])
                } else {
                    "∞".into()
                },
            ]
        })
        .collect()
}
