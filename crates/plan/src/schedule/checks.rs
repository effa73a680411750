//! The checks every schedule family's validation is made of: each error names the field
//! (`schedule.warmup`), the allowed range and the fix (STYLE habit 1).

use super::{AnnealShape, ScheduleError};

pub(crate) fn invalid(
    name: &str,
    got: impl std::fmt::Display,
    expected: impl Into<String>,
    hint: impl Into<String>,
) -> ScheduleError {
    ScheduleError::new(format!("schedule.{name}"), got, expected, hint)
}

pub(crate) fn positive_lr(name: &str, lr: f64) -> Result<(), ScheduleError> {
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

pub(crate) fn nonnegative_lr(name: &str, lr: f64) -> Result<(), ScheduleError> {
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

pub(crate) fn peak_and_floor(max_lr: f64, min_lr: f64) -> Result<(), ScheduleError> {
    positive_lr("max_lr", max_lr)?;
    nonnegative_lr("min_lr", min_lr)?;
    at_most("min_lr", min_lr, "max_lr", max_lr)
}

pub(crate) fn fraction(name: &str, value: f64) -> Result<(), ScheduleError> {
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

pub(crate) fn at_most(
    low_name: &str,
    low: f64,
    high_name: &str,
    high: f64,
) -> Result<(), ScheduleError> {
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

pub(crate) fn anneal_shape(shape: AnnealShape, min_lr: f64) -> Result<(), ScheduleError> {
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
