//! The stability gap after every boundary: depth, peak and recovery per method, boundary and set.

use super::{Ctx, Unit};
use crate::measures::{self, Gap};
use crate::method::Method;
use crate::render::{loss, stat, steps, Table};
use crate::report::Section;
use crate::run::RunData;
use crate::stat::Stat;

/// The stability gap after every boundary, per method.
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
    let header = [
        ctx.who(),
        "boundary",
        "set",
        "at boundary",
        "depth",
        "peak at",
        "recovery",
    ];
    for unit in ctx.units() {
        // Peak and recovery are steps: the table in bits per byte leaves them out.
        let columns = if unit == Unit::Nats { 7 } else { 5 };
        let mut t = Table::new(&header[..columns])
            .left(&[1, 2])
            .captioned(unit.caption());
        for m in &ctx.methods {
            t.rows
                .extend(gap_rows(ctx, m, unit).into_iter().map(|mut r| {
                    r.truncate(columns);
                    r
                }));
        }
        if t.rows.is_empty() {
            sec.text
                .push("No run has a boundary with evaluations after it.".into());
            break;
        }
        sec.tables.push(t);
    }
    sec
}

/// A row per boundary of method `m` (its first run's stages) and set with evaluations on both sides: the
/// loss at the boundary, the gap's depth, when it peaked and when it recovered, over the method's runs.
fn gap_rows(ctx: &Ctx, m: &Method, unit: Unit) -> Vec<Vec<String>> {
    let first = &ctx.runs[m.first()];
    let mut rows = Vec::new();
    // A run started with `init_from` begins at a boundary: its step 0 follows earlier training.
    let from = if first.init_from.is_some() { 0 } else { 1 };
    for k in from..first.stages.len() {
        let b = first.stages[k].first_step;
        for set in first.evals.keys() {
            let gaps: Vec<(&RunData, Gap)> = m
                .runs
                .iter()
                .map(|&i| &ctx.runs[i])
                .filter_map(|r| {
                    Some((
                        r,
                        measures::stability_gap(r.evals.get(set)?, b, r.stage_end(k))?,
                    ))
                })
                .collect();
            if gaps.is_empty() {
                continue;
            }
            let at = |f: fn(&Gap) -> f64| {
                let values: Vec<Option<f64>> = gaps
                    .iter()
                    .map(|(r, g)| unit.of(r, set, Some(f(g))))
                    .collect();
                stat(Stat::of_some(values), loss)
            };
            let rising: Vec<&Gap> = gaps
                .iter()
                .map(|(_, g)| g)
                .filter(|g| g.depth > 0.0)
                .collect();
            rows.push(vec![
                m.name.clone(),
                format!("{} @ {b}", first.stages[k].name),
                set.clone(),
                at(|g| g.start),
                at(|g| g.depth),
                peak_cell(&rising),
                recovery_cell(&rising),
            ]);
        }
    }
    rows
}

/// Steps from the boundary to the peak, over the runs whose loss rose; "–" when none did.
fn peak_cell(rising: &[&Gap]) -> String {
    let peaks: Vec<f64> = rising.iter().map(|g| g.peak_after as f64).collect();
    Stat::of(&peaks).map_or("–".into(), |s| {
        s.format(|x| format!("+{}", steps(Some(x))))
    })
}

/// Steps to recovery over the runs whose loss rose: "never" when none recovered within the stage, and how
/// many did when only some did.
fn recovery_cell(rising: &[&Gap]) -> String {
    if rising.is_empty() {
        return "–".into();
    }
    let recovered: Vec<f64> = rising
        .iter()
        .filter_map(|g| g.recovery)
        .map(|s| s as f64)
        .collect();
    let (r, n) = (recovered.len(), rising.len());
    match Stat::of(&recovered) {
        None if n == 1 => "never".into(),
        None => format!("never ({n})"),
        Some(s) if r == n => format!("{} steps", s.format(|x| steps(Some(x)))),
        Some(s) => format!(
            "{} steps in {r} of {n}, never in {}",
            s.format(|x| steps(Some(x))),
            n - r
        ),
    }
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
            ..ReportOptions::default()
        };
        let gaps = |runs: &[RunData]| {
            let ctx = Ctx::new(runs, None, &options);
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
