//! Stage accounting (spec §3 A2): how mixtures and replay split each stage's tokens, replay of what an
//! earlier run saw, and the `rewarm plan` summary's totals, on the base plan of
//! `tests/common/base_plan.rs`.

mod common;
use common::base_plan::*;
use rewarm_data::MixtureIndex;
use rewarm_plan::summary::PlanSummary;

// ---------------------------------------------------------------- accounting (spec §3 A2)

#[test]
fn compute_equivalent_replay_keeps_stage_tokens_and_splits_them_by_rho() {
    for (rho, tokens) in [
        (0.25, 16_000u64),
        (0.05, 15_000),
        (0.5, 16_000),
        (0.01, 31_337),
    ] {
        let text = with("fraction = 0.25", &format!("fraction = {rho}")).replacen(
            "tokens = 16_000\nmixture = { de",
            &format!("tokens = {tokens}\nmixture = {{ de"),
            1,
        );
        let p = ok(&text);
        let ix = index(&p);
        let n = tokens as f64;
        let st = &p.stages[1];
        let planned = (st.sequences * SEQ) as f64;
        // The stage ends on a whole batch: at most one batch past its budget, never short.
        assert!(
            planned >= n && planned < n + BATCH_TOKENS as f64,
            "{rho}: {planned}"
        );
        let (new, replay) = stage_tokens(&ix, 1);
        assert_eq!(new + replay, st.sequences * SEQ);
        let b = BATCH_TOKENS as f64;
        within(new as f64, (1.0 - rho) * n, b);
        within(replay as f64, rho * n, b);
        // All new data is German, all replay English.
        let de = draws_of(&ix, 1, source(&p, "de"));
        let en = draws_of(&ix, 1, source(&p, "en"));
        assert_eq!((de.0 * SEQ, de.1, en.0, en.1 * SEQ), (new, 0, 0, replay));
    }
}

#[test]
fn compute_equivalent_replay_splits_every_batch_by_rho() {
    // A2: every batch of B holds round(ρB) ± 1 replayed sequences.
    let p = ok(BASE);
    let ix = index(&p);
    let replayed = |m: u64| -> u64 {
        ix.draws_in_first(1, m)
            .iter()
            .filter(|d| d.replay)
            .map(|d| d.sequences)
            .sum()
    };
    for step in 0..p.stages[1].steps {
        let first = step * BATCH;
        let in_batch = replayed(first + BATCH) - replayed(first);
        assert!((1..=3).contains(&in_batch), "step {step}: {in_batch}"); // round(0.25·8) = 2
    }
}

#[test]
fn additive_replay_adds_replay_on_top_of_the_new_data_budget() {
    for rho in [0.2, 0.25, 0.5] {
        let p = ok(&with(
            "fraction = 0.25",
            &format!("fraction = {rho}, mode = \"additive\""),
        ));
        let ix = index(&p);
        let n = 16_000.0;
        let (new, replay) = stage_tokens(&ix, 1);
        let b = BATCH_TOKENS as f64;
        within(new as f64, n, b);
        within((new + replay) as f64, n / (1.0 - rho), b);
        assert_eq!(new + replay, p.stages[1].sequences * SEQ);
        // The replay ratio of the batches is still ρ.
        within(
            replay as f64 / (new + replay) as f64,
            rho,
            1.0 / p.stages[1].sequences as f64,
        );
    }
}

#[test]
fn mixture_weights_are_token_fractions_of_the_new_data() {
    let p = ok(&with(
        "mixture = { de = 1.0 }",
        "mixture = { de = 3.0, code = 1.0 }",
    ));
    let ix = index(&p);
    let n = 16_000.0;
    let b = BATCH_TOKENS as f64;
    let de = draws_of(&ix, 1, source(&p, "de")).0 * SEQ;
    let code = draws_of(&ix, 1, source(&p, "code")).0 * SEQ;
    within(de as f64, 0.75 * 0.75 * n, b);
    within(code as f64, 0.25 * 0.75 * n, b);
    assert_eq!(p.stages[1].mixture.iter().map(|m| m.1).sum::<f64>(), 1.0);
}

#[test]
fn replay_of_several_sources_is_weighted_by_sequences_seen() {
    // Stage 0 reads en 3:1 code; stage 1 replays both, by default weighted 3:1 as well.
    let p = ok(&with(
        "mixture = { en = 1.0 }",
        "mixture = { en = 3.0, code = 1.0 }",
    ));
    let ix = index(&p);
    let en = draws_of(&ix, 1, source(&p, "en")).1 as f64;
    let code = draws_of(&ix, 1, source(&p, "code")).1 as f64;
    within(en + code, 0.25 * 1000.0, 1.0);
    within(en / (en + code), 0.75, 0.01);
}

#[test]
fn a_run_that_continues_another_may_replay_what_that_run_saw() {
    // With init_from, the seen pool of a source no stage of this plan trains on is what the checkpoint's
    // run consumed (checked when the data is opened); without it, the plan refuses.
    let seen = with(
        "fraction = 0.25",
        "fraction = 0.25, sources = [\"code\"], pool = \"seen\"",
    );
    assert!(plan(&seen).is_err());
    let continued = ok(&format!(
        "init_from = \"runs/base/ckpt/step_00000100\"\n{seen}"
    ));
    let r = continued.stages[1].replay.as_ref().unwrap();
    assert_eq!(r.sources, [source(&continued, "code")]);
}

#[test]
fn seen_replay_of_a_source_listed_but_never_drawn_passes_the_plan_and_fails_the_index() {
    // The plan checks that an earlier stage trained on a seen-replayed source, not how many sequences
    // it drew: at 1e-5 of 1,000 sequences `code` got none, so its seen pool is empty.
    let text = with(
        "mixture = { en = 1.0 }",
        "mixture = { en = 1.0, code = 1e-5 }",
    )
    .replacen(
        "fraction = 0.25 }",
        "fraction = 0.25, sources = [\"code\"] }",
        1,
    );
    let p = ok(&text);
    let e = MixtureIndex::new(p.mixture_plan(&SOURCE_SEQUENCES))
        .expect_err("an empty seen pool")
        .to_string();
    assert!(e.contains("`code`") && e.contains("drew none of it"), "{e}");
}

// ---------------------------------------------------------------- summary

#[test]
fn summary_totals_add_up() {
    let p = ok(BASE);
    let ix = index(&p);
    let s = PlanSummary::new(&p, &ix, 6.0e6);
    assert_eq!(s.total_steps, 250);
    assert_eq!(
        s.stages.iter().map(|st| st.tokens).sum::<u64>(),
        s.total_tokens
    );
    assert_eq!(s.total_tokens, p.total_tokens());
    for st in &s.stages {
        assert_eq!(
            st.sources.iter().map(|t| t.tokens).sum::<u64>(),
            st.tokens,
            "{}",
            st.name
        );
        rel_close(st.flops, st.tokens as f64 * 6.0e6);
    }
    rel_close(s.total_flops, s.total_tokens as f64 * 6.0e6);
    // The union reads every stage's whole budget (replay included, as Ibrahim et al.'s 600B union).
    let budgets: u64 = s.stages.iter().map(|st| st.tokens).sum();
    assert_eq!(s.union_tokens, budgets);
    // Stage 1: 25% of 16,000 tokens is English replay.
    let de = &s.stages[1];
    assert_eq!(de.replay_fraction, 0.25);
    assert_eq!(de.peak_lr, MAX_LR);
    assert_eq!(de.schedule, "cosine");
    assert_eq!(de.batch_tokens_start, BATCH_TOKENS);
    let replay: u64 = de
        .sources
        .iter()
        .filter(|t| t.replay)
        .map(|t| t.tokens)
        .sum();
    within(replay as f64, 4_000.0, BATCH_TOKENS as f64);
    rel_close(s.continual_cost_vs_union, de.tokens as f64 / budgets as f64);
    // Epochs are draws over the source's training split.
    let en = de.sources.iter().find(|t| t.replay).expect("replay line");
    rel_close(
        en.epochs,
        (en.tokens / SEQ) as f64 / SOURCE_SEQUENCES[2] as f64,
    );
    let text = s.to_text();
    assert!(
        text.contains(&format!("union retrain reads {} tokens", s.union_tokens)),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("de ")), "{text}");
}

#[test]
fn continual_cost_of_two_equal_stages_without_replay_is_half_the_union() {
    let p = ok(&with("replay = { fraction = 0.25 }\n", ""));
    let s = PlanSummary::new(&p, &index(&p), 1.0);
    assert_eq!(s.union_tokens, 32_000);
    assert_eq!(s.total_tokens, 32_000);
    within(s.continual_cost_vs_union, 0.5, 1e-12);
}
