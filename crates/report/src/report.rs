//! `rewarm report`: the tables and figures of a set of runs (docs/papers.md#experiments, B–K), as
//! `report.md`, `report.html` (tables plus inline SVG figures), `figures/*.svg` and `figures/*.png`, and
//! terminal text.
//!
//! Everything is a pure function of the run folders and the options: runs are sorted by name, numbers have
//! fixed formats, and the only line that may change between two reports of the same runs is the stamp at
//! the top.
//!
//! Each section is built in its own file under `sections/`; this module holds the report's types, the order
//! of its sections ([`Report::build`]) and [`write_report`].

use crate::plot::Chart;
use crate::render::Table;
use crate::run::{discover, RunData};
use crate::sections::against_union::against_union_section;
use crate::sections::cost::cost_section;
use crate::sections::final_loss::final_loss_section;
use crate::sections::forgetting::forgetting_section;
use crate::sections::profiles::profiles_section;
use crate::sections::representation::representation_section;
use crate::sections::runs::runs_section;
use crate::sections::stability_gap::stability_gap_section;
use crate::sections::summary::summary_section;
use crate::sections::tasks::tasks_section;
use crate::sections::time_to_target::{time_to_target_section, workloads};
use crate::sections::{Ctx, Figures};
use crate::ReportError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// Defined in `outcomes`; still reachable as `rewarm_report::report::…`.
pub use crate::outcomes::{set_outcomes, Role, SetOutcome};

#[derive(Clone, Debug, PartialEq)]
pub struct ReportOptions {
    /// Final loss = mean of the last `last_k` evaluations of each set (Ibrahim et al. average the last 100
    /// logged iterations). Default 3: one evaluation is one noisy sample of the model; three damp that
    /// noise while staying at the end of training.
    pub last_k: usize,
    /// The union baseline run (otherwise: a single-stage run mixing ≥ 2 sources, per sweep folder).
    pub baseline: Option<PathBuf>,
    /// Time-to-target set (default: the first source of the last stage of the first non-baseline run).
    pub target_set: Option<String>,
    /// Target loss (default: the baseline's final loss on the target set).
    pub target_loss: Option<f64>,
    /// Time to target with a ceiling on the old data (K1): nats above the continued model's loss on the
    /// ceiling set when continual training began; `None`: no ceiling.
    pub ceiling: Option<f64>,
    /// The ceiling's set (default: the first old set of a workload's first continual run).
    pub ceiling_set: Option<String>,
    /// The one line that may differ between reports of the same runs (e.g. when it was generated).
    pub stamp: String,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            last_k: 3,
            baseline: None,
            target_set: None,
            target_loss: None,
            ceiling: None,
            ceiling_set: None,
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
    /// Said under the tables (flags, disagreements); printed to the terminal too.
    pub footnotes: Vec<String>,
    /// Stems of figures shown in this section.
    pub figures: Vec<String>,
    /// Printed to the terminal too.
    pub terminal: bool,
}

impl Section {
    pub(crate) fn new(title: &str, terminal: bool) -> Self {
        Section {
            title: title.into(),
            text: Vec::new(),
            tables: Vec::new(),
            footnotes: Vec::new(),
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

impl Report {
    /// Computes every table and figure. `baseline` forces the union baseline (an index into `runs`).
    pub fn build(
        runs: Vec<RunData>,
        baseline: Option<usize>,
        notes: Vec<String>,
        options: &ReportOptions,
    ) -> Report {
        let ctx = Ctx::new(&runs, baseline, options);
        let workloads = workloads(&ctx);
        let mut figs = Figures::default();
        // The answer first (losses, forgetting, against the union), the runs' details last.
        let mut sections = vec![
            summary_section(&ctx, &mut figs),
            final_loss_section(&ctx, &mut figs),
            forgetting_section(&ctx, &mut figs),
        ];
        sections.extend(against_union_section(&ctx));
        sections.push(stability_gap_section(&ctx));
        sections.extend(representation_section(&ctx, &mut figs));
        sections.extend(tasks_section(&ctx, &mut figs));
        sections.push(cost_section(&ctx));
        sections.push(time_to_target_section(&ctx, &workloads));
        sections.extend(profiles_section(&ctx, &workloads, &mut figs));
        sections.push(runs_section(&ctx, &mut figs));
        Report {
            stamp: options.stamp.clone(),
            runs,
            sections,
            figures: figs.list,
            notes,
        }
    }
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
        Some(path) => find_or_load_baseline(&mut runs, path)?,
    };
    let report = Report::build(runs, baseline, notes, options);
    let svgs = write_figures(&report, &out.join("figures"))?;
    write(&out.join("report.md"), report.to_markdown().as_bytes())?;
    write(&out.join("report.html"), report.to_html(&svgs).as_bytes())?;
    Ok(report)
}

/// The index in `runs` (sorted by name) of the baseline run at `path`: one of `runs` (same folder or same
/// name), else loaded and added, as `baseline/<name>` if its name is taken.
fn find_or_load_baseline(
    runs: &mut Vec<RunData>,
    path: &Path,
) -> Result<Option<usize>, ReportError> {
    let want = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
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
                b.method = b.name.clone();
            }
            let name = b.name.clone();
            runs.push(b);
            runs.sort_by(|a, b| a.name.cmp(&b.name));
            name
        }
    };
    Ok(runs.iter().position(|r| r.name == b))
}

/// Writes every figure as `<stem>.svg` and `<stem>.png` under `dir`; returns the SVG documents by stem,
/// which report.html inlines.
fn write_figures(report: &Report, dir: &Path) -> Result<BTreeMap<String, String>, ReportError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ReportError::new(dir, e.to_string(), "pass an --out folder you can write"))?;
    let mut svgs = BTreeMap::new();
    for f in &report.figures {
        let svg_path = dir.join(format!("{}.svg", f.stem));
        let svg = f
            .chart
            .to_svg()
            .map_err(|e| ReportError::new(&svg_path, e, "a plotting error; please report it"))?;
        write(&svg_path, svg.as_bytes())?;
        f.chart.save(&dir.join(format!("{}.png", f.stem)))?;
        svgs.insert(f.stem.clone(), svg);
    }
    Ok(svgs)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes)
        .map_err(|e| ReportError::new(path, e.to_string(), "pass an --out folder you can write"))
}
