//! Validation of schedule configs: every field checked once, each error naming the field, the
//! allowed range and the fix (STYLE habit 1).

use super::{AnnealShape, DecayShape, Schedule, ScheduleError};

impl Schedule {
    /// Checks every field; the error names it (`schedule.warmup`), the allowed range and the fix.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match self {
            Self::Constant { lr } => positive_lr("lr", *lr),
            Self::Cosine {
                max_lr,
                min_lr,
                warmup,
                decay_end,
                ..
            } => {
                peak_and_floor(*max_lr, *min_lr)?;
                fraction("warmup", *warmup)?;
                fraction("decay_end", *decay_end)?;
                at_most("warmup", *warmup, "decay_end", *decay_end)
            }
            Self::Linear {
                max_lr,
                min_lr,
                warmup,
                ..
            } => {
                peak_and_floor(*max_lr, *min_lr)?;
                fraction("warmup", *warmup)
            }
            Self::Wsd {
                max_lr,
                warmup,
                decay_fraction,
                shape,
                final_lr_ratio,
                ..
            } => {
                positive_lr("max_lr", *max_lr)?;
                fraction("warmup", *warmup)?;
                fraction("decay_fraction", *decay_fraction)?;
                fraction("final_lr_ratio", *final_lr_ratio)?;
                if warmup + decay_fraction > 1.0 + 1e-12 {
                    return Err(invalid(
                        "decay_fraction",
                        decay_fraction,
                        format!(
                            "<= 1 − warmup ({}) so warmup and decay do not overlap",
                            1.0 - warmup
                        ),
                        "shorten the warmup or the decay (Hägele et al.: 10–20% decay)",
                    ));
                }
                if *shape == DecayShape::Exponential && *final_lr_ratio <= 0.0 {
                    return Err(invalid(
                        "final_lr_ratio",
                        final_lr_ratio,
                        "> 0 for shape = \"exponential\" (f^x never reaches 0)",
                        "set final_lr_ratio, e.g. 0.1, or pick another shape",
                    ));
                }
                Ok(())
            }
            Self::Infinite {
                max_lr,
                const_lr,
                min_lr,
                warmup,
                alpha,
                cooldown_fraction,
                constant_fraction,
                anneal,
                ..
            } => {
                peak_and_floor(*max_lr, *min_lr)?;
                positive_lr("const_lr", *const_lr)?;
                at_most("min_lr", *min_lr, "const_lr", *const_lr)?;
                at_most("const_lr", *const_lr, "max_lr", *max_lr)?;
                fraction("warmup", *warmup)?;
                fraction("cooldown_fraction", *cooldown_fraction)?;
                fraction("constant_fraction", *constant_fraction)?;
                if !(alpha.is_finite() && *alpha > 0.0) {
                    return Err(invalid(
                        "alpha",
                        alpha,
                        "a finite timescale > 0",
                        "NeoX uses 10",
                    ));
                }
                at_most(
                    "cooldown_fraction",
                    *cooldown_fraction,
                    "constant_fraction",
                    *constant_fraction,
                )?;
                if warmup + constant_fraction > 1.0 + 1e-12 {
                    return Err(invalid(
                        "constant_fraction",
                        constant_fraction,
                        format!(
                            "<= 1 − warmup ({}): it marks the end of the constant phase counted \
                             from the end of warmup, as a fraction of all steps (NeoX convention)",
                            1.0 - warmup
                        ),
                        "NeoX uses 0.85 with 1% warmup; 1 − warmup means no anneal",
                    ));
                }
                anneal_shape(*anneal, *min_lr)
            }
            Self::Anneal {
                start_lr,
                min_lr,
                shape,
            } => {
                positive_lr("start_lr", *start_lr)?;
                nonnegative_lr("min_lr", *min_lr)?;
                at_most("min_lr", *min_lr, "start_lr", *start_lr)?;
                anneal_shape(*shape, *min_lr)
            }
            Self::RepeatedCosine {
                max_lr,
                min_lr,
                repeats,
                warmup,
            } => {
                peak_and_floor(*max_lr, *min_lr)?;
                fraction("warmup", *warmup)?;
                if *repeats == 0 {
                    return Err(invalid(
                        "repeats",
                        repeats,
                        "at least 1 period",
                        "Ibrahim et al. compare 3 repeats; 1 is a single warmup + cosine",
                    ));
                }
                Ok(())
            }
            Self::Refined {
                max_lr,
                warmup,
                grad_norms,
                smoothing,
                multipliers,
                ..
            } => {
                positive_lr("max_lr", *max_lr)?;
                fraction("warmup", *warmup)?;
                fraction("smoothing", *smoothing)?;
                if multipliers.is_empty() {
                    let hint = match grad_norms {
                        Some(path) => format!(
                            "plan loading must read {} and call fill_refined_multipliers",
                            path.display()
                        ),
                        None => {
                            "set grad_norms to the per-step gradient-norm log of an earlier run"
                                .to_string()
                        }
                    };
                    return Err(invalid("multipliers", "[]", "refined multipliers", hint));
                }
                if let Some(i) = multipliers.iter().position(|m| !(0.0..=1.0).contains(m)) {
                    return Err(invalid(
                        &format!("multipliers[{i}]"),
                        multipliers[i],
                        "a multiplier in [0, 1]",
                        "recompute them with refined_multipliers (normalized to a maximum of 1)",
                    ));
                }
                if !multipliers.iter().any(|&m| m > 0.0) {
                    return Err(invalid(
                        "multipliers",
                        "all 0",
                        "at least one multiplier > 0",
                        "record gradient norms for at least 2 steps",
                    ));
                }
                Ok(())
            }
        }
    }
}

fn invalid(
    name: &str,
    got: impl std::fmt::Display,
    expected: impl Into<String>,
    hint: impl Into<String>,
) -> ScheduleError {
    ScheduleError::new(format!("schedule.{name}"), got, expected, hint)
}

fn positive_lr(name: &str, lr: f64) -> Result<(), ScheduleError> {
    if lr.is_finite() && lr > 0.0 {
        return Ok(());
    }
    Err(invalid(
        name,
        lr,
        "a finite learning rate > 0",
        "e.g. 3e-4, Ibrahim et al.'s 405M η_max",
    ))
}

fn nonnegative_lr(name: &str, lr: f64) -> Result<(), ScheduleError> {
    if lr.is_finite() && lr >= 0.0 {
        return Ok(());
    }
    Err(invalid(
        name,
        lr,
        "a finite learning rate >= 0",
        "0, or e.g. 0.1·max_lr (Ibrahim et al.)",
    ))
}

fn peak_and_floor(max_lr: f64, min_lr: f64) -> Result<(), ScheduleError> {
    positive_lr("max_lr", max_lr)?;
    nonnegative_lr("min_lr", min_lr)?;
    at_most("min_lr", min_lr, "max_lr", max_lr)
}

fn fraction(name: &str, value: f64) -> Result<(), ScheduleError> {
    if (0.0..=1.0).contains(&value) {
        return Ok(());
    }
    Err(invalid(
        name,
        value,
        "a fraction in [0, 1]",
        "fractions are of the stage's steps: 0.01 means 1% (percent values must be divided by 100)",
    ))
}

fn at_most(low_name: &str, low: f64, high_name: &str, high: f64) -> Result<(), ScheduleError> {
    if low <= high {
        return Ok(());
    }
    Err(invalid(
        low_name,
        low,
        format!("<= {high_name} ({high})"),
        format!("lower {low_name} or raise {high_name}"),
    ))
}

fn anneal_shape(shape: AnnealShape, min_lr: f64) -> Result<(), ScheduleError> {
    match shape {
        AnnealShape::Exponential if min_lr <= 0.0 => Err(invalid(
            "min_lr",
            min_lr,
            "> 0 for an exponential anneal (η_const·(η_min/η_const)^x needs η_min > 0)",
            "set min_lr, e.g. 0.1·max_lr, or use anneal = { exponential_tau = { tau_steps = .. } }",
        )),
        AnnealShape::ExponentialTau { tau_steps }
            if !(tau_steps.is_finite() && tau_steps > 0.0) =>
        {
            Err(invalid(
                "anneal.tau_steps",
                tau_steps,
                "a finite time constant > 0 steps",
                "e.g. 10000",
            ))
        }
        _ => Ok(()),
    }
}
