//! `[monitor]`: a representation record at every evaluation, and training unchanged by measuring.

mod common;
use common::*;

#[test]
fn the_monitor_measures_at_every_evaluation_and_changes_no_bit_of_training() {
    let plain = setup("", "");
    let monitored = setup("[monitor]\nsequences = 8\ndormant_threshold = 0.1", "");
    let run = |s: &Setup| {
        let dir = s.dir.path().join("run");
        rewarm_train::train(&load(&s.plan_path), &opts(&dir), &rewarm_train::NoProgress).unwrap();
        dir
    };
    let (a, b) = (run(&plain), run(&monitored));
    assert_eq!(
        final_weights(&a),
        final_weights(&b),
        "measuring changed training"
    );
    assert_eq!(train_losses(&a), train_losses(&b));
    assert!(records(&a, "representation").is_empty());

    // One record per evaluation step (every 10 steps and step 0; 80 steps in all), on the first set.
    let reps = records(&b, "representation");
    let steps: Vec<u64> = reps.iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [0, 10, 20, 30, 40, 50, 60, 70, 80]);
    let hidden = 64.0; // the tiny preset's hidden size
    for r in &reps {
        let rank = r["rank_me"].as_f64().unwrap();
        assert!(rank > 1.0 && rank <= hidden, "{r}");
        assert!(r["alpha_req"].as_f64().unwrap().is_finite(), "{r}");
        let dormant = r["dormant_fraction"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&dormant), "{r}");
        assert_eq!(r["set"], "a");
        let layers = r["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "the tiny preset's layers");
        assert!(layers
            .iter()
            .all(|l| l["weight_norm"].as_f64().unwrap() > 0.0));
    }
    // The first measurement has no previous weights; later ones measure the update since (> 0 while the
    // learning rate is).
    assert!(reps[0]["layers"][0].get("update_norm").is_none());
    assert!(reps[1]["layers"][0]["update_norm"].as_f64().unwrap() > 0.0);
    // Training moves the representation: RankMe at the end differs from at initialisation.
    let rank = |r: &serde_json::Value| r["rank_me"].as_f64().unwrap();
    assert!((rank(&reps[0]) - rank(&reps[8])).abs() > 1e-3);

    // `set` picks the validation set measured: other sequences, so other values from the same weights.
    let on_b = setup("[monitor]\nsequences = 8\nset = \"b\"", "");
    let c = run(&on_b);
    assert_eq!(
        train_losses(&c),
        train_losses(&a),
        "measuring b changed training"
    );
    let reps_b = records(&c, "representation");
    assert_eq!(reps_b.len(), reps.len());
    assert!(reps_b.iter().all(|r| r["set"] == "b"));
    assert!((rank(&reps_b[0]) - rank(&reps[0])).abs() > 1e-6);
}
