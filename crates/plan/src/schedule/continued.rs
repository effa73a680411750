//! `kind = "continue"`: the stage goes on with the schedule of the stage before it, so that one schedule
//! spans several stages (MER's single cosine over all tasks; one WSD over new data arriving in parts).
//! The stages that continue one another form a group; the group's schedule is laid out over the sum of
//! their steps, and a stage's step n is step (steps of the group before it) + n of that schedule. `Plan`
//! resolves every `continue` into the schedule it continues (`StagePlan::schedule`), so this family's
//! LR is never asked for.

use serde::{Deserialize, Serialize};

use super::{Family, ScheduleError};

/// `schedule = { kind = "continue" }`: no fields of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Continue {}

impl Family for Continue {
    fn validate(&self) -> Result<(), ScheduleError> {
        Ok(())
    }

    /// Never asked: the plan replaces `continue` with the schedule it continues. NaN, so that a misuse
    /// would trip the non-finite guard rather than train at a made-up rate.
    fn lr_at(&self, _n: u64, _t: u64) -> f64 {
        f64::NAN
    }

    fn peak_lr(&self) -> f64 {
        f64::NAN
    }
}
