//! Sweeps: a base plan plus a grid over any plan fields, expanded into concrete plans *before* anything
//! runs. A run's id is a hash of its resolved plan, so the same point always lands in the same folder and
//! finished runs are recognised on the next call. "Retrain from scratch on the union of all stages' data,
//! same total schedule shape" is one line: `union_baseline = true`.
//!
//! ```toml
//! base = "two-stage.toml"
//! union_baseline = true
//! [grid]
//! "stages.1.replay.fraction" = [0.0, 0.05, 0.25]
//! "stages.1.schedule.max_lr" = [1e-3, 2e-3]
//! seed = [1, 2]
//! ```

use crate::config::PlanConfig;
use crate::PlanError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// The plan every run starts from (relative to the sweep file).
    pub base: String,
    /// Dotted plan paths (array elements by index: `stages.1.replay.fraction`) → values to try.
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<Value>>,
    /// Also run the union retrain baseline derived from the base plan.
    #[serde(default)]
    pub union_baseline: bool,
}

/// The most runs one sweep file may expand to: far more than anyone trains, few enough that expanding
/// and checking them all takes moments (a hostile grid of ten keys × ten values would be 10¹⁰ plans).
pub const MAX_RUNS: usize = 4096;

/// One concrete run of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRun {
    /// First 12 hex digits of sha256 over the resolved plan.
    pub id: String,
    /// `key=value` of the grid point (or `union`), for tables.
    pub label: String,
    pub params: BTreeMap<String, Value>,
    /// The plan, with every path made absolute, ready to write into the run folder.
    pub plan: toml::Table,
    /// Set when the sweep trains each point with several seeds (the plan's `seed` then differs).
    pub seed: Option<u64>,
}

/// Every run repeated with `n` seeds: its plan's seed (0 if unset), seed + 1, …, seed + n − 1. Each
/// copy gets its own id and keeps the label, so the report aggregates the copies of a point (mean ± sd).
/// `n = 1` returns the runs as they are.
pub fn with_seeds(runs: Vec<SweepRun>, n: usize) -> Vec<SweepRun> {
    if n <= 1 {
        return runs;
    }
    let mut out = Vec::with_capacity(runs.len() * n);
    for run in runs {
        let base = run
            .plan
            .get("seed")
            .and_then(Value::as_integer)
            .unwrap_or(0)
            .max(0) as u64;
        for i in 0..n as u64 {
            let mut plan = run.plan.clone();
            plan.insert("seed".into(), Value::Integer((base + i) as i64));
            out.push(SweepRun {
                id: run_id(&plan),
                seed: Some(base + i),
                plan,
                ..run.clone()
            });
        }
    }
    out
}

fn sweep_err(file: &Path, field: &str, why: String, fix: &str) -> PlanError {
    PlanError {
        file: file.display().to_string(),
        field: field.into(),
        why,
        fix: fix.into(),
    }
}

/// Reads a sweep file and expands its grid (cartesian product, keys in sorted order).
pub fn expand(path: &Path) -> Result<Vec<SweepRun>, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        sweep_err(
            path,
            "file",
            e.to_string(),
            "pass the path of a sweep .toml file",
        )
    })?;
    let sweep = parse(&text, path)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_path = dir.join(&sweep.base);
    let base_text = std::fs::read_to_string(&base_path).map_err(|e| {
        sweep_err(
            path,
            "base",
            format!("{}: {e}", base_path.display()),
            "point base at a plan file",
        )
    })?;
    expand_with_base(&sweep, path, &base_path, &base_text)
}

/// Parses the text of a sweep file; `path` labels errors.
pub fn parse(text: &str, path: &Path) -> Result<SweepConfig, PlanError> {
    toml::from_str(text).map_err(|e| {
        sweep_err(
            path,
            "sweep",
            e.message().to_owned(),
            "keys are base, grid, union_baseline (docs/sweeps.md)",
        )
    })
}

/// Expands a parsed sweep (read from `path`) over its base plan, already read from `base_path`.
pub fn expand_with_base(
    sweep: &SweepConfig,
    path: &Path,
    base_path: &Path,
    base_text: &str,
) -> Result<Vec<SweepRun>, PlanError> {
    let mut base: toml::Table = toml::from_str(base_text).map_err(|e| {
        sweep_err(
            base_path,
            "plan",
            e.message().to_owned(),
            "fix the base plan",
        )
    })?;
    absolutize(&mut base, base_path.parent().unwrap_or(Path::new(".")));
    check_size(sweep, path)?;
    let mut runs = Vec::new();
    for params in grid_points(sweep) {
        runs.push(grid_run(&base, params, path)?);
    }
    if sweep.union_baseline {
        let plan = union_plan(&base)
            .map_err(|why| sweep_err(base_path, "stages", why, "fix the base plan"))?;
        check(&plan, path)?;
        runs.push(SweepRun {
            id: run_id(&plan),
            label: "union".into(),
            params: BTreeMap::new(),
            plan,
            seed: None,
        });
    }
    Ok(runs)
}

/// Every grid key has values, and the grid holds at most [`MAX_RUNS`] points.
fn check_size(sweep: &SweepConfig, path: &Path) -> Result<(), PlanError> {
    let mut count = 1usize;
    for (key, values) in &sweep.grid {
        if values.is_empty() {
            return Err(sweep_err(
                path,
                &format!("grid.{key}"),
                "no values".into(),
                "list at least one value",
            ));
        }
        count = count.saturating_mul(values.len());
    }
    if count <= MAX_RUNS {
        return Ok(());
    }
    let sizes: Vec<String> = sweep.grid.values().map(|v| v.len().to_string()).collect();
    let count = if count == usize::MAX {
        "over 2^64".to_owned()
    } else {
        count.to_string()
    };
    Err(sweep_err(
        path,
        "grid",
        format!(
            "expands to {count} runs ({}), more than the {MAX_RUNS} one sweep may hold",
            sizes.join(" × ")
        ),
        "split the sweep into several files, or list fewer values",
    ))
}

/// The cartesian product of the grid, keys in sorted order.
fn grid_points(sweep: &SweepConfig) -> Vec<BTreeMap<String, Value>> {
    let mut points: Vec<BTreeMap<String, Value>> = vec![BTreeMap::new()];
    for (key, values) in &sweep.grid {
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.insert(key.clone(), v.clone());
                    q
                })
            })
            .collect();
    }
    points
}

/// The run of one grid point: the base plan with the point's values set, labelled `key=value,…`.
fn grid_run(
    base: &toml::Table,
    params: BTreeMap<String, Value>,
    path: &Path,
) -> Result<SweepRun, PlanError> {
    let mut plan = base.clone();
    for (key, value) in &params {
        set_path(&mut plan, key, value.clone()).map_err(|why| {
            sweep_err(
                path,
                &format!("grid.{key}"),
                why,
                "use a dotted path into the plan, array elements by index",
            )
        })?;
    }
    check(&plan, path)?;
    let label = if params.is_empty() {
        "base".to_owned()
    } else {
        let parts: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.join(",")
    };
    Ok(SweepRun {
        id: run_id(&plan),
        label,
        params,
        plan,
        seed: None,
    })
}

/// The plan must still parse (unknown keys from a typo in a grid path are caught here).
fn check(plan: &toml::Table, path: &Path) -> Result<(), PlanError> {
    let text = toml::to_string(plan)
        .map_err(|e| sweep_err(path, "grid", e.to_string(), "check grid values"))?;
    PlanConfig::from_toml(&text, path).map(|_| ())
}

pub fn run_id(plan: &toml::Table) -> String {
    let json = serde_json::to_string(plan).expect("toml tables serialize");
    Sha256::digest(json.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sets `a.b.0.c` in a TOML table; intermediate tables are created, arrays must have the index.
pub fn set_path(table: &mut toml::Table, key: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur: &mut Value = table
        .entry(parts[0])
        .or_insert_with(|| Value::Table(toml::Table::new()));
    if parts.len() == 1 {
        *cur = value;
        return Ok(());
    }
    for (i, part) in parts.iter().enumerate().skip(1) {
        let last = i == parts.len() - 1;
        cur = match cur {
            Value::Table(t) => {
                if last {
                    t.insert((*part).to_owned(), value);
                    return Ok(());
                }
                t.entry(*part)
                    .or_insert_with(|| Value::Table(toml::Table::new()))
            }
            Value::Array(a) => {
                let idx: usize = part
                    .parse()
                    .map_err(|_| format!("`{part}` indexes an array: use a number"))?;
                let len = a.len();
                let slot = a
                    .get_mut(idx)
                    .ok_or_else(|| format!("index {idx} is past the {len} elements"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            _ => {
                return Err(format!(
                    "`{}` is not a table or array",
                    parts[..i].join(".")
                ))
            }
        };
    }
    Ok(())
}

/// Makes the plan's file paths absolute, so the plan can be written into any run folder.
fn absolutize(plan: &mut toml::Table, dir: &Path) {
    let abs = |s: &str| -> String {
        let p = PathBuf::from(s);
        let p = if p.is_absolute() { p } else { dir.join(p) };
        p.canonicalize().unwrap_or(p).display().to_string()
    };
    if let Some(Value::Table(data)) = plan.get_mut("data") {
        if let Some(Value::Table(sources)) = data.get_mut("sources") {
            for (_, v) in sources.iter_mut() {
                if let Value::String(s) = v {
                    *s = abs(s);
                }
            }
        }
        if let Some(Value::String(t)) = data.get_mut("tokenizer") {
            if t.ends_with(".json") {
                *t = abs(t);
            }
        }
    }
    if let Some(Value::String(s)) = plan.get_mut("init_from") {
        *s = abs(s);
    }
    if let Some(Value::Array(stages)) = plan.get_mut("stages") {
        for st in stages {
            if let Some(Value::Table(sched)) = st.get_mut("schedule") {
                if let Some(Value::String(g)) = sched.get_mut("grad_norms") {
                    *g = abs(g);
                }
            }
        }
    }
}

/// The union retrain: from scratch (no init_from), one stage over every stage's data weighted by the stage's
/// token budget, as many tokens as all stages' budgets together, and the first stage's schedule shape.
pub fn union_plan(base: &toml::Table) -> Result<toml::Table, String> {
    let stages = base
        .get("stages")
        .and_then(Value::as_array)
        .ok_or("no [[stages]]")?;
    let mut mixture: BTreeMap<String, f64> = BTreeMap::new();
    let mut tokens = 0f64;
    for st in stages {
        // The union reads each stage's whole budget of its own data (Ibrahim et al.: 300B Pile + 300B
        // SlimPajama = 600B, whatever the CPT runs replayed); with additive replay `tokens` is new data already.
        let new_tokens = st
            .get("tokens")
            .and_then(Value::as_integer)
            .ok_or("a stage without tokens")? as f64;
        let mix = st
            .get("mixture")
            .and_then(Value::as_table)
            .ok_or("a stage without mixture")?;
        let total: f64 = mix
            .values()
            .filter_map(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
            .sum();
        for (name, w) in mix {
            let w = w
                .as_float()
                .or(w.as_integer().map(|i| i as f64))
                .unwrap_or(0.0);
            *mixture.entry(name.clone()).or_default() += new_tokens * w / total.max(1e-12);
        }
        tokens += new_tokens;
    }
    let first = stages[0].as_table().ok_or("stage is not a table")?;
    let mut stage = toml::Table::new();
    stage.insert("name".into(), Value::String("union".into()));
    stage.insert("tokens".into(), Value::Integer(tokens.round() as i64));
    stage.insert(
        "mixture".into(),
        Value::Table(
            mixture
                .into_iter()
                .map(|(k, v)| (k, Value::Float(v / tokens.max(1.0))))
                .collect(),
        ),
    );
    stage.insert(
        "schedule".into(),
        first
            .get("schedule")
            .cloned()
            .ok_or("first stage has no schedule")?,
    );
    let mut plan = base.clone();
    plan.remove("init_from");
    plan.insert("stages".into(), Value::Array(vec![Value::Table(stage)]));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const BASE: &str = r#"
seed = 1
[model]
preset = "tiny"
[data]
sources = { en = "prepared/en", de = "prepared/de" }
[[stages]]
name = "en"
tokens = 1000
mixture = { en = 1.0 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4 }
[[stages]]
name = "de"
tokens = 3000
mixture = { de = 1.0 }
replay = { fraction = 0.25 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4 }
"#;

    #[test]
    fn grid_expands_to_stable_ids_with_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let sweep = write(
            dir.path(),
            "s.toml",
            "base = \"base.toml\"\nunion_baseline = true\n[grid]\n\"stages.1.replay.fraction\" = [0.0, 0.05, 0.25]\nseed = [1, 2]\n",
        );
        let runs = expand(&sweep).unwrap();
        assert_eq!(runs.len(), 7);
        let ids: std::collections::HashSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), 7, "every point gets its own id");
        let again: Vec<String> = expand(&sweep).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(
            again,
            runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            "ids are stable"
        );
        assert_eq!(runs[0].label, "seed=1,stages.1.replay.fraction=0.0");
        let src = runs[0].plan["data"]["sources"]["en"].as_str().unwrap();
        assert!(Path::new(src).is_absolute(), "{src}");
        // The point's value is in its plan.
        let r = runs
            .iter()
            .find(|r| r.label == "seed=2,stages.1.replay.fraction=0.05")
            .unwrap();
        assert_eq!(
            r.plan["stages"][1]["replay"]["fraction"].as_float(),
            Some(0.05)
        );
        assert_eq!(r.plan["seed"].as_integer(), Some(2));
    }

    #[test]
    fn seeds_repeat_every_point_with_its_own_id_and_the_same_label() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "base.toml",
            &BASE.replace("seed = 1", "seed = 5"),
        );
        let sweep = write(
            dir.path(),
            "s.toml",
            "base = \"base.toml\"\n[grid]\n\"stages.1.replay.fraction\" = [0.0, 0.25]\n",
        );
        let runs = with_seeds(expand(&sweep).unwrap(), 3);
        assert_eq!(runs.len(), 6);
        let seeds: Vec<Option<u64>> = runs.iter().map(|r| r.seed).collect();
        assert_eq!(seeds, [5, 6, 7, 5, 6, 7].map(Some));
        assert_eq!(runs[2].plan["seed"].as_integer(), Some(7));
        assert_eq!(runs[0].label, runs[2].label);
        let ids: std::collections::HashSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), 6);
        assert_eq!(with_seeds(expand(&sweep).unwrap(), 1)[0].seed, None);
    }

    #[test]
    fn union_baseline_reads_every_stage_budget_from_scratch() {
        let base: toml::Table = toml::from_str(BASE).unwrap();
        let u = union_plan(&base).unwrap();
        let stage = &u["stages"][0];
        assert_eq!(stage["tokens"].as_integer(), Some(4000));
        assert_eq!(stage["mixture"]["en"].as_float(), Some(0.25));
        assert_eq!(stage["mixture"]["de"].as_float(), Some(0.75));
        assert!(u.get("init_from").is_none());
        assert!(stage.get("replay").is_none());
    }

    #[test]
    fn bad_grid_paths_and_typos_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let bad_index = write(
            dir.path(),
            "a.toml",
            "base = \"base.toml\"\n[grid]\n\"stages.5.tokens\" = [1]\n",
        );
        let err = expand(&bad_index).err().unwrap().to_string();
        assert!(
            err.contains("grid.stages.5.tokens") && err.contains("past the 2"),
            "{err}"
        );
        let typo = write(
            dir.path(),
            "b.toml",
            "base = \"base.toml\"\n[grid]\n\"stages.1.replay.fractoin\" = [0.1]\n",
        );
        let err = expand(&typo).err().unwrap().to_string();
        assert!(err.contains("fractoin"), "{err}");
        let unknown = write(dir.path(), "c.toml", "base = \"base.toml\"\ngrdi = 1\n");
        assert!(expand(&unknown).err().unwrap().to_string().contains("grdi"));
    }
}
