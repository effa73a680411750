//! `rewarm branch`: a new run that starts from a checkpoint of another run (the trunk) with all of its
//! state — weights, Adam moments, step and token counters, data positions and the record of what it
//! consumed — and goes on with other stages: the anneal of a constant-LR trunk, a new mixture, new data.
//!
//! The branch's plan is the trunk's, stopped at the checkpoint's step (the stage holding it gets
//! `stop_after_steps`, so its LR there is the one the whole stage has), with the new stages after it.
//! The branch folder starts as a copy of that checkpoint (hard links) and of the trunk's metrics, and
//! training it is a resume: the branch's records go on from the trunk's step, a report shows the whole
//! curve, and a branch stopped part way resumes like any run. What each piece of state does across the
//! branch point is an explicit policy ([`MomentPolicy`], [`SchedulePolicy`]); the data always continues
//! where the trunk stopped (docs/continue.md).

use anyhow::{anyhow, bail, Context, Result};
use rewarm_plan::config::{OptimizerPolicy, StageConfig};
use rewarm_plan::{extend, Plan, PlanConfig};
use rewarm_runfolder::{atomic, CheckpointDir, RunDir};
use std::path::{Path, PathBuf};

/// Adam's moments at the branch point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MomentPolicy {
    /// The trunk's moments and bias-correction count go on (OLMo 2's stage 2).
    Keep,
    /// Zeroed, bias correction restarted.
    Reset,
    /// Zeroed, then this many steps at LR 0 fill them before the schedule starts (OLMoE).
    Warmup(u64),
}

impl std::str::FromStr for MomentPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keep" => Ok(Self::Keep),
            "reset" => Ok(Self::Reset),
            _ => s
                .strip_prefix("warmup:")
                .and_then(|k| k.parse().ok())
                .filter(|&k| k > 0)
                .map(Self::Warmup)
                .ok_or_else(|| format!("`{s}`: use keep, reset or warmup:STEPS (STEPS ≥ 1)")),
        }
    }
}

/// The learning rate at the branch point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SchedulePolicy {
    /// The first new stage must start at the LR the trunk was at (checked; an anneal's `start_lr`).
    #[default]
    Continue,
    /// The new stages' schedules as written (a re-warming, say).
    New,
}

impl std::str::FromStr for SchedulePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "continue" => Ok(Self::Continue),
            "new" => Ok(Self::New),
            _ => Err(format!("`{s}`: use continue or new")),
        }
    }
}

/// What `rewarm branch` was asked.
pub struct BranchRequest {
    /// The trunk's run folder.
    pub trunk: PathBuf,
    /// The checkpoint's step (default: the trunk's newest).
    pub step: Option<u64>,
    /// The plan file the trunk was trained with (its paths resolve against its folder).
    pub plan: PathBuf,
    /// A file of `[[stages]]` tables: what the branch trains after the branch point.
    pub stages: PathBuf,
    /// The branch's run folder (new).
    pub run: PathBuf,
    /// `None`: the first new stage's own `optimizer` and `moment_warmup_steps`, else keep.
    pub moments: Option<MomentPolicy>,
    pub schedule: SchedulePolicy,
}

/// A branch folder ready to train: its plan file and the step it starts from.
pub struct Branch {
    pub plan: PathBuf,
    pub from_step: u64,
}

/// Writes the branch folder: its plan, the trunk's checkpoint (linked) and metrics; training it with
/// `rewarm train PLAN --run RUN` then resumes from the branch point.
pub fn prepare_branch(req: &BranchRequest) -> Result<Branch> {
    let stages = read_stages(&req.stages, req.moments)?;
    prepare_branch_with(req, stages, &|_, _| {})
}

/// [`prepare_branch`] with the branch's `stages` given (`req.stages` is not read) and `edit` applied to
/// its config, which gets the trunk's plan and the branch point's step (what `rewarm probe batch`
/// changes: the batch from there).
pub fn prepare_branch_with(
    req: &BranchRequest,
    stages: Vec<StageConfig>,
    edit: &dyn Fn(&mut PlanConfig, (&Plan, u64)),
) -> Result<Branch> {
    let ckpt = trunk_checkpoint(&req.trunk, req.step)?;
    let trunk = crate::load_plan(&req.plan)?;
    let trunk_json = std::fs::read_to_string(ckpt.plan_json())
        .with_context(|| format!("reading {}", ckpt.plan_json().display()))?;
    extend::check(&trunk_json, &trunk, ckpt.step).map_err(|e| {
        anyhow!(
            "{} is not the plan {} was trained with: {e}",
            req.plan.display(),
            req.trunk.display()
        )
    })?;
    let mut config = branch_config(&trunk, ckpt.step, stages, &req.plan)?;
    edit(&mut config, (&trunk, ckpt.step));
    let plan_path = req.run.join("plan.toml");
    let branch = Plan::new(config.clone(), &plan_path)?;
    check_policies(&trunk, &branch, ckpt.step, req)?;
    write_folder(req, &ckpt, &config)?;
    Ok(Branch {
        plan: plan_path,
        from_step: ckpt.step,
    })
}

/// The trunk's complete checkpoint at `step` (default: its newest), verified.
fn trunk_checkpoint(trunk: &Path, step: Option<u64>) -> Result<CheckpointDir> {
    let all = RunDir::new(trunk).complete_checkpoints();
    let found = match step {
        Some(s) => all.iter().find(|c| c.step == s),
        None => all.last(),
    };
    let Some(ckpt) = found else {
        let steps: Vec<String> = all.iter().map(|c| c.step.to_string()).collect();
        bail!(
            "{}: no complete checkpoint{}; it has them at steps [{}]\nHINT: branch at one of those steps (checkpoint.every_steps and keep_last decide which a run keeps)",
            trunk.display(),
            step.map_or(String::new(), |s| format!(" at step {s}")),
            steps.join(", ")
        );
    };
    if ckpt.step == 0 {
        bail!(
            "{}: a branch at step 0 is a new run\nHINT: use init_from in a plan of its own",
            trunk.display()
        );
    }
    ckpt.verify()?;
    Ok(ckpt.clone())
}

/// The `[[stages]]` of `file`, the first one's moment policy applied: from the flag, or its own keys,
/// or keep.
fn read_stages(file: &Path, moments: Option<MomentPolicy>) -> Result<Vec<StageConfig>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StagesFile {
        stages: Vec<StageConfig>,
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let parsed: StagesFile = toml::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: {}\nHINT: the file holds only [[stages]] tables, as in a plan (docs/plan.md#stages)",
            file.display(),
            e.message().trim_end()
        )
    })?;
    let mut stages = parsed.stages;
    let Some(first) = stages.first_mut() else {
        bail!(
            "{}: no [[stages]]\nHINT: give the branch at least one stage",
            file.display()
        );
    };
    let raw: toml::Value = toml::from_str(&text)?;
    let says = |key: &str| raw["stages"][0].get(key).is_some();
    let own = says("optimizer") || says("moment_warmup_steps");
    let policy = match (moments, own) {
        (Some(_), true) => bail!(
            "{}: stage `{}` sets optimizer or moment_warmup_steps and --optimizer is given too\nHINT: say it in one place",
            file.display(),
            first.name
        ),
        (Some(p), false) => p,
        (None, true) => return Ok(stages),
        (None, false) => MomentPolicy::Keep,
    };
    (first.optimizer, first.moment_warmup_steps) = match policy {
        MomentPolicy::Keep => (OptimizerPolicy::Keep, 0),
        MomentPolicy::Reset => (OptimizerPolicy::Reset, 0),
        MomentPolicy::Warmup(k) => (OptimizerPolicy::Reset, k),
    };
    Ok(stages)
}

/// The trunk's plan stopped at `step`, then `stages`, every path made absolute (the branch's plan file
/// lives in the branch folder).
fn branch_config(
    trunk: &Plan,
    step: u64,
    stages: Vec<StageConfig>,
    plan_file: &Path,
) -> Result<PlanConfig> {
    let mut config = trunk.config.clone();
    let holding = trunk.stage_of(step - 1);
    let done = step - trunk.stages[holding].first_step;
    config.stages.truncate(holding + 1);
    if done < trunk.stages[holding].steps {
        config.stages[holding].stop_after_steps = Some(done);
    }
    config.stages.extend(stages);
    let base = match trunk.base_dir.as_os_str().is_empty() {
        true => Path::new("."),
        false => trunk.base_dir.as_path(),
    };
    let base = base
        .canonicalize()
        .with_context(|| format!("finding the folder of {}", plan_file.display()))?;
    let absolute = |p: &mut String| *p = base.join(&*p).display().to_string();
    config.data.sources.values_mut().for_each(absolute);
    config.init_from.iter_mut().for_each(absolute);
    if let Some(t) = config
        .data
        .tokenizer
        .as_mut()
        .filter(|t| t.ends_with(".json"))
    {
        absolute(t);
    }
    Ok(config)
}

/// Refuses policies that make no sense together, and a continued schedule that does not start where the
/// trunk's LR was.
fn check_policies(trunk: &Plan, branch: &Plan, step: u64, req: &BranchRequest) -> Result<()> {
    if req.schedule == SchedulePolicy::New {
        return Ok(());
    }
    let first = &branch.stages[branch.stage_of(step)];
    if first.optimizer == OptimizerPolicy::Reset && first.moment_warmup_steps == 0 {
        bail!(
            "stage `{}`: fresh Adam moments at the trunk's full LR (--schedule continue) make the first updates as large as the LR allows\nHINT: fill them at LR 0 first (--optimizer warmup:STEPS), keep them (--optimizer keep), or warm the LR up again (--schedule new with a warmup)",
            first.name
        );
    }
    let was = trunk.step(step - 1).lr;
    let starts = branch.step(step + first.moment_warmup_steps).lr;
    if (starts - was).abs() > 1e-9 * was.abs().max(1e-30) {
        bail!(
            "stage `{}` starts at LR {starts:.6e} and the trunk was at {was:.6e} at step {step} (--schedule continue)\nHINT: start the stage's schedule at {was:.6e} (e.g. an anneal with start_lr = {was:e} and no warmup), or pass --schedule new to train it as written",
            first.name
        );
    }
    Ok(())
}

/// Every file of folder `from` hard-linked into folder `to` (created), or copied where a link cannot be
/// made (another file system). For checkpoints: their files are never written again once complete.
pub(crate) fn link_files(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let file = entry?.path();
        let dest = to.join(file.file_name().expect("a file"));
        if std::fs::hard_link(&file, &dest).is_err() {
            std::fs::copy(&file, &dest).with_context(|| format!("copying {}", file.display()))?;
        }
    }
    Ok(())
}

/// The branch folder: a new folder with the plan, the trunk's checkpoint linked in, and its metrics and
/// baselines (resuming drops the records after the branch point).
fn write_folder(req: &BranchRequest, ckpt: &CheckpointDir, config: &PlanConfig) -> Result<()> {
    let run = RunDir::new(&req.run);
    if req.run.exists() && std::fs::read_dir(&req.run)?.next().is_some() {
        bail!(
            "{}: the folder exists and is not empty\nHINT: branch into a new --run folder (to go on training a branch, use `rewarm train {}/plan.toml --run {}`)",
            req.run.display(),
            req.run.display(),
            req.run.display()
        );
    }
    link_files(&ckpt.path, &run.checkpoint(ckpt.step).path)?;
    let trunk = RunDir::new(&req.trunk);
    for (from, to) in [
        (trunk.metrics(), run.metrics()),
        (trunk.baselines(), run.baselines()),
    ] {
        if from.is_file() {
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        }
    }
    let toml = toml::to_string(config).context("writing the branch's plan")?;
    let header = format!(
        "# Branched by `rewarm branch` from {} at step {} (plan {}).\n# Train or resume it with `rewarm train {} --run {}`.\n\n",
        req.trunk.display(),
        ckpt.step,
        req.plan.display(),
        run.plan_toml().display(),
        req.run.display()
    );
    atomic::write_atomic(&run.plan_toml(), format!("{header}{toml}").as_bytes())
        .with_context(|| format!("writing {}", run.plan_toml().display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name)
    }

    fn request(schedule: SchedulePolicy) -> BranchRequest {
        BranchRequest {
            trunk: "runs/trunk".into(),
            step: None,
            plan: example("wsd-trunk.toml"),
            stages: example("anneal.toml"),
            run: "runs/anneal".into(),
            moments: None,
            schedule,
        }
    }

    /// The examples' anneal branched off the WSD trunk's stable phase: the trunk's first 60 steps, then
    /// the anneal from the trunk's LR with its moments kept; in the decay phase the LR no longer matches.
    #[test]
    fn the_examples_branch_an_anneal_off_the_trunks_stable_phase() {
        let trunk = crate::load_plan(&example("wsd-trunk.toml")).unwrap();
        let req = request(SchedulePolicy::Continue);
        let stages = read_stages(&req.stages, None).unwrap();
        assert_eq!(
            stages[0].optimizer,
            OptimizerPolicy::Keep,
            "keep unless said"
        );
        let config = branch_config(&trunk, 60, stages.clone(), &req.plan).unwrap();
        let branch = Plan::new(config, &req.run.join("plan.toml")).unwrap();
        let names: Vec<&str> = branch.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            (names, branch.stages[0].steps),
            (vec!["trunk", "anneal"], 60)
        );
        assert_eq!(
            branch.stages[1].phases.len(),
            2,
            "the anneal's mixture change"
        );
        extend::check(&rewarm_plan::plan_file(&trunk).to_json(), &branch, 60).unwrap();
        check_policies(&trunk, &branch, 60, &req).unwrap();
        let late = branch_config(&trunk, 90, stages, &req.plan).unwrap();
        let late = Plan::new(late, &req.run.join("plan.toml")).unwrap();
        let err = check_policies(&trunk, &late, 90, &req)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the trunk was at") && err.contains("HINT"),
            "{err}"
        );
        check_policies(&trunk, &late, 90, &request(SchedulePolicy::New)).unwrap();
    }
}
