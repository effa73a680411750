//! AlgoPerf performance profiles: per method (run name), the fraction of workloads it reached within τ times
//! the fastest's tokens, and the AlgoPerf score.

use super::time_to_target::Workload;
use crate::measures::{self, R_MAX};
use crate::plot::{Chart, Series};
use crate::render::Table;
use crate::run::RunData;
use std::collections::BTreeSet;

/// The performance-profile table and figure, when some workload has ≥ 2 runs.
pub(crate) fn profiles(runs: &[RunData], workloads: &[Workload]) -> Option<(Table, Chart)> {
    if !workloads.iter().any(|w| w.runs.len() >= 2) {
        return None;
    }
    let methods: BTreeSet<&str> = workloads
        .iter()
        .flat_map(|w| w.runs.iter().map(|&i| runs[i].method.as_str()))
        .collect();
    let methods: Vec<&str> = methods.into_iter().collect();
    // times[method][workload]: tokens to target, ∞ if missed or absent.
    let times: Vec<Vec<f64>> = methods
        .iter()
        .map(|m| {
            workloads
                .iter()
                .map(|w| {
                    w.runs
                        .iter()
                        .find(|&&i| runs[i].method == *m)
                        .and_then(|&i| runs[i].evals.get(&w.set))
                        .and_then(|s| measures::time_to_target(s, w.target))
                        .map_or(f64::INFINITY, |p| p.tokens as f64)
                })
                .collect()
        })
        .collect();
    let ratios = measures::performance_ratios(&times);
    let taus = [1.0, 1.5, 2.0, 3.0, R_MAX];
    let mut header = vec!["method".to_owned(), "workloads".to_owned()];
    header.extend(taus.iter().map(|t| format!("ρ({t})")));
    header.push(format!("score (r_max = {R_MAX})"));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    let mut chart = Chart::new(
        "performance profiles (tokens to target)",
        "τ (ratio to the fastest)",
        "ρ(τ): fraction of workloads",
    );
    chart.x_range = Some((1.0, R_MAX));
    chart.y_range = Some((0.0, 1.05));
    for (m, r) in methods.iter().zip(&ratios) {
        let mut row = vec![m.to_string(), r.len().to_string()];
        row.extend(
            taus.iter()
                .map(|&tau| format!("{:.2}", measures::profile(r, tau))),
        );
        row.push(format!("{:.3}", measures::algoperf_score(r, R_MAX)));
        t.rows.push(row);
        // ρ is a step function: rises at each ratio within [1, r_max].
        let mut breaks: Vec<f64> = r
            .iter()
            .copied()
            .filter(|&x| x > 1.0 && x <= R_MAX)
            .collect();
        breaks.sort_by(f64::total_cmp);
        breaks.dedup();
        let mut pts = vec![(1.0, measures::profile(r, 1.0))];
        for b in breaks {
            let before = r.iter().filter(|&&x| x < b).count() as f64 / r.len() as f64;
            pts.push((b, before));
            pts.push((b, measures::profile(r, b)));
        }
        pts.push((R_MAX, measures::profile(r, R_MAX)));
        chart.series.push(Series::line(m.to_string(), pts));
    }
    Some((t, chart))
}
