//! A stage whose mixture changes part way (`mixture_changes`) in a real run: the tokens trained per source
//! are the plan's, and a run stopped at the change resumes bit-identically.

mod common;

use common::*;
use rewarm_train::{open_data, train, NoProgress};
use std::collections::BTreeMap;

/// Stage s1 (40 steps on b, 25% replay of a) switches to half a, half b at its step 20 (global 60).
const CHANGE: &str = "mixture_changes = [{ at_step = 20, mixture = { a = 0.5, b = 0.5 } }]";

#[test]
fn a_run_whose_mixture_changes_mid_stage_trains_the_planned_tokens_and_resumes_exactly() {
    let s = setup("", CHANGE);
    let plan = load(&s.plan_path);
    assert_eq!(plan.stages[1].phases.len(), 2);
    let straight = s.dir.path().join("straight");
    let state = train(&plan, &opts(&straight), &NoProgress).unwrap();
    // What the plan's index draws, per source and replay, over every phase.
    let index = open_data(&plan).unwrap().mixture.index;
    let mut planned: BTreeMap<String, u64> = BTreeMap::new();
    for ds in 0..plan.phases().count() {
        for d in index.stage_draws(ds) {
            let name = &plan.sources[d.source].name;
            let key = if d.replay {
                format!("{name}/replay")
            } else {
                name.clone()
            };
            *planned.entry(key).or_default() += d.sequences * plan.seq_len as u64;
        }
    }
    assert_eq!(state.tokens_by_source, planned);
    assert!(
        planned["a"] > plan.stages[0].sequences * plan.seq_len as u64,
        "a is new data again after the change"
    );
    let resumed = s.dir.path().join("resumed");
    for stop in [59, 60] {
        let mut o = opts(&resumed);
        o.stop_at_step = Some(stop);
        train(&plan, &o, &NoProgress).unwrap();
    }
    train(&plan, &opts(&resumed), &NoProgress).unwrap();
    assert_eq!(train_losses(&straight), train_losses(&resumed));
    assert!(
        final_weights(&straight) == final_weights(&resumed),
        "final weights differ"
    );
}
