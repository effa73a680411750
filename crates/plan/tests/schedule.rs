//! LR schedule values (A1 in docs/papers.md): hand-computed values at every phase boundary of every family,
//! continuity where the papers' schedules are continuous, cooldown and decay shapes, refinement.

#[macro_use]
mod common;

use common::*;
use rewarm_plan::schedule::{
    check_grad_norms, fraction_to_steps, refined_multipliers, Anneal, AnnealShape, Constant,
    CooldownShape, DecayShape, Infinite, Linear, RefineWeight, Refined, RepeatedCosine, Schedule,
    Warmup, WarmupStart, Wsd,
};

// ---------------------------------------------------------------- warmup and rounding

#[test]
fn fraction_to_steps_rounds_to_nearest_ties_away_from_zero() {
    assert_eq!(fraction_to_steps(0.01, 132_366), 1_324); // 1323.66 → 1324 (Ibrahim et al.)
    assert_eq!(fraction_to_steps(0.01, 1_000), 10);
    assert_eq!(fraction_to_steps(0.5, 3), 2); // 1.5 → 2
    assert_eq!(fraction_to_steps(0.25, 2), 1); // 0.5 → 1
    assert_eq!(fraction_to_steps(0.0, 1_000), 0);
    assert_eq!(fraction_to_steps(1.0, 1_000), 1_000);
    assert_eq!(fraction_to_steps(2.0, 1_000), 1_000); // clamped
    assert_eq!(fraction_to_steps(-1.0, 1_000), 0);
    assert_eq!(fraction_to_steps(f64::NAN, 1_000), 0);
}

#[test]
fn warmup_starts_at_its_start_value_and_ends_at_the_peak() {
    // T = 1000, warmup 1% → W = 10.
    for (start, eta0) in [
        (WarmupStart::Zero, 0.0),
        (WarmupStart::Min, MIN),
        (WarmupStart::MaxOver100, MAX / 100.0),
    ] {
        // Megatron's convention: warmup step n trains at η0 + (η_max − η0)·(n + 1)/W, so the first
        // step already moves (η0 + (η_max − η0)/10), step 4 is halfway and step 9 is at the peak.
        let s = cosine(start, 0.01, 1.0);
        assert_close(s.lr(0, 1_000), eta0 + (MAX - eta0) / 10.0);
        assert_close(s.lr(4, 1_000), (eta0 + MAX) / 2.0);
        assert_eq!(s.lr(9, 1_000), MAX, "{start:?}");
        assert_eq!(s.lr(10, 1_000), MAX, "{start:?}");
    }
    // No warmup: step 0 is already at the peak.
    assert_eq!(cosine(WarmupStart::Zero, 0.0, 1.0).lr(0, 1_000), MAX);
}

// ---------------------------------------------------------------- constant, cosine, linear

#[test]
fn constant_is_constant_including_past_the_end() {
    let s = Schedule::Constant(Constant { lr: 3e-5 });
    for n in [0, 1, 500, 999, 1_000, 5_000] {
        assert_eq!(s.lr(n, 1_000), 3e-5);
    }
}

#[test]
fn cosine_hand_values() {
    // T = 1000, W = 10, decay over steps 10..1000 (990 steps).
    let s = cosine(WarmupStart::Zero, 0.01, 1.0);
    assert_close(s.lr(0, 1_000), 3e-5); // 3e-4 · 1/10: the first step trains
    assert_close(s.lr(4, 1_000), 1.5e-4); // 3e-4 · 5/10
    assert_eq!(s.lr(9, 1_000), MAX); // last warmup step
    assert_eq!(s.lr(10, 1_000), MAX); // first decay step (x = 0)
    assert_close(s.lr(505, 1_000), 1.65e-4); // x = 495/990 = 0.5 → (η_max + η_min)/2
                                             // x = 989/990: η_min + (η_max − η_min)/2·(1 + cos(π·989/990)) = 3.0000679724e-5
    assert_close(s.lr(999, 1_000), 3.000_067_972_425_060_7e-5);
    assert_eq!(s.lr(1_000, 1_000), MIN); // cosine ends at η_min
    assert_eq!(s.lr(10_000, 1_000), MIN);
}

#[test]
fn cosine_decay_end_holds_min_after_it() {
    // Gupta et al.: η_min at 240/297 of the stage. T = 2970 → W = round(29.7) = 30, D = 2400.
    let s = cosine(WarmupStart::Zero, 0.01, 240.0 / 297.0);
    assert_eq!(s.lr(30, 2_970), MAX);
    assert_close(s.lr(1_215, 2_970), 1.65e-4); // 30 + 2370/2: midpoint of the cosine
    assert_eq!(s.lr(2_400, 2_970), MIN);
    assert_eq!(s.lr(2_969, 2_970), MIN);
    assert!(s.lr(2_399, 2_970) > MIN);
}

#[test]
fn linear_hand_values() {
    // T = 100, W = 10: η = 1e-3·(1 − (n − 10)/90) after warmup.
    let s = Schedule::Linear(Linear {
        max_lr: 1e-3,
        min_lr: 0.0,
        warmup: Warmup::Fraction(0.1),
        warmup_start: WarmupStart::Zero,
    });
    assert_close(s.lr(0, 100), 1e-4); // 1e-3 · 1/10
    assert_close(s.lr(4, 100), 5e-4);
    assert_eq!(s.lr(9, 100), 1e-3);
    assert_eq!(s.lr(10, 100), 1e-3);
    assert_close(s.lr(55, 100), 5e-4); // 45/90 = 0.5
    assert_close(s.lr(99, 100), 1e-3 / 90.0);
    assert_eq!(s.lr(100, 100), 0.0);
    // With a floor: ends at min_lr.
    let s = Schedule::Linear(Linear {
        max_lr: 1e-3,
        min_lr: 1e-4,
        warmup: Warmup::Fraction(0.0),
        warmup_start: WarmupStart::Zero,
    });
    assert_eq!(s.lr(0, 100), 1e-3);
    assert_close(s.lr(50, 100), 5.5e-4); // 1e-3 − 9e-4·0.5
    assert_eq!(s.lr(100, 100), 1e-4);
}

// ---------------------------------------------------------------- WSD

#[test]
fn wsd_hand_values() {
    // T = 100: W = 10, decay D = 20 steps from step 80; warmup from η_max/100 = 1e-5.
    let s = wsd(DecayShape::OneMinusSqrt, 0.0);
    assert_close(s.lr(0, 100), 1e-5 + 9.9e-4 / 10.0); // first step: a tenth of the way
    assert_close(s.lr(4, 100), 5.05e-4); // 1e-5 + (1e-3 − 1e-5)·0.5
    assert_eq!(s.lr(9, 100), 1e-3);
    assert_eq!(s.lr(10, 100), 1e-3);
    assert_eq!(s.lr(79, 100), 1e-3); // stable
    assert_eq!(s.lr(80, 100), 1e-3); // x = 0
    assert_close(s.lr(85, 100), 5e-4); // x = 0.25: 1 − √0.25 = 0.5
    assert_eq!(s.lr(100, 100), 0.0); // ends at f·η_max = 0
}

#[test]
fn wsd_shapes_at_a_quarter_of_the_decay_and_at_the_end() {
    // f = 0.1, x = 0.25 (step 85 of 100), values of Hägele et al.'s formulas:
    let cases = [
        (DecayShape::Linear, 0.775),                         // 0.1 + 0.9·0.75
        (DecayShape::Cosine, 0.868_198_051_533_946_4),       // 0.1 + 0.9·(1 + cos(π/4))/2
        (DecayShape::OneMinusSqrt, 0.55),                    // 0.1 + 0.9·0.5
        (DecayShape::Square, 0.943_75),                      // 0.1 + 0.9·(1 − 1/16)
        (DecayShape::Exponential, 0.562_341_325_190_349),    // 0.1^0.25
        (DecayShape::MirrorCosine, 0.681_801_948_466_053_7), // 0.1 + 0.9·(1.5 − 0.853553)
    ];
    for (shape, factor) in cases {
        let s = wsd(shape, 0.1);
        assert_close(s.lr(85, 100), 1e-3 * factor);
        assert_eq!(s.lr(80, 100), 1e-3, "{shape:?} starts at η_max");
        assert_close(s.lr(100, 100), 1e-4); // WSD ends at f·η_max
        assert_eq!(shape.factor(1.0, 0.1), 0.1, "{shape:?}");
        assert_eq!(shape.factor(0.0, 0.1), 1.0, "{shape:?}");
        // Every shape decays monotonically.
        let values: Vec<f64> = (80..=100).map(|n| s.lr(n, 100)).collect();
        assert!(
            values.windows(2).all(|w| w[1] <= w[0] + 1e-18),
            "{shape:?} {values:?}"
        );
    }
}

// ---------------------------------------------------------------- infinite

#[test]
fn infinite_cosine_hand_values_neox_convention() {
    // T = 10000: W = 100; K = 0.60·T = 6000 and C_end = 0.85·T = 8500 counted after warmup, so
    // the cooldown is steps 100..6100, the constant phase 6100..8600 and the anneal 8600..10000
    // (L = 10000 − 100 − 8500 = 1400).
    let s = infinite(CooldownShape::Cosine, AnnealShape::Exponential);
    let t = 10_000;
    assert_close(s.lr(0, t), MAX / 100.0); // the first of W = 100 warmup steps
    assert_close(s.lr(49, t), 1.5e-4);
    assert_eq!(s.lr(99, t), MAX); // last warmup step
    assert_eq!(s.lr(100, t), MAX); // first cooldown step (x = 0)
    assert_close(s.lr(1_600, t), 2.802_297_077_300_919_3e-4); // x = 0.25: 1.65e-4 + 1.35e-4·(1 + cos(π/4))/2
    assert_close(s.lr(3_100, t), 2.325e-4); // x = 0.5: (η_max + η_const)/2
    assert_eq!(s.lr(6_100, t), CONST); // cooldown ends at η_const
    assert_eq!(s.lr(8_599, t), CONST);
    assert_eq!(s.lr(8_600, t), CONST); // anneal starts at η_const
    assert_close(s.lr(9_300, t), 7.035_623_639_735_144e-5); // Δ/L = 0.5: √(η_const·η_min)
    assert_eq!(s.lr(10_000, t), MIN); // anneal ends at η_min
    assert_eq!(s.lr(20_000, t), MIN);
}

#[test]
fn infinite_cooldown_shapes_hand_values() {
    let t = 10_000;
    // x = 0.25 (step 1600) and x = 0.5 (step 3100), α = 10, h(x) = 1/√(1 + 10x) − 1:
    // inverse-sqrt: 3e-4 − 1.35e-4·h(0.25)/h(1) = 2.1003509621e-4;
    //               3e-4 − 1.35e-4·h(0.5)/h(1)  = 3e-4 − 1.35e-4·0.8471887194 = 1.8562952287e-4.
    let s = infinite(CooldownShape::InverseSqrt, AnnealShape::Exponential);
    assert_close(s.lr(1_600, t), 2.100_350_962_097_459_2e-4);
    assert_close(s.lr(3_100, t), 1.856_295_228_745_167e-4);
    assert_eq!(s.lr(100, t), MAX);
    assert_eq!(s.lr(6_100, t), CONST);
    // linear: 3e-4 − 1.35e-4·0.25 = 2.6625e-4.
    let s = infinite(CooldownShape::Linear, AnnealShape::Exponential);
    assert_close(s.lr(1_600, t), 2.6625e-4);
    assert_eq!(s.lr(6_100, t), CONST);
}

#[test]
fn infinite_tau_anneal_hand_value() {
    // τ = 700 steps: Δ = 700 → η_min + (η_const − η_min)·e^−1 = 3e-5 + 1.35e-4·0.36788 = 7.9664e-5.
    let s = infinite(
        CooldownShape::Cosine,
        AnnealShape::ExponentialTau { tau_steps: 700.0 },
    );
    assert_eq!(s.lr(8_600, 10_000), CONST);
    assert_close(s.lr(9_300, 10_000), 7.966_372_455_814_471e-5);
    assert!(s.lr(10_000, 10_000) > MIN); // the τ form approaches η_min without reaching it
}

#[test]
fn infinite_without_anneal_stays_constant_and_continuation_starts_at_const() {
    // constant_fraction = 1 − warmup: no anneal phase; the end of the stage is still η_const.
    let mut s = infinite(CooldownShape::Cosine, AnnealShape::Exponential);
    if let Schedule::Infinite(Infinite {
        constant_fraction, ..
    }) = &mut s
    {
        *constant_fraction = 0.99;
    }
    s.validate().expect("valid");
    assert_eq!(s.lr(9_999, 10_000), CONST);
    assert_eq!(s.lr(10_000, 10_000), CONST);

    // Beyond Cosine Decay's CPT stage from a constant-phase checkpoint: no warmup, no cooldown,
    // constant until 80%, then anneal. T = 1000: constant 0..800, anneal 800..1000.
    let s = Schedule::Infinite(Infinite {
        max_lr: MAX,
        const_lr: CONST,
        min_lr: MIN,
        warmup: Warmup::Fraction(0.0),
        warmup_start: WarmupStart::Zero,
        cooldown: CooldownShape::Cosine,
        alpha: 10.0,
        cooldown_fraction: 0.0,
        constant_fraction: 0.8,
        anneal: AnnealShape::Exponential,
    });
    s.validate().expect("valid");
    assert_eq!(s.lr(0, 1_000), CONST);
    assert_eq!(s.lr(800, 1_000), CONST);
    assert_close(s.lr(900, 1_000), (CONST * MIN).sqrt());
    assert_eq!(s.lr(1_000, 1_000), MIN);
}

#[test]
fn inverse_sqrt_cooldown_is_monotone_and_convex() {
    let s = infinite(CooldownShape::InverseSqrt, AnnealShape::Exponential);
    let t = 10_000;
    let values: Vec<f64> = (100..=6_100).map(|n| s.lr(n, t)).collect();
    for w in values.windows(2) {
        assert!(w[1] < w[0], "not decreasing: {} → {}", w[0], w[1]);
    }
    for w in values.windows(3) {
        // Second difference ≥ 0 (up to rounding of ~1e-19 on values of ~1e-4).
        assert!(w[0] - 2.0 * w[1] + w[2] >= -1e-18, "not convex at {w:?}");
    }
    // α = 10 front-loads the decay: h(x)/h(1) = 1/2 at 1/√(1 + 10x) = 1 − 0.6985/2, x ≈ 0.136,
    // so half of (η_max − η_const) is gone by step ≈ 100 + 0.136·6000 ≈ 917.
    assert!(s.lr(800, t) > (MAX + CONST) / 2.0);
    assert!(s.lr(1_000, t) < (MAX + CONST) / 2.0);
}

#[test]
fn anneal_branch_hand_values() {
    // From η_const to η_min over T = 100: η(50) = √(η_const·η_min).
    let s = Schedule::Anneal(Anneal {
        start_lr: CONST,
        min_lr: MIN,
        shape: AnnealShape::Exponential,
    });
    assert_eq!(s.lr(0, 100), CONST);
    assert_close(s.lr(50, 100), 7.035_623_639_735_144e-5);
    assert_eq!(s.lr(100, 100), MIN);
    let values: Vec<f64> = (0..=100).map(|n| s.lr(n, 100)).collect();
    assert!(values.windows(2).all(|w| w[1] < w[0]));
}

// ---------------------------------------------------------------- repeated cosine

#[test]
fn repeated_cosine_rewarms_from_min_in_later_periods() {
    // T = 30000, 3 repeats: P = 10000, W = 1% of P = 100.
    let s = repeated_cosine();
    let t = 30_000;
    assert_close(s.lr(0, t), MAX / 100.0); // first period warms from 0: step 0 is 1/W of the way
    assert_close(s.lr(49, t), 1.5e-4);
    assert_eq!(s.lr(99, t), MAX);
    assert_eq!(s.lr(100, t), MAX);
    assert_close(s.lr(5_050, t), 1.65e-4); // 100 + 9900/2: cosine midpoint
    assert!(s.lr(9_999, t) - MIN < 1e-3 * MAX);
    // The second period re-warms from η_min, not 0: its first step is 1/W of the way up.
    assert_close(s.lr(10_000, t), MIN + (MAX - MIN) / 100.0);
    assert_close(s.lr(10_049, t), (MIN + MAX) / 2.0);
    assert_eq!(s.lr(10_099, t), MAX);
    assert_eq!(s.lr(10_100, t), MAX);
    assert_close(s.lr(20_000, t), MIN + (MAX - MIN) / 100.0);
    assert_eq!(s.lr(20_100, t), MAX);
    assert_eq!(s.lr(30_000, t), MIN); // ends at η_min
                                      // The same values in every later period.
    for p in [0, 37, 100, 4_321, 9_999] {
        assert_eq!(s.lr(10_000 + p, t), s.lr(20_000 + p, t), "offset {p}");
    }
}

#[test]
fn repeated_cosine_with_uneven_periods() {
    // T = 10, 3 repeats: periods start at ⌊k·10/3⌋ = 0, 3, 6 (lengths 3, 3, 4); warmup 1% → 0.
    let s = Schedule::RepeatedCosine(RepeatedCosine {
        max_lr: MAX,
        min_lr: MIN,
        repeats: 3,
        warmup: Warmup::Fraction(0.01),
    });
    for start in [0, 3, 6] {
        assert_eq!(s.lr(start, 10), MAX, "period starting at {start}");
    }
    // Step 5 is 2/3 through the second period: η_min + (η_max − η_min)(1 + cos(2π/3))/2.
    assert_close(s.lr(5, 10), MIN + (MAX - MIN) * 0.25);
    assert_eq!(s.lr(10, 10), MIN);
    // One repeat is plain warmup + cosine.
    let one = Schedule::RepeatedCosine(RepeatedCosine {
        max_lr: MAX,
        min_lr: MIN,
        repeats: 1,
        warmup: Warmup::Fraction(0.01),
    });
    let plain = cosine(WarmupStart::Zero, 0.01, 1.0);
    for n in (0..=1_000).step_by(7) {
        assert_eq!(one.lr(n, 1_000), plain.lr(n, 1_000), "step {n}");
    }
}

// ---------------------------------------------------------------- continuity and A1 summary

#[test]
fn continuous_across_phase_boundaries() {
    // T = 100000 with 1% warmup: W = 1000, so the warmup slope is 1e-3·peak per step.
    let t = 100_000;
    assert_continuous_at(&cosine(WarmupStart::Zero, 0.01, 1.0), t, 1_000);
    for shape in [
        CooldownShape::Cosine,
        CooldownShape::InverseSqrt,
        CooldownShape::Linear,
    ] {
        let s = infinite(shape, AnnealShape::Exponential);
        assert_continuous_at(&s, t, 1_000); // warmup → cooldown
        assert_continuous_at(&s, t, 61_000); // cooldown → constant (W + K)
        assert_continuous_at(&s, t, 86_000); // constant → anneal (W + C_end)
    }
    let s = Schedule::Wsd(Wsd {
        max_lr: 1e-3,
        warmup: Warmup::Fraction(0.01),
        warmup_start: WarmupStart::MaxOver100,
        decay_fraction: 0.2,
        shape: DecayShape::Linear,
        final_lr_ratio: 0.0,
    });
    assert_continuous_at(&s, t, 1_000);
    assert_continuous_at(&s, t, 80_000); // stable → decay
                                         // Repeated cosine over T = 300000: P = 100000, W = 1000 in every period.
    let s = repeated_cosine();
    assert_continuous_at(&s, 300_000, 1_000); // warmup → cosine in period 0
    assert_continuous_at(&s, 300_000, 100_000); // cosine → re-warm: both sides are near η_min
    assert_continuous_at(&s, 300_000, 101_000); // warmup → cosine in period 1
}

#[test]
fn continuity_check_catches_a_real_jump() {
    // Infinite with warmup but no cooldown jumps from η_max to η_const at the end of warmup.
    let mut s = infinite(CooldownShape::Cosine, AnnealShape::Exponential);
    if let Schedule::Infinite(Infinite {
        cooldown_fraction, ..
    }) = &mut s
    {
        *cooldown_fraction = 0.0;
    }
    assert!(max_step_change(&s, 100_000, 999, 1_001) > 0.4);
}

#[test]
fn every_family_has_its_a1_start_and_end_values() {
    let t = 10_000;
    let refined = Schedule::Refined(Refined {
        max_lr: MAX,
        warmup: Warmup::Fraction(0.0),
        warmup_start: WarmupStart::Zero,
        grad_norms: None,
        smoothing: 0.0,
        weight: RefineWeight::L1,
        multipliers: refined_multipliers(&[1.0; 100], 0.0, RefineWeight::L1),
    });
    // (schedule, where its warmup starts, its warmup steps W (1: none, the first step is at the
    // start value), where it ends). The first step trains at η0 + (peak − η0)/W (Megatron's convention).
    let cases: Vec<(Schedule, f64, u64, f64)> = vec![
        (Schedule::Constant(Constant { lr: 3e-5 }), 3e-5, 1, 3e-5),
        (Schedule::rewarm_cosine(MAX), 0.0, 100, 0.1 * MAX),
        (
            Schedule::Linear(Linear {
                max_lr: MAX,
                min_lr: 0.0,
                warmup: Warmup::Fraction(0.01),
                warmup_start: WarmupStart::Zero,
            }),
            0.0,
            100,
            0.0,
        ),
        (Schedule::hagele_wsd(MAX), MAX / 100.0, 100, 0.0),
        (wsd(DecayShape::Cosine, 0.1), 1e-5, 1_000, 1e-4),
        (
            Schedule::neox_infinite(CooldownShape::Cosine),
            0.0,
            100,
            MIN,
        ),
        (
            Schedule::neox_infinite(CooldownShape::InverseSqrt),
            0.0,
            100,
            MIN,
        ),
        (
            Schedule::Anneal(Anneal {
                start_lr: CONST,
                min_lr: MIN,
                shape: AnnealShape::Exponential,
            }),
            CONST,
            1,
            MIN,
        ),
        (repeated_cosine(), 0.0, 33, MIN), // periods of 3,333 steps
        (refined, MAX, 1, 0.0),
    ];
    for (s, start, w, end) in cases {
        s.validate().unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let first = start + (s.peak_lr() - start) / w as f64;
        assert!(close(s.lr(0, t), first), "start of {s:?}: {}", s.lr(0, t));
        assert!(close(s.lr(t, t), end), "end of {s:?}: {}", s.lr(t, t));
        // Values stay within [0, peak] and finite, also for tiny stages.
        for total in [0, 1, 2, 3, 7, 100, t] {
            for n in 0..=total.min(200) + 1 {
                let eta = s.lr(n, total);
                assert!(
                    eta.is_finite() && (0.0..=s.peak_lr()).contains(&eta),
                    "{s:?} η({n}, {total}) = {eta}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------- refined

#[test]
fn refined_of_constant_norms_is_exactly_linear_decay() {
    for weight in [RefineWeight::L1, RefineWeight::L2] {
        for len in [2usize, 3, 10, 997] {
            let m = refined_multipliers(&vec![0.7; len], 0.1, weight);
            let linear: Vec<f64> = (0..len)
                .map(|i| (len - 1 - i) as f64 / (len - 1) as f64)
                .collect();
            assert_eq!(m, linear, "{weight:?}, T = {len}");
        }
    }
    // The schedule built on it is linear decay of max_lr over the recorded steps.
    let m = refined_multipliers(&[2.5; 101], 0.1, RefineWeight::L1);
    let s = Schedule::Refined(Refined {
        max_lr: MAX,
        warmup: Warmup::Fraction(0.0),
        warmup_start: WarmupStart::Zero,
        grad_norms: None,
        smoothing: 0.1,
        weight: RefineWeight::L1,
        multipliers: m,
    });
    assert_eq!(s.lr(0, 101), MAX);
    assert_close(s.lr(25, 101), 0.75 * MAX); // (100 − 25)/100
    assert_eq!(s.lr(100, 101), 0.0);
    // A stage of another length interpolates: 201 steps map step 50 onto recorded step 25.
    assert_close(s.lr(50, 201), 0.75 * MAX);
    // Without multipliers the schedule falls back to the same linear decay.
    let mut empty = s.clone();
    if let Schedule::Refined(Refined { multipliers, .. }) = &mut empty {
        multipliers.clear();
    }
    for n in 0..=101 {
        assert_close(empty.lr(n, 101), s.lr(n, 101));
    }
}

#[test]
fn refined_hand_values() {
    // G = [1, 1, 2, 2], no smoothing.
    // L2: w = [1, 1, 1/4, 1/4]; tail sums after t: [1.5, 0.5, 0.25, 0];
    //     η ∝ [1.5, 0.5, 0.0625, 0] → / 1.5 = [1, 1/3, 1/24, 0].
    let m = refined_multipliers(&[1.0, 1.0, 2.0, 2.0], 0.0, RefineWeight::L2);
    let want = [1.0, 1.0 / 3.0, 1.0 / 24.0, 0.0];
    m.iter().zip(want).for_each(|(&a, b)| assert_close(a, b));
    // L1: w = [1, 1, 1/2, 1/2]; tails [2, 1, 0.5, 0]; η ∝ [2, 1, 0.25, 0] → [1, 0.5, 0.125, 0].
    let m = refined_multipliers(&[1.0, 1.0, 2.0, 2.0], 0.0, RefineWeight::L1);
    assert_eq!(m, [1.0, 0.5, 0.125, 0.0]);
}

#[test]
fn refined_shows_an_implicit_warmup_when_early_norms_are_large() {
    // G = [4, 2, 1, 1, 1, 1], L2: w = [1/16, 1/4, 1, 1, 1, 1]; tails [4.25, 4, 3, 2, 1, 0];
    // η ∝ [0.265625, 1, 3, 2, 1, 0] → / 3 = [0.0885, 0.333, 1, 0.667, 0.333, 0].
    let m = refined_multipliers(&[4.0, 2.0, 1.0, 1.0, 1.0, 1.0], 0.0, RefineWeight::L2);
    let want = [0.265_625 / 3.0, 1.0 / 3.0, 1.0, 2.0 / 3.0, 1.0 / 3.0, 0.0];
    m.iter().zip(want).for_each(|(&a, b)| assert_close(a, b));
}

#[test]
fn refined_median_filter_removes_a_one_step_spike() {
    // σ = 0.2 of T = 10 → width 2·⌊1⌋ + 1 = 3: the spike at step 3 is replaced by its neighbours'
    // median, so the schedule is plain linear decay again.
    let mut g = [1.0; 10];
    g[3] = 100.0;
    let m = refined_multipliers(&g, 0.2, RefineWeight::L2);
    assert_eq!(m, refined_multipliers(&[1.0; 10], 0.0, RefineWeight::L2));
    // Without smoothing the spike's tiny weight makes a dip at step 3.
    let raw = refined_multipliers(&g, 0.0, RefineWeight::L2);
    assert!(raw[3] < 0.01);
}

#[test]
fn refined_fill_and_grad_norm_checks() {
    let mut s: Schedule = parse(
        r#"
        kind = "refined"
        max_lr = 3e-4
        smoothing = 0.1
        grad_norms = "runs/linear/grad_norms.jsonl"
        "#,
    )
    .expect("parses");
    let e = s.validate().expect_err("multipliers not loaded yet");
    assert_eq!(e.field, "schedule.multipliers");
    assert!(e.hint.contains("runs/linear/grad_norms.jsonl"), "{e}");
    s.fill_refined_multipliers(&[1.0; 50]).expect("fills");
    s.validate().expect("valid once filled");
    assert_eq!(s.lr(0, 50), MAX);

    let e = s
        .fill_refined_multipliers(&[1.0, 0.0, 2.0])
        .expect_err("zero norm");
    assert_eq!(e.field, "schedule.grad_norms[1]");
    let e = check_grad_norms("g", &[1.0, f64::NAN]).expect_err("NaN");
    assert_eq!(e.field, "g[1]");
    assert!(check_grad_norms("g", &[1.0]).is_err());
    assert!(Schedule::rewarm_cosine(MAX)
        .fill_refined_multipliers(&[1.0, 1.0])
        .is_err());
}

#[test]
fn refined_warmup_is_prepended() {
    // Warmup 10% of T = 110 → W = 11, then 99 recorded linear-decay steps map onto 99 steps.
    let s = Schedule::Refined(Refined {
        max_lr: MAX,
        warmup: Warmup::Fraction(0.1),
        warmup_start: WarmupStart::Zero,
        grad_norms: None,
        smoothing: 0.0,
        weight: RefineWeight::L1,
        multipliers: refined_multipliers(&[1.0; 99], 0.0, RefineWeight::L1),
    });
    assert_close(s.lr(0, 110), MAX / 11.0); // the first of W = 11 warmup steps
    assert_eq!(s.lr(10, 110), MAX);
    assert_eq!(s.lr(11, 110), MAX);
    assert_close(s.lr(11 + 49, 110), 0.5 * MAX); // (98 − 49)/98
    assert_eq!(s.lr(109, 110), 0.0);
}

/// A plan whose one stage refines from `metrics` with `weight`, loaded from a file beside it.
fn refined_plan(dir: &std::path::Path, weight: &str) -> Result<rewarm_plan::PlanConfig, String> {
    let text = format!(
        "{}[[stages]]\nname = \"s\"\ntokens = 1280\nmixture = {{ en = 1.0 }}\n\
         schedule = {{ kind = \"refined\", max_lr = 1e-3, smoothing = 0.0, weight = \"{weight}\", grad_norms = \"metrics.jsonl\" }}\n",
        plan_head!()
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    rewarm_plan::PlanConfig::load(&path).map_err(|e| e.to_string())
}

#[test]
fn refined_l1_reads_the_logged_l1_norms_and_l2_the_l2_norms() {
    let dir = tempfile::tempdir().unwrap();
    // ℓ2 norms constant (1): linear decay; ℓ1 norms 4, 2, 1, 1: the weights 1/4, 1/2, 1, 1 of the
    // hand-computed L1 example above.
    let line = |step: u64, l2: f64, l1: Option<f64>| {
        let l1 = l1.map_or(String::new(), |v| format!(",\"grad_norm_l1\":{v}"));
        format!(
            "{{\"kind\":\"train\",\"step\":{step},\"stage\":\"s\",\"tokens\":0,\"tokens_by_source\":{{}},\"lr\":0.001,\"loss\":1.0,\"grad_norm\":{l2}{l1},\"batch_sequences\":8,\"replay_fraction\":0.0,\"tokens_per_second\":1.0}}\n"
        )
    };
    let l1 = [4.0, 2.0, 1.0, 1.0];
    let text: String = (0..4)
        .map(|i| line(i + 1, 1.0, Some(l1[i as usize])))
        .collect();
    std::fs::write(dir.path().join("metrics.jsonl"), text).unwrap();
    let multipliers = |config: rewarm_plan::PlanConfig| match &config.stages[0].schedule {
        Schedule::Refined(r) => r.multipliers.clone(),
        _ => unreachable!(),
    };
    let got = multipliers(refined_plan(dir.path(), "l1").unwrap());
    assert_eq!(got, refined_multipliers(&l1, 0.0, RefineWeight::L1));
    let got = multipliers(refined_plan(dir.path(), "l2").unwrap());
    assert_eq!(got, refined_multipliers(&[1.0; 4], 0.0, RefineWeight::L2));
    // A run logged before the ℓ1 norm was: `l1` is refused with what to do, `l2` still works.
    let old: String = (0..4).map(|i| line(i + 1, 1.0, None)).collect();
    std::fs::write(dir.path().join("metrics.jsonl"), old).unwrap();
    let e = refined_plan(dir.path(), "l1").unwrap_err();
    assert!(
        e.contains("grad_norm_l1") && e.contains("weight = \"l2\""),
        "{e}"
    );
    assert!(refined_plan(dir.path(), "l2").is_ok());
}
