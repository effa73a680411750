//! rewarm's reports and figures: run folders in, tables and plots out (no tensors). One plotting module
//! ([`plot`]) serves `rewarm plan --plot` and `rewarm report`.
//!
//! - [`run`]: [`RunData::load`] reads a run folder (plan.json, metrics.jsonl, environment.json);
//! - [`measures`]: what the report measures, as pure functions of evaluation series (final loss, AVG,
//!   forgetting, MER forgetting score, adaptation, stability gap, time-to-target, AlgoPerf performance
//!   profiles); named apart from the run folder's `metrics.jsonl`, where the series come from;
//! - [`outcomes`]: each validation set's role in a run and the measures that role calls for;
//! - [`report`]: the report of a set of runs, built from its sections (`sections/`, one file each), and
//!   [`write_report`];
//! - [`render`]: those as Markdown, HTML and terminal text;
//! - [`continual`]: the quickstart's table of forgetting and adaptation against the starting model;
//! - [`stat`]: mean ± sd (n) over a method's seeds, and the "≈ within 2σ" comparison of two methods;
//! - [`export`]: a run's metrics as CSV tables (`rewarm export-metrics`);
//! - [`predict`]: a run's final losses predicted from its first evaluations by a schedule-aware
//!   loss-curve law (`rewarm predict`).

pub mod continual;
mod counts;
pub mod export;
pub mod measures;
mod method;
pub mod outcomes;
pub mod plot;
pub mod predict;
pub mod render;
pub mod report;
pub mod run;
mod sections;
pub mod stat;

pub use continual::ContinualTable;
pub use report::{write_report, Report, ReportOptions};
pub use run::{EvalPoint, RunData};

use std::path::Path;

/// A report error: the file, what is wrong, and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}\nHINT: {hint}")]
pub struct ReportError {
    pub path: String,
    pub why: String,
    pub hint: String,
}

impl ReportError {
    pub fn new(path: &Path, why: String, hint: &str) -> Self {
        ReportError {
            path: path.display().to_string(),
            why,
            hint: hint.into(),
        }
    }
}

impl From<plot::PlotError> for ReportError {
    fn from(e: plot::PlotError) -> Self {
        ReportError {
            path: e.path,
            why: e.why,
            hint: e.hint,
        }
    }
}
