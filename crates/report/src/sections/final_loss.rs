//! Final validation loss per set and AVG; the loss curves per run and per set.

use super::{mean, Ctx, Figures};
use crate::plot::{Chart, Series, Ticks};
use crate::render::{loss, slug, Table};
use crate::report::Section;
use crate::run::{EvalPoint, RunData};
use std::collections::BTreeSet;

/// Final loss per set and AVG; loss curves per run and per set.
pub(crate) fn final_loss_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let (runs, k) = (ctx.runs, ctx.k);
    let sets: BTreeSet<String> = runs.iter().flat_map(|r| r.sets()).collect();
    let mut sec = Section::new("Final validation loss", true);
    sec.text.push(format!(
        "Mean of the last {k} evaluation{} of each set (nats per token). AVG is the unweighted mean over \
         the run's sets (Ibrahim et al. Table 2); it hides where the loss sits, so read it with the \
         per-set losses.",
        if k == 1 { "" } else { "s" }
    ));
    sec.tables.push(final_loss_table(ctx, &sets));
    for r in runs {
        let name = figs.add(format!("loss-{}", slug(&r.name)), run_loss_chart(r));
        sec.figures.push(name);
    }
    if runs.len() >= 2 {
        for set in &sets {
            let name = figs.add(format!("loss-set-{}", slug(set)), set_loss_chart(runs, set));
            sec.figures.push(name);
        }
    }
    sec
}

/// A row per run: its final loss on each of `sets` and their mean over the run's sets (AVG).
fn final_loss_table(ctx: &Ctx, sets: &BTreeSet<String>) -> Table {
    let mut header: Vec<&str> = vec!["run"];
    header.extend(sets.iter().map(String::as_str));
    header.push("AVG");
    let mut t = Table::new(&header);
    for (r, outs) in ctx.runs.iter().zip(&ctx.outcomes) {
        let mut row = vec![r.name.clone()];
        for set in sets {
            row.push(loss(
                outs.iter()
                    .find(|o| &o.set == set)
                    .and_then(|o| o.final_loss),
            ));
        }
        row.push(loss(mean(outs.iter().map(|o| o.final_loss))));
        t.rows.push(row);
    }
    t
}

/// One run's loss on each set over tokens, its stage boundaries marked.
fn run_loss_chart(run: &RunData) -> Chart {
    let mut chart = loss_chart(format!("{}: validation loss per set", run.name));
    for (set, series) in &run.evals {
        chart
            .series
            .push(Series::line(set.clone(), xy_tokens(series)));
    }
    chart.vlines = run
        .stages
        .iter()
        .skip(1)
        .map(|s| (s.tokens_before as f64, s.name.clone()))
        .collect();
    chart
}

/// Every run's loss on `set` over tokens.
fn set_loss_chart(runs: &[RunData], set: &str) -> Chart {
    let mut chart = loss_chart(format!("validation loss on {set}, all runs"));
    for r in runs {
        if let Some(series) = r.evals.get(set) {
            chart
                .series
                .push(Series::line(r.name.clone(), xy_tokens(series)));
        }
    }
    chart
}

/// An empty chart of loss over tokens.
fn loss_chart(title: String) -> Chart {
    let mut chart = Chart::new(title, "tokens", "loss (nats/token)");
    chart.x_ticks = Ticks::Si;
    chart
}

fn xy_tokens(series: &[EvalPoint]) -> Vec<(f64, f64)> {
    series.iter().map(|p| (p.tokens as f64, p.loss)).collect()
}
