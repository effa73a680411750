//! How long a warmup is: a fraction of the stage (`warmup = 0.01`), an exact number of steps
//! (`warmup = { steps = 20 }`), or a fraction with a floor (`warmup = { fraction = 0.01, min_steps = 10 }`)
//! so that a short stage still warms up over enough steps. Fractions round to the nearest step
//! ([`super::fraction_to_steps`]); the length is clamped to the stage (or period).

use super::checks::{fraction, invalid};
use super::{fraction_to_steps, ScheduleError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Warmup {
    /// A fraction of the stage's steps.
    Fraction(f64),
    /// Steps, or a fraction with a floor.
    Spec(WarmupSpec),
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// With `fraction`: at least this many steps.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_steps: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Warmup {
    /// `steps` exact warmup steps.
    pub fn steps(steps: u64) -> Self {
        Warmup::Spec(WarmupSpec {
            fraction: None,
            steps: Some(steps),
            min_steps: 0,
        })
    }

    /// `fraction` of the stage, at least `min_steps`.
    pub fn fraction_at_least(fraction: f64, min_steps: u64) -> Self {
        Warmup::Spec(WarmupSpec {
            fraction: Some(fraction),
            steps: None,
            min_steps,
        })
    }

    /// W, the warmup steps of a stage (or period) of `total` steps.
    pub fn length(&self, total: u64) -> u64 {
        match *self {
            Warmup::Fraction(f) => fraction_to_steps(f, total),
            Warmup::Spec(s) => match (s.steps, s.fraction) {
                (Some(steps), _) => steps.min(total),
                (None, f) => fraction_to_steps(f.unwrap_or(0.0), total)
                    .max(s.min_steps)
                    .min(total),
            },
        }
    }

    /// The fraction, when the warmup is given as one (for checks against other fractions).
    pub fn fraction(&self) -> Option<f64> {
        match *self {
            Warmup::Fraction(f) => Some(f),
            Warmup::Spec(s) => s.fraction,
        }
    }

    /// A fraction in [0, 1], or steps, not both; a floor only with a fraction.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let spec = match *self {
            Warmup::Fraction(f) => return fraction("warmup", f),
            Warmup::Spec(s) => s,
        };
        match (spec.fraction, spec.steps) {
            (Some(f), None) => fraction("warmup.fraction", f),
            (None, Some(_)) if spec.min_steps == 0 => Ok(()),
            (None, Some(_)) => Err(invalid(
                "warmup.min_steps",
                spec.min_steps,
                "no floor with warmup.steps",
                "give steps = N alone, or fraction = f with min_steps",
            )),
            _ => Err(invalid(
                "warmup",
                "{ fraction and steps }",
                "exactly one of fraction or steps",
                "warmup = 0.01, warmup = { steps = 20 } or warmup = { fraction = 0.01, min_steps = 10 }",
            )),
        }
    }
}

impl Default for Warmup {
    /// Gupta et al. and Ibrahim et al. warm up over 1% of the stage.
    fn default() -> Self {
        Warmup::Fraction(0.01)
    }
}

impl From<f64> for Warmup {
    fn from(fraction: f64) -> Self {
        Warmup::Fraction(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_by_fraction_steps_and_floor() {
        assert_eq!(Warmup::Fraction(0.01).length(1_000), 10);
        assert_eq!(Warmup::steps(20).length(1_000), 20);
        assert_eq!(Warmup::steps(20).length(15), 15);
        assert_eq!(Warmup::fraction_at_least(0.01, 10).length(200), 10); // 2 → floor 10
        assert_eq!(Warmup::fraction_at_least(0.01, 10).length(5_000), 50);
        assert_eq!(Warmup::fraction_at_least(0.01, 10).length(4), 4);
    }

    #[test]
    fn toml_forms_parse_and_bad_ones_are_named() {
        #[derive(Deserialize)]
        struct T {
            warmup: Warmup,
        }
        let w = |text: &str| toml::from_str::<T>(text).map(|t| t.warmup);
        assert_eq!(w("warmup = 0.02").unwrap(), Warmup::Fraction(0.02));
        assert_eq!(w("warmup = { steps = 7 }").unwrap(), Warmup::steps(7));
        let floor = w("warmup = { fraction = 0.01, min_steps = 10 }").unwrap();
        assert_eq!(floor, Warmup::fraction_at_least(0.01, 10));
        assert!(w("warmup = { step = 7 }").is_err());
        let both = w("warmup = { fraction = 0.1, steps = 3 }").unwrap();
        assert_eq!(both.validate().unwrap_err().field, "schedule.warmup");
        let e = Warmup::Fraction(1.5).validate().unwrap_err();
        assert_eq!(e.field, "schedule.warmup");
        // A plain fraction writes back as a number, as before warmup had other forms.
        assert_eq!(
            serde_json::to_string(&Warmup::Fraction(0.01)).unwrap(),
            "0.01"
        );
    }
}
