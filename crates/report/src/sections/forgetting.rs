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

/// A run's point in the replay / peak-LR scatter plots.
struct RunPoint {
    replay: f64,
    peak_lr: Option<f64>,
    forgetting: Option<f64>,
    adaptation: Option<f64>,
}

/// Forgetting, MER score and adaptation per run and per set; scatter plots against replay and peak LR.
pub(crate) fn forgetting_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let (runs, outcomes) = (ctx.runs, &ctx.outcomes);
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
    let mut t = Table::new(&[
        "run",
        "replay ρ",
        "peak LR",
        "forgetting",
        "MER score",
        "adaptation",
        "retained (AVG)",
    ]);
    let mut per_run = Vec::new();
    for (r, outs) in runs.iter().zip(outcomes) {
        let is_old = |o: &&SetOutcome| matches!(o.role, Role::Old | Role::NewThenOld);
        let f = mean(outs.iter().filter(is_old).map(|o| o.forgetting));
        let m = mean(outs.iter().filter(is_old).map(|o| o.mer));
        let a = mean(outs.iter().map(|o| o.adaptation));
        let rho = r.stages.last().map_or(0.0, |s| s.replay_fraction);
        let lr = last_stage_peak_lr(r);
        per_run.push(RunPoint {
            replay: rho,
            peak_lr: lr,
            forgetting: f,
            adaptation: a,
        });
        t.rows.push(vec![
            r.name.clone(),
            format!("{rho:.3}"),
            lr.map_or("–".into(), |x| format!("{x:.2e}")),
            signed(f),
            signed(m),
            signed(a),
            loss(mean(outs.iter().map(|o| o.final_loss))),
        ]);
    }
    sec.tables.push(t);
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
    for (r, outs) in runs.iter().zip(outcomes) {
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
    sec.tables.push(t);
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
        let x_of = |p: &RunPoint| if use_lr { p.peak_lr } else { Some(p.replay) };
        let mut forgetting = Series {
            style: Style::Points,
            ..Series::line("forgetting", Vec::new())
        };
        let mut adaptation = Series {
            style: Style::Points,
            ..Series::line("adaptation", Vec::new())
        };
        for (r, p) in runs.iter().zip(&per_run) {
            if let (Some(x), Some(y)) = (x_of(p), p.forgetting) {
                forgetting.points.push((x, y));
                forgetting.point_labels.push(r.name.clone());
            }
            if let (Some(x), Some(y)) = (x_of(p), p.adaptation) {
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
            continue;
        }
        let mut chart = Chart::new(
            format!("{x_name}: forgetting (old sets) and adaptation (new sets)"),
            x_name,
            "Δ loss (nats/token)",
        );
        chart.x_ticks = x_ticks;
        chart.series = vec![forgetting, adaptation];
        let name = figs.add(file.to_owned(), chart);
        sec.figures.push(name);
    }
    sec
}
