//! The step function at stage boundaries and batch doublings, and when evaluations and checkpoints are
//! due, on the base plan of `tests/common/base_plan.rs`.

mod common;
use common::base_plan::*;

// ---------------------------------------------------------------- the step function

#[test]
fn steps_at_a_stage_boundary_restart_local_counters() {
    let p = ok(BASE);
    assert_eq!((p.stages[0].first_step, p.stages[0].steps), (0, 125));
    assert_eq!((p.stages[1].first_step, p.stages[1].steps), (125, 125));
    assert_eq!(p.stages[1].tokens_before, 16_000);
    let s = p.step(0);
    assert_eq!(
        (
            s.stage,
            s.local_step,
            s.first_sequence,
            s.tokens_before,
            s.batch_sequences
        ),
        (0, 0, 0, 0, BATCH)
    );
    let s = p.step(124);
    assert_eq!(
        (s.stage, s.local_step, s.first_sequence, s.tokens_before),
        (0, 124, 992, 992 * SEQ)
    );
    let s = p.step(125);
    assert_eq!(
        (s.stage, s.local_step, s.first_sequence, s.tokens_before),
        (1, 0, 0, 16_000)
    );
    let s = p.step(249);
    assert_eq!(
        (s.stage, s.local_step, s.first_sequence, s.tokens_before),
        (1, 124, 992, 16_000 + 992 * SEQ)
    );
    // tokens_before advances by one batch per step, across the boundary too.
    for t in 1..p.total_steps {
        let (a, b) = (p.step(t - 1), p.step(t));
        assert_eq!(
            b.tokens_before,
            a.tokens_before + a.batch_sequences * SEQ,
            "step {t}"
        );
    }
}

#[test]
fn a_stage_that_is_not_a_whole_number_of_batches_rounds_up_to_one() {
    // 15,000 tokens = 937.5 sequences → 938 → 118 batches of 8 (944 sequences).
    let p = ok(&with(
        "tokens = 16_000\nmixture = { en",
        "tokens = 15_000\nmixture = { en",
    ));
    assert_eq!((p.stages[0].steps, p.stages[0].sequences), (118, 944));
    assert_eq!(p.stages[1].first_step, 118);
    assert_eq!(p.stages[1].tokens_before, 944 * SEQ);
}

#[test]
fn rewarmed_stage_starts_at_its_schedule_start_and_the_first_ends_near_min_lr() {
    let p = ok(BASE);
    // Warmup from 0 (the default, Gupta/Ibrahim) over round(0.04·125) = 5 steps, Megatron's convention:
    // the first step of the re-warmed stage trains at max_lr/5 ...
    assert_eq!(p.step(125).lr, MAX_LR * (1.0 / 5.0));
    // ... and its fifth step is at max_lr, as is the first step after the warmup.
    assert_eq!(p.step(129).lr, MAX_LR);
    assert_eq!(p.step(130).lr, MAX_LR);
    // The last step of the first stage is one step short of the cosine's end: ≈ min_lr.
    let last = p.step(124).lr;
    assert!(last > MIN_LR && last < MIN_LR * 1.01, "{last:e}");
    assert_eq!(
        p.stages[0]
            .schedule
            .lr(p.stages[0].steps, p.stages[0].steps),
        MIN_LR
    );
    // Other warmup starts (spec §4.5), set on the second stage only.
    let (head, last) = BASE.rsplit_once("schedule = ").expect("a schedule");
    assert!(last.starts_with("{ kind = \"cosine\""));
    // The first of W = 5 warmup steps is a fifth of the way from the start to the peak.
    for (start, eta0) in [("min", MIN_LR), ("max_over_100", MAX_LR / 100.0)] {
        let p = ok(&format!(
            "{head}schedule = {{ kind = \"cosine\", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04, warmup_start = \"{start}\" }}\n"
        ));
        assert_eq!(p.step(125).lr, eta0 * (1.0 - 0.2) + MAX_LR * 0.2, "{start}");
        let from_zero = MAX_LR * (1.0 / 5.0);
        assert_eq!(
            p.step(0).lr,
            from_zero,
            "{start}: stage 0 keeps its own start"
        );
    }
}

#[test]
fn a_constant_second_stage_does_not_rewarm() {
    // Gupta et al.'s baseline: continue at a constant (low) LR.
    let (head, _) = BASE.rsplit_once("schedule = ").expect("a schedule");
    let p = ok(&format!(
        "{head}schedule = {{ kind = \"constant\", lr = 1e-4 }}\n"
    ));
    assert_eq!(p.step(125).lr, 1e-4);
    assert_eq!(p.step(249).lr, 1e-4);
}

#[test]
fn batch_doubling_changes_the_batch_at_the_threshold_and_scales_lr_by_sqrt2() {
    // 8 sequences (128 tokens) per step until 8,192 tokens = 64 steps, then 16.
    let p = ok(&with(
        "batch_tokens = 128",
        "batch_tokens = 128\nbatch_doubling_tokens = [8192]\nmicro_batch_sequences = 4",
    ));
    let s63 = p.step(63);
    let s64 = p.step(64);
    assert_eq!(
        (s63.batch_sequences, s63.tokens_before),
        (8, 63 * BATCH_TOKENS)
    );
    assert_eq!((s64.batch_sequences, s64.tokens_before), (16, 8192));
    assert_eq!(s64.first_sequence, 512);
    let s65 = p.step(65);
    assert_eq!((s65.first_sequence, s65.tokens_before), (528, 8192 + 256));
    // Stage 0: 512 sequences in 64 steps, then ⌈488/16⌉ = 31 steps of 16 → 95 steps, 1,008 sequences.
    let st = &p.stages[0];
    assert_eq!((st.steps, st.sequences), (95, 1008));
    assert_eq!(st.segments.len(), 2);
    assert_eq!(
        (
            st.segments[1].first_step,
            st.segments[1].batch_sequences,
            st.segments[1].first_sequence
        ),
        (64, 16, 512)
    );
    // LR: the schedule's value, × √2 once the batch has doubled.
    let sched = &st.schedule;
    rel_close(s63.lr, sched.lr(63, st.steps));
    rel_close(s64.lr, sched.lr(64, st.steps) * 2f64.sqrt());
    // The second stage starts with the doubled batch and keeps the √2.
    let s = p.step(95);
    assert_eq!((s.stage, s.local_step, s.batch_sequences), (1, 0, 16));
    assert_eq!(p.stages[1].segments.len(), 1);
    let st1 = &p.stages[1];
    assert_eq!(st1.steps, 63); // ⌈1000/16⌉
    rel_close(p.step(100).lr, st1.schedule.lr(5, st1.steps) * 2f64.sqrt());
    // The micro-batch divides both batch sizes.
    assert_eq!(p.micro_batch_sequences(8), 4);
    assert_eq!(p.micro_batch_sequences(16), 4);
}

#[test]
fn micro_batch_defaults_to_the_whole_batch() {
    let p = ok(BASE);
    assert_eq!(p.micro_batch_sequences(8), 8);
}

// ---------------------------------------------------------------- periodic actions

#[test]
fn eval_is_due_at_start_densely_after_boundaries_periodically_and_at_stage_ends() {
    // every_steps 10, dense_steps 6, dense_every_steps 3; stages end at 125 and 250.
    let p = ok(BASE);
    let due: Vec<u64> = (0..=p.total_steps).filter(|&t| p.eval_due(t)).collect();
    let mut want: Vec<u64> = vec![0];
    want.extend([3, 6]); // dense at the start of the first stage too
    want.extend((10..=120).step_by(10));
    want.push(125); // end of stage 0
    want.extend([128, 130, 131]); // dense 3 and 6 steps after the boundary, periodic 130
    want.extend((140..=240).step_by(10));
    want.push(250); // end of stage 1
    assert_eq!(due, want);
    assert!(
        !p.eval_due(126) && !p.eval_due(134),
        "dense stops after 6 steps"
    );
}

#[test]
fn final_evaluations_close_in_on_every_stage_end() {
    // final_steps 9, final_every_steps 4: 8, 4 and 0 steps before the ends at 125 and 250.
    let p = ok(&with(
        "every_steps = 10\ndense_steps = 6",
        "every_steps = 0\ndense_steps = 0\nfinal_steps = 9\nfinal_every_steps = 4",
    ));
    let due: Vec<u64> = (0..=p.total_steps).filter(|&t| p.eval_due(t)).collect();
    assert_eq!(due, [0, 117, 121, 125, 242, 246, 250]);
}

#[test]
fn eval_only_at_stage_ends_when_periodic_and_dense_are_off() {
    let p = ok(&with(
        "every_steps = 10\ndense_steps = 6",
        "every_steps = 0\ndense_steps = 0",
    ));
    let due: Vec<u64> = (0..=p.total_steps).filter(|&t| p.eval_due(t)).collect();
    assert_eq!(due, [0, 125, 250]);
}

#[test]
fn checkpoints_are_due_periodically_and_at_stage_ends() {
    let p = ok(BASE);
    for (t, want) in [
        (1, false),
        (7, true),
        (8, false),
        (14, true),
        (124, false),
        (125, true), // stage end, not a multiple of 7
        (126, true), // 18·7
        (127, false),
        (249, false),
        (250, true),
    ] {
        assert_eq!(p.checkpoint_due(t), want, "step {t}");
    }
    assert!(p.is_stage_end(125) && p.is_stage_end(250) && !p.is_stage_end(126));
    let p = ok(&with(
        "[checkpoint]\nevery_steps = 7",
        "[checkpoint]\nevery_steps = 0",
    ));
    let due: Vec<u64> = (1..=p.total_steps)
        .filter(|&t| p.checkpoint_due(t))
        .collect();
    assert_eq!(due, [125, 250]);
}

// ---------------------------------------------------------------- one schedule over several stages

/// The base plan with a third stage (code), the second and third continuing the first one's schedule.
fn continued(first_schedule: &str) -> String {
    let cosine = "schedule = { kind = \"cosine\", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04 }";
    let (head, tail) = BASE.split_once(cosine).expect("the first stage's schedule");
    let tail = tail.replace(cosine, "schedule = { kind = \"continue\" }");
    format!(
        "{head}{first_schedule}{tail}\n[[stages]]\nname = \"code\"\ntokens = 16_000\nmixture = {{ code = 1.0 }}\nschedule = {{ kind = \"continue\" }}\n"
    )
}

#[test]
fn a_continued_cosine_spans_the_stages_at_hand_computed_points() {
    let p = ok(&continued(
        "schedule = { kind = \"cosine\", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04 }",
    ));
    assert_eq!(p.total_steps, 375);
    // One cosine over 375 steps: warmup round(0.04 · 375) = 15 steps, then the decay over the other 360.
    assert_eq!(p.step(0).lr, MAX_LR / 15.0);
    assert_eq!(p.step(14).lr, MAX_LR);
    let cosine = |n: f64| {
        let c = (1.0 - (std::f64::consts::PI * (n - 15.0) / 360.0).cos()) / 2.0;
        MAX_LR * (1.0 - c) + MIN_LR * c
    };
    // The second and third stages start where the schedule is, not at a re-warm: steps 125 and 250.
    for step in [125, 250, 300, 374] {
        within(p.step(step).lr, cosine(step as f64), 1e-15);
    }
    assert!(p.step(124).lr > p.step(125).lr && p.step(125).lr > p.step(126).lr);
    assert_eq!(p.step(250).local_step, 0);
    // The schedule ends at min_lr after the last stage, not after the first.
    let last = &p.stages[2];
    assert_eq!(last.lr(last.steps), MIN_LR);
    assert!(p.step(124).lr > 5.0 * MIN_LR);
    let rows = rewarm_plan::summary::PlanSummary::new(&p, &index(&p), 1.0).to_text();
    assert!(rows.contains("cosine (continued)"), "{rows}");
}

#[test]
fn a_continued_wsd_decays_only_at_the_end_of_the_last_stage() {
    let p = ok(&continued(
        "schedule = { kind = \"wsd\", max_lr = 1e-3, decay_fraction = 0.2, warmup = 0.04 }",
    ));
    // Decay over the last round(0.2 · 375) = 75 steps: from step 300, the third stage's 50th.
    assert!((15..=300).all(|n| p.step(n).lr == MAX_LR));
    assert!(p.step(301).lr < MAX_LR && p.step(374).lr < p.step(301).lr);
    assert_eq!(p.step(300).local_step, 50);
}

#[test]
fn continue_needs_a_schedule_before_it_that_runs_to_its_end() {
    let first = BASE.replacen(
        "schedule = { kind = \"cosine\", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04 }",
        "schedule = { kind = \"continue\" }",
        1,
    );
    let e = plan(&first).unwrap_err();
    assert_eq!(e.field, "stages[0] (en).schedule.kind");
    let text = continued("schedule = { kind = \"cosine\", max_lr = 1e-3, min_lr = 1e-4 }");
    let warm = text.replacen("name = \"de\"", "name = \"de\"\nmoment_warmup_steps = 3", 1);
    assert_eq!(
        plan(&warm).unwrap_err().field,
        "stages[1] (de).moment_warmup_steps"
    );
    let stopped = text.replacen("name = \"en\"", "name = \"en\"\nstop_after_steps = 100", 1);
    let e = plan(&stopped).unwrap_err();
    assert_eq!(e.field, "stages[1] (de).schedule.kind");
    assert!(e.to_string().contains("stops early"), "{e}");
}
