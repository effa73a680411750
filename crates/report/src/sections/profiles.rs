//! AlgoPerf performance profiles: per method (sweep label), the fraction of workloads it reached the target
//! within τ times the fastest method's tokens, the AlgoPerf score, and ρ(τ) as a figure.

use super::time_to_target::{method_tokens, Workload};
use super::{Ctx, Figures};
use crate::measures::{self, R_MAX};
use crate::plot::{Chart, Series};
use crate::render::Table;
use crate::report::Section;
use std::collections::BTreeSet;

/// The τ at which the table prints ρ(τ).
const TAUS: [f64; 5] = [1.0, 1.5, 2.0, 3.0, R_MAX];

/// The performance-profile table and figure, when some workload has ≥ 2 methods.
pub(crate) fn profiles_section(
    ctx: &Ctx,
    workloads: &[Workload],
    figs: &mut Figures,
) -> Option<Section> {
    if !workloads.iter().any(|w| w.methods.len() >= 2) {
        return None;
    }
    let methods = labels(ctx, workloads);
    let ratios = measures::performance_ratios(&tokens_to_target(ctx, workloads, &methods));
    let mut sec = Section::new("Performance profiles", true);
    sec.text.push(format!(
        "AlgoPerf (Dahl et al. 2023): r = tokens-to-target / the fastest method's on the same workload; \
         ρ(τ) = fraction of workloads with r ≤ τ; score = (1/(r_max − 1))·∫₁^r_max ρ(τ) dτ with r_max = \
         {R_MAX}. Methods are matched across workloads by run name (the sweep label); a method missing \
         from a workload counts as ∞ there."
    ));
    sec.tables.push(profile_table(&methods, &ratios));
    let name = figs.add(
        "performance-profile".into(),
        profile_chart(&methods, &ratios),
    );
    sec.figures.push(name);
    Some(sec)
}

/// The labels of the methods of every workload, sorted.
fn labels<'a>(ctx: &Ctx<'a>, workloads: &[Workload]) -> Vec<&'a str> {
    let labels: BTreeSet<&str> = workloads
        .iter()
        .flat_map(|w| w.methods.iter())
        .map(|&m| ctx.runs[ctx.methods[m].first()].method.as_str())
        .collect();
    labels.into_iter().collect()
}

/// `times[label][workload]`: tokens to target (a method's mean over its runs), ∞ if missed or absent.
fn tokens_to_target(ctx: &Ctx, workloads: &[Workload], labels: &[&str]) -> Vec<Vec<f64>> {
    labels
        .iter()
        .map(|label| {
            workloads
                .iter()
                .map(|w| {
                    w.methods
                        .iter()
                        .map(|&m| &ctx.methods[m])
                        .find(|m| ctx.runs[m.first()].method == *label)
                        .map_or(f64::INFINITY, |m| method_tokens(ctx, w, m))
                })
                .collect()
        })
        .collect()
}

/// Per method: its workloads, ρ at each of [`TAUS`] and the AlgoPerf score.
fn profile_table(methods: &[&str], ratios: &[Vec<f64>]) -> Table {
    let mut header = vec!["method".to_owned(), "workloads".to_owned()];
    header.extend(TAUS.iter().map(|t| format!("ρ({t})")));
    header.push(format!("score (r_max = {R_MAX})"));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    for (m, r) in methods.iter().zip(ratios) {
        let mut row = vec![m.to_string(), r.len().to_string()];
        row.extend(
            TAUS.iter()
                .map(|&tau| format!("{:.2}", measures::profile(r, tau))),
        );
        row.push(format!("{:.3}", measures::algoperf_score(r, R_MAX)));
        t.rows.push(row);
    }
    t
}

/// ρ(τ) over [1, r_max], one line per method.
fn profile_chart(methods: &[&str], ratios: &[Vec<f64>]) -> Chart {
    let mut chart = Chart::new(
        "performance profiles (tokens to target)",
        "τ (ratio to the fastest)",
        "ρ(τ): fraction of workloads",
    );
    chart.x_range = Some((1.0, R_MAX));
    chart.y_range = Some((0.0, 1.05));
    for (m, r) in methods.iter().zip(ratios) {
        chart
            .series
            .push(Series::line(m.to_string(), profile_steps(r)));
    }
    chart
}

/// The points of ρ(τ) for one method's ratios: a step function that rises at each ratio within [1, r_max].
fn profile_steps(ratios: &[f64]) -> Vec<(f64, f64)> {
    let mut breaks: Vec<f64> = ratios
        .iter()
        .copied()
        .filter(|&x| x > 1.0 && x <= R_MAX)
        .collect();
    breaks.sort_by(f64::total_cmp);
    breaks.dedup();
    let mut pts = vec![(1.0, measures::profile(ratios, 1.0))];
    for b in breaks {
        let before = ratios.iter().filter(|&&x| x < b).count() as f64 / ratios.len() as f64;
        pts.push((b, before));
        pts.push((b, measures::profile(ratios, b)));
    }
    pts.push((R_MAX, measures::profile(ratios, R_MAX)));
    pts
}
