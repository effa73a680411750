//! Schedule configs: batch-size warmup, `[schedule]` TOML parsing and round trips, validation
//! errors that name the field.

mod common;

use common::*;
use rewarm_plan::schedule::{
    Anneal, AnnealShape, BatchSchedule, Constant, CooldownShape, Cosine, DecayShape, Infinite,
    Linear, RefineWeight, Refined, RepeatedCosine, Schedule, ScheduleError, Warmup, WarmupStart,
    Wsd,
};

// ---------------------------------------------------------------- batch size

#[test]
fn batch_doubles_at_each_threshold_and_lr_scales_by_sqrt() {
    // Merrill et al. OLMo-1B: 1024 → 2048 at 168B tokens → 4096 at 503B tokens.
    let b = BatchSchedule::olmo_1b();
    b.validate().expect("valid");
    assert_eq!(b.sequences_at(0), 1_024);
    assert_eq!(b.sequences_at(167_999_999_999), 1_024);
    assert_eq!(b.sequences_at(168_000_000_000), 2_048);
    assert_eq!(b.sequences_at(502_999_999_999), 2_048);
    assert_eq!(b.sequences_at(503_000_000_000), 4_096);
    assert_eq!(b.sequences_at(u64::MAX), 4_096);
    assert_eq!(b.lr_scale(0), 1.0);
    assert_eq!(b.lr_scale(168_000_000_000), 2f64.sqrt()); // √(2048/1024)
    assert_eq!(b.lr_scale(503_000_000_000), 2.0); // √(4096/1024)
    assert_eq!(b.doublings_at(503_000_000_000), 2);
    let c = BatchSchedule::constant(64);
    assert_eq!((c.sequences_at(1 << 40), c.lr_scale(1 << 40)), (64, 1.0));
}

#[test]
fn batch_validation_names_the_field() {
    let field = |b: BatchSchedule| b.validate().expect_err("invalid").field;
    assert_eq!(field(BatchSchedule::constant(0)), "batch.start_sequences");
    let b = |t: Vec<u64>| BatchSchedule {
        start_sequences: 8,
        double_at_tokens: t,
    };
    assert_eq!(field(b(vec![0])), "batch.double_at_tokens[0]");
    assert_eq!(field(b(vec![10, 5])), "batch.double_at_tokens[1]");
    // A threshold listed twice doubles twice there (a batch-size probe's 4× branch).
    let twice = b(vec![10, 10]);
    twice.validate().expect("a repeated threshold is allowed");
    assert_eq!((twice.sequences_at(9), twice.sequences_at(10)), (8, 32));
    assert_eq!(twice.lr_scale(10), 2.0);
    assert_eq!(field(b((1..=62).collect())), "batch.double_at_tokens"); // 8·2^62 overflows
    b((1..=60).collect()).validate().expect("8·2^60 fits");
}

// ---------------------------------------------------------------- TOML

#[test]
fn toml_examples_parse_with_paper_defaults() {
    let e = parse(r#"kind = "constant""#).expect_err("lr is required");
    assert!(e.to_string().contains("missing field `lr`"), "{e}");
    assert_eq!(
        parse("kind = \"constant\"\nlr = 3e-5").expect("constant"),
        Schedule::Constant(Constant { lr: 3e-5 })
    );
    assert_eq!(
        parse("kind = \"cosine\"\nmax_lr = 3e-4\nmin_lr = 3e-5").expect("cosine"),
        cosine_min(MIN)
    );
    assert_eq!(
        parse("kind = \"wsd\"\nmax_lr = 3e-4").expect("wsd"),
        Schedule::hagele_wsd(MAX)
    );
    assert_eq!(
        parse("kind = \"infinite\"\nmax_lr = 3e-4\nconst_lr = 1.65e-4\nmin_lr = 3e-5")
            .expect("inf"),
        Schedule::neox_infinite(CooldownShape::Cosine)
    );
    let s = parse(
        r#"
        kind = "infinite"
        max_lr = 3e-4
        const_lr = 1.65e-4
        min_lr = 3e-5
        cooldown = "inverse_sqrt"
        alpha = 10
        anneal = { exponential_tau = { tau_steps = 10000 } }
        "#,
    )
    .expect("inverse-sqrt infinite");
    assert!(matches!(
        s,
        Schedule::Infinite(Infinite {
            cooldown: CooldownShape::InverseSqrt,
            anneal: AnnealShape::ExponentialTau { tau_steps },
            ..
        }) if tau_steps == 1e4
    ));
    let s = parse("kind = \"linear\"\nmax_lr = 1e-3").expect("linear");
    assert_eq!(
        s,
        Schedule::Linear(Linear {
            max_lr: 1e-3,
            min_lr: 0.0,
            warmup: Warmup::Fraction(0.01),
            warmup_start: WarmupStart::Zero
        })
    );
    let s =
        parse("kind = \"repeated_cosine\"\nmax_lr = 3e-4\nmin_lr = 3e-5\nrepeats = 3").expect("rc");
    assert_eq!(s, repeated_cosine());
    let s = parse("kind = \"anneal\"\nstart_lr = 1.65e-4\nmin_lr = 3e-5").expect("anneal");
    assert_eq!(
        s,
        Schedule::Anneal(Anneal {
            start_lr: CONST,
            min_lr: MIN,
            shape: AnnealShape::Exponential
        })
    );
    let s = parse("kind = \"cosine\"\nmax_lr = 3e-4\nmin_lr = 3e-5\nwarmup_start = \"max_over_100\"\nwarmup = 0")
        .expect("cosine from max/100");
    assert_eq!(s.lr(0, 10), MAX);
    assert!(matches!(
        s,
        Schedule::Cosine(Cosine {
            warmup_start: WarmupStart::MaxOver100,
            ..
        })
    ));
    let s = parse("kind = \"wsd\"\nmax_lr = 1e-3\nshape = \"mirror_cosine\"\nfinal_lr_ratio = 0.1")
        .expect("wsd");
    assert!(matches!(
        s,
        Schedule::Wsd(Wsd {
            shape: DecayShape::MirrorCosine,
            ..
        })
    ));
    let s = parse("kind = \"refined\"\nmax_lr = 1e-3\nsmoothing = 0.1\nweight = \"l2\"\nmultipliers = [1.0, 0.5, 0.0]")
        .expect("refined with inline multipliers");
    s.validate().expect("valid");
    assert_close(s.lr(1, 3), 5e-4);
}

#[test]
fn toml_rejects_unknown_keys_and_kinds() {
    let e = parse("kind = \"cosine\"\nmax_lr = 3e-4\nmin_lr = 3e-5\nwarmup_steps = 100")
        .expect_err("unknown key");
    assert!(e.to_string().contains("warmup_steps"), "{e}");
    let e = parse("kind = \"infinite\"\nmax_lr = 3e-4\nconst_lr = 1e-4\nmin_lr = 1e-5\ncooldown_iters_percent = 0.6")
        .expect_err("unknown key");
    assert!(e.to_string().contains("cooldown_iters_percent"), "{e}");
    let e = parse("kind = \"infinite\"\nmax_lr = 3e-4\nconst_lr = 1e-4\nmin_lr = 1e-5\nanneal = { exponential_tau = { tau = 5 } }")
        .expect_err("unknown nested key");
    assert!(e.to_string().contains("`tau`"), "{e}");
    let e = parse("kind = \"cosine_with_restarts\"\nmax_lr = 3e-4").expect_err("unknown kind");
    assert!(e.to_string().contains("cosine_with_restarts"), "{e}");
    let e = parse("kind = \"wsd\"\nmax_lr = 3e-4\nshape = \"sqrt\"").expect_err("unknown shape");
    assert!(e.to_string().contains("sqrt"), "{e}");
    let e = toml::from_str::<BatchSchedule>("start_sequences = 8\ndoubling = [1]")
        .expect_err("unknown key");
    assert!(e.to_string().contains("doubling"), "{e}");
}

#[test]
fn toml_round_trips() {
    let mut refined = Schedule::Refined(Refined {
        max_lr: MAX,
        warmup: Warmup::Fraction(0.0),
        warmup_start: WarmupStart::Zero,
        grad_norms: Some("runs/a/grad_norms.jsonl".into()),
        smoothing: 0.1,
        weight: RefineWeight::L1,
        multipliers: Vec::new(),
    });
    refined
        .fill_refined_multipliers(&[3.0, 2.0, 1.0, 1.5])
        .expect("fills");
    let schedules = [
        Schedule::Constant(Constant { lr: 3e-5 }),
        Schedule::rewarm_cosine(6e-4),
        cosine(WarmupStart::Min, 0.02, 240.0 / 297.0),
        Schedule::Linear(Linear {
            max_lr: 1e-3,
            min_lr: 0.0,
            warmup: Warmup::Fraction(0.0),
            warmup_start: WarmupStart::Zero,
        }),
        Schedule::hagele_wsd(1e-3),
        wsd(DecayShape::Exponential, 0.1),
        Schedule::neox_infinite(CooldownShape::InverseSqrt),
        infinite(
            CooldownShape::Linear,
            AnnealShape::ExponentialTau { tau_steps: 1e4 },
        ),
        Schedule::Anneal(Anneal {
            start_lr: CONST,
            min_lr: MIN,
            shape: AnnealShape::Exponential,
        }),
        repeated_cosine(),
        refined,
    ];
    for schedule in schedules {
        let plan = Plan { schedule };
        let text = toml::to_string(&plan).expect("serializes");
        assert!(text.starts_with("[schedule]"), "{text}");
        let back: Plan = toml::from_str(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        assert_eq!(back, plan, "{text}");
    }
    let b = BatchSchedule::olmo_1b();
    let back: BatchSchedule =
        toml::from_str(&toml::to_string(&b).expect("serializes")).expect("parses");
    assert_eq!(back, b);
}

// ---------------------------------------------------------------- validation

#[test]
fn validate_rejects_bad_values_naming_the_field() {
    let field = |s: Schedule| -> String {
        let e: ScheduleError = s.validate().expect_err("should be invalid");
        assert!(e.to_string().contains("HINT:"), "{e}");
        e.field
    };
    assert_eq!(
        field(Schedule::Constant(Constant { lr: -1e-4 })),
        "schedule.lr"
    );
    assert_eq!(
        field(Schedule::Constant(Constant { lr: f64::NAN })),
        "schedule.lr"
    );
    assert_eq!(
        field(cosine(WarmupStart::Zero, 1.5, 1.0)),
        "schedule.warmup"
    );
    assert_eq!(
        field(cosine(WarmupStart::Zero, -0.01, 1.0)),
        "schedule.warmup"
    );
    assert_eq!(
        field(cosine(WarmupStart::Zero, 0.01, 1.1)),
        "schedule.decay_end"
    );
    assert_eq!(
        field(cosine(WarmupStart::Zero, 0.5, 0.4)),
        "schedule.warmup"
    );
    assert_eq!(field(Schedule::rewarm_cosine(-3e-4)), "schedule.max_lr");
    // min > max
    assert_eq!(field(cosine_min(1e-3)), "schedule.min_lr");
    assert_eq!(field(cosine_min(-1e-6)), "schedule.min_lr");
    assert_eq!(
        field(Schedule::Linear(Linear {
            max_lr: MAX,
            min_lr: 0.0,
            warmup: Warmup::Fraction(2.0),
            warmup_start: WarmupStart::Zero
        })),
        "schedule.warmup"
    );
    assert_eq!(
        field(wsd(DecayShape::Linear, 1.5)),
        "schedule.final_lr_ratio"
    );
    assert_eq!(
        field(wsd(DecayShape::Exponential, 0.0)),
        "schedule.final_lr_ratio"
    );
    let mut s = wsd(DecayShape::Linear, 0.0);
    if let Schedule::Wsd(Wsd {
        warmup: Warmup::Fraction(warmup),
        decay_fraction,
        ..
    }) = &mut s
    {
        (*warmup, *decay_fraction) = (0.5, 0.6);
    }
    assert_eq!(field(s), "schedule.decay_fraction");

    let inf = |edit: fn(&mut Schedule)| {
        let mut s = Schedule::neox_infinite(CooldownShape::Cosine);
        edit(&mut s);
        s
    };
    assert_eq!(
        field(inf(|s| {
            if let Schedule::Infinite(Infinite { const_lr, .. }) = s {
                *const_lr = 4e-4
            }
        })),
        "schedule.const_lr"
    );
    assert_eq!(
        field(inf(|s| {
            if let Schedule::Infinite(Infinite { const_lr, .. }) = s {
                *const_lr = 1e-5
            }
        })),
        "schedule.min_lr"
    );
    assert_eq!(
        field(inf(|s| {
            if let Schedule::Infinite(Infinite { min_lr, .. }) = s {
                *min_lr = 0.0
            }
        })),
        "schedule.min_lr"
    ); // exp anneal
    assert_eq!(
        field(inf(|s| {
            if let Schedule::Infinite(Infinite { alpha, .. }) = s {
                *alpha = 0.0
            }
        })),
        "schedule.alpha"
    );
    assert_eq!(
        field(inf(|s| {
            if let Schedule::Infinite(Infinite {
                cooldown_fraction, ..
            }) = s
            {
                *cooldown_fraction = 0.9
            }
        })),
        "schedule.cooldown_fraction" // cooldown past the end of the constant phase
    );
    assert_eq!(
        field(inf(|s| {
            if let Schedule::Infinite(Infinite {
                cooldown_fraction, ..
            }) = s
            {
                *cooldown_fraction = 1.2
            }
        })),
        "schedule.cooldown_fraction"
    );
    assert_eq!(
        field(inf(|s| {
            if let Schedule::Infinite(Infinite {
                constant_fraction, ..
            }) = s
            {
                *constant_fraction = 1.0
            }
        })),
        "schedule.constant_fraction" // with 1% warmup it would end after the stage
    );
    assert_eq!(
        field(inf(|s| {
            if let Schedule::Infinite(Infinite { anneal, .. }) = s {
                *anneal = AnnealShape::ExponentialTau { tau_steps: 0.0 }
            }
        })),
        "schedule.anneal.tau_steps"
    );
    assert_eq!(
        field(Schedule::Anneal(Anneal {
            start_lr: MIN,
            min_lr: CONST,
            shape: AnnealShape::Exponential
        })),
        "schedule.min_lr"
    );
    assert_eq!(
        field(Schedule::RepeatedCosine(RepeatedCosine {
            max_lr: MAX,
            min_lr: MIN,
            repeats: 0,
            warmup: Warmup::Fraction(0.01)
        })),
        "schedule.repeats"
    );
    let refined = |multipliers: Vec<f64>, smoothing: f64| {
        Schedule::Refined(Refined {
            max_lr: MAX,
            warmup: Warmup::Fraction(0.0),
            warmup_start: WarmupStart::Zero,
            grad_norms: None,
            smoothing,
            weight: RefineWeight::L1,
            multipliers,
        })
    };
    assert_eq!(field(refined(vec![1.0, 0.0], 1.5)), "schedule.smoothing");
    assert_eq!(
        field(refined(vec![1.0, 2.0], 0.1)),
        "schedule.multipliers[1]"
    );
    assert_eq!(field(refined(vec![0.0, 0.0], 0.1)), "schedule.multipliers");
    assert_eq!(field(refined(vec![], 0.1)), "schedule.multipliers");

    // The message reads as one line of facts plus a hint.
    let e = cosine(WarmupStart::Zero, 1.5, 1.0)
        .validate()
        .expect_err("invalid");
    assert_eq!(
        e.clone().under("stages[1]").field,
        "stages[1].schedule.warmup"
    );
    assert!(
        e.to_string()
            .starts_with("schedule.warmup = 1.5: expected a fraction in [0, 1]\nHINT: "),
        "{e}"
    );
}
