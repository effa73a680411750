//! Continuing a run other than by a plain resume: a stop asked for mid-run (SIGTERM) and resumed,
//! per-stage optimizer settings, and a finished run extended with appended stages.

mod common;

use common::*;
use rewarm_train::{train, Interrupt, NoProgress, Observer, StepRecord, TrainError};

/// Asks for a stop while step `at` runs, as a signal handler would.
struct StopAt {
    at: u64,
    interrupt: Interrupt,
}

impl Observer for StopAt {
    fn step(&self, record: &StepRecord) {
        if record.step == self.at {
            self.interrupt.request(15); // SIGTERM's number
        }
    }
}

#[test]
fn a_stop_asked_mid_run_checkpoints_that_step_and_resuming_is_bit_identical() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let straight = s.dir.path().join("straight");
    train(&plan, &opts(&straight), &NoProgress).unwrap();

    let stopped = s.dir.path().join("stopped");
    let interrupt = Interrupt::new();
    let o = rewarm_train::TrainOptions {
        interrupt: Some(interrupt.clone()),
        ..opts(&stopped)
    };
    // Step 13 is neither a checkpoint nor a read-back-forced step of the plan.
    let observer = StopAt { at: 13, interrupt };
    match train(&plan, &o, &observer) {
        Err(TrainError::Interrupted {
            step,
            total_steps,
            signal,
        }) => assert_eq!((step, total_steps, signal), (13, plan.total_steps, 15)),
        other => panic!("expected an interrupted run, got {other:?}"),
    }
    let latest = rewarm_runfolder::RunDir::new(&stopped).latest_checkpoint();
    assert_eq!(latest.map(|c| c.step), Some(13), "the stop's checkpoint");

    let state = train(&plan, &opts(&stopped), &NoProgress).unwrap();
    assert_eq!(state.step, plan.total_steps);
    assert_eq!(train_losses(&straight), train_losses(&stopped));
    assert!(
        final_weights(&straight) == final_weights(&stopped),
        "final weights differ"
    );
}

#[test]
fn a_stage_adamw_table_is_that_setting_in_that_stage_alone() {
    let overridden = setup("", "adamw = { beta2 = 0.99, weight_decay = 0.0 }");
    // The same settings written the other way round: run-wide, with stage s0 setting the defaults back.
    let run_wide = setup("[optimizer]\nbeta2 = 0.99\nweight_decay = 0.0", "");
    let text = std::fs::read_to_string(&run_wide.plan_path).unwrap();
    let text = text.replace(
        "name = \"s0\"",
        "name = \"s0\"\nadamw = { beta2 = 0.95, weight_decay = 0.1 }",
    );
    std::fs::write(&run_wide.plan_path, text).unwrap();
    let plain = setup("", "");
    let mut runs = Vec::new();
    for s in [&overridden, &run_wide, &plain] {
        let plan = load(&s.plan_path);
        let run = s.dir.path().join("run");
        train(&plan, &opts(&run), &NoProgress).unwrap();
        runs.push((run, plan.stages[0].steps as usize));
    }
    let (a, b, c) = (&runs[0].0, &runs[1].0, &runs[2].0);
    assert!(
        final_weights(a) == final_weights(b),
        "the two spellings train differently"
    );
    let s0 = runs[0].1;
    assert_eq!(
        train_losses(a)[..s0],
        train_losses(c)[..s0],
        "s1's settings leaked into s0"
    );
    assert!(
        final_weights(a) != final_weights(c),
        "s1's settings changed nothing"
    );
}

/// `s`'s plan with a third source `c` and a stage `s2` on it (25% replay) appended.
fn extended(s: &Setup) -> std::path::PathBuf {
    let toks = rewarm_data::synthetic::language(3, 64_000);
    let (train_toks, val) = toks.split_at(60_000);
    rewarm_data::synthetic::write_source(&s.dir.path().join("c"), 512, train_toks, val, 25_000)
        .unwrap();
    let text = std::fs::read_to_string(&s.plan_path).unwrap();
    let text = text.replace(
        "{ a = \"a\", b = \"b\" }",
        "{ a = \"a\", b = \"b\", c = \"c\" }",
    ) + r#"
[[stages]]
name = "s2"
tokens = 5120
mixture = { c = 1.0 }
replay = { fraction = 0.25 }
schedule = { kind = "cosine", max_lr = 5e-3, min_lr = 5e-4, warmup = 0.1 }
"#;
    let path = s.dir.path().join("extended.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_finished_run_extended_with_a_stage_and_a_source_ends_as_the_longer_plan_trained_straight() {
    let s = setup("", "");
    let (short, long) = (load(&s.plan_path), load(&extended(&s)));
    assert_eq!(long.stages.len(), 3);
    let straight = s.dir.path().join("straight");
    train(&long, &opts(&straight), &NoProgress).unwrap();
    let run = s.dir.path().join("run");
    train(&short, &opts(&run), &NoProgress).unwrap();
    let state = train(&long, &opts(&run), &NoProgress).unwrap();
    assert_eq!(state.step, long.total_steps);
    assert_eq!(train_losses(&straight), train_losses(&run));
    assert!(
        final_weights(&straight) == final_weights(&run),
        "final weights differ"
    );
}

#[test]
fn a_plan_that_changes_a_stage_already_run_is_refused_naming_the_field() {
    let s = setup("", "");
    let run = s.dir.path().join("run");
    let mut o = opts(&run);
    o.stop_at_step = Some(45); // 5 steps into s1
    train(&load(&s.plan_path), &o, &NoProgress).unwrap();
    let before = std::fs::read(run.join("metrics.jsonl")).unwrap();
    let edited = s.dir.path().join("edited.toml");
    let text = std::fs::read_to_string(&s.plan_path).unwrap();
    let at = text.rfind("max_lr = 1e-2").unwrap(); // stage s1's
    let text = format!("{}max_lr = 2e-2{}", &text[..at], &text[at + 13..]);
    std::fs::write(&edited, text).unwrap();
    let err = train(&load(&edited), &opts(&run), &NoProgress)
        .unwrap_err()
        .to_string();
    for words in [
        "plan.stages[1] (s1).schedule.max_lr",
        "0.01 in the run, 0.02 in this plan",
        "HINT",
    ] {
        assert!(err.contains(words), "no `{words}` in: {err}");
    }
    assert_eq!(
        std::fs::read(run.join("metrics.jsonl")).unwrap(),
        before,
        "the run was changed"
    );
}
