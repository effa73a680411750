//! The stages of [`super::Validator`]'s walk: each stage's schedule, mixture, replay (and what it may
//! replay), phases, early stop and steps, in order, each starting where the one before ended.

use super::{PlanError, Validator};
use crate::config::{OptimizerConfig, PlanConfig, ReplayConfig, ReplayMode, StageConfig};
use crate::resolved::{Phase, Segment, SourcePlan, StagePlan};
use crate::schedule::{BatchSchedule, Schedule};
use rewarm_data::mixture::{ReplayOrder, ReplaySpec};
use rewarm_data::ReplayPool;
use std::collections::BTreeMap;

impl Validator {
    /// Every stage in order: each starts where the one before ended, and may replay what they trained on.
    pub(super) fn stages(
        &self,
        config: &PlanConfig,
        sources: &[SourcePlan],
        batch: &BatchSchedule,
        seq_len: usize,
    ) -> Result<Vec<StagePlan>, PlanError> {
        if config.stages.is_empty() {
            return Err(self.err("stages", "no stages", "add at least one [[stages]] table"));
        }
        let mut cursor = Cursor::default();
        let mut stages: Vec<StagePlan> = Vec::new();
        for (s, st) in config.stages.iter().enumerate() {
            let at = |f: &str| format!("stages[{s}] ({}).{f}", st.name);
            if stages.iter().any(|p| p.name == st.name) {
                return Err(self.err(
                    at("name"),
                    "two stages share this name",
                    "give every stage its own name",
                ));
            }
            let stage = self.stage(st, &at, &config.optimizer, sources, &cursor.trained)?;
            let stage = self.continued(st, &at, stage, stages.last())?;
            let first_phase = stages.last().map_or(0, |p| p.first_phase + p.phases.len());
            let stage = self.place(st, &at, stage, (batch, seq_len), sources, &mut cursor)?;
            stages.push(StagePlan {
                first_phase,
                ..stage
            });
        }
        link_schedules(&mut stages);
        Ok(stages)
    }

    /// A stage with `kind = "continue"` takes the schedule of the stage before it, which must exist, run
    /// to its end and leave the schedule to go on (no moment warmup of its own).
    fn continued(
        &self,
        st: &StageConfig,
        at: &dyn Fn(&str) -> String,
        stage: StagePlan,
        before: Option<&StagePlan>,
    ) -> Result<StagePlan, PlanError> {
        if !matches!(st.schedule, Schedule::Continue(_)) {
            return Ok(stage);
        }
        let Some(before) = before else {
            return Err(self.err(
                at("schedule.kind"),
                "\"continue\" in the first stage, which has no schedule to continue",
                "give the first stage a schedule of its own",
            ));
        };
        if before.steps < before.schedule_steps + before.moment_warmup_steps {
            return Err(self.err(
                at("schedule.kind"),
                format!("\"continue\" after stage `{}`, which stops early (stop_after_steps)", before.name),
                "give this stage a schedule of its own: continuing would skip the steps the stage before it leaves out",
            ));
        }
        if st.moment_warmup_steps > 0 {
            return Err(self.err(
                at("moment_warmup_steps"),
                format!(
                    "{} in a stage that continues a schedule",
                    st.moment_warmup_steps
                ),
                "a moment warmup belongs to the first stage of a schedule; remove it here",
            ));
        }
        Ok(StagePlan {
            schedule: before.schedule.clone(),
            continues_schedule: true,
            ..stage
        })
    }

    /// `stage` placed at the cursor: its steps, sequences and segments as it runs (and those its schedule
    /// is laid out over), its moment warmup and its phases; the cursor moved past it.
    fn place(
        &self,
        st: &StageConfig,
        at: &dyn Fn(&str) -> String,
        stage: StagePlan,
        (batch, seq_len): (&BatchSchedule, usize),
        sources: &[SourcePlan],
        cursor: &mut Cursor,
    ) -> Result<StagePlan, PlanError> {
        let (first_step, tokens_before) = (cursor.step, cursor.tokens);
        let whole = self.walk(st, &stage, at, batch, seq_len, cursor)?;
        let whole_steps = whole.0;
        let ran = self.stop_early(st, at, whole, seq_len, cursor)?;
        if st.moment_warmup_steps >= ran.0 {
            return Err(self.err(
                at("moment_warmup_steps"),
                format!("{} of the stage's {} steps", st.moment_warmup_steps, ran.0),
                "leave the schedule at least one step: fewer warmup steps or more tokens",
            ));
        }
        let schedule_steps = whole_steps - st.moment_warmup_steps;
        let phases = self.phases(st, at, &stage.mixture, &ran, seq_len, sources)?;
        for &(k, _) in phases.iter().flat_map(|p| &p.mixture) {
            if !cursor.trained.contains(&k) {
                cursor.trained.push(k);
            }
        }
        let (steps, sequences, segments) = ran;
        Ok(StagePlan {
            phases,
            first_step,
            tokens_before,
            steps,
            schedule_steps,
            moment_warmup_steps: st.moment_warmup_steps,
            sequences,
            segments,
            ..stage
        })
    }

    /// One stage's schedule, optimizer settings, mixture, replay and warm start, before its steps are
    /// counted.
    fn stage(
        &self,
        st: &StageConfig,
        at: &dyn Fn(&str) -> String,
        optimizer: &OptimizerConfig,
        sources: &[SourcePlan],
        trained: &[usize],
    ) -> Result<StagePlan, PlanError> {
        st.schedule.validate().map_err(|e| {
            self.err(
                at(&e.field),
                format!("{}: expected {}", e.got, e.expected),
                &e.hint,
            )
        })?;
        let adamw = match &st.adamw {
            Some(o) => o.apply(optimizer),
            None => optimizer.clone(),
        };
        self.adamw_ranges(&at("adamw"), &adamw)?;
        let mixture = self.mixture(&st.mixture, "mixture", at, sources)?;
        let replay = match &st.replay {
            Some(r) => self.replay(r, at, sources, trained)?,
            None => None,
        };
        if let Some(sp) = &st.shrink_perturb {
            let ok = sp.lambda.is_finite()
                && sp.sigma.is_finite()
                && sp.lambda >= 0.0
                && sp.sigma >= 0.0;
            if !ok {
                return Err(self.err(
                    at("shrink_perturb"),
                    format!("lambda {} sigma {}", sp.lambda, sp.sigma),
                    "use lambda in [0, 1] and sigma ≥ 0",
                ));
            }
        }
        if let Some(r) = &st.reptile {
            if r.inner_steps == 0 || !(r.beta > 0.0 && r.beta <= 1.0) {
                return Err(self.err(
                    at("reptile"),
                    format!("inner_steps {} beta {}", r.inner_steps, r.beta),
                    "use inner_steps ≥ 1 and beta in (0, 1] (1: no meta-update; MER's paper: k = 500, β = 0.1)",
                ));
            }
        }
        // Steps, sequences and segments are counted by `walk`.
        Ok(StagePlan {
            name: st.name.clone(),
            first_step: 0,
            steps: 0,
            sequences: 0,
            tokens_before: 0,
            schedule: st.schedule.clone(),
            optimizer: st.optimizer,
            adamw,
            schedule_steps: 0,
            schedule_offset: 0,
            continues_schedule: false,
            moment_warmup_steps: 0,
            shrink_perturb: st.shrink_perturb.clone(),
            reptile: st.reptile.clone(),
            subset_epochs: self.subset_epochs(st, at)?,
            mixture,
            replay,
            segments: Vec::new(),
            phases: Vec::new(),
            first_phase: 0,
        })
    }

    /// `subset_epochs`: at least one pass, and one mixture for the whole stage (the subset is the stage's).
    fn subset_epochs(
        &self,
        st: &StageConfig,
        at: &dyn Fn(&str) -> String,
    ) -> Result<Option<u64>, PlanError> {
        match st.subset_epochs {
            Some(0) => Err(self.err(
                at("subset_epochs"),
                "0",
                "use the number of passes over the subset, ≥ 1 (Guo et al.: 4); remove the key for one pass over fresh data",
            )),
            Some(_) if !st.mixture_changes.is_empty() => Err(self.err(
                at("subset_epochs"),
                "a subset read in passes in a stage whose mixture changes (mixture_changes)",
                "split the stage in two at the change, each with its own subset_epochs, or drop one of the two keys",
            )),
            e => Ok(e),
        }
    }

    /// The stage's new-data sources with their weights normalized to token fractions.
    fn mixture(
        &self,
        weights: &BTreeMap<String, f64>,
        field: &str,
        at: &dyn Fn(&str) -> String,
        sources: &[SourcePlan],
    ) -> Result<Vec<(usize, f64)>, PlanError> {
        if weights.is_empty() {
            return Err(self.err(
                at(field),
                "empty",
                "give the stage at least one source: mixture = { en = 1.0 }",
            ));
        }
        let total: f64 = weights.values().sum();
        let mut mixture = Vec::new();
        for (name, &w) in weights {
            if !(w.is_finite() && w > 0.0) {
                return Err(self.err(
                    at(&format!("{field}.{name}")),
                    format!("weight {w}"),
                    "weights are positive token fractions",
                ));
            }
            // Normalized, a weight must stay positive: it rounds to 0 when the sum overflows, or when
            // it is too small beside the others.
            if w / total == 0.0 {
                return Err(self.err(
                    at(&format!("{field}.{name}")),
                    format!("weight {w} is 0 as a fraction of the weights' total {total}"),
                    "give the weights on one scale, e.g. token fractions that sum to 1",
                ));
            }
            mixture.push((self.source_index(sources, at(field), name)?, w / total));
        }
        Ok(mixture)
    }

    /// Replay of a fraction ρ of every batch from earlier stages' sources (`None` when ρ = 0).
    fn replay(
        &self,
        r: &ReplayConfig,
        at: &dyn Fn(&str) -> String,
        sources: &[SourcePlan],
        trained: &[usize],
    ) -> Result<Option<ReplaySpec>, PlanError> {
        if !(0.0..1.0).contains(&r.fraction) {
            return Err(self.err(
                at("replay.fraction"),
                format!("{}", r.fraction),
                "a fraction of every batch: 0 ≤ ρ < 1",
            ));
        }
        if r.fraction == 0.0 {
            return Ok(None);
        }
        let replayed = match &r.sources {
            Some(names) => names
                .iter()
                .map(|n| self.source_index(sources, at("replay.sources"), n))
                .collect::<Result<Vec<_>, _>>()?,
            None => trained.to_vec(),
        };
        self.replay_sources(r, at, sources, trained, &replayed)?;
        self.replay_buffer(r, at)?;
        Ok(Some(ReplaySpec {
            fraction: r.fraction,
            sources: replayed,
            weights: r.weights.clone(),
            pool: r.pool,
            order: r.order,
            buffer: r.buffer_sequences,
        }))
    }

    /// A replay buffer holds at least one sequence and is a shuffled sample of the seen pool.
    fn replay_buffer(
        &self,
        r: &ReplayConfig,
        at: &dyn Fn(&str) -> String,
    ) -> Result<(), PlanError> {
        let Some(m) = r.buffer_sequences else {
            return Ok(());
        };
        if m == 0 {
            return Err(self.err(
                at("replay.buffer_sequences"),
                "0",
                "a buffer holds at least one sequence; remove the key to replay the whole seen pool",
            ));
        }
        if r.pool != ReplayPool::Seen || r.order != ReplayOrder::Shuffled {
            return Err(self.err(
                at("replay.buffer_sequences"),
                format!("with pool {:?}, order {:?}", r.pool, r.order),
                "a buffer is a shuffled sample of the sequences seen: use pool = \"seen\" and order = \"shuffled\" (the defaults)",
            ));
        }
        Ok(())
    }

    /// The replayed sources exist, have one weight each when weights are given, and were seen when only
    /// seen data may be replayed.
    fn replay_sources(
        &self,
        r: &ReplayConfig,
        at: &dyn Fn(&str) -> String,
        sources: &[SourcePlan],
        trained: &[usize],
        replayed: &[usize],
    ) -> Result<(), PlanError> {
        if replayed.is_empty() {
            return Err(self.err(
                at("replay"),
                "no earlier stage to replay from",
                "name replay.sources, or remove replay from the first stage",
            ));
        }
        if let Some(w) = &r.weights {
            if w.len() != replayed.len() {
                return Err(self.err(
                    at("replay.weights"),
                    format!("{} weights for {} sources", w.len(), replayed.len()),
                    "give one weight per replay source",
                ));
            }
            if let Some(bad) = w.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
                return Err(self.err(
                    at("replay.weights"),
                    format!("weight {bad}"),
                    "replay weights are positive",
                ));
            }
            if !w.iter().sum::<f64>().is_finite() {
                return Err(self.err(
                    at("replay.weights"),
                    "their sum overflows".to_string(),
                    "replay weights are relative: scale them down (e.g. 1 and 3)",
                ));
            }
        }
        // Seen-only replay of a source no earlier stage read has nothing to draw, and default weights
        // (sequences seen) would give it weight 0 — unless the run continues another (`init_from`),
        // whose checkpoint records what it consumed; that record is checked when the data is opened.
        let Some(&k) = replayed.iter().find(|k| !trained.contains(k)) else {
            return Ok(());
        };
        if self.continues {
            return Ok(());
        }
        let name = &sources[k].name;
        if r.pool == ReplayPool::Seen {
            return Err(self.err(
                at("replay.sources"),
                format!("no earlier stage trained on `{name}`, so none of it was seen"),
                "replay a source an earlier stage read, continue a run that trained on it (init_from), or set replay.pool = \"whole\" to draw from its whole training split",
            ));
        }
        if r.weights.is_none() && replayed.len() > 1 {
            return Err(self.err(
                at("replay.weights"),
                format!("no earlier stage trained on `{name}`, so it has no count of sequences seen to weight it by"),
                "give replay.weights, one per replay source",
            ));
        }
        Ok(())
    }

    /// Counts the stage's steps from where the cursor stands until it has drawn its sequences; the batch
    /// may grow along the way. Computed a segment (a run of steps with one batch size) at a time, so that
    /// a huge token budget costs no more than a small one; counts that would overflow 64 bits are an
    /// error. Returns (steps, sequences, segments) and moves the cursor to the stage's end.
    fn walk(
        &self,
        st: &StageConfig,
        stage: &StagePlan,
        at: &dyn Fn(&str) -> String,
        batch: &BatchSchedule,
        seq_len: usize,
        cursor: &mut Cursor,
    ) -> Result<(u64, u64, Vec<Segment>), PlanError> {
        let target = self.stage_sequences(st, stage, at, seq_len)?;
        let overflow = || {
            self.err(
                at("tokens"),
                format!(
                    "{} tokens: the plan's step and token counts overflow 64 bits",
                    st.tokens
                ),
                "give the stages token budgets a run can reach",
            )
        };
        let first_step = cursor.step;
        let mut sequences = 0u64;
        let mut segments: Vec<Segment> = Vec::new();
        while sequences < target {
            let b = batch.sequences_at(cursor.tokens);
            let batch_tokens = b.checked_mul(seq_len as u64).ok_or_else(overflow)?;
            // Steps at this batch size: until the stage has its sequences, or until the step that
            // starts at or past the next doubling point.
            let mut n = (target - sequences).div_ceil(b);
            if let Some(&next) = batch.double_at_tokens.iter().find(|&&t| t > cursor.tokens) {
                n = n.min((next - cursor.tokens).div_ceil(batch_tokens));
            }
            if segments.last().is_none_or(|seg| seg.batch_sequences != b) {
                segments.push(Segment {
                    first_step: cursor.step,
                    batch_sequences: b,
                    first_sequence: sequences,
                });
            }
            let add = |x: u64, times: u64, per: u64| {
                times.checked_mul(per).and_then(|d| d.checked_add(x))
            };
            sequences = add(sequences, n, b).ok_or_else(overflow)?;
            cursor.tokens = add(cursor.tokens, n, batch_tokens).ok_or_else(overflow)?;
            cursor.step = cursor.step.checked_add(n).ok_or_else(overflow)?;
        }
        Ok((cursor.step - first_step, sequences, segments))
    }

    /// The stage's phases: its own mixture from its first step, then each of `mixture_changes` from the
    /// step it names (`at_step`, or the first step that starts once `at_tokens` are trained), strictly
    /// inside the stage and in order. `ran` is the stage's steps, sequences and segments as it runs.
    fn phases(
        &self,
        st: &StageConfig,
        at: &dyn Fn(&str) -> String,
        mixture: &[(usize, f64)],
        ran: &(u64, u64, Vec<Segment>),
        seq_len: usize,
        sources: &[SourcePlan],
    ) -> Result<Vec<Phase>, PlanError> {
        let (steps, sequences, segments) = (ran.0, ran.1, &ran.2);
        let first_step = segments[0].first_step;
        // Stage sequence index of the first row of local step `n`.
        let sequence_at = |n: u64| {
            let g = segments[segments.partition_point(|g| g.first_step - first_step <= n) - 1];
            g.first_sequence + (n + first_step - g.first_step) * g.batch_sequences
        };
        let mut phases = vec![Phase {
            first_sequence: 0,
            sequences,
            mixture: mixture.to_vec(),
        }];
        for (i, change) in st.mixture_changes.iter().enumerate() {
            let field = format!("mixture_changes[{i}]");
            let step = match (change.at_step, change.at_tokens) {
                (Some(n), None) => n,
                (None, Some(t)) => (0..steps)
                    .find(|&n| sequence_at(n) * seq_len as u64 >= t)
                    .unwrap_or(steps),
                _ => {
                    return Err(self.err(
                        at(&field),
                        "needs at_step or at_tokens, one of them",
                        "say where the mixture changes: at_step = 500 or at_tokens = 1_000_000",
                    ))
                }
            };
            let previous = phases.last().expect("phase 0").first_sequence;
            if step == 0 || step >= steps || sequence_at(step) <= previous {
                return Err(self.err(
                    at(&field),
                    format!("at step {step} of the stage's {steps}"),
                    "changes fall strictly inside the stage, after the one before (or change the stage's own mixture)",
                ));
            }
            let mixture =
                self.mixture(&change.mixture, &format!("{field}.mixture"), at, sources)?;
            let first_sequence = sequence_at(step);
            let last = phases.last_mut().expect("phase 0");
            last.sequences = first_sequence - last.first_sequence;
            phases.push(Phase {
                first_sequence,
                sequences: sequences - first_sequence,
                mixture,
            });
        }
        Ok(phases)
    }

    /// The stage as it runs when it stops after `stop_after_steps` of its steps (`whole`: steps, sequences
    /// and segments of all of it): fewer steps and sequences, the cursor moved back to where it stops.
    fn stop_early(
        &self,
        st: &StageConfig,
        at: &dyn Fn(&str) -> String,
        whole: (u64, u64, Vec<Segment>),
        seq_len: usize,
        cursor: &mut Cursor,
    ) -> Result<(u64, u64, Vec<Segment>), PlanError> {
        let (steps, sequences, mut segments) = whole;
        let Some(k) = st.stop_after_steps.filter(|&k| k != steps) else {
            return Ok((steps, sequences, segments));
        };
        if k == 0 || k > steps {
            return Err(self.err(
                at("stop_after_steps"),
                format!("{k}, and the stage has {steps} steps"),
                "stop it after 1 to all of its steps",
            ));
        }
        let tokens_before = cursor.tokens - sequences * seq_len as u64;
        let end = cursor.step - steps + k;
        segments.retain(|g| g.first_step < end);
        let last = segments
            .last()
            .expect("a stage of k ≥ 1 steps has a segment");
        let kept = last.first_sequence + (end - last.first_step) * last.batch_sequences;
        cursor.step = end;
        cursor.tokens = tokens_before + kept * seq_len as u64;
        Ok((k, kept, segments))
    }

    /// Sequences the stage draws: its token budget, plus the replay on top with additive replay.
    fn stage_sequences(
        &self,
        st: &StageConfig,
        stage: &StagePlan,
        at: &dyn Fn(&str) -> String,
        seq_len: usize,
    ) -> Result<u64, PlanError> {
        let rho = stage.replay.as_ref().map_or(0.0, |r| r.fraction);
        let additive = st
            .replay
            .as_ref()
            .is_some_and(|r| r.mode == ReplayMode::Additive);
        let tokens = if additive {
            (st.tokens as f64 / (1.0 - rho)).round() as u64
        } else {
            st.tokens
        };
        let sequences = tokens.div_ceil(seq_len as u64);
        if sequences == 0 {
            return Err(self.err(at("tokens"), "0", "give the stage a positive token budget"));
        }
        Ok(sequences)
    }
}

/// Where the stages walked so far have left the run.
#[derive(Default)]
struct Cursor {
    step: u64,
    /// Tokens seen, run-wide.
    tokens: u64,
    /// Sources the stages so far trained on, in first-use order (what later stages may replay).
    trained: Vec<usize>,
}

/// The stages that continue one another's schedule share it: each group's schedule is laid out over the
/// sum of its stages' schedule steps, and each stage starts where the ones before it in the group ended.
fn link_schedules(stages: &mut [StagePlan]) {
    let mut start = 0;
    while start < stages.len() {
        let end = (start + 1..stages.len())
            .find(|&i| !stages[i].continues_schedule)
            .unwrap_or(stages.len());
        let group = &mut stages[start..end];
        let total: u64 = group.iter().map(|s| s.schedule_steps).sum();
        let mut offset = 0;
        for stage in group {
            stage.schedule_offset = offset;
            offset += stage.schedule_steps;
            stage.schedule_steps = total;
        }
        start = end;
    }
}
