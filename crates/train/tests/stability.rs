//! Training stability options in real runs: the loss-spike guard (`guard.spikes`: a spike's update is
//! skipped and counted, and a guarded run resumes bit-identically, its window travelling in the
//! checkpoint) and the z-loss (`train.z_loss`).

mod common;

use common::*;
use rewarm_train::{train, NoProgress};

const GUARD: &str = "[guard.spikes]\nwindow = 8\nsigmas = 6.0";

/// Trains `s`'s plan to step 19, then step 20 with its first micro-batch's loss × 1000 (a spike's loss and
/// gradients); returns the weights after steps 19 and 20.
fn spike_at_20(s: &Setup) -> (Vec<u8>, Vec<u8>) {
    let (plan, run) = (load(&s.plan_path), s.dir.path().join("run"));
    let mut o = opts(&run);
    o.stop_at_step = Some(19);
    train(&plan, &o, &NoProgress).unwrap();
    let before = final_weights(&run);
    o.stop_at_step = Some(20);
    o.inject_non_finite = Some("batch@20=1000".parse().unwrap());
    train(&plan, &o, &NoProgress).unwrap();
    (before, final_weights(&run))
}

#[test]
fn a_spike_is_skipped_and_counted_and_the_run_goes_on() {
    let guarded = setup(GUARD, "");
    let (before, after) = spike_at_20(&guarded);
    assert!(before == after, "the spike's update was applied");
    let run = guarded.dir.path().join("run");
    train(&load(&guarded.plan_path), &opts(&run), &NoProgress).unwrap();
    let skipped: Vec<(u64, u64)> = records(&run, "train")
        .iter()
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["spikes_skipped"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // Only the injected spike: not the first steps of stage s1 (step 41 on), whose new data's loss is far
    // above s0's window, because the window starts again at every stage.
    assert!(
        skipped.iter().all(|&(step, n)| n == u64::from(step >= 20)),
        "{skipped:?}"
    );
    // Unguarded, the same spike moves the weights.
    let (before, after) = spike_at_20(&setup("", ""));
    assert!(before != after);
}

#[test]
fn a_guarded_run_stopped_and_resumed_is_bit_identical() {
    let s = setup(GUARD, "");
    let plan = load(&s.plan_path);
    let straight = s.dir.path().join("straight");
    train(&plan, &opts(&straight), &NoProgress).unwrap();
    let resumed = s.dir.path().join("resumed");
    let mut o = opts(&resumed);
    o.stop_at_step = Some(13); // the window (8 steps) is full and wrapped
    train(&plan, &o, &NoProgress).unwrap();
    train(&plan, &opts(&resumed), &NoProgress).unwrap();
    assert_eq!(train_losses(&straight), train_losses(&resumed));
    assert!(
        final_weights(&straight) == final_weights(&resumed),
        "final weights differ"
    );
}

#[test]
fn a_z_loss_reaches_the_gradients_and_the_logged_loss_stays_the_cross_entropy() {
    let plain = setup("", "");
    let z = setup("", "");
    let text = std::fs::read_to_string(&z.plan_path).unwrap();
    std::fs::write(
        &z.plan_path,
        text.replace("threads = 1", "threads = 1\nz_loss = 1e-2"),
    )
    .unwrap();
    let mut runs = Vec::new();
    for s in [&plain, &z] {
        let run = s.dir.path().join("run");
        train(&load(&s.plan_path), &opts(&run), &NoProgress).unwrap();
        runs.push(run);
    }
    let (a, b) = (train_losses(&runs[0]), train_losses(&runs[1]));
    assert_eq!(
        a[0], b[0],
        "step 1's loss is measured before any update: the same cross-entropy"
    );
    assert!(
        final_weights(&runs[0]) != final_weights(&runs[1]),
        "the z-loss changed nothing"
    );
    assert!(
        b.last().unwrap().1 < b[0].1 - 1.0,
        "the z-loss run still learns: {:?}",
        (b[0], b.last())
    );
}
