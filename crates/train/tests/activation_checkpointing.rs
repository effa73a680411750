//! `train.activation_checkpointing`: a run that recomputes its blocks trains as one that keeps them — the
//! same losses and weights up to rounding — and may switch the setting when it resumes.

mod common;
use common::*;

fn with_checkpointing(s: &Setup) {
    let plan = std::fs::read_to_string(&s.plan_path).unwrap();
    let on = plan.replace("[train]\n", "[train]\nactivation_checkpointing = true\n");
    assert_ne!(on, plan);
    std::fs::write(&s.plan_path, on).unwrap();
}

/// The model's weights (f32, name order) of a run's newest checkpoint.
fn weights(run: &std::path::Path) -> Vec<f32> {
    let bytes = final_weights(run);
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + n..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn recomputing_blocks_trains_the_same_run_up_to_rounding() {
    let plain = setup("", "");
    let recomputed = setup("", "");
    with_checkpointing(&recomputed);
    let run = |s: &Setup| {
        let dir = s.dir.path().join("run");
        rewarm_train::train(&load(&s.plan_path), &opts(&dir), &rewarm_train::NoProgress).unwrap();
        dir
    };
    let (a, b) = (run(&plain), run(&recomputed));
    let (la, lb) = (train_losses(&a), train_losses(&b));
    assert_eq!(la.len(), lb.len());
    // The first step's loss is the same forward pass; later ones follow weights equal up to rounding.
    assert_eq!(la[0], lb[0]);
    for ((step, x), (_, y)) in la.iter().zip(&lb) {
        assert!((x - y).abs() <= 1e-4 * x.abs(), "step {step}: {x} vs {y}");
    }
    let (wa, wb) = (weights(&a), weights(&b));
    let max = wa
        .iter()
        .zip(&wb)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-4, "weights differ by up to {max}");
}

#[test]
fn a_run_may_switch_checkpointing_when_it_resumes() {
    let s = setup("", "");
    let dir = s.dir.path().join("run");
    let mut first = opts(&dir);
    first.stop_at_step = Some(40);
    rewarm_train::train(&load(&s.plan_path), &first, &rewarm_train::NoProgress).unwrap();
    with_checkpointing(&s);
    rewarm_train::train(&load(&s.plan_path), &opts(&dir), &rewarm_train::NoProgress).unwrap();
    assert_eq!(train_losses(&dir).last().unwrap().0, 80);
}
