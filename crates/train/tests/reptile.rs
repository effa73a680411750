//! Reptile's meta-update in real training (`reptile = { inner_steps, beta }` on the second stage, 40
//! steps): β = 1 is the run without it bit for bit (spec G2), one meta-update at the stage's end lands
//! exactly between the stage's start and where plain training ends, and a run stopped between two
//! meta-updates resumes bit for bit (the anchor is in the checkpoint), in MER's setup (additive replay
//! from a buffer).

mod common;
use common::*;
use rewarm_runfolder::RunDir;
use std::path::Path;
use tch::Tensor;

fn run(stage_extra: &str, name: &str) -> (Setup, std::path::PathBuf) {
    let s = setup("", stage_extra);
    train(s, name)
}

fn train(s: Setup, name: &str) -> (Setup, std::path::PathBuf) {
    let run = s.dir.path().join(name);
    rewarm_train::train(&load(&s.plan_path), &opts(&run), &rewarm_train::NoProgress).unwrap();
    (s, run)
}

fn weights_at(run: &Path, step: u64) -> Vec<(String, Tensor)> {
    let ckpt = RunDir::new(run).checkpoint(step);
    let mut w = Tensor::read_safetensors(ckpt.model()).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn beta_one_is_training_without_reptile_bit_for_bit() {
    let (_a, plain) = run("", "plain");
    for k in [1, 3] {
        let (_b, reptile) = run(
            &format!("reptile = {{ inner_steps = {k}, beta = 1.0 }}\n"),
            "reptile",
        );
        assert_eq!(train_losses(&reptile), train_losses(&plain), "k = {k}");
        assert!(
            final_weights(&reptile) == final_weights(&plain),
            "k = {k}: β = 1 changed the weights"
        );
    }
}

#[test]
fn one_meta_update_at_the_stage_end_lands_between_its_start_and_plain_training() {
    let (_a, plain) = run("", "plain");
    let (_b, reptile) = run("reptile = { inner_steps = 40, beta = 0.5 }\n", "reptile");
    // Every step trains as without Reptile; the meta-update follows the last one.
    assert_eq!(train_losses(&reptile), train_losses(&plain));
    let start = weights_at(&plain, 40);
    let end = weights_at(&plain, 80);
    let got = weights_at(&reptile, 80);
    let mut moved = 0.0;
    for ((s, e), (name, g)) in start.iter().zip(&end).zip(&got) {
        let want = &s.1 + (&e.1 - &s.1) * 0.5;
        let err = (g - &want).abs().max().double_value(&[]);
        assert!(err < 1e-6, "{name}: off by {err}");
        moved += (&e.1 - &s.1).abs().max().double_value(&[]);
    }
    assert!(moved > 1e-3, "the stage did not move the weights");
}

/// MER's setup: additive replay from a small buffer, and Reptile.
fn mer(reptile: &str) -> Setup {
    let s = setup("", reptile);
    let plan = std::fs::read_to_string(&s.plan_path).unwrap();
    let mer = plan.replace(
        "replay = { fraction = 0.25 }",
        "replay = { fraction = 0.25, mode = \"additive\", buffer_sequences = 32 }",
    );
    assert_ne!(mer, plan);
    std::fs::write(&s.plan_path, mer).unwrap();
    s
}

#[test]
fn a_run_stopped_between_meta_updates_resumes_bit_for_bit() {
    let (s, full) = train(mer("reptile = { inner_steps = 7, beta = 0.3 }\n"), "full");
    let (_p, plain) = train(mer(""), "plain");
    assert!(final_weights(&full) != final_weights(&plain));
    let plan = load(&s.plan_path);
    let split = s.dir.path().join("split");
    let mut first = opts(&split);
    first.stop_at_step = Some(45); // step 5 of the stage: its anchor is the stage's start
    rewarm_train::train(&plan, &first, &rewarm_train::NoProgress).unwrap();
    assert!(RunDir::new(&split)
        .checkpoint(45)
        .reptile_anchor()
        .is_file());
    rewarm_train::train(&plan, &opts(&split), &rewarm_train::NoProgress).unwrap();
    assert_eq!(train_losses(&split), train_losses(&full));
    assert!(final_weights(&split) == final_weights(&full));
    // It still learns the new source.
    let evals = records(&full, "eval");
    let b = |step: u64| {
        evals
            .iter()
            .find(|r| r["step"] == step && r["set"] == "b")
            .unwrap()["loss"]
            .as_f64()
            .unwrap()
    };
    let last = evals.last().unwrap()["step"].as_u64().unwrap();
    assert!(last > 80, "additive replay adds steps: {last}");
    assert!(b(last) < b(40) - 0.3, "{} → {}", b(40), b(last));
}
