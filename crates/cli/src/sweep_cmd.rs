//! `rewarm sweep`: expand a grid into run folders (all validated before anything runs), then run the
//! pending ones, one after another or k at a time, skipping finished runs and resuming interrupted ones.
//! Several sweeps may share one output folder: each claims a run (`SWEEP_LOCK` in its folder, the run
//! lock of lock.rs under another name) before training it and skips runs another process holds.

use crate::train_cmds::{load_plan, TrainArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use rewarm_plan::sweep::SweepRun;
use rewarm_train::checkpoint::list_complete;
use rewarm_train::lock::{RunLock, SWEEP_LOCK};
use rewarm_train::TrainError;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

#[derive(Args)]
pub struct SweepArgs {
    /// The sweep .toml file (base plan + grid; docs/sweeps.md).
    sweep: PathBuf,
    /// Output folder: one run folder per grid point, named by the hash of its resolved plan.
    #[arg(long)]
    out: PathBuf,
    /// Runs trained at the same time (each in its own process).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Expand and validate, print the runs, train nothing.
    #[arg(long)]
    dry_run: bool,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long)]
    device: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Status {
    New,
    Partial(u64),
    Done,
}

fn status(run_dir: &Path, total_steps: u64) -> Status {
    match list_complete(&run_dir.join("ckpt")).pop() {
        None => Status::New,
        Some((step, _)) if step >= total_steps => Status::Done,
        Some((step, _)) => Status::Partial(step),
    }
}

pub fn sweep(args: SweepArgs) -> Result<()> {
    let runs = rewarm_plan::sweep::expand(&args.sweep)?;
    run_sweep(
        &runs,
        &args.out,
        args.parallel,
        args.dry_run,
        args.device.as_deref(),
    )?;
    println!("`rewarm report {}` summarises the runs", args.out.display());
    Ok(())
}

/// Writes `bytes` to `path` unless it already holds them, through a temporary file and a rename, so that
/// another sweep reading it meanwhile never sees it half-written.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Claims a pending run for this process: `None` (with the reason printed) when another sweep holds it,
/// a trainer is running in it, or it finished since the sweep started.
fn claim(id: &str, dir: &Path, total_steps: u64) -> Result<Option<RunLock>> {
    let busy = |e: TrainError| -> Result<Option<RunLock>> {
        match e {
            TrainError::Locked(msg) => {
                let why = msg.lines().next().unwrap_or_default().to_owned();
                println!("== run {id} skipped: {why}");
                Ok(None)
            }
            e => Err(e.into()),
        }
    };
    let claim = match RunLock::acquire_named(dir, SWEEP_LOCK) {
        Ok(c) => c,
        Err(e) => return busy(e),
    };
    // A trainer may still run in it without a sweep (started by hand, or orphaned by a killed sweep).
    if let Err(e) = RunLock::acquire(dir) {
        return busy(e);
    }
    if status(dir, total_steps) == Status::Done {
        println!("== run {id} finished meanwhile");
        return Ok(None);
    }
    Ok(Some(claim))
}

/// Writes every run's folder and plan, validates them all, then trains the pending ones.
pub fn run_sweep(
    runs: &[SweepRun],
    out: &Path,
    parallel: usize,
    dry_run: bool,
    device: Option<&str>,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut index = Vec::new();
    let mut pending = Vec::new();
    println!("{:<12} {:>7} {:<12} label", "run", "steps", "status");
    for run in runs {
        let dir = out.join(&run.id);
        std::fs::create_dir_all(&dir)?;
        let plan_path = dir.join("plan.toml");
        write_if_changed(&plan_path, toml::to_string(&run.plan)?.as_bytes())?;
        let (plan, _) =
            load_plan(&plan_path).with_context(|| format!("run {} ({})", run.id, run.label))?;
        let st = status(&dir, plan.total_steps);
        println!(
            "{:<12} {:>7} {:<12} {}",
            run.id,
            plan.total_steps,
            format!("{st:?}").to_lowercase(),
            run.label
        );
        index.push(serde_json::json!({ "id": run.id, "label": run.label, "params": run.params, "steps": plan.total_steps }));
        if st != Status::Done {
            pending.push((run.id.clone(), dir, plan_path, plan.total_steps));
        }
    }
    write_if_changed(
        &out.join("sweep.json"),
        serde_json::to_string_pretty(&index)?.as_bytes(),
    )?;
    if dry_run || pending.is_empty() {
        println!("{} runs, {} to train", runs.len(), pending.len());
        return Ok(());
    }
    let mut skipped = Vec::new();
    let failed = if parallel <= 1 {
        let mut failed = Vec::new();
        for (id, dir, plan_path, steps) in pending {
            let Some(_claim) = claim(&id, &dir, steps)? else {
                skipped.push(id);
                continue;
            };
            println!("== run {id}");
            if let Err(e) =
                crate::train_cmds::train(TrainArgs::new(plan_path, dir, device.map(str::to_owned)))
            {
                eprintln!("run {id} failed: {e:#}");
                failed.push(id);
            }
        }
        failed
    } else {
        run_parallel(pending, parallel, device, &mut skipped)?
    };
    if !skipped.is_empty() {
        println!(
            "{} runs skipped, in use by other processes: {}",
            skipped.len(),
            skipped.join(", ")
        );
    }
    if !failed.is_empty() {
        bail!(
            "{} runs failed: {}\nHINT: see each run's train.log or rerun the sweep to resume them",
            failed.len(),
            failed.join(", ")
        );
    }
    if skipped.is_empty() {
        println!("all {} runs done", runs.len());
    }
    Ok(())
}

/// Trains up to `k` runs at once as child processes (output in each run's train.log), torch threads split.
fn run_parallel(
    pending: Vec<(String, PathBuf, PathBuf, u64)>,
    k: usize,
    device: Option<&str>,
    skipped: &mut Vec<String>,
) -> Result<Vec<String>> {
    let exe = std::env::current_exe()?;
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / k).max(1);
    let mut queue = pending.into_iter();
    let mut running: Vec<(String, Child, RunLock)> = Vec::new();
    let mut failed = Vec::new();
    loop {
        while running.len() < k {
            let Some((id, dir, plan_path, steps)) = queue.next() else {
                break;
            };
            let Some(claim) = claim(&id, &dir, steps)? else {
                skipped.push(id);
                continue;
            };
            let log = std::fs::File::create(dir.join("train.log"))?;
            let mut cmd = Command::new(&exe);
            cmd.arg("train")
                .arg(&plan_path)
                .arg("--run")
                .arg(&dir)
                .arg("--threads")
                .arg(threads.to_string());
            if let Some(d) = device {
                cmd.arg("--device").arg(d);
            }
            let child = cmd
                .stdout(log.try_clone()?)
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()?;
            println!(
                "== run {id} started (pid {}, log {})",
                child.id(),
                dir.join("train.log").display()
            );
            running.push((id, child, claim));
        }
        if running.is_empty() {
            return Ok(failed);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut still = Vec::new();
        for (id, mut child, claim) in running {
            match child.try_wait()? {
                Some(status) if status.success() => println!("== run {id} done"),
                Some(_) => {
                    eprintln!("== run {id} failed (see its train.log)");
                    failed.push(id);
                }
                None => still.push((id, child, claim)),
            }
        }
        running = still;
    }
}
