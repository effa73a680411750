//! Time to target: per workload (a sweep folder with one target set and loss), the steps, tokens and
//! training seconds each method took to reach the target — with the old data's loss under a ceiling when
//! one is asked for (docs/papers.md, K1) — and its ratio to the fastest method's tokens. The workloads
//! serve the performance profiles too ([`super::profiles`]).

use super::Ctx;
use crate::measures;
use crate::method::Method;
use crate::outcomes::Role;
use crate::render::{loss, stat, steps, tokens, Table};
use crate::report::Section;
use crate::run::EvalPoint;
use crate::stat::Stat;
use std::collections::BTreeMap;

/// A time-to-target workload: a group of methods with one target.
pub(crate) struct Workload {
    pub(crate) name: String,
    pub(crate) set: String,
    pub(crate) target: f64,
    /// Where the target came from, for the table's text.
    pub(crate) source: String,
    /// Indices into `Ctx::methods`.
    pub(crate) methods: Vec<usize>,
    pub(crate) ceiling: Option<Ceiling>,
}

/// The old data's ceiling (K1): the target counts only at an evaluation where the loss on `set` is at
/// most `loss`, the continued model's loss there when the continual training began (`start`) plus the
/// margin asked for.
pub(crate) struct Ceiling {
    pub(crate) set: String,
    pub(crate) start: f64,
    pub(crate) loss: f64,
}

/// One workload per sweep folder (runs given directly form one more), with its target set and loss; a
/// folder without either has none.
pub(crate) fn workloads(ctx: &Ctx) -> Vec<Workload> {
    let mut groups: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for (m, method) in ctx.methods.iter().enumerate() {
        let group = ctx.runs[method.first()].group.clone();
        groups.entry(group).or_default().push(m);
    }
    groups
        .into_iter()
        .filter_map(|(group, members)| {
            let baseline = members
                .iter()
                .find_map(|&m| ctx.baseline_method(&ctx.methods[m]));
            let set = target_set(ctx, &members)?;
            let (target, source) = target_loss(ctx, &set, baseline)?;
            let ceiling = ctx
                .options
                .ceiling
                .and_then(|margin| ceiling(ctx, &members, margin));
            Some(Workload {
                name: group.unwrap_or_else(|| "(runs)".into()),
                set,
                target,
                source,
                methods: members,
                ceiling,
            })
        })
        .collect()
}

/// The given target set, else the new data of the first continual method among `members`: the first
/// source of its last stage's mixture.
fn target_set(ctx: &Ctx, members: &[usize]) -> Option<String> {
    ctx.options.target_set.clone().or_else(|| {
        members
            .iter()
            .map(|&m| &ctx.runs[ctx.methods[m].first()])
            .find(|r| r.stages.len() > 1 || r.init_from.is_some())
            .and_then(|r| r.stages.last()?.sources.first().cloned())
    })
}

/// The given target loss, else the baseline method's final loss on `set` (the mean over its runs); with
/// where it came from.
fn target_loss(ctx: &Ctx, set: &str, baseline: Option<usize>) -> Option<(f64, String)> {
    if let Some(x) = ctx.options.target_loss {
        return Some((x, "given".to_owned()));
    }
    let b = &ctx.methods[baseline?];
    let s = ctx.stat(b, |i| {
        measures::final_loss(ctx.runs[i].evals.get(set)?, ctx.k)
    })?;
    let of = if s.n > 1 {
        format!("mean final of {} ({})", b.name, s.n)
    } else {
        format!("final of {}", b.name)
    };
    Some((s.mean, of))
}

/// The ceiling `margin` nats above the loss the first continual run among `members` started from on its
/// old set (`--ceiling-set`, else its first old one); `None` without a continual run.
fn ceiling(ctx: &Ctx, members: &[usize], margin: f64) -> Option<Ceiling> {
    let wanted = ctx.options.ceiling_set.as_deref();
    members.iter().find_map(|&m| {
        let old = ctx.outcomes[ctx.methods[m].first()]
            .iter()
            .find(|o| o.role == Role::Old && wanted.is_none_or(|s| s == o.set))?;
        let start = old.learned?;
        Some(Ceiling {
            set: old.set.clone(),
            start,
            loss: start + margin,
        })
    })
}

/// Per run of method `m`: the first evaluation of `w`'s set at or below its target, where the ceiling
/// set (if any) is evaluated at or below the ceiling too (`None`: missed).
fn reached(ctx: &Ctx, w: &Workload, m: &Method) -> Vec<Option<EvalPoint>> {
    m.runs
        .iter()
        .map(|&i| {
            let evals = &ctx.runs[i].evals;
            let under_ceiling = |p: &EvalPoint| {
                w.ceiling.as_ref().is_none_or(|c| {
                    evals
                        .get(&c.set)
                        .is_some_and(|s| s.iter().any(|q| q.step == p.step && q.loss <= c.loss))
                })
            };
            let series = evals.get(&w.set)?;
            let allowed: Vec<EvalPoint> = series.iter().copied().filter(under_ceiling).collect();
            measures::time_to_target(&allowed, w.target)
        })
        .collect()
}

/// Method `m`'s tokens to the target of `w`: the mean over its runs, ∞ when one of them missed it.
pub(crate) fn method_tokens(ctx: &Ctx, w: &Workload, m: &Method) -> f64 {
    let points: Option<Vec<f64>> = reached(ctx, w, m)
        .iter()
        .map(|p| p.map(|p| p.tokens as f64))
        .collect();
    points
        .and_then(|t| Stat::of(&t))
        .map_or(f64::INFINITY, |s| s.mean)
}

/// Time to target per workload, or what to pass when there is no target.
pub(crate) fn time_to_target_section(ctx: &Ctx, workloads: &[Workload]) -> Section {
    let mut sec = Section::new("Time to target", true);
    if workloads.is_empty() {
        sec.text.push(
            "No target: pass --target-set and --target-loss, or include a union baseline (its final loss on \
             the target set becomes the target)."
                .into(),
        );
        return sec;
    }
    sec.text.push(
        "Steps, tokens and training seconds until the first evaluation at or below the target loss \
         (AlgoPerf; ∞ = missed). Seconds are estimated from the logged tokens/s, without evaluations \
         (AlgoPerf stops its clock for them), on the machine each run trained on. × fastest is the ratio \
         of tokens to the fastest run of the same workload (sweep folder)."
            .into(),
    );
    if let Some(margin) = ctx.options.ceiling {
        sec.text.push(format!(
            "Ceiling (K1): an evaluation counts only if the old data's loss is then at most {margin:.4} nats \
             above the continued model's loss there when continual training began; a workload without a \
             continual run has no ceiling."
        ));
    }
    if ctx.seeded() {
        sec.text.push(
            "A method with several runs counts the mean of their tokens, ∞ if one of them missed; the \
             fastest is then the fastest method."
                .into(),
        );
    }
    let mut t = Table::new(&[
        "workload",
        ctx.who(),
        "set",
        "target",
        "ceiling",
        "steps",
        "tokens",
        "train s",
        "× fastest",
    ])
    .left(&[1, 2, 4]);
    for w in workloads {
        t.rows.extend(workload_rows(ctx, w));
    }
    sec.tables.push(t);
    sec
}

/// A row per method of `w`: when it reached the target (∞ if it did not) and its tokens over the
/// fastest's.
fn workload_rows(ctx: &Ctx, w: &Workload) -> Vec<Vec<String>> {
    let methods: Vec<&Method> = w.methods.iter().map(|&m| &ctx.methods[m]).collect();
    let times: Vec<Vec<f64>> = methods
        .iter()
        .map(|m| vec![method_tokens(ctx, w, m)])
        .collect();
    let ratios = measures::performance_ratios(&times);
    methods
        .iter()
        .zip(&ratios)
        .map(|(m, r)| {
            let points = reached(ctx, w, m);
            vec![
                w.name.clone(),
                m.name.clone(),
                w.set.clone(),
                format!("{:.4} ({})", w.target, w.source),
                w.ceiling.as_ref().map_or("–".into(), |c| {
                    format!(
                        "{} ≤ {} ({} + margin)",
                        c.set,
                        loss(Some(c.loss)),
                        loss(Some(c.start))
                    )
                }),
                reached_cell(&points, |p| p.step as f64, steps),
                reached_cell(&points, |p| p.tokens as f64, tokens),
                seconds_cell(ctx, m, &points),
                if r[0].is_finite() {
                    format!("{:.3}×", r[0])
                } else {
                    "∞".into()
                },
            ]
        })
        .collect()
}

/// `f` of the points over the runs when all reached the target; "∞" when one missed (with how many
/// reached it, for several runs).
fn reached_cell(
    points: &[Option<EvalPoint>],
    f: fn(&EvalPoint) -> f64,
    fmt: fn(Option<f64>) -> String,
) -> String {
    let values: Vec<f64> = points.iter().flatten().map(f).collect();
    let n = points.len();
    if values.len() == n {
        stat(Stat::of(&values), fmt)
    } else if n == 1 {
        "∞".into()
    } else {
        format!("∞ ({} of {n} reached)", values.len())
    }
}

/// The training seconds each run of `m` took to its point (`points`, in the order of `m.runs`); "∞" as
/// [`reached_cell`] says, "–" when a run's log does not give them.
fn seconds_cell(ctx: &Ctx, m: &Method, points: &[Option<EvalPoint>]) -> String {
    if points.iter().any(Option::is_none) {
        return reached_cell(points, |p| p.tokens as f64, tokens);
    }
    let seconds: Option<Vec<f64>> = m
        .runs
        .iter()
        .zip(points.iter().flatten())
        .map(|(&i, p)| measures::train_seconds(&ctx.runs[i].train, p.tokens))
        .collect();
    stat(seconds.and_then(|s| Stat::of(&s)), |x| {
        x.map_or("–".into(), |x| format!("{x:.0}"))
    })
}
