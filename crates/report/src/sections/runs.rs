//! The runs table: stages (with their first steps), steps, tokens and notes per run; one LR figure per run.

use super::{Ctx, Figures};
use crate::plot::lr_chart;
use crate::render::{count, slug, Table};
use crate::report::Section;

/// Runs: stages, steps, tokens, notes; one LR figure per run.
pub(crate) fn runs_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let (runs, baseline_of) = (ctx.runs, &ctx.baseline_of);
    let mut sec = Section::new("Runs", false);
    let mut t =
        Table::new(&["run", "stages (first step)", "steps", "tokens", "notes"]).left(&[1, 4]);
    for (i, r) in runs.iter().enumerate() {
        let stages: Vec<String> = r
            .stages
            .iter()
            .map(|s| format!("{} ({})", s.name, s.first_step))
            .collect();
        let mut notes = Vec::new();
        if baseline_of.contains(&Some(i)) {
            notes.push("union baseline".to_owned());
        }
        if !r.complete() {
            notes.push("incomplete".into());
        }
        if r.rollbacks > 0 {
            notes.push(format!("{} rollbacks", r.rollbacks));
        }
        if r.boundaries_from == crate::run::BoundarySource::Metrics {
            notes.push("boundaries from metrics.jsonl".into());
        }
        if let Some(d) = &r.device {
            notes.push(format!("device {d}"));
        }
        let steps = match r.planned_steps {
            Some(p) => format!("{} / {p}", r.last_step()),
            None => r.last_step().to_string(),
        };
        t.rows.push(vec![
            r.name.clone(),
            stages.join(", "),
            steps,
            count(r.tokens()),
            notes.join("; "),
        ]);
        let points: Vec<(u64, f64, f64)> = r
            .train
            .iter()
            .map(|p| (p.step, p.lr, p.replay_fraction))
            .collect();
        let boundaries: Vec<(u64, String)> = r
            .stages
            .iter()
            .map(|s| (s.first_step, s.name.clone()))
            .collect();
        let name = figs.add(
            format!("lr-{}", slug(&r.name)),
            lr_chart(
                &format!("{}: learning rate and replay fraction", r.name),
                &points,
                &boundaries,
            ),
        );
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
