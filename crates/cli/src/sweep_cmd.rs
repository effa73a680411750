//! `rewarm sweep`: expand a grid into run folders (all validated before anything runs), then run the
//! pending ones, one after another or k at a time, skipping finished runs and resuming interrupted ones.

use crate::train_cmds::{load_plan, TrainArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use rewarm_plan::sweep::SweepRun;
use rewarm_train::checkpoint::list_complete;
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
        std::fs::write(&plan_path, toml::to_string(&run.plan)?)?;
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
            pending.push((run.id.clone(), dir, plan_path));
        }
    }
    std::fs::write(
        out.join("sweep.json"),
        serde_json::to_string_pretty(&index)?,
    )?;
    if dry_run || pending.is_empty() {
        println!("{} runs, {} to train", runs.len(), pending.len());
        return Ok(());
    }
    let failed = if parallel <= 1 {
        let mut failed = Vec::new();
        for (id, dir, plan_path) in pending {
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
        run_parallel(pending, parallel, device)?
    };
    if !failed.is_empty() {
        bail!(
            "{} runs failed: {}\nHINT: see each run's train.log or rerun the sweep to resume them",
            failed.len(),
            failed.join(", ")
        );
    }
    println!("all {} runs done", runs.len());
    Ok(())
}

/// Trains up to `k` runs at once as child processes (output in each run's train.log), torch threads split.
fn run_parallel(
    pending: Vec<(String, PathBuf, PathBuf)>,
    k: usize,
    device: Option<&str>,
) -> Result<Vec<String>> {
    let exe = std::env::current_exe()?;
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / k).max(1);
    let mut queue = pending.into_iter();
    let mut running: Vec<(String, Child)> = Vec::new();
    let mut failed = Vec::new();
    loop {
        while running.len() < k {
            let Some((id, dir, plan_path)) = queue.next() else {
                break;
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
            running.push((id, child));
        }
        if running.is_empty() {
            return Ok(failed);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut still = Vec::new();
        for (id, mut child) in running {
            match child.try_wait()? {
                Some(status) if status.success() => println!("== run {id} done"),
                Some(_) => {
                    eprintln!("== run {id} failed (see its train.log)");
                    failed.push(id);
                }
                None => still.push((id, child)),
            }
        }
        running = still;
    }
}
