//! The runs table: stages (with their first steps), steps, tokens and notes per run; one figure with every
//! method's learning rate. Printed last: what a reader came for (the losses) goes first.

use super::{Ctx, Figures};
use crate::plot::{Chart, Series, Ticks};
use crate::render::{count, Table};
use crate::report::Section;
use crate::run::BoundarySource;

/// Runs: stages, steps, tokens, notes; one figure overlaying the methods' learning rates.
pub(crate) fn runs_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let mut sec = Section::new("Runs", false);
    let mut t =
        Table::new(&["run", "stages (first step)", "steps", "tokens", "notes"]).left(&[1, 4]);
    for i in 0..ctx.runs.len() {
        t.rows.push(run_row(ctx, i));
    }
    sec.figures.push(figs.add("lr".into(), lr_overlay(ctx)));
    sec.text.push(
        "Steps count steps done; a stage's first step is the boundary whose evaluation closes the stage \
         before it and opens the next."
            .into(),
    );
    sec.text.push(
        "Every number here comes from the runs' metrics.jsonl: `rewarm export-metrics RUN --out DIR`          writes it as CSV tables for pandas, and `tensorboard --logdir FOLDER` shows every run's          `tensorboard/` event file, the same numbers (docs/metrics.md)."
            .into(),
    );
    sec.tables.push(t);
    sec
}

/// Run `i`'s row: its stages with their first steps, steps done (of those planned), tokens and notes.
fn run_row(ctx: &Ctx, i: usize) -> Vec<String> {
    let r = &ctx.runs[i];
    let stages: Vec<String> = r
        .stages
        .iter()
        .map(|s| format!("{} ({})", s.name, s.first_step))
        .collect();
    let steps = match r.planned_steps {
        Some(p) => format!("{} / {p}", r.last_step()),
        None => r.last_step().to_string(),
    };
    vec![
        r.name.clone(),
        stages.join(", "),
        steps,
        count(r.tokens()),
        run_notes(ctx, i).join("; "),
    ]
}

/// What a reader should know about run `i` before reading its numbers.
fn run_notes(ctx: &Ctx, i: usize) -> Vec<String> {
    let r = &ctx.runs[i];
    let mut notes = Vec::new();
    // Every seed of the baseline's method is the baseline.
    let method = ctx.methods.iter().find(|m| m.runs.contains(&i));
    let same_method = |b: usize| method.is_some_and(|m| m.runs.contains(&b));
    if ctx.baseline_of.iter().flatten().any(|&b| same_method(b)) {
        notes.push("union baseline".to_owned());
    }
    if !r.complete() {
        notes.push("incomplete".into());
    }
    if r.rollbacks > 0 {
        notes.push(format!("{} rollbacks", r.rollbacks));
    }
    if r.boundaries_from == BoundarySource::Metrics {
        notes.push("boundaries from metrics.jsonl".into());
    }
    if let Some(d) = &r.device {
        notes.push(format!("device {d}"));
    }
    notes
}

/// The run's learning rate and replay fraction over steps, its stage boundaries marked; titled `name`.
/// The learning rate of every method (the seeds of a method share their schedule), with the stage
/// boundaries all of them share.
fn lr_overlay(ctx: &Ctx) -> Chart {
    let mut chart = Chart::new("learning rate of every run", "step", "learning rate");
    chart.y_ticks = Ticks::Scientific;
    chart.x_ticks = Ticks::Si;
    chart.series = ctx
        .methods
        .iter()
        .map(|m| {
            let run = &ctx.runs[m.first()];
            let points = run.train.iter().map(|p| (p.step as f64, p.lr)).collect();
            Series::line(m.name.clone(), points)
        })
        .collect();
    let peak = chart
        .series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.1)
        .fold(0.0, f64::max);
    chart.y_range = Some((0.0, peak.max(1e-12) * 1.08));
    let first = &ctx.runs[ctx.methods.first().map_or(0, |m| m.first())];
    let shared = |step: u64| {
        ctx.methods.iter().all(|m| {
            ctx.runs[m.first()]
                .stages
                .iter()
                .any(|s| s.first_step == step)
        })
    };
    chart.vlines = first
        .stages
        .iter()
        .skip(1)
        .filter(|s| shared(s.first_step))
        .map(|s| (s.first_step as f64, s.name.clone()))
        .collect();
    chart
}
