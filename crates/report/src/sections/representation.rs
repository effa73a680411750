//! The representation monitor's measurements (`[monitor]`, docs/metrics.md): per method, RankMe, α-ReQ
//! and the dormant-unit fraction at its latest boundary and at the end, beside its forgetting; and one
//! figure per measure with every method over tokens. Only when some run measured.

use super::forgetting::RunMeans;
use super::{Ctx, Figures, Unit};
use crate::method::Method;
use crate::plot::{Chart, Series, Ticks};
use crate::render::{loss, signed, stat, Table};
use crate::report::Section;
use crate::run::RunData;
use rewarm_runfolder::RepresentationRecord;

type Pick = fn(&RepresentationRecord) -> f64;
const MEASURES: [(&str, &str, Pick); 3] = [
    ("RankMe", "rank-me", |r| r.rank_me),
    ("α-ReQ", "alpha-req", |r| r.alpha_req),
    ("dormant", "dormant-fraction", |r| r.dormant_fraction),
];

/// `None` when no run has measurements.
pub(crate) fn representation_section(ctx: &Ctx, figs: &mut Figures) -> Option<Section> {
    if ctx.runs.iter().all(|r| r.representation.is_empty()) {
        return None;
    }
    let mut sec = Section::new("Representation", true);
    let sets: std::collections::BTreeSet<String> = ctx
        .runs
        .iter()
        .flat_map(|r| r.representation.iter().map(|x| format!("`{}`", x.set)))
        .collect();
    let sets = sets.into_iter().collect::<Vec<_>>().join(", ");
    sec.text.push(format!(
        "Measured with `[monitor]` on the first sequences of validation set {sets} at every \
         evaluation: RankMe (effective rank of the final hidden states; higher = more directions used), \
         α-ReQ (decay of their covariance spectrum; higher = fewer dominant directions) and the fraction \
         of dormant MLP units. Each at the latest boundary (step 0 of an `init_from` run) → at the end, \
         beside the method's mean forgetting of old sets (nats): whether the representation's change \
         goes with forgetting is for the reader to judge across methods; no causal claim is made here."
    ));
    let mut header = vec![ctx.who(), "boundary"];
    header.extend(MEASURES.iter().map(|m| m.0));
    header.push("forgetting");
    let mut t = Table::new(&header).left(&[1]);
    let means: Vec<RunMeans> = (0..ctx.runs.len())
        .map(|i| RunMeans::of(ctx, i, Unit::Nats))
        .collect();
    for m in &ctx.methods {
        t.rows.extend(row(ctx, m, &means));
    }
    sec.tables.push(t);
    if let Some(t) = correlations(ctx, &means) {
        sec.text.push(
            "Across runs: Spearman's rank correlation between each measure's change (end − boundary) \
             and the run's forgetting. With n runs, |ρ| above about 1.96/√(n − 1) is unlikely by chance \
             (5%, two-sided, large-sample); runs of one method are counted one by one."
                .into(),
        );
        sec.tables.push(t);
    }
    for (title, stem, pick) in MEASURES {
        let points = |r: &RunData| -> Vec<(u64, u64, f64)> {
            let p = |x: &RepresentationRecord| (x.step, x.tokens, pick(x));
            r.representation.iter().map(p).collect()
        };
        let chart = means_chart(ctx, &format!("{title} over training"), title, &points);
        sec.figures
            .push(figs.add(format!("representation-{stem}"), chart));
    }
    Some(sec)
}

/// The step of run `r`'s latest boundary with a measurement at or before it.
fn boundary(r: &RunData) -> Option<u64> {
    boundary_before(r, r.representation.last()?.step)
}

/// The step of run `r`'s latest stage boundary before `last` (step 0 of an `init_from` run counts as
/// one: its weights come from another run).
pub(super) fn boundary_before(r: &RunData, last: u64) -> Option<u64> {
    let from = if r.init_from.is_some() { 0 } else { 1 };
    r.stages
        .iter()
        .skip(from)
        .map(|s| s.first_step)
        .rfind(|&b| b < last)
}

/// The measurement at `step` (the last one at or before it).
fn at(r: &RunData, step: u64) -> Option<&RepresentationRecord> {
    r.representation.iter().rev().find(|x| x.step <= step)
}

/// Method `m`'s row: each measure at its boundary → at the end (means over its runs), and forgetting.
fn row(ctx: &Ctx, m: &Method, means: &[RunMeans]) -> Option<Vec<String>> {
    let first = &ctx.runs[m.first()];
    let b = boundary(first);
    let mut row = vec![
        m.name.clone(),
        b.map_or("–".into(), |b| format!("step {b}")),
    ];
    for (_, _, pick) in MEASURES {
        let before = ctx.stat(m, |i| Some(pick(at(&ctx.runs[i], b?)?)));
        let after = ctx.stat(m, |i| Some(pick(ctx.runs[i].representation.last()?)));
        row.push(format!("{} → {}", stat(before, loss), stat(after, loss)));
    }
    row.push(stat(ctx.stat(m, |i| means[i].forgetting), signed));
    first.representation.last().map(|_| row)
}

/// Per measure: the runs with a change and a forgetting, Spearman's ρ between the two, the 5% threshold.
fn correlations(ctx: &Ctx, means: &[RunMeans]) -> Option<Table> {
    let mut t = Table::new(&["measure", "runs", "Spearman ρ", "|ρ| for 5%"]).left(&[0]);
    for (title, _, pick) in MEASURES {
        let pairs: Vec<(f64, f64)> = (0..ctx.runs.len())
            .filter_map(|i| {
                let r = &ctx.runs[i];
                let change = pick(r.representation.last()?) - pick(at(r, boundary(r)?)?);
                Some((change, means[i].forgetting?))
            })
            .collect();
        if let Some(rho) = crate::stat::spearman(&pairs) {
            let n = pairs.len();
            t.rows.push(vec![
                title.into(),
                n.to_string(),
                format!("{rho:+.2}"),
                format!("{:.2}", 1.96 / ((n - 1) as f64).sqrt()),
            ]);
        }
    }
    (!t.rows.is_empty()).then_some(t)
}

/// A run's `(step, tokens, value)` points of one measure.
pub(super) type Points<'a> = &'a dyn Fn(&RunData) -> Vec<(u64, u64, f64)>;

/// A value over tokens, a line per method: the mean over its runs at the steps all of them have, each
/// run's `(step, tokens, value)` points given by `points`.
pub(super) fn means_chart(ctx: &Ctx, title: &str, y_label: &str, points: Points) -> Chart {
    let mut chart = Chart::new(title.to_owned(), "tokens", y_label);
    chart.x_ticks = Ticks::Si;
    for m in &ctx.methods {
        let runs: Vec<Vec<(u64, u64, f64)>> =
            m.runs.iter().map(|&i| points(&ctx.runs[i])).collect();
        let Some(first) = runs.first() else {
            continue;
        };
        let means = first
            .iter()
            .filter_map(|&(step, tokens, _)| {
                let values: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.iter().find(|y| y.0 == step))
                    .map(|y| y.2)
                    .collect();
                (values.len() == runs.len()).then(|| {
                    (
                        tokens as f64,
                        values.iter().sum::<f64>() / values.len() as f64,
                    )
                })
            })
            .collect();
        chart.series.push(Series::line(m.name.clone(), means));
    }
    chart
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::tests::one_stage_run;
    use crate::report::ReportOptions;

    fn measured(step: u64, rank_me: f64) -> RepresentationRecord {
        RepresentationRecord {
            step,
            stage: "cpt".into(),
            tokens: 10 * step,
            set: "de".into(),
            rank_me,
            alpha_req: 1.0,
            dormant_fraction: 0.0,
            layers: Vec::new(),
        }
    }

    #[test]
    fn each_measure_goes_from_the_boundary_to_the_end_beside_forgetting() {
        // An `init_from` run: step 0 is its boundary. RankMe 30 there, 20 at the end; English (old)
        // rises from 4.0 to 5.0: forgetting +1.0 (k = 1).
        let mut run = one_stage_run(Some("pretrained/"));
        run.representation = vec![measured(0, 30.0), measured(10, 25.0), measured(20, 20.0)];
        let options = ReportOptions {
            last_k: 1,
            ..ReportOptions::default()
        };
        let runs = [run];
        let ctx = Ctx::new(&runs, None, &options);
        let sec = representation_section(&ctx, &mut Figures::default()).expect("a section");
        assert_eq!(
            sec.tables[0].rows[0],
            [
                "r",
                "step 0",
                "30.0000 → 20.0000",
                "1.0000 → 1.0000",
                "0.0000 → 0.0000",
                "+1.0000"
            ]
        );
        // Without measurements there is no section.
        let plain = [one_stage_run(None)];
        let ctx = Ctx::new(&plain, None, &options);
        assert!(representation_section(&ctx, &mut Figures::default()).is_none());
    }

    #[test]
    fn the_measures_change_is_rank_correlated_with_forgetting_across_runs() {
        // Four runs: RankMe falls by 2, 4, 6, 8 while English's forgetting is 0.5, 1.0, 1.5, 1.0 (its
        // last loss 4.5, 5.0, 5.5, 5.0): ranks of the change 4 3 2 1, of forgetting 1 2.5 4 2.5.
        let runs: Vec<RunData> = [(2.0, 4.5), (4.0, 5.0), (6.0, 5.5), (8.0, 5.0)]
            .iter()
            .enumerate()
            .map(|(i, &(fall, last))| {
                let mut run = one_stage_run(Some("pretrained/"));
                run.name = format!("r{i}");
                run.method = run.name.clone();
                run.evals.get_mut("en").unwrap()[2].loss = last;
                run.representation = vec![measured(0, 30.0), measured(20, 30.0 - fall)];
                run
            })
            .collect();
        let options = ReportOptions {
            last_k: 1,
            ..ReportOptions::default()
        };
        let ctx = Ctx::new(&runs, None, &options);
        let sec = representation_section(&ctx, &mut Figures::default()).expect("a section");
        // ρ of (4, 3, 2, 1) and (1, 2.5, 4, 2.5): −3 / √(5 · 4.5) = −0.63; α-ReQ and the dormant
        // fraction do not change, so they have no row.
        let t = &sec.tables[1];
        assert_eq!(t.rows, [["RankMe", "4", "-0.63", "1.13"]]);
    }
}
