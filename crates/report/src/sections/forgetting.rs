//! Forgetting, MER score and adaptation per method and per set; scatter plots of forgetting and adaptation
//! against the replay fraction and the peak LR.

use super::{mean, Ctx, Figures, Unit};
use crate::outcomes::{Role, SetOutcome};
use crate::plot::{Chart, Series, Style, Ticks};
use crate::render::{loss, signed, stat, Table};
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

/// A run's means over its sets, with its last stage's replay fraction and peak LR: what the per-method
/// table and the scatter plots aggregate.
pub(crate) struct RunMeans {
    pub(crate) replay: f64,
    pub(crate) peak_lr: Option<f64>,
    /// Over old sets.
    pub(crate) forgetting: Option<f64>,
    /// Over old sets.
    pub(crate) mer: Option<f64>,
    /// Over new sets.
    pub(crate) adaptation: Option<f64>,
    /// Over all sets (AVG).
    pub(crate) retained: Option<f64>,
}

impl RunMeans {
    /// Run `i`'s means, each set's values in `unit` before averaging.
    pub(crate) fn of(ctx: &Ctx, i: usize, unit: Unit) -> Self {
        let run = &ctx.runs[i];
        let outs = &ctx.outcomes[i];
        let is_old = |o: &&SetOutcome| matches!(o.role, Role::Old | Role::NewThenOld);
        let u = |o: &SetOutcome, x: Option<f64>| unit.of(run, &o.set, x);
        RunMeans {
            replay: run.stages.last().map_or(0.0, |s| s.replay_fraction),
            peak_lr: last_stage_peak_lr(run),
            forgetting: mean(outs.iter().filter(is_old).map(|o| u(o, o.forgetting))),
            mer: mean(outs.iter().filter(is_old).map(|o| u(o, o.mer))),
            adaptation: mean(outs.iter().map(|o| u(o, o.adaptation))),
            retained: ctx.avg(i, unit),
        }
    }
}

/// Forgetting, MER score and adaptation per method and per set; scatter plots against replay and peak LR.
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
    for unit in ctx.units() {
        let means: Vec<RunMeans> = (0..ctx.runs.len())
            .map(|i| RunMeans::of(ctx, i, unit))
            .collect();
        sec.tables.push(per_method_table(ctx, &means, unit));
        sec.tables.push(per_set_table(ctx, unit));
    }
    let means: Vec<RunMeans> = (0..ctx.runs.len())
        .map(|i| RunMeans::of(ctx, i, Unit::Nats))
        .collect();
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
        if let Some(chart) = scatter_chart(ctx, &means, x_name, x_ticks, use_lr) {
            let name = figs.add(file.to_owned(), chart);
            sec.figures.push(name);
        }
    }
    sec
}

/// Per method: the last stage's replay fraction and peak LR (of its first run), and the means over its
/// sets.
fn per_method_table(ctx: &Ctx, means: &[RunMeans], unit: Unit) -> Table {
    let mut t = Table::new(&[
        ctx.who(),
        "replay ρ",
        "peak LR",
        "forgetting",
        "MER score",
        "adaptation",
        "retained (AVG)",
    ])
    .captioned(unit.caption());
    for m in &ctx.methods {
        let first = &means[m.first()];
        let cell = |f: fn(&RunMeans) -> Option<f64>, fmt| stat(ctx.stat(m, |i| f(&means[i])), fmt);
        t.rows.push(vec![
            m.name.clone(),
            format!("{:.3}", first.replay),
            first.peak_lr.map_or("–".into(), |x| format!("{x:.2e}")),
            cell(|r| r.forgetting, signed),
            cell(|r| r.mer, signed),
            cell(|r| r.adaptation, signed),
            cell(|r| r.retained, loss),
        ]);
    }
    t
}

/// Per method and set: the set's role, learned and final loss, forgetting, MER score and adaptation.
fn per_set_table(ctx: &Ctx, unit: Unit) -> Table {
    let mut t = Table::new(&[
        ctx.who(),
        "set",
        "role",
        "learned",
        "final",
        "forgetting",
        "MER score",
        "adaptation",
    ])
    .left(&[1, 2])
    .captioned(unit.caption());
    for m in &ctx.methods {
        for o in &ctx.outcomes[m.first()] {
            let cell = |f: fn(&SetOutcome) -> Option<f64>, fmt| {
                let value = |i: usize| {
                    let out = ctx.outcomes[i].iter().find(|x| x.set == o.set)?;
                    unit.of(&ctx.runs[i], &o.set, f(out))
                };
                stat(ctx.stat(m, value), fmt)
            };
            t.rows.push(vec![
                m.name.clone(),
                o.set.clone(),
                o.role.name().into(),
                cell(|o| o.learned, loss),
                cell(|o| o.final_loss, loss),
                cell(|o| o.forgetting, signed),
                cell(|o| o.mer, signed),
                cell(|o| o.adaptation, signed),
            ]);
        }
    }
    t
}

/// Forgetting (labelled with method names) and adaptation against the last stage's replay fraction, or
/// peak LR with `use_lr`, at each method's means; `None` when fewer than two distinct x values would be
/// drawn.
fn scatter_chart(
    ctx: &Ctx,
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
    for m in &ctx.methods {
        let x = x_of(&means[m.first()]);
        let y = |f: fn(&RunMeans) -> Option<f64>| Some(ctx.stat(m, |i| f(&means[i]))?.mean);
        if let (Some(x), Some(y)) = (x, y(|r| r.forgetting)) {
            forgetting.points.push((x, y));
            forgetting.point_labels.push(m.name.clone());
        }
        if let (Some(x), Some(y)) = (x, y(|r| r.adaptation)) {
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
