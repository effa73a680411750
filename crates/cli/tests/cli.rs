//! End-to-end tests of the `rewarm` binary's training: each runs the built binary in its own temporary
//! folder (paths relative to it, so messages are short) and checks exit codes, files written, and that
//! errors name the file or field and end with a HINT. Training runs are a few steps of the `tiny` preset
//! on CPU. The data commands are in prepare_cli.rs, `rewarm plan` in plan_cli.rs; the shared helpers
//! (the tiny project, `ok`, `fails`…) in common/.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

// ---------------------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------------------
// train

#[test]
fn train_runs_tiny_plan_and_writes_a_self_describing_run_folder() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = train(d, "run", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_has(&text(&out.stdout), &["8 of 8 steps done"]);
    let run = d.join("run");

    let records = metrics(&run);
    let train_lines: Vec<&Value> = records.iter().filter(|r| r["kind"] == "train").collect();
    let steps: Vec<u64> = train_lines
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=PLAN_STEPS).collect::<Vec<_>>());
    for r in &train_lines {
        for field in [
            "kind",
            "step",
            "stage",
            "tokens",
            "tokens_by_source",
            "lr",
            "loss",
            "grad_norm",
        ] {
            assert!(r.get(field).is_some(), "train line without `{field}`: {r}");
        }
        assert!(r["loss"].as_f64().unwrap().is_finite(), "{r}");
        assert!(r["grad_norm"].as_f64().unwrap().is_finite(), "{r}");
        // ‖g‖₁ ≥ ‖g‖₂ for any vector, with equality only for one non-zero coordinate.
        assert!(
            r["grad_norm_l1"].as_f64().unwrap() > r["grad_norm"].as_f64().unwrap(),
            "{r}"
        );
        assert_eq!(r["tokens"], r["step"].as_u64().unwrap() * 256, "{r}");
        let by_source: u64 = r["tokens_by_source"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(r["tokens"], by_source, "{r}");
    }
    let last = train_lines.last().unwrap();
    assert_eq!(last["stage"], "second");
    assert_eq!(
        last["tokens_by_source"],
        serde_json::json!({ "a": 1024, "a/replay": 256, "b": 768 })
    );

    let evals: Vec<&Value> = records.iter().filter(|r| r["kind"] == "eval").collect();
    for r in &evals {
        for field in [
            "kind",
            "step",
            "stage",
            "tokens",
            "set",
            "loss",
            "perplexity",
            "bits_per_byte",
        ] {
            assert!(r.get(field).is_some(), "eval line without `{field}`: {r}");
        }
        let loss = r["loss"].as_f64().unwrap();
        assert!((r["perplexity"].as_f64().unwrap() - loss.exp()).abs() < 1e-6 * loss.exp());
        assert!(r["bits_per_byte"].as_f64().unwrap() > 0.0, "{r}");
    }
    // Both sets at step 0 and after every 2 steps.
    let eval_at: Vec<(u64, String)> = evals
        .iter()
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["set"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = (0..=PLAN_STEPS)
        .step_by(2)
        .flat_map(|s| [(s, "a".to_owned()), (s, "b".to_owned())])
        .collect();
    assert_eq!(eval_at, expected);
    // Training lowers each set's loss from its starting point.
    for set in ["a", "b"] {
        let losses: Vec<f64> = evals
            .iter()
            .filter(|r| r["set"] == set)
            .map(|r| r["loss"].as_f64().unwrap())
            .collect();
        assert!(losses.last() < losses.first(), "{set}: {losses:?}");
    }

    let ckpts = checkpoint_names(&run);
    assert!(ckpts.contains(&"step_00000008".to_owned()), "{ckpts:?}");
    assert!(ckpts.iter().all(|c| c.starts_with("step_")), "{ckpts:?}");
    for c in &ckpts {
        for file in [
            "DONE",
            "model.safetensors",
            "optimizer.safetensors",
            "state.json",
            "plan.json",
        ] {
            assert!(run.join("ckpt").join(c).join(file).is_file(), "{c}/{file}");
        }
    }
    assert_eq!(
        read_json(&run.join("ckpt/step_00000008/state.json"))["step"],
        8
    );
    let plan = read_json(&run.join("plan.json"));
    assert_eq!(plan["plan"]["stages"][1]["name"], "second");
    assert_eq!(plan["model"]["max_seq_len"], 32);
    let env = read_json(&run.join("environment.json"));
    assert_has(&env.to_string(), &["rewarm_version", "device", "Cpu"]);
    assert!(
        !run.join("LOCK").exists(),
        "the lock is released at the end"
    );

    // Training a finished run again does nothing and duplicates no metrics.
    let before = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let out = train(d, "run", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_has(&text(&out.stdout), &["8 of 8 steps done"]);
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(),
        before
    );
    assert_eq!(checkpoint_names(&run), ckpts);
    assert_eq!(
        read_json(&run.join("environment.json"))["resumed_from_step"],
        8
    );

    // The metrics as CSV: one train row per step with a column per source, one eval row per record.
    let printed = ok(d, "export-metrics run --out csv");
    assert_has(
        &printed,
        &["csv/train.csv", "csv/eval.csv", "csv/rollbacks.csv"],
    );
    let train_csv = std::fs::read_to_string(d.join("csv/train.csv")).unwrap();
    let rows: Vec<&str> = train_csv.lines().collect();
    assert_eq!(rows.len() as u64, 1 + PLAN_STEPS, "{train_csv}");
    assert!(
        rows[0].ends_with(",tokens:a,tokens:a/replay,tokens:b"),
        "{}",
        rows[0]
    );
    assert!(
        rows[PLAN_STEPS as usize].starts_with("8,second,2048,"),
        "{train_csv}"
    );
    assert!(
        rows[PLAN_STEPS as usize].ends_with(",1024,256,768"),
        "{train_csv}"
    );
    let eval_csv = std::fs::read_to_string(d.join("csv/eval.csv")).unwrap();
    assert_eq!(eval_csv.lines().count(), 1 + evals.len(), "{eval_csv}");
    let printed = ok(d, "export-metrics run --out pq --format parquet");
    assert_has(&printed, &["pq/train.parquet", "pq/eval.parquet"]);

    // TensorBoard's file holds the same records, each once although the run was opened again: the file
    // version, then a train event per step and an eval event per record.
    let tb = std::fs::read_dir(run.join("tensorboard")).unwrap();
    let files: Vec<_> = tb.map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let events = rewarm_runfolder::tensorboard::read_events(&files[0]).unwrap();
    assert_eq!(events.len() as u64, 1 + PLAN_STEPS + evals.len() as u64);

    // The dashboard: one frame as text; without a terminal the live view refuses with a hint.
    let frame = ok(d, "watch run --once --size 100x30");
    assert_has(
        &frame,
        &["stage second (2/2) · step 8/8", "validation loss", "q quit"],
    );
    let refused = fails(d, "watch run");
    assert_has(&refused, &["not one", "--once"]);
}

#[test]
fn train_resumed_after_stop_matches_an_uninterrupted_run() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    for (run, stops) in [("whole", &[][..]), ("split", &[5][..])] {
        for stop in stops {
            let out = train(d, run, &format!("--stop-at-step {stop}"));
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert_has(&text(&out.stdout), &[&format!("{stop} of 8 steps done")]);
        }
        let out = train(d, run, "");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Everything but the wall-clock speed is identical, line for line.
    let strip = |run: &str| -> Vec<Value> {
        metrics(&d.join(run))
            .into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("tokens_per_second");
                r
            })
            .collect()
    };
    assert_eq!(strip("split"), strip("whole"));
}

#[cfg(target_os = "linux")]
#[test]
fn train_refuses_a_run_folder_locked_by_a_live_process() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let holder = KillOnDrop(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = holder.0.id();
    write(d, "run/LOCK", format!("{pid} {}\n", hostname()));
    let out = train(d, "run", "");
    assert_eq!(out.status.code(), Some(1));
    assert_has(
        &text(&out.stderr),
        &["run: run folder in use by pid", &pid.to_string(), "HINT"],
    );
    assert!(!d.join("run/metrics.jsonl").exists());
    assert!(!d.join("run/ckpt").exists());
    // The holder's lock is left alone.
    assert_eq!(
        std::fs::read_to_string(d.join("run/LOCK")).unwrap(),
        format!("{pid} {}\n", hostname())
    );
    drop(holder);
}

/// The `flock` decides, not the text: while another process (this test) holds the lock file's `flock`,
/// `train` refuses even though the pid written in it is dead and would otherwise be taken over; once the
/// `flock` is released, the same stale lock is taken over and the run trains.
#[cfg(target_os = "linux")]
#[test]
fn train_refuses_a_run_folder_whose_flock_another_process_holds() {
    use std::os::fd::AsRawFd;
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    std::fs::create_dir_all(d.join("run")).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let path = d.join("run/LOCK");
    let lock = std::fs::File::create(&path).unwrap();
    // SAFETY: a plain syscall on a descriptor this test owns.
    let held = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(held, 0, "the test takes the flock");
    let stale = format!("{dead} {}\n", hostname());
    std::fs::write(&path, &stale).unwrap();
    let out = train(d, "run", "");
    assert_eq!(out.status.code(), Some(1));
    assert_has(&text(&out.stderr), &["run folder in use by pid", "HINT"]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        stale,
        "left as it was"
    );
    assert!(!d.join("run/metrics.jsonl").exists());
    drop(lock);
    let out = train(d, "run", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[cfg(target_os = "linux")]
#[test]
fn train_refuses_a_lock_held_on_another_host() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    // A pid that is not running here says nothing about a process on another machine.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    write(d, "run/LOCK", format!("{pid} some-other-host\n"));
    let out = train(d, "run", "");
    assert_eq!(out.status.code(), Some(1));
    assert_has(
        &text(&out.stderr),
        &[&format!("pid {pid} on some-other-host"), "HINT"],
    );
}

#[cfg(target_os = "linux")]
#[test]
fn train_takes_over_a_stale_lock() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    write(d, "run/LOCK", format!("{pid} {}\n", hostname()));
    let out = train(d, "run", "--stop-at-step 2");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(checkpoint_names(&d.join("run")), ["step_00000002"]);
    assert!(!d.join("run/LOCK").exists());
}

#[test]
fn train_stops_at_injected_nan_without_saving_it() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    // Step 2 (steps count from 1, as in metrics.jsonl) is non-finite: the checkpoint due after it is
    // never written.
    let out = train(d, "due", "--inject-nan-at-step 2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_has(
        &text(&out.stderr),
        &["non-finite loss at step 2", "stage `first`", "HINT"],
    );
    assert_eq!(checkpoint_names(&d.join("due")), Vec::<String>::new());

    // Step 3 fails after the checkpoint of step 2: that one stays the only one, and it is finite.
    let run = d.join("run");
    let out = train(d, "run", "--inject-nan-at-step 3");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_has(
        &text(&out.stderr),
        &["non-finite loss at step 3", "stage `first`", "HINT"],
    );
    assert_eq!(checkpoint_names(&run), ["step_00000002"]);
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let values = safetensors_f32_values(&run.join("ckpt/step_00000002").join(file));
        assert!(!values.is_empty());
        assert!(values.iter().all(|v| v.is_finite()), "{file}");
    }
    // The failed step is not logged.
    let last_step = metrics(&run)
        .iter()
        .filter_map(|r| r["step"].as_u64())
        .max();
    assert_eq!(last_step, Some(2));
    assert!(!run.join("LOCK").exists(), "a failed run releases its lock");
    // Without the fault, the run resumes from that checkpoint and finishes.
    let out = train(d, "run", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(checkpoint_names(&run).contains(&"step_00000008".to_owned()));
}

#[test]
fn train_names_a_truncated_shard_before_any_step() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let shard = d.join("pb/train-00000.tok");
    let len = std::fs::metadata(&shard).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap()
        .set_len(len - 2)
        .unwrap();
    let out = train(d, "run", "");
    assert_eq!(out.status.code(), Some(1));
    assert_has(&text(&out.stderr), &["pb/train-00000.tok", "HINT"]);
    assert!(!d.join("run/ckpt").exists());
}

/// Asserts that two runs' metrics agree: the same records in the same order, counts and schedules exactly,
/// losses and gradient norms to within floating-point reduction order (summing per-process gradients
/// instead of accumulating all micro-batches in one process).
fn assert_same_run(one: &[Value], other: &[Value]) {
    assert_eq!(one.len(), other.len());
    for (a, b) in one.iter().zip(other) {
        for exact in [
            "kind",
            "step",
            "stage",
            "set",
            "tokens",
            "tokens_by_source",
            "lr",
            "replay_fraction",
        ] {
            assert_eq!(a.get(exact), b.get(exact), "`{exact}`:\n{a}\n{b}");
        }
        for close in ["loss", "grad_norm"] {
            if let (Some(x), Some(y)) = (a[close].as_f64(), b[close].as_f64()) {
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                    "`{close}`: {x} vs {y}\n{a}\n{b}"
                );
            }
        }
    }
}

/// The tiny project (see [`tiny_project`]) in `d`, with the plan trained by one process into `d/one`: the
/// reference the data-parallel runs are compared with.
fn tiny_project_with_one_process_run(d: &Path) {
    tiny_project(d);
    let out = train(d, "one", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn two_processes_reproduce_one_and_resume_on_either_world_size() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project_with_one_process_run(d);

    // Steps 1–4 in two processes (each trains half of every batch), 5–8 resumed in one.
    let stdout = ok(
        d,
        "launch --nproc 2 -- train plan.toml --run two --device cpu --stop-at-step 4",
    );
    assert_has(&stdout, &["4 of 8 steps done"]);
    assert_eq!(
        stdout.matches("steps done").count(),
        1,
        "only rank 0 reports:\n{stdout}"
    );
    assert_eq!(read_json(&d.join("two/environment.json"))["processes"], 2);
    assert_eq!(
        checkpoint_names(&d.join("two")),
        ["step_00000002", "step_00000004"]
    );
    let out = train(d, "two", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_same_run(&metrics(&d.join("one")), &metrics(&d.join("two")));

    // And the other way: one process to step 4, two from there.
    let out = train(d, "three", "--stop-at-step 4");
    assert!(out.status.success(), "{}", text(&out.stderr));
    ok(
        d,
        "launch --nproc 2 -- train plan.toml --run three --device cpu",
    );
    assert_same_run(&metrics(&d.join("one")), &metrics(&d.join("three")));
    assert_eq!(
        checkpoint_names(&d.join("one")),
        checkpoint_names(&d.join("three"))
    );
}

/// Rank 0 killed while writing a checkpoint (only rank 0 writes them): the launcher stops rank 1, which
/// waits for it in the next all-reduce, and the same command resumes from the last complete checkpoint
/// and ends where one uninterrupted process does.
#[test]
fn a_rank_killed_mid_checkpoint_stops_the_others_and_the_same_command_resumes() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project_with_one_process_run(d);
    let launch = "launch --nproc 2 -- train plan.toml --run two --device cpu";
    let out = Command::new(env!("CARGO_BIN_EXE_rewarm"))
        .args(launch.split_whitespace())
        .current_dir(d)
        .env("REWARM_FAULT", "checkpoint:after-weights@2=kill")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_has(&stderr, &["failed", "the other processes were stopped"]);
    let complete: Vec<String> = checkpoint_names(&d.join("two"))
        .into_iter()
        .filter(|n| !n.starts_with('.')) // the torn step-4 checkpoint is a hidden partial folder
        .collect();
    assert_eq!(complete, ["step_00000002"]);
    assert_has(&ok(d, launch), &["8 of 8 steps done"]);
    assert_same_run(&metrics(&d.join("one")), &metrics(&d.join("two")));
    assert_eq!(
        checkpoint_names(&d.join("one")),
        checkpoint_names(&d.join("two"))
    );
}

#[test]
fn a_batch_that_does_not_split_over_the_processes_is_refused_and_stops_them_all() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    // 8 sequences per step do not split over 3 processes.
    let stderr = fails(
        d,
        "launch --nproc 3 -- train plan.toml --run run --device cpu",
    );
    assert_has(
        &stderr,
        &["does not split over 3 processes", "HINT", "failed"],
    );
    let stderr = fails(d, "launch --nproc 2 -- plan plan.toml");
    assert_has(&stderr, &["runs `train`"]);
}

/// Asking for a CUDA device that is not there (no CUDA libtorch on this machine, or no device 7 on a GPU
/// machine) is an error naming the device, with a hint, not a panic.
#[test]
fn an_unavailable_cuda_device_is_refused_with_a_hint() {
    let dir = tempdir();
    tiny_project(dir.path());
    let stderr = fails(dir.path(), "train plan.toml --run run --device cuda:7");
    assert_has(&stderr, &["--device cuda:7", "HINT", "--device cpu"]);
}
