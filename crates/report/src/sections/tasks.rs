//! Downstream tasks scored during training (`[eval] tasks`, docs/plan.md#eval): per method and task, the
//! accuracy and length-normalised accuracy at its latest boundary and at the end, beside the task's
//! chance level, and one figure per task with every method over tokens. Only when some run scored
//! tasks.

use super::representation::{boundary_before, means_chart};
use super::{Ctx, Figures};
use crate::method::Method;
use crate::render::{loss, signed, stat, Table};
use crate::report::Section;
use crate::run::RunData;
use rewarm_runfolder::TaskRecord;
use std::collections::BTreeSet;

/// `None` when no run scored a task.
pub(crate) fn tasks_section(ctx: &Ctx, figs: &mut Figures) -> Option<Section> {
    let names: BTreeSet<&String> = ctx.runs.iter().flat_map(|r| r.tasks.keys()).collect();
    if names.is_empty() {
        return None;
    }
    let mut sec = Section::new("Tasks", true);
    sec.text.push(
        "Multiple-choice tasks scored at every evaluation (`[eval] tasks`), as `rewarm eval --task` \
         scores them: acc picks the choice with the highest summed log-probability, acc_norm the highest \
         per byte. Each at the method's latest boundary (step 0 of an `init_from` run) → at the end; \
         Δ is the change of acc_norm (negative: forgotten). With n questions an accuracy p has a standard \
         error of √(p(1 − p)/(n − 1)): about 0.05 at p = 0.5 and n = 100."
            .into(),
    );
    let who = ctx.who();
    let header = [
        who,
        "task",
        "n",
        "chance",
        "boundary",
        "acc",
        "acc_norm",
        "Δ acc_norm",
    ];
    let mut t = Table::new(&header).left(&[1]);
    for name in &names {
        for m in &ctx.methods {
            t.rows.extend(row(ctx, m, name));
        }
    }
    sec.tables.push(t);
    for name in names {
        let points = |r: &RunData| -> Vec<(u64, u64, f64)> {
            let scores = r.tasks.get(name).map_or(&[][..], Vec::as_slice);
            scores
                .iter()
                .map(|x| (x.step, x.tokens, x.acc_norm))
                .collect()
        };
        let title = format!("{name}: acc_norm over training");
        let mut chart = means_chart(ctx, &title, "acc_norm", &points);
        chart.y_range = Some((0.0, 1.0));
        sec.figures
            .push(figs.add(format!("task-{}", crate::render::slug(name)), chart));
    }
    Some(sec)
}

/// Run `r`'s scores on `task`, by step.
fn scores<'a>(r: &'a RunData, task: &str) -> &'a [TaskRecord] {
    r.tasks.get(task).map_or(&[], Vec::as_slice)
}

/// The score at `step` (the last one at or before it).
fn at<'a>(r: &'a RunData, task: &str, step: u64) -> Option<&'a TaskRecord> {
    scores(r, task).iter().rev().find(|x| x.step <= step)
}

/// Method `m`'s row for `task`: acc and acc_norm from its boundary to the end (means over its runs).
fn row(ctx: &Ctx, m: &Method, task: &str) -> Option<Vec<String>> {
    let first = &ctx.runs[m.first()];
    let last = scores(first, task).last()?;
    let b = boundary_before(first, last.step);
    let before = |i: usize, pick: fn(&TaskRecord) -> f64| Some(pick(at(&ctx.runs[i], task, b?)?));
    let after =
        |i: usize, pick: fn(&TaskRecord) -> f64| Some(pick(scores(&ctx.runs[i], task).last()?));
    let span = |pick: fn(&TaskRecord) -> f64| {
        let from = stat(ctx.stat(m, |i| before(i, pick)), loss);
        format!("{from} → {}", stat(ctx.stat(m, |i| after(i, pick)), loss))
    };
    let delta = ctx.stat(m, |i| {
        Some(after(i, |x| x.acc_norm)? - before(i, |x| x.acc_norm)?)
    });
    Some(vec![
        m.name.clone(),
        task.to_owned(),
        last.questions.to_string(),
        format!("{:.3}", last.chance),
        b.map_or("–".into(), |b| format!("step {b}")),
        span(|x| x.acc),
        span(|x| x.acc_norm),
        stat(delta, signed),
    ])
}
