//! Tokens and FLOPs per run, relative to its union baseline.

use super::Ctx;
use crate::render::{count, ratio, sci, Table};
use crate::report::Section;
use crate::run::RunData;

/// Replay tokens (all `<source>/replay` counters) at the end of the records.
fn replay_tokens(run: &RunData) -> u64 {
    run.train.last().map_or(0, |t| {
        t.tokens_by_source
            .iter()
            .filter(|(k, _)| k.ends_with("/replay"))
            .map(|(_, v)| v)
            .sum()
    })
}

/// Tokens after the first stage (continued pre-training); all tokens for a run started with `init_from`.
fn cpt_tokens(run: &RunData) -> Option<u64> {
    if run.init_from.is_some() {
        return Some(run.tokens());
    }
    let b = run.stages.get(1)?;
    Some(run.tokens().saturating_sub(b.tokens_before))
}

/// Tokens and FLOPs, relative to the union baseline.
pub(crate) fn cost_section(ctx: &Ctx) -> Section {
    let (runs, baseline_of) = (ctx.runs, &ctx.baseline_of);
    let mut sec = Section::new("Tokens and FLOPs", true);
    sec.text.push(
        "FLOPs = tokens × 6·(N + V·C) + 12·L·T·C per token (rewarm-model's `flops_per_token`). CPT tokens \
         are those after the first stage (all tokens of an `init_from` run): the cost of continual \
         pre-training once the first model exists. Ratios are to the union baseline's total \
         (Ibrahim et al.: CPT ≈ ½ of the union retrain)."
            .into(),
    );
    let mut t = Table::new(&[
        "run",
        "tokens",
        "FLOPs",
        "CPT tokens",
        "replay tokens",
        "baseline",
        "tokens × union",
        "CPT × union",
        "FLOPs × union",
    ])
    .left(&[5]);
    for (i, r) in runs.iter().enumerate() {
        let flops = r.flops_per_token().map(|f| f * r.tokens() as f64);
        let base = baseline_of[i].map(|b| &runs[b]);
        let base_tokens = base.map(|b| b.tokens() as f64).filter(|&x| x > 0.0);
        let base_flops = base
            .and_then(|b| b.flops_per_token().map(|f| f * b.tokens() as f64))
            .filter(|&x| x > 0.0);
        let cpt = cpt_tokens(r);
        t.rows.push(vec![
            r.name.clone(),
            count(r.tokens()),
            sci(flops),
            cpt.map_or("–".into(), count),
            count(replay_tokens(r)),
            base.map_or("–".into(), |b| b.name.clone()),
            ratio(base_tokens.map(|b| r.tokens() as f64 / b)),
            ratio(base_tokens.zip(cpt).map(|(b, c)| c as f64 / b)),
            ratio(base_flops.zip(flops).map(|(b, f)| f / b)),
        ]);
    }
    sec.tables.push(t);
    sec
}
