//! The stability gap after every boundary: depth, peak and recovery per run, boundary and set.

use super::Ctx;
use crate::measures::{self, Gap};
use crate::render::Table;
use crate::report::Section;

/// The stability gap after every boundary.
pub(crate) fn gap_section(ctx: &Ctx) -> Section {
    let runs = ctx.runs;
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
    for r in runs {
        // A run started with `init_from` begins at a boundary: its step 0 follows earlier training.
        let first = if r.init_from.is_some() { 0 } else { 1 };
        for k in first..r.stages.len() {
            let b = r.stages[k].first_step;
            let end = r.stage_end(k);
            for (set, series) in &r.evals {
                let g: Option<Gap> = measures::stability_gap(series, b, end);
                let Some(g) = g else { continue };
                t.rows.push(vec![
                    r.name.clone(),
                    format!("{} @ {b}", r.stages[k].name),
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
    }
    if t.rows.is_empty() {
        sec.text
            .push("No run has a boundary with evaluations after it.".into());
    } else {
        sec.tables.push(t);
    }
    sec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::tests::one_stage_run;
    use crate::report::ReportOptions;
    use crate::run::RunData;

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
            gap_section(&ctx).tables.first().map(|t| t.rows.clone())
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
