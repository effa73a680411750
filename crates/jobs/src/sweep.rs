//! Running a sweep: every run's folder and plan written and validated before anything trains, then the
//! pending runs trained one after another or k at a time, skipping finished runs and resuming interrupted
//! ones. Several sweeps may share one output folder: each claims a run (`SWEEP_LOCK` in its folder, the
//! run lock under another name) before training it and skips runs another process holds (docs/sweeps.md).

use crate::eta::StepsClock;
use crate::plan_load::load_plan;
use crate::runner::RunTrainer;
use anyhow::{bail, Context, Result};
use rewarm_plan::sweep::SweepRun;
use rewarm_runfolder::lock::SWEEP_LOCK;
use rewarm_runfolder::{atomic, RunDir, RunFolderError, RunLock, SweepDir, SweepEntry, SweepIndex};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// How far a run has come, from its checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    New,
    /// Stopped after this many steps (it resumes).
    Partial(u64),
    Done,
}

impl Status {
    /// From the run's newest checkpoint; a run without checkpoints whose metrics reach its last step
    /// (checkpoints pruned after it finished, or its records copied elsewhere) is done too: training it
    /// again would start over and overwrite those records.
    pub fn of(run: &RunDir, total_steps: u64) -> Status {
        match run.latest_checkpoint() {
            None if logged_through(run, total_steps) => Status::Done,
            None => Status::New,
            Some(c) if c.step >= total_steps => Status::Done,
            Some(c) => Status::Partial(c.step),
        }
    }

    /// Steps still to train of a run of `total_steps`.
    pub fn steps_left(self, total_steps: u64) -> u64 {
        match self {
            Status::New => total_steps,
            Status::Partial(done) => total_steps.saturating_sub(done),
            Status::Done => 0,
        }
    }
}

/// Whether the run's metrics.jsonl holds a record of step `total_steps` or later.
fn logged_through(run: &RunDir, total_steps: u64) -> bool {
    rewarm_runfolder::metrics_log::read(&run.metrics())
        .is_ok_and(|records| records.iter().any(|r| r.step() >= Some(total_steps)))
}

/// One run of the sweep, written and validated.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    pub id: String,
    pub label: String,
    pub dir: PathBuf,
    pub plan_path: PathBuf,
    pub steps: u64,
    pub status: Status,
}

impl PlannedRun {
    /// Steps still to train when the sweep started.
    pub fn steps_left(&self) -> u64 {
        self.status.steps_left(self.steps)
    }
}

/// What a sweep call did.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    pub runs: Vec<PlannedRun>,
    /// Runs another process held, skipped.
    pub skipped: Vec<String>,
    /// Runs that failed, with why.
    pub failed: Vec<(String, String)>,
}

impl SweepOutcome {
    /// Runs still to train when the sweep started.
    pub fn pending(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.status != Status::Done)
            .count()
    }
}

/// Writes every run's folder, plan.toml and the sweep's index, validating each plan (errors name the run).
pub fn write_runs(runs: &[SweepRun], out: &Path) -> Result<Vec<PlannedRun>> {
    let sweep = SweepDir::new(out);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut planned = Vec::new();
    let mut index = SweepIndex::default();
    for run in runs {
        let dir = sweep.run(&run.id);
        std::fs::create_dir_all(dir.root())
            .with_context(|| format!("creating {}", dir.root().display()))?;
        let plan_path = dir.plan_toml();
        write_if_changed(&plan_path, toml::to_string(&run.plan)?.as_bytes())?;
        let plan =
            load_plan(&plan_path).with_context(|| format!("run {} ({})", run.id, run.label))?;
        index.runs.push(SweepEntry {
            id: run.id.clone(),
            label: run.label.clone(),
            seed: run.seed,
            params: run
                .params
                .iter()
                .map(|(k, v)| Ok((k.clone(), serde_json::to_value(v)?)))
                .collect::<Result<_>>()?,
            steps: plan.total_steps,
        });
        planned.push(PlannedRun {
            id: run.id.clone(),
            label: run.label.clone(),
            status: Status::of(&dir, plan.total_steps),
            dir: dir.root().to_owned(),
            plan_path,
            steps: plan.total_steps,
        });
    }
    index.write(&sweep)?;
    Ok(planned)
}

/// Writes `bytes` to `path` unless it already holds them (another sweep may be reading it).
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    atomic::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Trains the pending runs of `planned`, `parallel` at a time (1: in this process, one after another),
/// telling `clock` the steps each trains and saying the time left as runs start or finish.
pub fn train_pending(
    planned: Vec<PlannedRun>,
    parallel: usize,
    trainer: &dyn RunTrainer,
    clock: &mut StepsClock,
) -> Result<SweepOutcome> {
    let mut outcome = SweepOutcome {
        runs: planned,
        ..Default::default()
    };
    let pending: Vec<PlannedRun> = outcome
        .runs
        .iter()
        .filter(|r| r.status != Status::Done)
        .cloned()
        .collect();
    if parallel <= 1 {
        for run in pending {
            let Some(_claim) = claim(&run, &mut outcome.skipped)? else {
                clock.dropped(run.steps_left());
                continue;
            };
            println!("== run {} ({}){}", run.id, run.label, clock.summary());
            match trainer.train(&run.plan_path, &run.dir) {
                Ok(()) => clock.trained(run.steps_left()),
                // The whole sweep was asked to stop; running it again goes on.
                Err(e) if e.is::<crate::Stopped>() => return Err(e),
                Err(e) => {
                    eprintln!("run {} failed: {e:#}", run.id);
                    clock.dropped(run.steps_left());
                    outcome.failed.push((run.id, format!("{e:#}")));
                }
            }
        }
    } else {
        train_in_children(pending, parallel, trainer, &mut outcome, clock)?;
    }
    Ok(outcome)
}

/// Claims a pending run for this process: `None` (the run noted as skipped, or done meanwhile) when
/// another sweep holds it, a trainer is running in it, or it finished since the sweep started.
fn claim(run: &PlannedRun, skipped: &mut Vec<String>) -> Result<Option<RunLock>> {
    let mut busy = |e: RunFolderError| -> Result<Option<RunLock>> {
        match e {
            RunFolderError::Locked(msg) => {
                let why = msg.lines().next().unwrap_or_default().to_owned();
                println!("== run {} skipped: {why}", run.id);
                skipped.push(run.id.clone());
                Ok(None)
            }
            e => Err(e.into()),
        }
    };
    let claim = match RunLock::acquire_named(&run.dir, SWEEP_LOCK) {
        Ok(c) => c,
        Err(e) => return busy(e),
    };
    // A trainer may still run in it without a sweep (started by hand, or orphaned by a killed sweep).
    if let Err(e) = RunLock::acquire(&run.dir) {
        return busy(e);
    }
    if Status::of(&RunDir::new(&run.dir), run.steps) == Status::Done {
        println!("== run {} finished meanwhile", run.id);
        return Ok(None);
    }
    Ok(Some(claim))
}

/// Trains up to `k` runs at once as child processes (output in each run's train.log), the cores split
/// among them.
fn train_in_children(
    pending: Vec<PlannedRun>,
    k: usize,
    trainer: &dyn RunTrainer,
    outcome: &mut SweepOutcome,
    clock: &mut StepsClock,
) -> Result<()> {
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / k).max(1);
    let mut queue = pending.into_iter();
    let mut running: Vec<(PlannedRun, Child, RunLock)> = Vec::new();
    loop {
        while running.len() < k {
            let Some(run) = queue.next() else {
                break;
            };
            let Some(claim) = claim(&run, &mut outcome.skipped)? else {
                clock.dropped(run.steps_left());
                continue;
            };
            let child = spawn(&run, trainer, threads)?;
            running.push((run, child, claim));
        }
        if running.is_empty() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut still = Vec::new();
        for (run, mut child, claim) in running {
            match child.try_wait()? {
                Some(status) if status.success() => {
                    clock.trained(run.steps_left());
                    println!("== run {} done{}", run.id, clock.summary());
                }
                Some(status) => {
                    eprintln!("== run {} failed (see its train.log)", run.id);
                    clock.dropped(run.steps_left());
                    outcome
                        .failed
                        .push((run.id, format!("{status}; see its train.log")));
                }
                None => still.push((run, child, claim)),
            }
        }
        running = still;
    }
}

/// Starts the child process that trains `run`, its output going to the run's train.log.
fn spawn(run: &PlannedRun, trainer: &dyn RunTrainer, threads: usize) -> Result<Child> {
    let log_path = RunDir::new(&run.dir).train_log();
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let child = trainer
        .command(&run.plan_path, &run.dir, threads)?
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting run {}", run.id))?;
    println!(
        "== run {} started (pid {}, log {})",
        run.id,
        child.id(),
        log_path.display()
    );
    Ok(child)
}

/// Writes the runs, then (unless `dry_run`) trains the pending ones; fails naming every failed run.
pub fn run_sweep(
    runs: &[SweepRun],
    out: &Path,
    parallel: usize,
    dry_run: bool,
    trainer: &dyn RunTrainer,
) -> Result<SweepOutcome> {
    let planned = write_runs(runs, out)?;
    println!("{:<12} {:>7} {:<12} label", "run", "steps", "status");
    for r in &planned {
        let status = format!("{:?}", r.status).to_lowercase();
        println!("{:<12} {:>7} {:<12} {}", r.id, r.steps, status, r.label);
    }
    let pending = planned.iter().filter(|r| r.status != Status::Done).count();
    if dry_run || pending == 0 {
        println!("{} runs, {pending} to train", planned.len());
        return Ok(SweepOutcome {
            runs: planned,
            ..Default::default()
        });
    }
    let mut clock = StepsClock::new(planned.iter().map(PlannedRun::steps_left).sum());
    finish_sweep(train_pending(planned, parallel, trainer, &mut clock)?)
}

/// Says which runs other processes held, and fails naming every run that failed.
pub fn finish_sweep(outcome: SweepOutcome) -> Result<SweepOutcome> {
    if !outcome.skipped.is_empty() {
        println!(
            "{} runs skipped, in use by other processes: {}",
            outcome.skipped.len(),
            outcome.skipped.join(", ")
        );
    }
    if !outcome.failed.is_empty() {
        let ids: Vec<&str> = outcome.failed.iter().map(|(id, _)| id.as_str()).collect();
        bail!(
            "{} runs failed: {}\nHINT: see each run's train.log or rerun the sweep to resume them",
            ids.len(),
            ids.join(", ")
        );
    }
    if outcome.skipped.is_empty() {
        println!("all {} runs done", outcome.runs.len());
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// A one-stage plan of 4 steps (8 sequences of 16 tokens, 2 per step); the data is never opened.
    fn sweep_run(seed: i64) -> SweepRun {
        let text = format!(
            "seed = {seed}\n[model]\npreset = \"tiny\"\n[data]\nsources = {{ a = \"/nowhere/a\" }}\nseq_len = 16\n\
             [train]\nbatch_tokens = 32\n[[stages]]\nname = \"s\"\ntokens = 128\nmixture = {{ a = 1.0 }}\n\
             schedule = {{ kind = \"constant\", lr = 1e-3 }}\n"
        );
        let plan: toml::Table = text.parse().unwrap();
        SweepRun {
            seed: None,
            id: rewarm_plan::sweep::run_id(&plan),
            label: format!("seed={seed}"),
            params: BTreeMap::from([("seed".to_owned(), toml::Value::Integer(seed))]),
            plan,
        }
    }

    /// Marks `run` finished after `steps` steps, as a trainer's last checkpoint does.
    fn finish(run: &Path, steps: u64) {
        let ckpt = RunDir::new(run).checkpoint(steps);
        std::fs::create_dir_all(&ckpt.path).unwrap();
        std::fs::write(ckpt.done(), b"").unwrap();
    }

    /// Trains by writing the final checkpoint, or fails for the runs named in `fail`; records calls.
    struct Fake {
        fail: Vec<String>,
        trained: RefCell<Vec<PathBuf>>,
    }

    impl RunTrainer for Fake {
        fn train(&self, _plan: &Path, run: &Path) -> Result<()> {
            self.trained.borrow_mut().push(run.to_owned());
            let id = run.file_name().unwrap().to_string_lossy().into_owned();
            if self.fail.contains(&id) {
                bail!("injected failure");
            }
            finish(run, 4);
            Ok(())
        }

        fn command(
            &self,
            _plan: &Path,
            run: &Path,
            _threads: usize,
        ) -> Result<std::process::Command> {
            let ckpt = RunDir::new(run).checkpoint(4);
            let mut cmd = std::process::Command::new("/bin/sh");
            cmd.arg("-c").arg(format!(
                "mkdir -p '{0}' && touch '{0}/DONE'",
                ckpt.path.display()
            ));
            Ok(cmd)
        }
    }

    fn fake(fail: &[&str]) -> Fake {
        Fake {
            fail: fail.iter().map(|s| s.to_string()).collect(),
            trained: RefCell::new(Vec::new()),
        }
    }

    #[test]
    fn runs_are_written_indexed_and_trained_once() {
        let out = tempfile::tempdir().unwrap();
        let runs = [sweep_run(1), sweep_run(2)];
        let trainer = fake(&[]);
        let outcome = run_sweep(&runs, out.path(), 1, false, &trainer).unwrap();
        assert_eq!(outcome.pending(), 2);
        assert_eq!(trainer.trained.borrow().len(), 2);
        let index = SweepIndex::read(&SweepDir::new(out.path()))
            .unwrap()
            .unwrap();
        assert_eq!(index.label(&runs[1].id), Some("seed=2"));
        assert_eq!(index.runs[0].steps, 4);
        assert_eq!(index.runs[0].params["seed"], serde_json::json!(1));
        // A second call finds both done and trains nothing.
        let again = run_sweep(&runs, out.path(), 1, false, &trainer).unwrap();
        assert_eq!(again.pending(), 0);
        assert_eq!(trainer.trained.borrow().len(), 2);
    }

    #[test]
    fn a_dry_run_trains_nothing_and_a_partial_run_is_pending() {
        let out = tempfile::tempdir().unwrap();
        let runs = [sweep_run(1)];
        let trainer = fake(&[]);
        std::fs::create_dir_all(out.path().join(&runs[0].id)).unwrap();
        finish(&out.path().join(&runs[0].id), 2);
        let outcome = run_sweep(&runs, out.path(), 1, true, &trainer).unwrap();
        assert_eq!(outcome.runs[0].status, Status::Partial(2));
        assert!(trainer.trained.borrow().is_empty());
    }

    #[test]
    fn a_run_whose_records_reach_its_end_is_done_without_checkpoints() {
        let out = tempfile::tempdir().expect("a temporary folder");
        let runs = [sweep_run(1), sweep_run(2)];
        let eval = |step: u64| {
            format!(
                r#"{{"kind":"eval","step":{step},"stage":"a","tokens":0,"set":"en","loss":9.0,"perplexity":8103.0,"bits_per_byte":null}}"#
            )
        };
        // Run 1's records reach its last step (4), its checkpoints pruned; run 2 stopped at step 3.
        for (run, last) in runs.iter().zip([4, 3]) {
            let dir = out.path().join(&run.id);
            std::fs::create_dir_all(&dir).expect("the run folder");
            let lines = format!("{}\n{}\n", eval(0), eval(last));
            std::fs::write(dir.join("metrics.jsonl"), lines).expect("metrics.jsonl written");
        }
        let trainer = fake(&[]);
        let outcome = run_sweep(&runs, out.path(), 1, false, &trainer).expect("the sweep runs");
        let status: Vec<Status> = outcome.runs.iter().map(|r| r.status).collect();
        assert_eq!(status, [Status::Done, Status::New]);
        assert_eq!(*trainer.trained.borrow(), [out.path().join(&runs[1].id)]);
    }

    #[test]
    fn a_run_held_by_another_sweep_is_skipped_and_failures_are_named() {
        let out = tempfile::tempdir().unwrap();
        let runs = [sweep_run(1), sweep_run(2), sweep_run(3)];
        let planned = write_runs(&runs, out.path()).unwrap();
        let _held = RunLock::acquire_named(&planned[0].dir, SWEEP_LOCK).unwrap();
        let trainer = fake(&[&runs[1].id]);
        let mut clock = StepsClock::new(planned.iter().map(PlannedRun::steps_left).sum());
        let outcome = train_pending(planned, 1, &trainer, &mut clock).unwrap();
        // Of 3 × 4 steps, the skipped and the failed run's are dropped from the time left.
        let ten = std::time::Duration::from_secs(10);
        assert_eq!(
            clock.summary_after(ten),
            "; 4 of 4 steps trained in 10s, about 0s left"
        );
        assert_eq!(outcome.skipped, [runs[0].id.clone()]);
        assert_eq!(outcome.failed.len(), 1);
        assert_eq!(outcome.failed[0].0, runs[1].id);
        assert_eq!(trainer.trained.borrow().len(), 2);
        let e = run_sweep(&runs, out.path(), 1, false, &trainer)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&runs[1].id) && e.contains("HINT"), "{e}");
    }

    #[test]
    fn parallel_runs_train_in_child_processes() {
        let out = tempfile::tempdir().unwrap();
        let runs = [sweep_run(1), sweep_run(2), sweep_run(3)];
        let outcome = run_sweep(&runs, out.path(), 2, false, &fake(&[])).unwrap();
        assert!(outcome.failed.is_empty() && outcome.skipped.is_empty());
        for r in &runs {
            let dir = RunDir::new(out.path().join(&r.id));
            assert!(dir.finished(4), "{}", r.id);
            assert!(dir.train_log().is_file());
        }
    }
}
