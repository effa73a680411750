//! Continual runs against the union retrain: per method, its AVG minus its union baseline's AVG, the
//! standard error of that difference and a verdict — "≈" within 2σ, else better or worse.

use super::{Ctx, Unit};
use crate::method::Method;
use crate::render::{loss, signed, stat, Table};
use crate::report::Section;
use crate::stat::{compare, Difference};

/// The comparison of every method that has a union baseline (other than itself) with it; `None` when
/// there is none.
pub(crate) fn against_union_section(ctx: &Ctx) -> Option<Section> {
    let pairs: Vec<(&Method, &Method)> = ctx
        .methods
        .iter()
        .filter_map(|m| {
            let b = &ctx.methods[ctx.baseline_method(m)?];
            (b != m).then_some((m, b))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let mut sec = Section::new("Continual runs against the union retrain", true);
    sec.text.push(
        "Δ = a method's AVG − its union baseline's AVG, each the mean over the method's runs (negative = \
         lower loss than the retrain). σ_diff = √(sd_a²/n_a + sd_b²/n_b), the standard error of the \
         difference of two means, with the sample sd over each method's runs. \"≈\" means |Δ| ≤ 2σ_diff; \
         otherwise the method is better (Δ < 0) or worse. With one run on either side there is no σ \
         (n = 1, no σ) and no verdict: train several seeds of both to get one."
            .into(),
    );
    for unit in ctx.units() {
        let mut t = Table::new(&[
            ctx.who(),
            "baseline",
            "AVG",
            "baseline AVG",
            "Δ",
            "σ_diff",
            "verdict",
        ])
        .left(&[1, 6])
        .captioned(unit.caption());
        for (m, b) in &pairs {
            t.rows.push(row(ctx, m, b, unit));
        }
        sec.tables.push(t);
    }
    Some(sec)
}

/// Method `m`'s AVG against method `b`'s in `unit`; `None` when either has no AVG.
pub(crate) fn difference(ctx: &Ctx, m: &Method, b: &Method, unit: Unit) -> Option<Difference> {
    let a_avg = ctx.stat(m, |i| ctx.avg(i, unit))?;
    let b_avg = ctx.stat(b, |i| ctx.avg(i, unit))?;
    Some(compare(&a_avg, &b_avg))
}

/// Method `m` against its baseline `b`, by AVG in `unit`.
fn row(ctx: &Ctx, m: &Method, b: &Method, unit: Unit) -> Vec<String> {
    let a_avg = ctx.stat(m, |i| ctx.avg(i, unit));
    let b_avg = ctx.stat(b, |i| ctx.avg(i, unit));
    let d = difference(ctx, m, b, unit);
    vec![
        m.name.clone(),
        b.name.clone(),
        stat(a_avg, loss),
        stat(b_avg, loss),
        signed(d.map(|d| d.delta)),
        loss(d.and_then(|d| d.sigma)),
        d.map_or("–", |d| d.verdict.text()).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::tests::one_stage_run;
    use crate::report::ReportOptions;
    use crate::run::RunData;
    use crate::stat::Verdict;

    /// A run of method `label` (sweep `g`, seed `seed`) whose final losses are `de` and `en` (AVG their
    /// mean); `union` runs mix both sets in one stage.
    fn run(label: &str, seed: u64, de: f64, en: f64) -> RunData {
        let mut r = one_stage_run(None);
        r.group = Some("g".into());
        r.method = label.into();
        r.name = format!("g/{label}/seed={seed}");
        r.seed = Some(seed);
        if label == "union" {
            r.stages[0].sources.push("en".into());
        }
        r.evals.get_mut("de").unwrap()[2].loss = de;
        r.evals.get_mut("en").unwrap()[2].loss = en;
        r
    }

    #[test]
    fn a_method_within_two_sigma_of_the_union_is_approximately_equal() {
        // AVGs: cpt 3.0, 3.2, 3.4 (mean 3.2, sd 0.2); union 3.0, 3.1, 3.2 (mean 3.1, sd 0.1).
        // σ_diff = √(0.04/3 + 0.01/3) = √(0.05/3) ≈ 0.1291, Δ = 0.1 ≤ 2σ: ≈.
        let mut runs = vec![
            run("cpt", 1, 3.0, 3.0),
            run("cpt", 2, 3.1, 3.3),
            run("cpt", 3, 3.4, 3.4),
            run("union", 1, 3.0, 3.0),
            run("union", 2, 3.0, 3.2),
            run("union", 3, 3.2, 3.2),
        ];
        runs.sort_by(|a, b| a.name.cmp(&b.name));
        let options = ReportOptions {
            last_k: 1,
            ..ReportOptions::default()
        };
        let ctx = Ctx::new(&runs, None, &options);
        let sec = against_union_section(&ctx).expect("a comparison");
        let rows = &sec.tables[0].rows;
        assert_eq!(rows.len(), 1, "the union is not compared with itself");
        assert_eq!(
            rows[0],
            [
                "g/cpt",
                "g/union",
                "3.2000 ± 0.2000 (3)",
                "3.1000 ± 0.1000 (3)",
                "+0.1000",
                "0.1291",
                "≈"
            ]
        );
        let (a, b) = (&ctx.methods[0], &ctx.methods[1]);
        assert_eq!(row(&ctx, a, b, Unit::Nats)[6], Verdict::Within2Sigma.text());
    }
}
