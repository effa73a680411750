//! The runs table: stages (with their first steps), steps, tokens and notes per run; one LR figure per
//! method.

use super::{Ctx, Figures};
use crate::plot::{lr_chart, Chart};
use crate::render::{count, slug, Table};
use crate::report::Section;
use crate::run::{BoundarySource, RunData};

/// Runs: stages, steps, tokens, notes; one LR figure per method.
pub(crate) fn runs_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let mut sec = Section::new("Runs", false);
    let mut t =
        Table::new(&["run", "stages (first step)", "steps", "tokens", "notes"]).left(&[1, 4]);
    for i in 0..ctx.runs.len() {
        t.rows.push(run_row(ctx, i));
    }
    // The seeds of a method share their schedule: one figure per method.
    for m in &ctx.methods {
        let chart = run_lr_chart(&ctx.runs[m.first()], &m.name);
        let name = figs.add(format!("lr-{}", slug(&m.name)), chart);
        sec.figures.push(name);
    }
    sec.text.push(
        "Steps count steps done; a stage's first step is the boundary whose evaluation closes the stage \
         before it and opens the next."
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
fn run_lr_chart(run: &RunData, name: &str) -> Chart {
    let points: Vec<(u64, f64, f64)> = run
        .train
        .iter()
        .map(|p| (p.step, p.lr, p.replay_fraction))
        .collect();
    let boundaries: Vec<(u64, String)> = run
        .stages
        .iter()
        .map(|s| (s.first_step, s.name.clone()))
        .collect();
    lr_chart(
        &format!("{name}: learning rate and replay fraction"),
        &points,
        &boundaries,
    )
}
