//! Forgetting, MER score and adaptation per run and per set; scatter plots of forgetting and adaptation
//! against the replay fraction and the peak LR.

use super::{mean, Ctx, Figures};
use crate::outcomes::{Role, SetOutcome};
use crate::plot::{Chart, Series, Style, Ticks};
use crate::render::{loss, signed, Table};
use crate::report::Section;
use crate::run::RunData;
use std::collections::BTreeSet;

/// The peak LR of the run's last stage that has train records (the re-warm's η_max).
fn last_stage_peak_lr(run: &RunData) -> Option<f64> {
    let stage = &run.stages.last()?.name;
    run.train
        .iter()
        .filter(|t| &t.stage == stage)
        .map(|t| t.lr)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
}

/// A run's means over its sets, with its last stage's replay fraction and peak LR: a row of the per-run
/// table and a point of the scatter plots.
struct RunMeans {
    replay: f64,
    peak_lr: Option<f64>,
    /// Over old sets.
    forgetting: Option<f64>,
    /// Over old sets.
    mer: Option<f64>,
    /// Over new sets.
    adaptation: Option<f64>,
    /// Over all sets (AVG).
    retained: Option<f64>,
}

impl RunMeans {
    fn of(run: &RunData, outs: &[SetOutcome]) -> Self {
        let is_old = |o: &&SetOutcome| matches!(o.role, Role::Old | Role::NewThenOld);
        RunMeans {
            replay: run.stages.last().map_or(0.0, |s| s.replay_fraction),
            peak_lr: last_stage_peak_lr(run),
            forgetting: mean(outs.iter().filter(is_old).map(|o| o.forgetting)),
            mer: mean(outs.iter().filter(is_old).map(|o| o.mer)),
            adaptation: mean(outs.iter().map(|o| o.adaptation)),
            retained: mean(outs.iter().map(|o| o.final_loss)),
        }
    }
}

/// Forgetting, MER score and adaptation per run and per set; scatter plots against replay and peak LR.
pub(crate) fn forgetting_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let mut sec = Section::new("Forgetting and adaptation", true);
    sec.text.push(
        "Forgetting of an old set = final loss − its loss at the first boundary after the last stage that \
         trained on it (positive = forgotten). MER score = final loss − best loss over all evaluations \
         (Abbes et al. 2025). Adaptation of a new set = loss at the boundary where training on it began − \
         final loss (positive = learned). In a run started with `init_from`, step 0 is such a boundary: a \
         set the run only evaluates is old (forgetting since step 0) and a set it trains on is new. Means are \
         over old (forgetting, MER) and new (adaptation) sets; retained = AVG. Replay ρ and peak LR are \
         those of the last stage."
            .into(),
    );
    let means: Vec<RunMeans> = ctx
        .runs
        .iter()
        .zip(&ctx.outcomes)
        .map(|(r, outs)| RunMeans::of(r, outs))
        .collect();
    sec.tables.push(per_run_table(ctx.runs, &means));
    sec.tables.push(per_set_table(ctx));
    for (x_name, x_ticks, file, use_lr) in [
        (
            "replay fraction ρ (last stage)",
            Ticks::Plain,
            "replay-vs-forgetting",
            false,
        ),
        (
            "peak LR (last stage)",
            Ticks::Scientific,
            "maxlr-vs-forgetting",
            true,
        ),
    ] {
        if let Some(chart) = scatter_chart(ctx.runs, &means, x_name, x_ticks, use_lr) {
            let name = figs.add(file.to_owned(), chart);
            sec.figures.push(name);
        }
    }
    sec
}

/// Per run: the last stage's replay fraction and peak LR, and the means over its sets.
fn per_run_table(runs: &[RunData], means: &[RunMeans]) -> Table {
    let mut t = Table::new(&[
        "run",
        "replay ρ",
        "peak LR",
        "forgetting",
        "MER score",
        "adaptation",
        "retained (AVG)",
    ]);
    for (r, m) in runs.iter().zip(means) {
        t.rows.push(vec![
            r.name.clone(),
            format!("{:.3}", m.replay),
            m.peak_lr.map_or("–".into(), |x| format!("{x:.2e}")),
            signed(m.forgetting),
            signed(m.mer),
            signed(m.adaptation),
            loss(m.retained),
        ]);
    }
    t
}

/// Per run and set: the set's role, learned and final loss, forgetting, MER score and adaptation.
fn per_set_table(ctx: &Ctx) -> Table {
    let mut t = Table::new(&[
        "run",
        "set",
        "role",
        "learned",
        "final",
        "forgetting",
        "MER score",
        "adaptation",
    ])
    .left(&[1, 2]);
    for (r, outs) in ctx.runs.iter().zip(&ctx.outcomes) {
        for o in outs {
            t.rows.push(vec![
                r.name.clone(),
                o.set.clone(),
                o.role.name().into(),
                loss(o.learned),
                loss(o.final_loss),
                signed(o.forgetting),
                signed(o.mer),
                signed(o.adaptation),
            ]);
        }
    }
    t
}

/// Forgetting (labelled with run names) and adaptation against the last stage's replay fraction, or peak LR
/// with `use_lr`; `None` when fewer than two distinct x values would be drawn.
fn scatter_chart(
    runs: &[RunData],
    means: &[RunMeans],
    x_name: &str,
    x_ticks: Ticks,
    use_lr: bool,
) -> Option<Chart> {
    let x_of = |m: &RunMeans| if use_lr { m.peak_lr } else { Some(m.replay) };
    let mut forgetting = Series {
        style: Style::Points,
        ..Series::line("forgetting", Vec::new())
    };
    let mut adaptation = Series {
        style: Style::Points,
        ..Series::line("adaptation", Vec::new())
    };
    for (r, m) in runs.iter().zip(means) {
        if let (Some(x), Some(y)) = (x_of(m), m.forgetting) {
            forgetting.points.push((x, y));
            forgetting.point_labels.push(r.name.clone());
        }
        if let (Some(x), Some(y)) = (x_of(m), m.adaptation) {
            adaptation.points.push((x, y));
        }
    }
    let distinct: BTreeSet<u64> = forgetting
        .points
        .iter()
        .chain(&adaptation.points)
        .map(|p| p.0.to_bits())
        .collect();
    if distinct.len() < 2 {
        return None;
    }
    let mut chart = Chart::new(
        format!("{x_name}: forgetting (old sets) and adaptation (new sets)"),
        x_name,
        "Δ loss (nats/token)",
    );
    chart.x_ticks = x_ticks;
    chart.series = vec![forgetting, adaptation];
    Some(chart)
}
