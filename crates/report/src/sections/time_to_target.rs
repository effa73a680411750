//! Time to target: per workload (a sweep folder with one target set and loss), the steps and tokens each run
//! took to reach the target; then, when runs share a target, the performance profiles across workloads.

use super::profiles::profiles;
use super::{Ctx, Figures};
use crate::measures::{self, R_MAX};
use crate::render::{count, Table};
use crate::report::{ReportOptions, Section};
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

/// Time to target and, when runs share a target, performance profiles.
pub(crate) fn target_sections(ctx: &Ctx, figs: &mut Figures) -> Vec<Section> {
    let (runs, k, baseline_of) = (ctx.runs, ctx.k, &ctx.baseline_of);
    let workloads = workloads(runs, baseline_of, ctx.options, k);
    let mut sec = Section::new("Time to target", true);
    if workloads.is_empty() {
        sec.text.push(
            "No target: pass --target-set and --target-loss, or include a union baseline (its final loss on \
             the target set becomes the target)."
                .into(),
        );
    } else {
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
        for w in &workloads {
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
            for ((&i, p), r) in w.runs.iter().zip(&reached).zip(&ratios) {
                t.rows.push(vec![
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
                ]);
            }
        }
        sec.tables.push(t);
    }
    let mut out = vec![sec];
    if let Some((table, chart)) = profiles(runs, &workloads) {
        let mut sec = Section::new("Performance profiles", true);
        sec.text.push(format!(
            "AlgoPerf (Dahl et al. 2023): r = tokens-to-target / the fastest method's on the same workload; \
             ρ(τ) = fraction of workloads with r ≤ τ; score = (1/(r_max − 1))·∫₁^r_max ρ(τ) dτ with r_max = \
             {R_MAX}. Methods are matched across workloads by run name (the sweep label); a method missing \
             from a workload counts as ∞ there."
        ));
        sec.tables.push(table);
        let name = figs.add("performance-profile".into(), chart);
        sec.figures.push(name);
        out.push(sec);
    }
    out
}

/// One workload per sweep folder (runs given directly form one more), with its target set and loss.
fn workloads(
    runs: &[RunData],
    baseline_of: &[Option<usize>],
    options: &ReportOptions,
    k: usize,
) -> Vec<Workload> {
    let mut groups: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        groups.entry(r.group.clone()).or_default().push(i);
    }
    let mut out = Vec::new();
    for (group, members) in groups {
        let baseline = members.iter().find_map(|&i| baseline_of[i]);
        let set = options.target_set.clone().or_else(|| {
            // The new data of the first continual run: the first source of its last stage's mixture.
            members
                .iter()
                .map(|&i| &runs[i])
                .find(|r| r.stages.len() > 1 || r.init_from.is_some())
                .and_then(|r| r.stages.last()?.sources.first().cloned())
        });
        let Some(set) = set else { continue };
        let (target, source) = match options.target_loss {
            Some(x) => (x, "given".to_owned()),
            None => {
                let Some(b) = baseline else { continue };
                let Some(x) = runs[b]
                    .evals
                    .get(&set)
                    .and_then(|s| measures::final_loss(s, k))
                else {
                    continue;
                };
                (x, format!("final of {}", runs[b].name))
            }
        };
        out.push(Workload {
            name: group.unwrap_or_else(|| "(runs)".into()),
            set,
            target,
            source,
            runs: members,
        });
    }
    out
}
