//! Final validation loss per method and set, and AVG, next to the count-model baselines (a loss not below
//! the bigram's is flagged); the loss curves per method (a method with several seeds as its mean curve with
//! a band from its lowest to its highest run), and per set for the summary.

use super::{Ctx, Figures, Unit};
use crate::counts::{CountBaselines, FLAG, FLAG_NOTE};
use crate::measures;
use crate::method::Method;
use crate::plot::{Chart, Series, Ticks};
use crate::render::{loss, slug, stat, Table};
use crate::report::Section;
use crate::run::RunData;
use crate::stat::Stat;
use rewarm_runfolder::SetBaseline;
use std::collections::BTreeSet;

/// Final loss per set and AVG, per method, in each unit; loss curves per method.
pub(crate) fn final_loss_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let k = ctx.k;
    let sets: BTreeSet<String> = ctx.runs.iter().flat_map(|r| r.sets()).collect();
    let mut sec = Section::new("Final validation loss", true);
    sec.text.push(format!(
        "Mean of the last {k} evaluation{} of each set (nats per token). AVG is the unweighted mean over \
         the run's sets (Ibrahim et al. Table 2); it hides where the loss sits, so read it with the \
         per-set losses.",
        if k == 1 { "" } else { "s" }
    ));
    if ctx.seeded() {
        sec.text.push(
            "A method is the runs of one sweep folder that share a label and differ only by their seed. \
             A method with several runs shows mean ± sample sd (n runs) in every table, and in the figures \
             its mean curve with a band from its lowest to its highest run."
                .into(),
        );
    }
    let counts = CountBaselines::of(ctx.runs);
    for unit in ctx.units() {
        sec.tables.push(final_loss_table(ctx, &sets, &counts, unit));
    }
    sec.footnotes = count_notes(ctx, &sets, &counts);
    if ctx.methods.iter().any(|m| incomplete(ctx, m)) {
        sec.footnotes.push(UNFINISHED_NOTE.to_owned());
    }
    for m in &ctx.methods {
        let name = figs.add(format!("loss-{}", slug(&m.name)), method_chart(ctx, m));
        sec.figures.push(name);
    }
    sec
}

/// A row per method: its final loss on each of `sets` (flagged when not below the set's bigram) and AVG,
/// in `unit`; then the count baselines.
fn final_loss_table(
    ctx: &Ctx,
    sets: &BTreeSet<String>,
    counts: &CountBaselines,
    unit: Unit,
) -> Table {
    let mut header: Vec<&str> = vec![ctx.who()];
    header.extend(sets.iter().map(String::as_str));
    header.push("AVG");
    let mut t = Table::new(&header).captioned(unit.caption());
    for m in &ctx.methods {
        let mut row = vec![m.name.clone() + if incomplete(ctx, m) { UNFINISHED } else { "" }];
        for set in sets {
            let cell = stat(ctx.stat(m, |i| ctx.final_loss(i, set, unit)), loss);
            let flag = if flagged(ctx, counts, m, set) {
                FLAG
            } else {
                ""
            };
            row.push(cell + flag);
        }
        row.push(stat(ctx.stat(m, |i| ctx.avg(i, unit)), loss));
        t.rows.push(row);
    }
    t.rows.extend(count_rows(counts, sets, unit));
    t
}

/// Marks a method with a run that has not reached its planned steps: its "final" losses are its latest.
pub(crate) const UNFINISHED: &str = " ‡";
pub(crate) const UNFINISHED_NOTE: &str =
    "‡ incomplete: a run of this method has not reached its planned steps, so \
     these are its latest evaluations, not final losses.";

pub(crate) fn incomplete(ctx: &Ctx, m: &Method) -> bool {
    m.runs.iter().any(|&i| !ctx.runs[i].complete())
}

/// Whether method `m`'s (mean) final loss on `set` is not below the set's bigram.
pub(crate) fn flagged(ctx: &Ctx, counts: &CountBaselines, m: &Method, set: &str) -> bool {
    let nats = ctx.stat(m, |i| ctx.final_loss(i, set, Unit::Nats));
    counts.flags(set, nats.map(|s| s.mean))
}

/// The rows "unigram (counts)" and "bigram (counts)": each set's baseline in `unit`, and their mean when
/// every set has one; none without baselines.
pub(crate) fn count_rows(
    counts: &CountBaselines,
    sets: &BTreeSet<String>,
    unit: Unit,
) -> Vec<Vec<String>> {
    if counts.sets.is_empty() {
        return Vec::new();
    }
    type Pick = fn(&SetBaseline) -> f64;
    let models: [(&str, Pick); 2] = [
        ("unigram (counts)", |b| b.unigram),
        ("bigram (counts)", |b| b.bigram),
    ];
    models
        .iter()
        .map(|(name, pick)| {
            let values: Vec<Option<f64>> = sets
                .iter()
                .map(|set| {
                    let shown = counts.sets.get(set)?;
                    unit.with(Some(pick(&shown.baseline)), shown.bytes_per_token)
                })
                .collect();
            let all: Option<Vec<f64>> = values.iter().copied().collect();
            let mut row = vec![name.to_string()];
            row.extend(values.into_iter().map(loss));
            row.push(loss(all.and_then(|v| measures::average(&v))));
            row
        })
        .collect()
}

/// What the final-loss table needs said under it: the flag, runs that disagree on a baseline, or that
/// there are no baselines.
pub(crate) fn count_notes(
    ctx: &Ctx,
    sets: &BTreeSet<String>,
    counts: &CountBaselines,
) -> Vec<String> {
    if counts.sets.is_empty() {
        return vec![
            "No count-model baselines: these run folders hold no baselines.json (written by `rewarm train` \
             at every start, a resume included, since issue 12)."
                .into(),
        ];
    }
    let any_flag = ctx
        .methods
        .iter()
        .any(|m| sets.iter().any(|set| flagged(ctx, counts, m, set)));
    let mut notes: Vec<String> = any_flag.then(|| FLAG_NOTE.to_owned()).into_iter().collect();
    notes.extend(counts.notes());
    notes
}

/// A method's loss on each set over tokens, its stage boundaries marked.
fn method_chart(ctx: &Ctx, m: &Method) -> Chart {
    let first = &ctx.runs[m.first()];
    let mut chart = loss_chart(format!(
        "{}: validation loss per set{}",
        m.name,
        band_note(m)
    ));
    let runs = method_runs(ctx, m);
    for set in first.evals.keys() {
        chart.series.extend(mean_series(set.clone(), &runs, set));
    }
    chart.vlines = first
        .stages
        .iter()
        .skip(1)
        .map(|s| (s.tokens_before as f64, s.name.clone()))
        .collect();
    chart
}

/// Every method's loss on `set` over tokens, with every boundary of their stages marked (one line per
/// token position, named by the first method's stage there).
pub(crate) fn set_chart(ctx: &Ctx, set: &str) -> Chart {
    let seeded = if ctx.seeded() {
        " (mean of seeds; band: lowest to highest run)"
    } else {
        ""
    };
    let mut chart = loss_chart(format!("validation loss on {set}, all runs{seeded}"));
    for m in &ctx.methods {
        chart
            .series
            .extend(mean_series(m.name.clone(), &method_runs(ctx, m), set));
        for s in ctx.runs[m.first()].stages.iter().skip(1) {
            let x = s.tokens_before as f64;
            if !chart.vlines.iter().any(|v| v.0 == x) {
                chart.vlines.push((x, s.name.clone()));
            }
        }
    }
    chart
}

fn method_runs<'a>(ctx: &Ctx<'a>, m: &Method) -> Vec<&'a RunData> {
    m.runs.iter().map(|&i| &ctx.runs[i]).collect()
}

/// What a method's chart title says about its band.
fn band_note(m: &Method) -> String {
    if m.runs.len() > 1 {
        format!(
            " (mean of {} seeds; band: lowest to highest run)",
            m.runs.len()
        )
    } else {
        String::new()
    }
}

/// The mean over `runs` of their loss on `set` at each step every one of them evaluated, over tokens,
/// with a band from the lowest to the highest run when there are several; `None` when no run has `set`.
fn mean_series(label: String, runs: &[&RunData], set: &str) -> Option<Series> {
    let series: Vec<_> = runs.iter().filter_map(|r| r.evals.get(set)).collect();
    let mut mean = Series::line(label, Vec::new());
    for p in *series.first()? {
        let at: Vec<f64> = series
            .iter()
            .filter_map(|s| {
                let j = s.binary_search_by_key(&p.step, |q| q.step).ok()?;
                Some(s[j].loss)
            })
            .collect();
        let Some(s) = Stat::of(&at).filter(|s| s.n == series.len()) else {
            continue;
        };
        let x = p.tokens as f64;
        mean.points.push((x, s.mean));
        if series.len() > 1 {
            let lo = at.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = at.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            mean.band.push((x, lo, hi));
        }
    }
    Some(mean)
}

/// An empty chart of loss over tokens.
fn loss_chart(title: String) -> Chart {
    let mut chart = Chart::new(title, "tokens", "loss (nats/token)");
    chart.x_ticks = Ticks::Si;
    chart
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::tests::one_stage_run;
    use crate::report::ReportOptions;
    use rewarm_runfolder::Baselines;
    use std::collections::BTreeMap;

    #[test]
    fn the_count_baselines_are_rows_and_a_loss_not_below_the_bigram_is_flagged() {
        // Final losses (k = 1): de 5.5, en 5.0. The bigram is 5.5 on de (not beaten) and 6.0 on en.
        let mut run = one_stage_run(None);
        let baseline = |unigram, bigram| SetBaseline {
            unigram,
            bigram,
            targets: 100,
            bytes_per_token: None,
        };
        run.baselines = Some(Baselines {
            sets: BTreeMap::from([
                ("de".to_owned(), baseline(7.0, 5.5)),
                ("en".to_owned(), baseline(6.5, 6.0)),
            ]),
        });
        let options = ReportOptions {
            last_k: 1,
            ..ReportOptions::default()
        };
        let runs = [run];
        let ctx = Ctx::new(&runs, None, &options);
        let sec = final_loss_section(&ctx, &mut Figures::default());
        let rows = &sec.tables[0].rows;
        assert_eq!(rows[0], ["r", "5.5000†", "5.0000", "5.2500"]);
        assert_eq!(rows[1], ["unigram (counts)", "7.0000", "6.5000", "6.7500"]);
        assert_eq!(rows[2], ["bigram (counts)", "5.5000", "6.0000", "5.7500"]);
        assert_eq!(sec.footnotes, [FLAG_NOTE]);
    }

    #[test]
    fn a_run_short_of_its_planned_steps_is_marked_incomplete() {
        let mut run = one_stage_run(None);
        run.planned_steps = Some(run.last_step() + 1);
        let options = ReportOptions::default();
        let runs = [run];
        let ctx = Ctx::new(&runs, None, &options);
        let sec = final_loss_section(&ctx, &mut Figures::default());
        assert_eq!(sec.tables[0].rows[0][0], "r ‡");
        assert!(sec.footnotes.contains(&UNFINISHED_NOTE.to_owned()));
    }
}
