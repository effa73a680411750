//! `rewarm report`: the tables and figures of a set of runs (docs/papers.md#experiments, B–K), as
//! `report.md`, `report.html` (tables plus inline SVG figures), `figures/*.svg` and `figures/*.png`, and
//! terminal text.
//!
//! Everything is a pure function of the run folders and the options: runs are sorted by name, numbers have
//! fixed formats, and the only line that may change between two reports of the same runs is the stamp at
//! the top.

use crate::measures::{self, Gap, R_MAX};
use crate::plot::{lr_chart, Chart, Series, Style, Ticks};
use crate::render::{count, loss, ratio, sci, signed, slug, Table};
use crate::run::{discover, EvalPoint, RunData};
use crate::ReportError;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq)]
pub struct ReportOptions {
    /// Final loss = mean of the last `last_k` evaluations of each set (Ibrahim et al. average the last 100
    /// logged iterations; with sparse evaluations the last one is the default).
    pub last_k: usize,
    /// The union baseline run (otherwise: a single-stage run mixing ≥ 2 sources, per sweep folder).
    pub baseline: Option<PathBuf>,
    /// Time-to-target set (default: the first source of the last stage of the first non-baseline run).
    pub target_set: Option<String>,
    /// Target loss (default: the baseline's final loss on the target set).
    pub target_loss: Option<f64>,
    /// The one line that may differ between reports of the same runs (e.g. when it was generated).
    pub stamp: String,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            last_k: 1,
            baseline: None,
            target_set: None,
            target_loss: None,
            stamp: String::new(),
        }
    }
}

/// A figure: its file stem under `figures/` and what it draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub stem: String,
    pub chart: Chart,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub title: String,
    pub text: Vec<String>,
    pub tables: Vec<Table>,
    /// Stems of figures shown in this section.
    pub figures: Vec<String>,
    /// Printed to the terminal too.
    pub terminal: bool,
}

impl Section {
    fn new(title: &str, terminal: bool) -> Self {
        Section {
            title: title.into(),
            text: Vec::new(),
            tables: Vec::new(),
            figures: Vec::new(),
            terminal,
        }
    }
}

/// The report of a set of runs.
#[derive(Clone, Debug)]
pub struct Report {
    pub stamp: String,
    pub runs: Vec<RunData>,
    pub sections: Vec<Section>,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
}

/// Roles of a validation set in a run (by the stages whose mixture holds it; replay is not training on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Trained on earlier, not in the stage the run ended in: forgetting applies.
    Old,
    /// First trained after the first stage and still trained at the end: adaptation applies.
    New,
    /// First trained after the first stage, then no more: both apply.
    NewThenOld,
    /// Trained in the first stage and until the end (a single-stage run).
    Trained,
    /// Evaluated only.
    NotTrained,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Old => "old",
            Role::New => "new",
            Role::NewThenOld => "new, then old",
            Role::Trained => "trained",
            Role::NotTrained => "eval only",
        }
    }
}

/// Per-set outcome of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct SetOutcome {
    pub set: String,
    pub role: Role,
    pub final_loss: Option<f64>,
    /// The loss right after its last training stage (MER's "learned loss").
    pub learned: Option<f64>,
    pub forgetting: Option<f64>,
    pub mer: Option<f64>,
    pub adaptation: Option<f64>,
}

/// Per-set outcomes of `run` (k = evaluations averaged for the final loss).
pub fn set_outcomes(run: &RunData, k: usize) -> Vec<SetOutcome> {
    let current = run.stage_at(run.last_step());
    run.evals
        .iter()
        .map(|(set, series)| {
            let trained = run.training_stages(set);
            let first = trained.first().copied();
            let last = trained.iter().copied().filter(|&s| s <= current).max();
            // A run started with `init_from` continues earlier training: its first stage is a continual one
            // too, and a set it only evaluates is taken as one the starting weights were trained on, so
            // its forgetting counts from step 0.
            let continued = run.init_from.is_some();
            let old = last.is_some_and(|l| l < current) || (first.is_none() && continued);
            let new = first.is_some_and(|f| (f > 0 || continued) && f <= current);
            let role = match (first, old, new) {
                (None, true, _) => Role::Old,
                (None, _, _) => Role::NotTrained,
                (_, true, true) => Role::NewThenOld,
                (_, true, false) => Role::Old,
                (_, false, true) => Role::New,
                _ => Role::Trained,
            };
            let end_of_training = match last {
                Some(l) => Some(run.stage_end(l)),
                None => continued.then_some(0),
            };
            SetOutcome {
                set: set.clone(),
                role,
                final_loss: measures::final_loss(series, k),
                learned: end_of_training.and_then(|b| measures::value_at(series, b)),
                forgetting: old
                    .then(|| measures::forgetting(series, end_of_training?, k))
                    .flatten(),
                mer: measures::mer_forgetting(series, k),
                adaptation: new
                    .then(|| measures::adaptation(series, run.stages[first?].first_step, k))
                    .flatten(),
            }
        })
        .collect()
}

/// Mean over the `Some`s; `None` if there are none.
fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    measures::average(&v)
}

/// The peak LR of the run's last stage that has train records (the re-warm's η_max).
fn last_stage_peak_lr(run: &RunData) -> Option<f64> {
    let stage = &run.stages.last()?.name;
    run.train
        .iter()
        .filter(|t| &t.stage == stage)
        .map(|t| t.lr)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
}

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

/// A run's point in the replay / peak-LR scatter plots.
struct RunPoint {
    replay: f64,
    peak_lr: Option<f64>,
    forgetting: Option<f64>,
    adaptation: Option<f64>,
}

/// A time-to-target workload: a group of runs with one target.
struct Workload {
    name: String,
    set: String,
    target: f64,
    /// Where the target came from, for the table's text.
    source: String,
    runs: Vec<usize>,
}

impl Report {
    /// Computes every table and figure. `baseline` forces the union baseline (an index into `runs`).
    pub fn build(
        runs: Vec<RunData>,
        baseline: Option<usize>,
        notes: Vec<String>,
        options: &ReportOptions,
    ) -> Report {
        let ctx = Ctx {
            runs: &runs,
            k: options.last_k.max(1),
            baseline_of: (0..runs.len())
                .map(|i| baseline.or_else(|| find_baseline(&runs, i)))
                .collect(),
            outcomes: runs
                .iter()
                .map(|r| set_outcomes(r, options.last_k.max(1)))
                .collect(),
            options,
        };
        let mut figs = Figures::default();
        let mut sections = vec![
            runs_section(&ctx, &mut figs),
            final_loss_section(&ctx, &mut figs),
            forgetting_section(&ctx, &mut figs),
            gap_section(&ctx),
            cost_section(&ctx),
        ];
        sections.extend(target_sections(&ctx, &mut figs));
        Report {
            stamp: options.stamp.clone(),
            runs,
            sections,
            figures: figs.list,
            notes,
        }
    }
}

/// What every section reads.
struct Ctx<'a> {
    runs: &'a [RunData],
    /// Evaluations averaged for a final loss.
    k: usize,
    /// Run → its union baseline.
    baseline_of: Vec<Option<usize>>,
    outcomes: Vec<Vec<SetOutcome>>,
    options: &'a ReportOptions,
}

/// The figures drawn so far, with unique file stems.
#[derive(Default)]
struct Figures {
    list: Vec<Figure>,
    stems: BTreeSet<String>,
}

impl Figures {
    /// A file stem not used yet (`name`, else `name-2`, `name-3`, …).
    fn stem(&mut self, name: String) -> String {
        let mut candidate = name.clone();
        let mut n = 2;
        while !self.stems.insert(candidate.clone()) {
            candidate = format!("{name}-{n}");
            n += 1;
        }
        candidate
    }

    /// Adds a figure under a unique stem derived from `name`, and returns the stem.
    fn add(&mut self, name: String, chart: Chart) -> String {
        let stem = self.stem(name);
        self.list.push(Figure {
            stem: stem.clone(),
            chart,
        });
        stem
    }
}

/// Runs: stages, steps, tokens, notes; one LR figure per run.
fn runs_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let (runs, baseline_of) = (ctx.runs, &ctx.baseline_of);
    let mut sec = Section::new("Runs", false);
    let mut t =
        Table::new(&["run", "stages (first step)", "steps", "tokens", "notes"]).left(&[1, 4]);
    for (i, r) in runs.iter().enumerate() {
        let stages: Vec<String> = r
            .stages
            .iter()
            .map(|s| format!("{} ({})", s.name, s.first_step))
            .collect();
        let mut notes = Vec::new();
        if baseline_of.contains(&Some(i)) {
            notes.push("union baseline".to_owned());
        }
        if !r.complete() {
            notes.push("incomplete".into());
        }
        if r.rollbacks > 0 {
            notes.push(format!("{} rollbacks", r.rollbacks));
        }
        if r.boundaries_from == crate::run::BoundarySource::Metrics {
            notes.push("boundaries from metrics.jsonl".into());
        }
        if let Some(d) = &r.device {
            notes.push(format!("device {d}"));
        }
        let steps = match r.planned_steps {
            Some(p) => format!("{} / {p}", r.last_step()),
            None => r.last_step().to_string(),
        };
        t.rows.push(vec![
            r.name.clone(),
            stages.join(", "),
            steps,
            count(r.tokens()),
            notes.join("; "),
        ]);
        let points: Vec<(u64, f64, f64)> = r
            .train
            .iter()
            .map(|p| (p.step, p.lr, p.replay_fraction))
            .collect();
        let boundaries: Vec<(u64, String)> = r
            .stages
            .iter()
            .map(|s| (s.first_step, s.name.clone()))
            .collect();
        let name = figs.add(
            format!("lr-{}", slug(&r.name)),
            lr_chart(
                &format!("{}: learning rate and replay fraction", r.name),
                &points,
                &boundaries,
            ),
        );
        sec.figures.push(name);
    }
    sec.text.push(
        "Steps count steps done; a stage's first step is the boundary whose evaluation closes the stage \
         before it and opens the next."
            .into(),
    );
    sec.tables.push(t);
    sec
}

/// Final loss per set and AVG; loss curves per run and per set.
fn final_loss_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let (runs, k, outcomes) = (ctx.runs, ctx.k, &ctx.outcomes);
    let sets: BTreeSet<String> = runs.iter().flat_map(|r| r.sets()).collect();
    let mut sec = Section::new("Final validation loss", true);
    sec.text.push(format!(
        "Mean of the last {k} evaluation{} of each set (nats per token). AVG is the unweighted mean over \
         the run's sets (Ibrahim et al. Table 2); it hides where the loss sits, so read it with the \
         per-set losses.",
        if k == 1 { "" } else { "s" }
    ));
    let mut header: Vec<&str> = vec!["run"];
    header.extend(sets.iter().map(String::as_str));
    header.push("AVG");
    let mut t = Table::new(&header);
    for (r, outs) in runs.iter().zip(outcomes) {
        let mut row = vec![r.name.clone()];
        for set in &sets {
            row.push(loss(
                outs.iter()
                    .find(|o| &o.set == set)
                    .and_then(|o| o.final_loss),
            ));
        }
        row.push(loss(mean(outs.iter().map(|o| o.final_loss))));
        t.rows.push(row);
    }
    sec.tables.push(t);
    for r in runs {
        let mut chart = Chart::new(
            format!("{}: validation loss per set", r.name),
            "tokens",
            "loss (nats/token)",
        );
        chart.x_ticks = Ticks::Si;
        for (set, series) in &r.evals {
            chart
                .series
                .push(Series::line(set.clone(), xy_tokens(series)));
        }
        chart.vlines = r
            .stages
            .iter()
            .skip(1)
            .map(|s| (s.tokens_before as f64, s.name.clone()))
            .collect();
        let name = figs.add(format!("loss-{}", slug(&r.name)), chart);
        sec.figures.push(name);
    }
    if runs.len() >= 2 {
        for set in &sets {
            let mut chart = Chart::new(
                format!("validation loss on {set}, all runs"),
                "tokens",
                "loss (nats/token)",
            );
            chart.x_ticks = Ticks::Si;
            for r in runs {
                if let Some(series) = r.evals.get(set) {
                    chart
                        .series
                        .push(Series::line(r.name.clone(), xy_tokens(series)));
                }
            }
            let name = figs.add(format!("loss-set-{}", slug(set)), chart);
            sec.figures.push(name);
        }
    }
    sec
}

/// Forgetting, MER score and adaptation per run and per set; scatter plots against replay and peak LR.
fn forgetting_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let (runs, outcomes) = (ctx.runs, &ctx.outcomes);
    let mut sec = Section::new("Forgetting and adaptation", true);
    sec.text.push(
        "Forgetting of an old set = final loss − its loss at the first boundary after the last stage that \
         trained on it (positive = forgotten). MER score = final loss − best loss over all evaluations \
         (Abbes et al. 2025). Adaptation of a new set = loss at the boundary where training on it began − \
         final loss (positive = learned). In a run started with `init_from`, step 0 is such a boundary: a \
         set the run only evaluates is old (forgetting since step 0) and a set it trains on is new. Means are \
         over old (forgetting, MER) and new (adaptation) sets; retained = AVG. Replay ρ and peak LR are \
         those of the last stage."
            .into(),
    );
    let mut t = Table::new(&[
        "run",
        "replay ρ",
        "peak LR",
        "forgetting",
        "MER score",
        "adaptation",
        "retained (AVG)",
    ]);
    let mut per_run = Vec::new();
    for (r, outs) in runs.iter().zip(outcomes) {
        let is_old = |o: &&SetOutcome| matches!(o.role, Role::Old | Role::NewThenOld);
        let f = mean(outs.iter().filter(is_old).map(|o| o.forgetting));
        let m = mean(outs.iter().filter(is_old).map(|o| o.mer));
        let a = mean(outs.iter().map(|o| o.adaptation));
        let rho = r.stages.last().map_or(0.0, |s| s.replay_fraction);
        let lr = last_stage_peak_lr(r);
        per_run.push(RunPoint {
            replay: rho,
            peak_lr: lr,
            forgetting: f,
            adaptation: a,
        });
        t.rows.push(vec![
            r.name.clone(),
            format!("{rho:.3}"),
            lr.map_or("–".into(), |x| format!("{x:.2e}")),
            signed(f),
            signed(m),
            signed(a),
            loss(mean(outs.iter().map(|o| o.final_loss))),
        ]);
    }
    sec.tables.push(t);
    let mut t = Table::new(&[
        "run",
        "set",
        "role",
        "learned",
        "final",
        "forgetting",
        "MER score",
        "adaptation",
    ])
    .left(&[1, 2]);
    for (r, outs) in runs.iter().zip(outcomes) {
        for o in outs {
            t.rows.push(vec![
                r.name.clone(),
                o.set.clone(),
                o.role.name().into(),
                loss(o.learned),
                loss(o.final_loss),
                signed(o.forgetting),
                signed(o.mer),
                signed(o.adaptation),
            ]);
        }
    }
    sec.tables.push(t);
    for (x_name, x_ticks, file, use_lr) in [
        (
            "replay fraction ρ (last stage)",
            Ticks::Plain,
            "replay-vs-forgetting",
            false,
        ),
        (
            "peak LR (last stage)",
            Ticks::Scientific,
            "maxlr-vs-forgetting",
            true,
        ),
    ] {
        let x_of = |p: &RunPoint| if use_lr { p.peak_lr } else { Some(p.replay) };
        let mut forgetting = Series {
            style: Style::Points,
            ..Series::line("forgetting", Vec::new())
        };
        let mut adaptation = Series {
            style: Style::Points,
            ..Series::line("adaptation", Vec::new())
        };
        for (r, p) in runs.iter().zip(&per_run) {
            if let (Some(x), Some(y)) = (x_of(p), p.forgetting) {
                forgetting.points.push((x, y));
                forgetting.point_labels.push(r.name.clone());
            }
            if let (Some(x), Some(y)) = (x_of(p), p.adaptation) {
                adaptation.points.push((x, y));
            }
        }
        let distinct: BTreeSet<u64> = forgetting
            .points
            .iter()
            .chain(&adaptation.points)
            .map(|p| p.0.to_bits())
            .collect();
        if distinct.len() < 2 {
            continue;
        }
        let mut chart = Chart::new(
            format!("{x_name}: forgetting (old sets) and adaptation (new sets)"),
            x_name,
            "Δ loss (nats/token)",
        );
        chart.x_ticks = x_ticks;
        chart.series = vec![forgetting, adaptation];
        let name = figs.add(file.to_owned(), chart);
        sec.figures.push(name);
    }
    sec
}

/// The stability gap after every boundary.
fn gap_section(ctx: &Ctx) -> Section {
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

/// Tokens and FLOPs, relative to the union baseline.
fn cost_section(ctx: &Ctx) -> Section {
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

/// Time to target and, when runs share a target, performance profiles.
fn target_sections(ctx: &Ctx, figs: &mut Figures) -> Vec<Section> {
    let (runs, k, baseline_of) = (ctx.runs, ctx.k, &ctx.baseline_of);
    let workloads = workloads(runs, baseline_of, ctx.options, k);
    let mut sec = Section::new("Time to target", true);
    if workloads.is_empty() {
        sec.text.push(
            "No target: pass --target-set and --target-loss, or include a union baseline (its final loss on \
             the target set becomes the target)."
                .into(),
        );
    } else {
        sec.text.push(
            "Steps and tokens until the first evaluation at or below the target loss (AlgoPerf; ∞ = missed). \
             × fastest is the ratio of tokens to the fastest run of the same workload (sweep folder)."
                .into(),
        );
        let mut t = Table::new(&[
            "workload",
            "run",
            "set",
            "target",
            "steps",
            "tokens",
            "× fastest",
        ])
        .left(&[1, 2]);
        for w in &workloads {
            let reached: Vec<Option<EvalPoint>> = w
                .runs
                .iter()
                .map(|&i| {
                    runs[i]
                        .evals
                        .get(&w.set)
                        .and_then(|s| measures::time_to_target(s, w.target))
                })
                .collect();
            let times: Vec<Vec<f64>> = reached
                .iter()
                .map(|p| vec![p.map_or(f64::INFINITY, |p| p.tokens as f64)])
                .collect();
            let ratios = measures::performance_ratios(&times);
            for ((&i, p), r) in w.runs.iter().zip(&reached).zip(&ratios) {
                t.rows.push(vec![
                    w.name.clone(),
                    runs[i].name.clone(),
                    w.set.clone(),
                    format!("{:.4} ({})", w.target, w.source),
                    p.map_or("∞".into(), |p| p.step.to_string()),
                    p.map_or("∞".into(), |p| count(p.tokens)),
                    if r[0].is_finite() {
                        format!("{:.3}×", r[0])
                    } else {
                        "∞".into()
                    },
                ]);
            }
        }
        sec.tables.push(t);
    }
    let mut out = vec![sec];
    if let Some((table, chart)) = profiles(runs, &workloads) {
        let mut sec = Section::new("Performance profiles", true);
        sec.text.push(format!(
            "AlgoPerf (Dahl et al. 2023): r = tokens-to-target / the fastest method's on the same workload; \
             ρ(τ) = fraction of workloads with r ≤ τ; score = (1/(r_max − 1))·∫₁^r_max ρ(τ) dτ with r_max = \
             {R_MAX}. Methods are matched across workloads by run name (the sweep label); a method missing \
             from a workload counts as ∞ there."
        ));
        sec.tables.push(table);
        let name = figs.add("performance-profile".into(), chart);
        sec.figures.push(name);
        out.push(sec);
    }
    out
}

fn xy_tokens(series: &[EvalPoint]) -> Vec<(f64, f64)> {
    series.iter().map(|p| (p.tokens as f64, p.loss)).collect()
}

/// The union baseline of run `i`: a union-like run (single stage mixing ≥ 2 sources, or labelled `union`
/// by `rewarm sweep`) of the same sweep folder, else of any input; the first by name.
fn find_baseline(runs: &[RunData], i: usize) -> Option<usize> {
    let union = |r: &RunData| r.looks_like_union() || r.method == "union";
    let same = (0..runs.len()).find(|&j| runs[j].group == runs[i].group && union(&runs[j]));
    same.or_else(|| (0..runs.len()).find(|&j| union(&runs[j])))
}

/// One workload per sweep folder (runs given directly form one more), with its target set and loss.
fn workloads(
    runs: &[RunData],
    baseline_of: &[Option<usize>],
    options: &ReportOptions,
    k: usize,
) -> Vec<Workload> {
    let mut groups: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        groups.entry(r.group.clone()).or_default().push(i);
    }
    let mut out = Vec::new();
    for (group, members) in groups {
        let baseline = members.iter().find_map(|&i| baseline_of[i]);
        let set = options.target_set.clone().or_else(|| {
            // The new data of the first continual run: the first source of its last stage's mixture.
            members
                .iter()
                .map(|&i| &runs[i])
                .find(|r| r.stages.len() > 1 || r.init_from.is_some())
                .and_then(|r| r.stages.last()?.sources.first().cloned())
        });
        let Some(set) = set else { continue };
        let (target, source) = match options.target_loss {
            Some(x) => (x, "given".to_owned()),
            None => {
                let Some(b) = baseline else { continue };
                let Some(x) = runs[b]
                    .evals
                    .get(&set)
                    .and_then(|s| measures::final_loss(s, k))
                else {
                    continue;
                };
                (x, format!("final of {}", runs[b].name))
            }
        };
        out.push(Workload {
            name: group.unwrap_or_else(|| "(runs)".into()),
            set,
            target,
            source,
            runs: members,
        });
    }
    out
}

/// The performance-profile table and figure, when some workload has ≥ 2 runs.
fn profiles(runs: &[RunData], workloads: &[Workload]) -> Option<(Table, Chart)> {
    if !workloads.iter().any(|w| w.runs.len() >= 2) {
        return None;
    }
    let methods: BTreeSet<&str> = workloads
        .iter()
        .flat_map(|w| w.runs.iter().map(|&i| runs[i].method.as_str()))
        .collect();
    let methods: Vec<&str> = methods.into_iter().collect();
    // times[method][workload]: tokens to target, ∞ if missed or absent.
    let times: Vec<Vec<f64>> = methods
        .iter()
        .map(|m| {
            workloads
                .iter()
                .map(|w| {
                    w.runs
                        .iter()
                        .find(|&&i| runs[i].method == *m)
                        .and_then(|&i| runs[i].evals.get(&w.set))
                        .and_then(|s| measures::time_to_target(s, w.target))
                        .map_or(f64::INFINITY, |p| p.tokens as f64)
                })
                .collect()
        })
        .collect();
    let ratios = measures::performance_ratios(&times);
    let taus = [1.0, 1.5, 2.0, 3.0, R_MAX];
    let mut header = vec!["method".to_owned(), "workloads".to_owned()];
    header.extend(taus.iter().map(|t| format!("ρ({t})")));
    header.push(format!("score (r_max = {R_MAX})"));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    let mut chart = Chart::new(
        "performance profiles (tokens to target)",
        "τ (ratio to the fastest)",
        "ρ(τ): fraction of workloads",
    );
    chart.x_range = Some((1.0, R_MAX));
    chart.y_range = Some((0.0, 1.05));
    for (m, r) in methods.iter().zip(&ratios) {
        let mut row = vec![m.to_string(), r.len().to_string()];
        row.extend(
            taus.iter()
                .map(|&tau| format!("{:.2}", measures::profile(r, tau))),
        );
        row.push(format!("{:.3}", measures::algoperf_score(r, R_MAX)));
        t.rows.push(row);
        // ρ is a step function: rises at each ratio within [1, r_max].
        let mut breaks: Vec<f64> = r
            .iter()
            .copied()
            .filter(|&x| x > 1.0 && x <= R_MAX)
            .collect();
        breaks.sort_by(f64::total_cmp);
        breaks.dedup();
        let mut pts = vec![(1.0, measures::profile(r, 1.0))];
        for b in breaks {
            let before = r.iter().filter(|&&x| x < b).count() as f64 / r.len() as f64;
            pts.push((b, before));
            pts.push((b, measures::profile(r, b)));
        }
        pts.push((R_MAX, measures::profile(r, R_MAX)));
        chart.series.push(Series::line(m.to_string(), pts));
    }
    Some((t, chart))
}

/// Loads the runs behind `inputs` (and `options.baseline`), writes `report.md`, `report.html` and
/// `figures/*.svg|png` under `out`, and returns the report.
pub fn write_report(
    inputs: &[PathBuf],
    options: &ReportOptions,
    out: &Path,
) -> Result<Report, ReportError> {
    let (mut runs, mut notes) = discover(inputs)?;
    notes.sort();
    let baseline = match &options.baseline {
        None => None,
        Some(path) => {
            let want = path.canonicalize().unwrap_or_else(|_| path.clone());
            let found = runs.iter().position(|r| {
                r.dir.canonicalize().unwrap_or_else(|_| r.dir.clone()) == want
                    || r.name == path.display().to_string()
            });
            let b = match found {
                Some(i) => runs[i].name.clone(),
                None => {
                    let mut b = RunData::load(path)?;
                    if runs.iter().any(|r| r.name == b.name) {
                        b.name = format!("baseline/{}", b.name);
                    }
                    let name = b.name.clone();
                    runs.push(b);
                    runs.sort_by(|a, b| a.name.cmp(&b.name));
                    name
                }
            };
            runs.iter().position(|r| r.name == b)
        }
    };
    let report = Report::build(runs, baseline, notes, options);
    let fig_dir = out.join("figures");
    std::fs::create_dir_all(&fig_dir).map_err(|e| {
        ReportError::new(
            &fig_dir,
            e.to_string(),
            "pass an --out folder you can write",
        )
    })?;
    let mut svgs = BTreeMap::new();
    for f in &report.figures {
        let svg_path = fig_dir.join(format!("{}.svg", f.stem));
        let svg = f
            .chart
            .to_svg()
            .map_err(|e| ReportError::new(&svg_path, e, "a plotting error; please report it"))?;
        write(&svg_path, svg.as_bytes())?;
        f.chart.save(&fig_dir.join(format!("{}.png", f.stem)))?;
        svgs.insert(f.stem.clone(), svg);
    }
    write(&out.join("report.md"), report.to_markdown().as_bytes())?;
    write(&out.join("report.html"), report.to_html(&svgs).as_bytes())?;
    Ok(report)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes)
        .map_err(|e| ReportError::new(path, e.to_string(), "pass an --out folder you can write"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{BoundarySource, EvalPoint, StageInfo};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    /// A one-stage run on "de" that also evaluates "en": losses per step 0, 10, 20.
    fn one_stage_run(init_from: Option<&str>) -> RunData {
        let series = |l: [f64; 3]| -> Vec<EvalPoint> {
            (0..3)
                .map(|i| EvalPoint {
                    step: 10 * i as u64,
                    tokens: 100 * i as u64,
                    loss: l[i],
                })
                .collect()
        };
        RunData {
            name: "r".into(),
            method: "r".into(),
            group: None,
            dir: PathBuf::new(),
            stages: vec![StageInfo {
                name: "cpt".into(),
                first_step: 0,
                tokens_before: 0,
                sources: vec!["de".into()],
                replay_fraction: 0.0,
            }],
            boundaries_from: BoundarySource::Plan,
            planned_steps: Some(20),
            seq_len: None,
            model: None,
            init_from: init_from.map(str::to_owned),
            evals: BTreeMap::from([
                ("de".into(), series([7.0, 6.0, 5.5])),
                ("en".into(), series([4.0, 4.5, 5.0])),
            ]),
            train: vec![],
            rollbacks: 0,
            device: None,
            rewarm_version: None,
        }
    }

    #[test]
    fn a_run_from_init_from_forgets_its_eval_only_sets_and_adapts_to_its_trained_ones() {
        let out = set_outcomes(&one_stage_run(Some("/pretrained/checkpoint")), 1);
        let (de, en) = (&out[0], &out[1]);
        assert_eq!((de.set.as_str(), de.role), ("de", Role::New));
        assert_eq!(de.adaptation, Some(7.0 - 5.5));
        assert_eq!(de.forgetting, None);
        assert_eq!((en.set.as_str(), en.role), ("en", Role::Old));
        assert_eq!(en.learned, Some(4.0));
        assert_eq!(en.forgetting, Some(5.0 - 4.0));
        assert_eq!(en.adaptation, None);
    }

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

    #[test]
    fn a_run_from_scratch_has_neither_forgetting_nor_adaptation_in_one_stage() {
        let out = set_outcomes(&one_stage_run(None), 1);
        assert_eq!(out[0].role, Role::Trained);
        assert_eq!(out[1].role, Role::NotTrained);
        assert!(out
            .iter()
            .all(|o| o.forgetting.is_none() && o.adaptation.is_none()));
    }
}
