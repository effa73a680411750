//! Continuing a run under another plan (`extend::check`): what may change after the checkpoint's step,
//! and the first field named when something the steps already run depended on changed.

#[macro_use]
mod common;

use rewarm_plan::extend::{check, Extension};
use rewarm_plan::{plan_file, Plan, PlanConfig};
use std::path::Path;

/// Two stages of 125 steps (8 sequences of 16 tokens per step).
const BASE: &str = concat!(
    plan_head!(),
    r#"[[stages]]
name = "pre"
tokens = 16_000
mixture = { en = 1.0 }
schedule = { kind = "constant", lr = 1e-3 }
[[stages]]
name = "cpt"
tokens = 16_000
mixture = { de = 1.0 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4 }
"#
);

const ANNEAL: &str = r#"
[[stages]]
name = "anneal"
tokens = 1_600
mixture = { en = 1.0 }
schedule = { kind = "anneal", start_lr = 1e-3, min_lr = 1e-4 }
"#;

fn plan(text: &str) -> Plan {
    let config = PlanConfig::from_toml(text, Path::new("p.toml")).unwrap();
    Plan::new(config, Path::new("p.toml")).unwrap()
}

fn json(text: &str) -> String {
    plan_file(&plan(text)).to_json()
}

/// The base plan with `old` replaced by `new` (which must occur).
fn with(old: &str, new: &str) -> String {
    assert!(BASE.contains(old), "no `{old}`");
    BASE.replacen(old, new, 1)
}

fn extension(sources: &[&str], changed_from: Option<usize>) -> Extension {
    Extension {
        sources_then: sources.iter().map(|s| s.to_string()).collect(),
        changed_from,
    }
}

#[test]
fn the_same_plan_appended_stages_and_added_sources_continue() {
    let then = json(BASE);
    for step in [0, 60, 125, 250] {
        assert_eq!(
            check(&then, &plan(BASE), step),
            Ok(extension(&["de", "en"], None))
        );
    }
    let longer = with(
        "de = \"prepared/de\"",
        "de = \"prepared/de\", fr = \"prepared/fr\"",
    ) + ANNEAL;
    assert_eq!(
        check(&then, &plan(&longer), 250),
        Ok(extension(&["de", "en"], Some(2)))
    );
    // The data is checked by its fingerprint: a moved folder is the same source.
    let moved = with("\"prepared/en\"", "\"/data/en\"");
    assert!(check(&then, &plan(&moved), 250).is_ok());
    // Measuring the representation changes no step: `[monitor]` may be added when resuming.
    let monitored = with("[[stages]]", "[monitor]\nsequences = 4\n[[stages]]");
    assert_eq!(
        check(&then, &plan(&monitored), 60),
        Ok(extension(&["de", "en"], None))
    );
}

#[test]
fn stages_after_the_checkpoint_may_change_and_a_branch_stops_its_stage_there() {
    let then = json(BASE);
    let other_cpt = with("max_lr = 1e-3, min_lr", "max_lr = 2e-3, min_lr");
    assert_eq!(
        check(&then, &plan(&other_cpt), 100),
        Ok(extension(&["de", "en"], Some(1)))
    );
    // A branch at step 60 of `pre`: stop it there, then anneal instead of `cpt`.
    let branch = BASE[..BASE.find("[[stages]]\nname = \"cpt\"").unwrap()]
        .replace("name = \"pre\"", "name = \"pre\"\nstop_after_steps = 60")
        + ANNEAL;
    assert_eq!(plan(&branch).stages[0].steps, 60);
    assert_eq!(
        check(&then, &plan(&branch), 60),
        Ok(extension(&["de", "en"], Some(0)))
    );
}

#[test]
fn a_change_to_what_decided_the_steps_run_names_the_first_field() {
    let then = json(BASE);
    let stopped_run = json(&with(
        "name = \"pre\"",
        "name = \"pre\"\nstop_after_steps = 60",
    ));
    for (then, now, step, want) in [
        (
            &then,
            with("max_lr = 1e-3, min_lr", "max_lr = 2e-3, min_lr"),
            200,
            "plan.stages[1] (cpt).schedule.max_lr: 0.001 in the run, 0.002 in this plan",
        ),
        (
            &then,
            with("name = \"pre\"", "name = \"pre\"\nstop_after_steps = 60"),
            70,
            "plan.stages[0] (pre).stop_after_steps: null in the run, 60 in this plan",
        ),
        (
            &stopped_run,
            BASE.to_owned(),
            100,
            "plan.stages[0] (pre).stop_after_steps: 60 in the run, which went on to the next stage",
        ),
        (
            &then,
            with("preset = \"tiny\"", "preset = \"tiny\"\nnum_layers = 3"),
            10,
            "model.num_layers: 2 in the run, 3 in this plan",
        ),
        (
            &then,
            with("seed = 7", "seed = 8"),
            0,
            "plan.seed: 7 in the run, 8 in this plan",
        ),
        (
            &then,
            with(", de = \"prepared/de\"", "").replace("{ de = 1.0 }", "{ en = 1.0 }"),
            10,
            "plan.data.sources.de: the run trained on it and this plan drops it",
        ),
    ] {
        let err = check(then, &plan(&now), step).unwrap_err();
        assert!(
            err.contains(want) && err.contains("HINT"),
            "want `{want}`, got: {err}"
        );
    }
}

/// A stage that continues the schedule of a stage the run trained sets that schedule's length: it may
/// not be added, changed or removed after the fact; one after the run's stages with its own schedule may.
#[test]
fn stages_continuing_a_trained_schedule_stay_as_they_were() {
    let more = r#"
[[stages]]
name = "more"
tokens = 16_000
mixture = { de = 1.0 }
schedule = { kind = "continue" }
"#;
    // Appended to a run in (or at the end of) the cosine stage: its LR would change.
    let then = json(BASE);
    let appended = format!("{BASE}{more}");
    for step in [130, 250] {
        let e = check(&then, &plan(&appended), step).unwrap_err();
        assert!(
            e.contains("plan.stages[2]") && e.contains("continues the schedule of stage `cpt`"),
            "{e}"
        );
    }
    // A run whose plan had it: removing it, or changing its tokens, is refused; keeping it continues.
    let then = json(&appended);
    let e = check(&then, &plan(BASE), 130).unwrap_err();
    assert!(e.contains("plan.stages[2]"), "{e}");
    let longer = appended.replace(
        "tokens = 16_000\nmixture = { de = 1.0 }\nschedule = { kind = \"continue\" }",
        "tokens = 32_000\nmixture = { de = 1.0 }\nschedule = { kind = \"continue\" }",
    );
    assert_ne!(longer, appended);
    assert!(check(&then, &plan(&longer), 130).is_err());
    assert!(check(&then, &plan(&appended), 130).is_ok());
    // A stage with its own schedule after the trained ones is fine, as always.
    assert!(check(&json(BASE), &plan(&format!("{BASE}{ANNEAL}")), 250).is_ok());
}

/// Batch doublings above the tokens a run had seen may be added (a batch-size probe's branches), the
/// ones it reached may not move; a threshold listed twice quadruples the batch there.
#[test]
fn doublings_past_the_checkpoint_may_change_and_reached_ones_may_not() {
    let doubling = |points: &str| {
        with(
            "batch_tokens = 128\n",
            &format!("batch_tokens = 128\nbatch_doubling_tokens = [{points}]\n"),
        )
    };
    let then = json(&doubling("4096"));
    // 32 steps of 128 tokens reach the doubling at 4,096, then 28 of 256: step 60 has seen 11,264.
    assert!(check(&then, &plan(&doubling("4096, 11264, 11264")), 60).is_ok());
    let quadrupled = plan(&doubling("4096, 11264, 11264"));
    assert_eq!(quadrupled.step(60).tokens_before, 11_264);
    let before = quadrupled.step(59).batch_sequences;
    assert_eq!(quadrupled.step(60).batch_sequences, 4 * before);
    let e = check(&then, &plan(&doubling("2048")), 60).unwrap_err();
    assert!(e.starts_with("plan.train.batch_doubling_tokens"), "{e}");
    // Before the doubling was reached, it may move.
    assert!(check(&then, &plan(&doubling("6000")), 20).is_ok());
}
