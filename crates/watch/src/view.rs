//! What the dashboard shows of one run, computed from its folder as `rewarm report` reads it: where it is
//! (stage, step, tokens), how fast and how long it has left, its curves and the stability gap since its
//! latest boundary. No drawing here.

use rewarm_report::measures::{stability_gap, Gap};
use rewarm_report::RunData;
use std::collections::BTreeMap;

/// One run as the dashboard shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunView {
    pub name: String,
    /// The stage of the latest step, its position and the number of stages.
    pub stage: String,
    pub stage_index: usize,
    pub stages: usize,
    pub step: u64,
    pub planned_steps: Option<u64>,
    pub tokens: u64,
    pub lr: Option<f64>,
    /// The current stage's planned replay fraction ρ.
    pub replay_fraction: Option<f64>,
    pub tokens_per_second: Option<f64>,
    /// Seconds left at the latest training speed (evaluations and checkpoints not counted).
    pub eta_seconds: Option<f64>,
    /// (step, value) per logged step.
    pub train_loss: Vec<(f64, f64)>,
    pub lr_curve: Vec<(f64, f64)>,
    /// Validation set → (step, loss).
    pub eval: BTreeMap<String, Vec<(f64, f64)>>,
    /// Stage boundaries after the first stage: (step, name of the stage that starts there).
    pub boundaries: Vec<(f64, String)>,
    /// The stability gap per set since the latest boundary (step 0 of a run started with `init_from`).
    pub gap: Option<GapSoFar>,
    /// `[monitor]`'s latest measurement as (RankMe, α-ReQ, dormant fraction), and the one at the gap's
    /// boundary when there is one.
    pub representation: Option<Representation>,
}

/// The representation now and at the latest boundary.
#[derive(Clone, Debug, PartialEq)]
pub struct Representation {
    pub now: [f64; 3],
    pub at_boundary: Option<[f64; 3]>,
}

/// The stability gap since a boundary, per validation set, so far.
#[derive(Clone, Debug, PartialEq)]
pub struct GapSoFar {
    pub stage: String,
    pub boundary: u64,
    pub sets: BTreeMap<String, Gap>,
}

impl RunView {
    pub fn of(run: &RunData) -> Self {
        let last = run.train.last();
        let step = run.last_step();
        let stage = last.map_or_else(
            || run.stages.first().map_or(String::new(), |s| s.name.clone()),
            |t| t.stage.clone(),
        );
        let current = run.stages.iter().position(|s| s.name == stage);
        let gap = gap_so_far(run);
        let boundary = gap.as_ref().map(|g| g.boundary);
        let point = |x: u64, y: f64| (x as f64, y);
        RunView {
            name: run.name.clone(),
            stage_index: current.unwrap_or(0),
            stage,
            stages: run.stages.len(),
            step,
            planned_steps: run.planned_steps,
            tokens: run.tokens(),
            lr: last.map(|t| t.lr),
            replay_fraction: current.map(|i| run.stages[i].replay_fraction),
            tokens_per_second: last.map(|t| t.tokens_per_second).filter(|&s| s > 0.0),
            eta_seconds: eta(run),
            train_loss: run.train.iter().map(|t| point(t.step, t.loss)).collect(),
            lr_curve: run.train.iter().map(|t| point(t.step, t.lr)).collect(),
            eval: run
                .evals
                .iter()
                .map(|(set, ps)| {
                    (
                        set.clone(),
                        ps.iter().map(|p| point(p.step, p.loss)).collect(),
                    )
                })
                .collect(),
            boundaries: run
                .stages
                .iter()
                .skip(1)
                .map(|s| (s.first_step as f64, s.name.clone()))
                .collect(),
            gap,
            representation: representation(run, boundary),
        }
    }
}

/// Steps left × tokens per step / the latest tokens per second.
fn eta(run: &RunData) -> Option<f64> {
    let last = run.train.last()?;
    let planned = run.planned_steps?;
    if last.step == 0 || last.tokens_per_second <= 0.0 {
        return None;
    }
    let tokens_per_step = last.tokens as f64 / last.step as f64;
    let left = planned.saturating_sub(last.step) as f64;
    Some(left * tokens_per_step / last.tokens_per_second)
}

/// The gap since the latest boundary the run has passed: the start of its latest stage, or step 0 of a
/// run started from another run's weights; `None` before any.
fn gap_so_far(run: &RunData) -> Option<GapSoFar> {
    let step = run.last_step();
    let latest = run
        .stages
        .iter()
        .skip(1)
        .rfind(|s| s.first_step < step)
        .map(|s| (s.first_step, s.name.clone()));
    let from_init = || {
        let first = run.stages.first()?;
        run.init_from.is_some().then(|| (0, first.name.clone()))
    };
    let (boundary, stage) = latest.or_else(from_init)?;
    let sets: BTreeMap<String, Gap> = run
        .evals
        .iter()
        .filter_map(|(set, series)| Some((set.clone(), stability_gap(series, boundary, step)?)))
        .collect();
    (!sets.is_empty()).then_some(GapSoFar {
        stage,
        boundary,
        sets,
    })
}

/// The latest `[monitor]` measurement, and the last one at or before `boundary` (the gap's).
fn representation(run: &RunData, boundary: Option<u64>) -> Option<Representation> {
    let measures =
        |r: &rewarm_runfolder::RepresentationRecord| [r.rank_me, r.alpha_req, r.dormant_fraction];
    let now = run.representation.last()?;
    let at_boundary = boundary.and_then(|b| run.representation.iter().rev().find(|r| r.step <= b));
    Some(Representation {
        now: measures(now),
        at_boundary: at_boundary.map(measures),
    })
}
