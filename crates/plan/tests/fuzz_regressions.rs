//! Plans and sweeps that made `rewarm` hang or run out of memory before the fuzz target `plan_toml`
//! (fuzz/, `scripts/fuzz.sh`) was written, kept as tests: each must now be answered at once, with a
//! plan or an error naming the file and field.

#[macro_use]
mod common;

use rewarm_plan::resolved::Segment;
use rewarm_plan::schedule::BatchSchedule;
use rewarm_plan::{sweep, Plan, PlanConfig};
use std::path::Path;
use std::time::{Duration, Instant};

const PLAN: &str = concat!(
    plan_head!(),
    r#"[[stages]]
name = "en"
tokens = TOKENS_EN
mixture = { en = 1.0 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04 }
[[stages]]
name = "de"
tokens = TOKENS_DE
mixture = { de = 1.0 }
replay = { fraction = 0.25 }
schedule = { kind = "wsd", max_lr = 1e-3, decay_fraction = 0.2, shape = "one_minus_sqrt" }
"#
);

fn plan(en: &str, de: &str, extra_train: &str) -> Result<Plan, String> {
    let text = PLAN
        .replace("TOKENS_EN", en)
        .replace("TOKENS_DE", de)
        .replace(
            "batch_tokens = 128",
            &format!("batch_tokens = 128\n{extra_train}"),
        );
    let file = Path::new("p.toml");
    let config = PlanConfig::from_toml(&text, file).map_err(|e| e.to_string())?;
    Plan::new(config, file).map_err(|e| e.to_string())
}

/// What `Plan::new` computed before: one loop iteration per optimizer step.
fn segments_step_by_step(
    batch: &BatchSchedule,
    seq_len: u64,
    target: u64,
    mut tokens: u64,
    mut step: u64,
) -> (Vec<Segment>, u64) {
    let (mut sequences, mut segments) = (0, Vec::<Segment>::new());
    while sequences < target {
        let b = batch.sequences_at(tokens);
        if segments.last().is_none_or(|s| s.batch_sequences != b) {
            segments.push(Segment {
                first_step: step,
                batch_sequences: b,
                first_sequence: sequences,
            });
        }
        sequences += b;
        tokens += b * seq_len;
        step += 1;
    }
    (segments, step)
}

/// A stage of 10¹⁸ tokens in batches of 128 is 7.8·10¹⁵ steps: `Plan::new` stepped through them one by
/// one and never returned. It now takes a segment at a time.
#[test]
fn a_huge_token_budget_is_planned_at_once() {
    let started = Instant::now();
    let p = plan("1_000_000_000_000_000_000", "16_000", "").unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(p.stages[0].steps, 1_000_000_000_000_000_000 / 128);
    let last = p.step(p.total_steps - 1);
    assert_eq!(last.stage, 1);
    assert_eq!(last.batch_sequences, 8);
    // With batch doublings the segments are found the same way.
    let p = plan(
        "1_000_000_000_000_000_000",
        "16_000",
        "batch_doubling_tokens = [1_000, 500_000_000_000_000_000]",
    )
    .unwrap();
    let b: Vec<u64> = p.stages[0]
        .segments
        .iter()
        .map(|s| s.batch_sequences)
        .collect();
    assert_eq!(b, [8, 16, 32]);
    assert_eq!(p.stages[1].segments.len(), 1);
}

/// Budgets whose steps or tokens do not fit 64 bits are an error naming the stage, not an overflow
/// (TOML integers stop at 2⁶³, but batch doublings multiply the tokens per step).
#[test]
fn token_counts_that_overflow_are_an_error() {
    let points: Vec<String> = (1..=60).map(|t| t.to_string()).collect();
    let err = plan(
        "9_000_000_000_000_000_000",
        "16_000",
        &format!("batch_doubling_tokens = [{}]", points.join(", ")),
    )
    .expect_err("overflow refused");
    assert!(
        err.contains("p.toml") && err.contains("stages[0] (en).tokens") && err.contains("overflow"),
        "{err}"
    );
}

/// The segment-at-a-time computation gives exactly the segments and step counts of the step-by-step one,
/// including doubling points inside a step and several points passed by one step.
#[test]
fn segments_match_the_step_by_step_computation() {
    let cases: &[(&str, &str, &str)] = &[
        ("16_000", "16_000", ""),
        (
            "16_000",
            "16_000",
            "batch_doubling_tokens = [4_000, 20_000]",
        ),
        ("1_000", "17", "batch_doubling_tokens = [1, 2, 3, 129, 130]"),
        (
            "5_000",
            "5_001",
            "batch_doubling_tokens = [127, 128, 129, 5_000, 9_999, 10_000]",
        ),
        ("129", "12_345", "batch_doubling_tokens = [256, 2_000]"),
    ];
    for &(en, de, extra) in cases {
        let p = plan(en, de, extra).unwrap();
        let mut tokens = 0;
        for st in &p.stages {
            // Replay is compute-equivalent (not additive): the stage draws its own budget's sequences.
            let budget: u64 = if st.name == "en" { en } else { de }
                .replace('_', "")
                .parse()
                .unwrap();
            let target_sequences = budget.div_ceil(16);
            let (segments, end) =
                segments_step_by_step(&p.batch, 16, target_sequences, tokens, st.first_step);
            assert_eq!(
                st.segments, segments,
                "{en} {de} {extra}: stage {}",
                st.name
            );
            assert_eq!(st.first_step + st.steps, end, "{en} {de} {extra}");
            assert!(target_sequences <= st.sequences);
            tokens += st.sequences * 16;
        }
    }
}

const BASE: &str = r#"[model]
preset = "tiny"
[data]
sources = { en = "prepared/en" }
[[stages]]
name = "en"
tokens = 16_000
mixture = { en = 1.0 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4 }
"#;

/// Ten grid keys of ten values are 10¹⁰ runs: expanding them all ran out of memory. Grids over
/// `MAX_RUNS` are refused before anything is expanded.
#[test]
fn a_sweep_grid_of_too_many_runs_is_refused_at_once() {
    let mut text = String::from("base = \"base.toml\"\n[grid]\n");
    for k in 0..10 {
        text.push_str(&format!("\"x{k}\" = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"));
    }
    let file = Path::new("s.toml");
    let config = sweep::parse(&text, file).unwrap();
    let started = Instant::now();
    let err = sweep::expand_with_base(&config, file, Path::new("base.toml"), BASE)
        .expect_err("refused")
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.contains("s.toml")
            && err.contains("10000000000 runs")
            && err.contains("4096")
            && err.contains("HINT"),
        "{err}"
    );
    // Up to the limit a grid expands as before.
    let small =
        "base = \"base.toml\"\n[grid]\nseed = [1, 2, 3]\n\"stages.0.tokens\" = [1_000, 2_000]\n";
    let config = sweep::parse(small, file).unwrap();
    let runs = sweep::expand_with_base(&config, file, Path::new("base.toml"), BASE).unwrap();
    assert_eq!(runs.len(), 6);
}
