//! `rewarm study <name>`: a built-in recipe end to end — pretrain D0 (when the study continues from it),
//! train the study's runs as a sweep, write the report (`<out>/report`).

use crate::branch::link_files;
use crate::eta::StepsClock;
use crate::runner::RunTrainer;
use crate::sweep::{finish_sweep, train_pending, write_runs, PlannedRun, Status};
use anyhow::{anyhow, bail, Context, Result};
use rewarm_data::Manifest;
use rewarm_plan::study::{self, Scale, Size, StudySource};
use rewarm_plan::sweep::{run_id, SweepRun};
use rewarm_plan::{Plan, PlanConfig};
use rewarm_report::{write_report, Report, ReportOptions};
use rewarm_runfolder::{atomic, RunDir};
use std::path::{Path, PathBuf};

/// A study to run: its name, its prepared sources in order D0, D1[, D2] as (name, folder), its scale, and
/// the seeds `seed, seed + 1, …` (`seeds` of them) every run is trained with.
pub struct StudyRequest<'a> {
    pub name: &'a str,
    pub data: &'a [(String, PathBuf)],
    pub out: &'a Path,
    pub scale: Scale,
    pub seed: u64,
    pub seeds: usize,
    pub parallel: usize,
    /// The model a study continues instead of pretraining D0 itself (a Hugging Face folder or a rewarm
    /// checkpoint): required by `smollm2`, refused by the others.
    pub init: Option<&'a Path>,
    /// Where the D0 pretraining runs go (`pretrain-seed<s>` inside; default `out`). Studies given the same
    /// folder share them: a D0 with the same plan (D0 data, size, token scale, seed) is trained once.
    pub pretrain_dir: Option<&'a Path>,
    /// Other studies' output folders: a run of this study with the same plan (the same run id) finished
    /// there is linked in rather than trained again.
    pub reuse: &'a [PathBuf],
}

/// What a study produced: the folder of its runs (a sweep folder), the D0 run of each seed, and the
/// report.
pub struct StudyOutcome {
    pub runs: PathBuf,
    pub pretrain: Vec<PathBuf>,
    pub report: Report,
}

/// Pretrains D0 once per seed if the study continues from it (`<pretrain dir>/pretrain-seed<s>`, the
/// pretrain dir being `out` unless the request names one), trains the
/// study's runs for every seed as one sweep (`<out>/runs`: the seeds of a run share its label, and the
/// report gives mean ± sd over them) and writes the report to `<out>/report`. Seeds are trained one after
/// another — pretraining, then that seed's runs — so that an interrupted study has whole seeds.
pub fn run_study(request: &StudyRequest, trainer: &dyn RunTrainer) -> Result<StudyOutcome> {
    let sources = study_sources(request.data)?;
    check_init(request)?;
    std::fs::create_dir_all(request.out)
        .with_context(|| format!("creating {}", request.out.display()))?;
    let out = request.out.canonicalize()?;
    let seeds: Vec<SeedPlan> = (request.seed..request.seed + request.seeds.max(1) as u64)
        .map(|seed| seed_plan(request, &sources, &out, seed))
        .collect::<Result<_>>()?;
    let all: Vec<SweepRun> = seeds.iter().flat_map(|s| s.runs.clone()).collect();
    let runs_dir = out.join("runs");
    let mut planned = write_runs(&all, &runs_dir)?;
    reuse_finished_runs(&mut planned, request.reuse)?;
    let pretraining_left = |s: &SeedPlan| {
        let (pre, steps) = s.pretrain.as_ref()?;
        Some(Status::of(pre, *steps).steps_left(*steps))
    };
    let runs_left: u64 = planned.iter().map(PlannedRun::steps_left).sum();
    let mut clock =
        StepsClock::new(runs_left + seeds.iter().filter_map(pretraining_left).sum::<u64>());
    for seed in &seeds {
        let mine: Vec<PlannedRun> = planned
            .iter()
            .filter(|p| seed.runs.iter().any(|r| r.id == p.id))
            .cloned()
            .collect();
        // A seed whose runs are all done needs no D0 model, even one whose checkpoints were pruned.
        let needed = mine.iter().any(|p| p.status != Status::Done);
        if let Some((pre, steps)) = seed.pretrain.as_ref().filter(|_| needed) {
            if !pre.finished(*steps) {
                let left = pretraining_left(seed).unwrap_or(0);
                let d0 = &sources[0].name;
                println!(
                    "== pretraining on {d0} with seed {} ({steps} steps){}",
                    seed.seed,
                    clock.summary()
                );
                trainer.train(&pre.plan_toml(), pre.root())?;
                clock.trained(left);
            }
        }
        finish_sweep(train_pending(mine, request.parallel, trainer, &mut clock)?)?;
    }
    let report = write_report(
        std::slice::from_ref(&runs_dir),
        &stamped_options(),
        &out.join("report"),
    )?;
    Ok(StudyOutcome {
        runs: runs_dir,
        pretrain: seeds
            .iter()
            .filter_map(|s| s.pretrain.as_ref().map(|p| p.0.root().to_owned()))
            .collect(),
        report,
    })
}

/// Links in each pending run that one of the `others` studies' folders holds finished under the same id
/// (a hash of its plan, so the same data, budgets, seed and D0 checkpoint) — one of its runs, or a D0
/// pretraining there (`pretrain-seed<s>`) with that plan: its records copied, its checkpoints
/// hard-linked. The run is then done here too, under this study's label.
fn reuse_finished_runs(planned: &mut [PlannedRun], others: &[PathBuf]) -> Result<()> {
    for other in others
        .iter()
        .filter(|o| d0_runs(o).is_empty() && !o.join("runs").is_dir())
    {
        println!(
            "(--reuse {}: no study's runs/ or pretrain-seed* folder there, nothing to reuse)",
            other.display()
        );
    }
    for run in planned.iter_mut().filter(|r| r.status != Status::Done) {
        let Some(from) = finished_elsewhere(others, &run.id, run.steps) else {
            continue;
        };
        copy_run(&from, &run.dir)?;
        run.status = Status::Done;
        println!(
            "== run {} ({}) finished in {}: linked in, not trained again",
            run.id,
            run.label,
            from.display()
        );
    }
    Ok(())
}

/// The folder of a run finished with this id (and `steps`) in one of the `others` studies' folders.
fn finished_elsewhere(others: &[PathBuf], id: &str, steps: u64) -> Option<PathBuf> {
    others
        .iter()
        .flat_map(|o| runs_with_id(o, id))
        .find(|d| Status::of(&RunDir::new(d), steps) == Status::Done)
}

/// The folders in a study's folder that may hold a run with this id: `runs/<id>`, and the D0 runs whose
/// plan has it.
fn runs_with_id(other: &Path, id: &str) -> Vec<PathBuf> {
    let plan_id = |d: &PathBuf| {
        let text = std::fs::read_to_string(RunDir::new(d).plan_toml()).ok()?;
        Some(run_id(&toml::from_str(&text).ok()?))
    };
    let mut dirs = vec![other.join("runs").join(id)];
    dirs.extend(
        d0_runs(other)
            .into_iter()
            .filter(|d| plan_id(d).as_deref() == Some(id)),
    );
    dirs
}

/// The D0 pretraining runs in a study's folder (or a `--pretrain-dir`).
fn d0_runs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("pretrain-seed") && p.is_dir()
        })
        .collect()
}

/// A finished run's folder into `to`: its files copied (a copy, so that extending one run leaves the
/// other's records alone), its checkpoints hard-linked, its lock and TensorBoard files left behind.
fn copy_run(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        let name = path.file_name().expect("a file name");
        if path.is_file() && name != "LOCK" {
            std::fs::copy(&path, to.join(name))
                .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    let ckpts = RunDir::new(from).checkpoints();
    if ckpts.is_dir() {
        for step in std::fs::read_dir(&ckpts)? {
            let step = step?.path();
            link_files(
                &step,
                &RunDir::new(to)
                    .checkpoints()
                    .join(step.file_name().expect("a step")),
            )?;
        }
    }
    Ok(())
}

/// One seed of a study: its D0 pretraining run (folder and steps) when the runs continue from it, and
/// its runs.
struct SeedPlan {
    seed: u64,
    pretrain: Option<(RunDir, u64)>,
    runs: Vec<SweepRun>,
}

/// `--init` goes with the studies that continue a given model, and they need it.
fn check_init(request: &StudyRequest) -> Result<()> {
    match (request.name, request.init) {
        ("smollm2", None) => bail!(
            "study smollm2 continues a pretrained model: pass --init <its folder>\nHINT: scripts/fetch-smollm2.sh, then `rewarm import gguf <the .gguf> --out models/smollm2-135m-instruct` (studies/smollm2/README.md)"
        ),
        ("smollm2", Some(init)) if !init.exists() => bail!(
            "--init {}: no such folder\nHINT: import the model first (studies/smollm2/README.md)",
            init.display()
        ),
        ("smollm2", Some(_)) if request.pretrain_dir.is_some() => bail!(
            "--pretrain-dir is for the studies that pretrain their own D0; study smollm2 continues --init\nHINT: drop --pretrain-dir"
        ),
        ("smollm2", Some(_)) | (_, None) => Ok(()),
        (other, Some(_)) => bail!(
            "--init is for study smollm2, which continues a public model; study {other} pretrains its own D0\nHINT: drop --init"
        ),
    }
}

/// Builds the seed's runs, which start from the final checkpoint of its D0 pretraining run, or from
/// `request.init` (then nothing is pretrained). A study that pretrains writes that run's plan
/// (`<pretrain dir>/pretrain-seed<s>/plan.toml`).
fn seed_plan(
    request: &StudyRequest,
    sources: &[StudySource],
    out: &Path,
    seed: u64,
) -> Result<SeedPlan> {
    let given = match request.name {
        "refined" => Some(linear_run(request, sources, seed)?),
        _ => request.init.map(Path::to_owned),
    };
    if let Some(init) = given {
        let init = init.canonicalize()?;
        let s = study::build(request.name, sources, &request.scale, seed, &init)
            .map_err(|e| anyhow!(e))?;
        return Ok(SeedPlan {
            seed,
            pretrain: None,
            runs: seeded(s.runs, seed),
        });
    }
    let pre = RunDir::new(pretrain_root(request, out)?.join(format!("pretrain-seed{seed}")));
    let plan_text = toml::to_string(&study::pretrain_plan(sources, &request.scale, seed))?;
    let steps = Plan::new(
        PlanConfig::from_toml(&plan_text, &pre.plan_toml())?,
        &pre.plan_toml(),
    )?
    .total_steps;
    let s = study::build(
        request.name,
        sources,
        &request.scale,
        seed,
        &pre.checkpoint(steps).path,
    )
    .map_err(|e| anyhow!(e))?;
    if s.pretrain.is_none() {
        return Ok(SeedPlan {
            seed,
            pretrain: None,
            runs: seeded(s.runs, seed),
        });
    }
    write_pretrain_plan(&pre, &plan_text)?;
    Ok(SeedPlan {
        seed,
        pretrain: Some((pre, steps)),
        runs: seeded(s.runs, seed),
    })
}

/// Study `refined` computes its schedule from the gradient norms of the `wsd` study's linear-decay run of
/// the same seed: that run's folder, finished in one of the `--reuse` folders.
fn linear_run(request: &StudyRequest, sources: &[StudySource], seed: u64) -> Result<PathBuf> {
    let wsd = study::build("wsd", sources, &request.scale, seed, Path::new(""))
        .map_err(|e| anyhow!(e))?;
    let linear = wsd
        .runs
        .iter()
        .find(|r| r.label == "linear")
        .expect("study wsd has a linear run");
    let text = toml::to_string(&linear.plan)?;
    let path = Path::new("linear.toml");
    let steps = Plan::new(PlanConfig::from_toml(&text, path)?, path)?.total_steps;
    finished_elsewhere(request.reuse, &linear.id, steps).ok_or_else(|| {
        anyhow!(
            "study refined refines the schedule of study wsd's linear run (seed {seed}), and no --reuse folder holds it finished (run {})\nHINT: run `rewarm study wsd` with the same --data, --size, --token-scale and seeds first, then pass its --out here with --reuse",
            linear.id
        )
    })
}

/// The folder of the D0 pretraining runs: `--pretrain-dir`, or the study's own folder.
fn pretrain_root(request: &StudyRequest, out: &Path) -> Result<PathBuf> {
    let Some(dir) = request.pretrain_dir else {
        return Ok(out.to_owned());
    };
    std::path::absolute(dir).with_context(|| format!("--pretrain-dir {}", dir.display()))
}

/// Writes a D0 run's plan, or leaves it as it is when the folder already holds the same one — that D0 is
/// then continued or reused. A different plan there is refused: it belongs to another D0.
fn write_pretrain_plan(pre: &RunDir, text: &str) -> Result<()> {
    let path = pre.plan_toml();
    match std::fs::read_to_string(&path) {
        Ok(found) if found == text => Ok(()),
        Ok(_) => bail!(
            "{}: this folder holds another D0 pretraining (its data, size, --token-scale or seed differ from this study's)\nHINT: give this study its own --pretrain-dir (or --out), or the D0 data and budgets that folder was trained with",
            path.display()
        ),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("reading {}", path.display()))
        }
        Err(_) => {
            std::fs::create_dir_all(pre.root())?;
            atomic::write_atomic(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))
        }
    }
}

fn seeded(runs: Vec<SweepRun>, seed: u64) -> Vec<SweepRun> {
    runs.into_iter()
        .map(|r| SweepRun {
            seed: Some(seed),
            ..r
        })
        .collect()
}

/// The study's sources with their absolute folders and vocabulary sizes.
fn study_sources(data: &[(String, PathBuf)]) -> Result<Vec<StudySource>> {
    data.iter()
        .map(|(name, dir)| {
            let manifest = Manifest::load(dir)?;
            Ok(StudySource {
                name: name.clone(),
                dir: dir
                    .canonicalize()
                    .with_context(|| format!("{}", dir.display()))?,
                vocab_size: manifest.tokenizer.vocab_size,
            })
        })
        .collect()
}

/// `NAME=FOLDER` arguments (`--data en=prepared/en`) as (name, folder), in order.
pub fn named_folders(args: &[String]) -> Result<Vec<(String, PathBuf)>> {
    args.iter()
        .map(|d| {
            let (name, dir) = d
                .split_once('=')
                .ok_or_else(|| anyhow!("--data {d}: expected NAME=FOLDER"))?;
            Ok((name.to_owned(), PathBuf::from(dir)))
        })
        .collect()
}

/// A size's scale with its token budgets multiplied by `token_scale` (> 0).
pub fn scaled(size: Size, token_scale: f64) -> Result<Scale> {
    with_token_scale(size.scale(), token_scale)
}

/// The scale of study `name`: `smollm2` has its own (its model is SmolLM2's); the others train at `size`.
pub fn study_scale(name: &str, size: Size, token_scale: f64) -> Result<Scale> {
    match name {
        "smollm2" => with_token_scale(Scale::smollm2(), token_scale),
        _ => scaled(size, token_scale),
    }
}

fn with_token_scale(scale: Scale, token_scale: f64) -> Result<Scale> {
    if !(token_scale > 0.0 && token_scale.is_finite()) {
        bail!("--token-scale {token_scale}: expected a positive number (1 = the size's budgets)");
    }
    Ok(scale.with_token_scale(token_scale))
}

/// Report options stamped with the time now (`SOURCE_DATE_EPOCH` when set, so reports can be
/// reproduced byte for byte).
pub fn stamped_options() -> ReportOptions {
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    ReportOptions {
        stamp: format!(
            "Generated {} by rewarm {}.",
            rewarm_report::render::utc(now),
            env!("CARGO_PKG_VERSION")
        ),
        ..ReportOptions::default()
    }
}
