//! The stability gap after every boundary: depth, peak and recovery per run, boundary and set.

use super::Ctx;
use crate::measures::{self, Gap};
use crate::render::Table;
use crate::report::Section;
use crate::run::RunData;

/// The stability gap after every boundary.
pub(crate) fn stability_gap_section(ctx: &Ctx) -> Section {
    let mut sec = Section::new("Stability gap", true);
    sec.text.push(
        "After each boundary: depth = the largest rise of a set's loss within the stage above its value at \
         the boundary; peak = steps after the boundary where it was measured; recovery = steps after the \
         boundary until, after the peak, the loss is back at or below the boundary value (\"never\" \
         within the stage). Step 0 of a run started with `init_from` is a boundary too. Dense evaluation \
         right after boundaries (`eval.dense_steps`) sharpens these."
            .into(),
    );
    let mut t = Table::new(&[
        "run",
        "boundary",
        "set",
        "at boundary",
        "depth",
        "peak at",
        "recovery",
    ])
    .left(&[1, 2]);
    for r in ctx.runs {
        t.rows.extend(gap_rows(r));
    }
    if t.rows.is_empty() {
        sec.text
            .push("No run has a boundary with evaluations after it.".into());
    } else {
        sec.tables.push(t);
    }
    sec
}

/// A row per boundary of `run` and set with evaluations on both sides: the loss at the boundary, the gap's
/// depth, when it peaked and when it recovered.
fn gap_rows(run: &RunData) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    // A run started with `init_from` begins at a boundary: its step 0 follows earlier training.
    let first = if run.init_from.is_some() { 0 } else { 1 };
    for k in first..run.stages.len() {
        let b = run.stages[k].first_step;
        let end = run.stage_end(k);
        for (set, series) in &run.evals {
            let g: Option<Gap> = measures::stability_gap(series, b, end);
            let Some(g) = g else { continue };
            rows.push(vec![
                run.name.clone(),
                format!("{} @ {b}", run.stages[k].name),
                set.clone(),
                format!("{:.4}", g.start),
                format!("{:.4}", g.depth),
                if g.depth > 0.0 {
                    format!("+{}", g.peak_after)
                } else {
                    "–".into()
                },
                match g.recovery {
                    _ if g.depth == 0.0 => "–".into(),
                    Some(s) => format!("{s} steps"),
                    None => "never".into(),
                },
            ]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::tests::one_stage_run;
    use crate::report::ReportOptions;

    #[test]
    fn a_run_from_init_from_has_a_stability_gap_at_step_0() {
        let run = one_stage_run(Some("/pretrained/checkpoint"));
        let ctx_runs = [run];
        let options = ReportOptions {
            last_k: 1,
            baseline: None,
            target_set: None,
            target_loss: None,
            stamp: String::new(),
        };
        let gaps = |runs: &[RunData]| {
            let ctx = Ctx {
                runs,
                k: 1,
                baseline_of: vec![None; runs.len()],
                outcomes: vec![],
                options: &options,
            };
            stability_gap_section(&ctx)
                .tables
                .first()
                .map(|t| t.rows.clone())
        };
        // en rises from 4.0 to 5.0 and never recovers; de falls (depth 0).
        let rows = gaps(&ctx_runs).expect("a gap table");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1][1..],
            ["cpt @ 0", "en", "4.0000", "1.0000", "+20", "never"]
        );
        assert!(gaps(&[one_stage_run(None)]).is_none());
    }
}
