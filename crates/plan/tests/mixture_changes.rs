//! `mixture_changes`: a stage's new-data mixture changing part way through it, with the LR schedule going
//! on, every batch apportioned by the weights in force, and no sequence drawn twice.

#[macro_use]
mod common;

use rewarm_data::MixtureIndex;
use rewarm_plan::{Plan, PlanConfig};
use std::collections::BTreeSet;
use std::path::Path;

/// `pre`: 125 steps on en; `cpt`: 125 steps on de with 25% replay (8 sequences of 16 tokens a step).
const BASE: &str = concat!(
    plan_head!(),
    r#"[[stages]]
name = "pre"
tokens = 16_000
mixture = { en = 1.0 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4 }
[[stages]]
name = "cpt"
tokens = 16_000
mixture = { de = 1.0 }
replay = { fraction = 0.25 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4 }
"#
);

fn plan(text: &str) -> Result<Plan, String> {
    let config = PlanConfig::from_toml(text, Path::new("p.toml")).map_err(|e| e.to_string())?;
    Plan::new(config, Path::new("p.toml")).map_err(|e| e.to_string())
}

fn with_change(change: &str) -> String {
    format!("{BASE}mixture_changes = [{change}]\n")
}

/// The index over made-up sources: de 40,000 and en 30,000 sequences (sorted by name).
fn index(p: &Plan) -> MixtureIndex {
    MixtureIndex::new(p.mixture_plan(&[40_000, 30_000])).unwrap()
}

#[test]
fn a_change_at_a_step_switches_the_new_data_there_and_the_schedule_goes_on() {
    let p = plan(&with_change(
        "{ at_step = 50, mixture = { en = 0.7, de = 0.3 } }",
    ))
    .unwrap();
    let plain = plan(BASE).unwrap();
    let cpt = &p.stages[1];
    let firsts: Vec<(u64, u64)> = cpt
        .phases
        .iter()
        .map(|ph| (ph.first_sequence, ph.sequences))
        .collect();
    assert_eq!((cpt.first_phase, firsts), (1, vec![(0, 400), (400, 600)]));
    for t in 0..p.total_steps {
        assert_eq!(
            p.step(t).lr,
            plain.step(t).lr,
            "step {t}: the schedule changed"
        );
    }
    let (before, after) = (p.step(125 + 49), p.step(125 + 50));
    assert_eq!((before.data_stage, before.data_sequence), (1, 392));
    assert_eq!((after.data_stage, after.data_sequence), (2, 0));
    // Draws: 25% replay in both phases; new data all de, then 0.7 en / 0.3 de.
    let ix = index(&p);
    let (en, de) = (1, 0);
    let count = |ds: usize, source: usize, replay: bool| {
        ix.stage_draws(ds)
            .iter()
            .filter(|d| d.source == source && d.replay == replay)
            .map(|d| d.sequences)
            .sum::<u64>()
    };
    assert_eq!(
        (count(1, de, false), count(1, en, true), count(1, en, false)),
        (300, 100, 0)
    );
    assert_eq!(count(2, en, true), 150);
    let (en_new, de_new) = (count(2, en, false), count(2, de, false));
    assert_eq!(en_new + de_new, 450);
    assert!(
        en_new.abs_diff(315) <= 1,
        "en {en_new} of 450 new sequences at 0.7"
    );
    // Nothing drawn twice: en goes on after `pre`'s 1,000 draws, de after phase 1's.
    for source in [en, de] {
        let mut seen = BTreeSet::new();
        for (ds, (_, phase)) in p.phases().enumerate() {
            for i in 0..phase.sequences {
                let d = ix.draw(ds, i);
                if d.source == source && !d.replay {
                    assert!(
                        seen.insert(d.sequence),
                        "source {source}: sequence {} drawn twice",
                        d.sequence
                    );
                }
            }
        }
    }
}

#[test]
fn a_change_in_tokens_starts_at_the_first_step_after_them() {
    let at_step = plan(&with_change("{ at_step = 50, mixture = { en = 1.0 } }")).unwrap();
    let at_tokens = plan(&with_change("{ at_tokens = 6400, mixture = { en = 1.0 } }")).unwrap();
    assert_eq!(at_step.stages[1].phases, at_tokens.stages[1].phases);
    let later = plan(&with_change("{ at_tokens = 6401, mixture = { en = 1.0 } }")).unwrap();
    assert_eq!(
        later.stages[1].phases[1].first_sequence, 408,
        "step 51's first row"
    );
}

#[test]
fn changes_outside_the_stage_out_of_order_or_unsaid_are_refused_naming_the_field() {
    let field = "stages[1] (cpt).mixture_changes";
    for (changes, want) in [
        (
            "{ at_step = 0, mixture = { en = 1.0 } }",
            format!("{field}[0]: at step 0 of the stage's 125"),
        ),
        (
            "{ at_step = 125, mixture = { en = 1.0 } }",
            format!("{field}[0]: at step 125"),
        ),
        (
            "{ at_step = 60, mixture = { en = 1.0 } }, { at_step = 50, mixture = { de = 1.0 } }",
            format!("{field}[1]: at step 50"),
        ),
        (
            "{ mixture = { en = 1.0 } }",
            format!("{field}[0]: needs at_step or at_tokens"),
        ),
        (
            "{ at_step = 5, at_tokens = 640, mixture = { en = 1.0 } }",
            format!("{field}[0]: needs at_step or at_tokens"),
        ),
        (
            "{ at_step = 50, mixture = { fr = 1.0 } }",
            format!("{field}[0].mixture"),
        ),
    ] {
        let err = plan(&with_change(changes)).unwrap_err();
        assert!(err.contains(&want), "want `{want}` in: {err}");
    }
}
