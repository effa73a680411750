//! Derived totals printed before any compute (`rewarm plan`): steps, tokens per stage and source (replay
//! included), epochs per source, FLOPs, and cost relative to retraining from scratch on the union.

use crate::Plan;
use rewarm_data::MixtureIndex;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceTokens {
    pub source: String,
    pub replay: bool,
    pub tokens: u64,
    /// Passes over the source's training split this stage's draws amount to.
    pub epochs: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageSummary {
    pub name: String,
    pub first_step: u64,
    pub steps: u64,
    pub tokens: u64,
    pub batch_tokens_start: u64,
    pub replay_fraction: f64,
    pub peak_lr: f64,
    pub schedule: String,
    pub flops: f64,
    pub sources: Vec<SourceTokens>,
    /// What else the stage does to the weights or the data, one line each (Reptile, a replay buffer,
    /// shrink-and-perturb, a moment warmup).
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanSummary {
    pub seq_len: usize,
    pub total_steps: u64,
    pub total_tokens: u64,
    pub total_flops: f64,
    pub flops_per_token: f64,
    /// What a from-scratch retrain on the union reads: every stage's token budget of its own data.
    pub union_tokens: u64,
    /// Tokens of every stage after the first, relative to the union retrain: the cost of continual
    /// pre-training once the first stage's model exists.
    pub continual_cost_vs_union: f64,
    pub stages: Vec<StageSummary>,
}

/// A stage's planned draws per (source, replay), summed over its phases, in first-drawn order.
fn stage_draws(index: &MixtureIndex, st: &crate::resolved::StagePlan) -> Vec<((usize, bool), u64)> {
    let mut out: Vec<((usize, bool), u64)> = Vec::new();
    for ds in st.first_phase..st.first_phase + st.phases.len() {
        for d in index.stage_draws(ds) {
            match out.iter_mut().find(|(k, _)| *k == (d.source, d.replay)) {
                Some((_, n)) => *n += d.sequences,
                None => out.push(((d.source, d.replay), d.sequences)),
            }
        }
    }
    out
}

/// The lines `rewarm plan` prints under a stage for its options that change the weights or the replay.
fn stage_notes(st: &crate::resolved::StagePlan) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(sp) = &st.shrink_perturb {
        notes.push(format!(
            "shrink-and-perturb at the start: λ = {}, σ = {}",
            sp.lambda, sp.sigma
        ));
    }
    if st.moment_warmup_steps > 0 {
        notes.push(format!(
            "{} steps at LR 0 first (moment warmup)",
            st.moment_warmup_steps
        ));
    }
    if let Some(e) = st.subset_epochs.filter(|&e| e > 1) {
        notes.push(format!(
            "new data in {e} passes over a subset of 1/{e} of the draws (each source)"
        ));
    }
    if let Some(m) = st.replay.as_ref().and_then(|r| r.buffer) {
        notes.push(format!("replay from a buffer of {m} sequences seen"));
    }
    if let Some(r) = &st.reptile {
        notes.push(format!(
            "Reptile: meta-update every {} steps, β = {}",
            r.inner_steps, r.beta
        ));
    }
    notes
}

impl PlanSummary {
    pub fn new(plan: &Plan, index: &MixtureIndex, flops_per_token: f64) -> Self {
        let l = plan.seq_len as u64;
        let meta = &index.plan().sources;
        let stages: Vec<StageSummary> = plan
            .stages
            .iter()
            .map(|st| {
                let tokens = st.sequences * l;
                StageSummary {
                    name: st.name.clone(),
                    first_step: st.first_step,
                    steps: st.steps,
                    tokens,
                    batch_tokens_start: st.segments[0].batch_sequences * l,
                    replay_fraction: st.replay.as_ref().map_or(0.0, |r| r.fraction),
                    peak_lr: st.schedule.peak_lr(),
                    schedule: match st.continues_schedule {
                        true => format!("{} (continued)", st.schedule.kind_name()),
                        false => st.schedule.kind_name().to_owned(),
                    },
                    flops: tokens as f64 * flops_per_token,
                    sources: stage_draws(index, st)
                        .into_iter()
                        .map(|((source, replay), sequences)| SourceTokens {
                            source: meta[source].name.clone(),
                            replay,
                            tokens: sequences * l,
                            epochs: sequences as f64 / meta[source].sequences.max(1) as f64,
                        })
                        .collect(),
                    notes: stage_notes(st),
                }
            })
            .collect();
        let total_tokens: u64 = stages.iter().map(|s| s.tokens).sum();
        let union_tokens: u64 = stages
            .iter()
            .zip(&plan.config.stages)
            .map(|(s, cfg)| {
                // Each stage's budget of its own data (Ibrahim et al.'s union: 300B Pile + 300B SP);
                // with additive replay the budget is the new data only.
                let additive = cfg
                    .replay
                    .as_ref()
                    .is_some_and(|r| r.mode == crate::config::ReplayMode::Additive);
                if additive {
                    s.sources
                        .iter()
                        .filter(|t| !t.replay)
                        .map(|t| t.tokens)
                        .sum()
                } else {
                    s.tokens
                }
            })
            .sum();
        let later: u64 = stages.iter().skip(1).map(|s| s.tokens).sum();
        PlanSummary {
            seq_len: plan.seq_len,
            total_steps: plan.total_steps,
            total_tokens,
            total_flops: total_tokens as f64 * flops_per_token,
            flops_per_token,
            union_tokens,
            continual_cost_vs_union: later as f64 / union_tokens.max(1) as f64,
            stages,
        }
    }

    /// A terminal-readable table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{} steps, {} tokens ({:.3e} FLOPs at {:.3e} FLOPs/token), sequence length {}\n",
            self.total_steps,
            self.total_tokens,
            self.total_flops,
            self.flops_per_token,
            self.seq_len
        ));
        out.push_str(&format!(
            "{:<16} {:>8} {:>8} {:>12} {:>8} {:>7} {:>9} {:<14}\n",
            "stage", "first", "steps", "tokens", "batch", "replay", "peak lr", "schedule"
        ));
        for s in &self.stages {
            out.push_str(&format!(
                "{:<16} {:>8} {:>8} {:>12} {:>8} {:>6.1}% {:>9.2e} {:<14}\n",
                s.name,
                s.first_step,
                s.steps,
                s.tokens,
                s.batch_tokens_start,
                100.0 * s.replay_fraction,
                s.peak_lr,
                s.schedule
            ));
            for t in &s.sources {
                out.push_str(&format!(
                    "    {:<12} {:<7} {:>12} tokens {:>6.2} epochs\n",
                    t.source,
                    if t.replay { "replay" } else { "new" },
                    t.tokens,
                    t.epochs
                ));
            }
            for n in &s.notes {
                out.push_str(&format!("    {n}\n"));
            }
        }
        // One stage has nothing after the first to compare (a continual run's stages are its own).
        if self.stages.len() > 1 {
            out.push_str(&format!(
                "union retrain reads {} tokens; the stages after the first cost {:.2}x of it\n",
                self.union_tokens, self.continual_cost_vs_union
            ));
        }
        out
    }
}
