//! Per-set outcomes of one run: the role each validation set plays in it (old, new, trained, eval only) and
//! the measures that role calls for (final loss, learned loss, forgetting, MER score, adaptation).

use crate::measures;
use crate::run::RunData;

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
    pub(crate) fn name(self) -> &'static str {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::run::{EvalPoint, StageInfo};
    use std::collections::BTreeMap;

    /// A one-stage run on "de" that also evaluates "en": losses per step 0, 10, 20.
    pub(crate) fn one_stage_run(init_from: Option<&str>) -> RunData {
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
            stages: vec![StageInfo {
                name: "cpt".into(),
                first_step: 0,
                tokens_before: 0,
                sources: vec!["de".into()],
                replay_fraction: 0.0,
            }],
            planned_steps: Some(20),
            init_from: init_from.map(str::to_owned),
            evals: BTreeMap::from([
                ("de".into(), series([7.0, 6.0, 5.5])),
                ("en".into(), series([4.0, 4.5, 5.0])),
            ]),
            ..RunData::default()
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
    fn a_run_from_scratch_has_neither_forgetting_nor_adaptation_in_one_stage() {
        let out = set_outcomes(&one_stage_run(None), 1);
        assert_eq!(out[0].role, Role::Trained);
        assert_eq!(out[1].role, Role::NotTrained);
        assert!(out
            .iter()
            .all(|o| o.forgetting.is_none() && o.adaptation.is_none()));
    }
}
