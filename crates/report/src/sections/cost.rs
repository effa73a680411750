//! Tokens and FLOPs per method, relative to its union baseline.

use super::Ctx;
use crate::method::Method;
use crate::render::{ratio, sci, stat, tokens, Table};
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

/// Tokens and FLOPs per method, relative to the union baseline.
pub(crate) fn cost_section(ctx: &Ctx) -> Section {
    let mut sec = Section::new("Tokens and FLOPs", true);
    sec.text.push(
        "FLOPs = tokens × 6·(N + V·C) + 12·L·T·C per token (rewarm-model's `flops_per_token`). CPT tokens \
         are those after the first stage (all tokens of an `init_from` run): the cost of continual \
         pre-training once the first model exists. Ratios are to the union baseline's total \
         (Ibrahim et al.: CPT ≈ ½ of the union retrain)."
            .into(),
    );
    let mut t = Table::new(&[
        ctx.who(),
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
    for m in &ctx.methods {
        t.rows.push(cost_row(ctx, m));
    }
    sec.tables.push(t);
    sec
}

/// Run `i`'s union baseline's tokens (none when it has none or it trained none).
fn base_tokens(ctx: &Ctx, i: usize) -> Option<f64> {
    let b = &ctx.runs[ctx.baseline_of[i]?];
    Some(b.tokens() as f64).filter(|&x| x > 0.0)
}

/// Run `i`'s tokens as a multiple of its union baseline's.
pub(crate) fn tokens_vs_union(ctx: &Ctx, i: usize) -> Option<f64> {
    Some(ctx.runs[i].tokens() as f64 / base_tokens(ctx, i)?)
}

/// Method `m`'s tokens, FLOPs and their ratios to each run's union baseline.
fn cost_row(ctx: &Ctx, m: &Method) -> Vec<String> {
    let runs = ctx.runs;
    let flops = |r: &RunData| r.flops_per_token().map(|f| f * r.tokens() as f64);
    let base = |i: usize| ctx.baseline_of[i].map(|b| &runs[b]);
    let base_flops = |i| base(i).and_then(flops).filter(|&x| x > 0.0);
    let cell = |f: &dyn Fn(usize) -> Option<f64>, fmt| stat(ctx.stat(m, f), fmt);
    let baseline = ctx
        .baseline_method(m)
        .map_or("–".into(), |b| ctx.methods[b].name.clone());
    vec![
        m.name.clone(),
        cell(&|i| Some(runs[i].tokens() as f64), tokens),
        cell(&|i| flops(&runs[i]), sci),
        cell(&|i| cpt_tokens(&runs[i]).map(|c| c as f64), tokens),
        cell(&|i| Some(replay_tokens(&runs[i]) as f64), tokens),
        baseline,
        cell(&|i| tokens_vs_union(ctx, i), ratio),
        cell(
            &|i| Some(cpt_tokens(&runs[i])? as f64 / base_tokens(ctx, i)?),
            ratio,
        ),
        cell(&|i| Some(flops(&runs[i])? / base_flops(i)?), ratio),
    ]
}
