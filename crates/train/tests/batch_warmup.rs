//! Batch-size warmup (`train.batch_doubling_tokens`) in real training: the batch doubles at the threshold
//! (gradient accumulation takes the extra micro-batches), the LR follows × √2 from there, the loss falls,
//! and a run stopped before the doubling resumes across it bit for bit.

mod common;
use common::*;

/// 8 sequences of 32 tokens per step until 5,120 tokens (20 steps), then 16, in micro-batches of 4.
fn doubling() -> Setup {
    let s = setup("", "");
    let plan = std::fs::read_to_string(&s.plan_path).unwrap();
    let doubled = plan.replace(
        "batch_tokens = 256\n",
        "batch_tokens = 256\nbatch_doubling_tokens = [5120]\nmicro_batch_sequences = 4\n",
    );
    assert_ne!(doubled, plan);
    std::fs::write(&s.plan_path, doubled).unwrap();
    s
}

#[test]
fn the_batch_doubles_at_the_threshold_with_the_lr_times_sqrt2_and_resumes_across_it() {
    let s = doubling();
    let plan = load(&s.plan_path);
    let full = s.dir.path().join("full");
    rewarm_train::train(&plan, &opts(&full), &rewarm_train::NoProgress).unwrap();

    let train = records(&full, "train");
    let batch = |step: u64| {
        let r = train.iter().find(|r| r["step"] == step).unwrap();
        (
            r["batch_sequences"].as_u64().unwrap(),
            r["lr"].as_f64().unwrap(),
            r["tokens"].as_u64().unwrap(),
        )
    };
    // Step 20 (the 20th) ends at 5,120 tokens with 8 sequences; step 21 is the first of 16.
    assert_eq!(batch(20), (8, plan.step(19).lr, 5120));
    assert_eq!(batch(21).0, 16);
    assert_eq!(batch(21).2, 5120 + 512);
    // From the doubling on, the LR is the schedule's × √2.
    let info = plan.step(20);
    let schedule = plan.stages[info.stage].lr(info.local_step);
    assert!(
        (batch(21).1 - schedule * 2f64.sqrt()).abs() < 1e-15,
        "{} vs {schedule}",
        batch(21).1
    );
    assert_eq!(batch(20).1, plan.stages[0].lr(19));
    // It learns.
    let losses: Vec<f64> = train.iter().map(|r| r["loss"].as_f64().unwrap()).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&losses[losses.len() - 5..]) < mean(&losses[..5]) - 0.5,
        "{losses:?}"
    );

    // Stopped at step 15 (before the doubling), then resumed: the same run bit for bit.
    let split = s.dir.path().join("split");
    let mut first = opts(&split);
    first.stop_at_step = Some(15);
    rewarm_train::train(&plan, &first, &rewarm_train::NoProgress).unwrap();
    rewarm_train::train(&plan, &opts(&split), &rewarm_train::NoProgress).unwrap();
    assert_eq!(train_losses(&split), train_losses(&full));
    assert!(
        final_weights(&split) == final_weights(&full),
        "the resumed run's weights differ"
    );
}
