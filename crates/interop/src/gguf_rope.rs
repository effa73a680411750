//! Llama 3's RoPE scaling in a GGUF. llama.cpp's converter writes no scaling metadata for it; it writes a
//! `rope_freqs.weight` tensor instead, one divisor per rotary pair (1 for the high frequencies, `factor`
//! for the low ones, 1 / ((1 − s)/factor + s) in between), computed from the checkpoint's `rope_scaling`.
//! The import turns the divisors back into that `rope_scaling` when they are exactly Llama 3.x's rule
//! with its published parameters (low_freq_factor 1, high_freq_factor 4, original context 8192, factor
//! the largest divisor), and refuses them otherwise, rather than guess.

use rewarm_arch::{RopeScaling, RopeScalingType};

/// The tensor llama.cpp writes the divisors to.
pub const ROPE_FREQS: &str = "rope_freqs.weight";

/// The Llama 3.x scaling whose divisors are `factors` (one per pair of `rotary_dims` dims, base `theta`),
/// or `None` when they are not (within 1e-5 relative).
pub fn llama3_from_divisors(
    factors: &[f32],
    rotary_dims: usize,
    theta: f64,
) -> Option<RopeScaling> {
    let factor = factors.iter().copied().fold(f32::NAN, f32::max) as f64;
    let scaling = RopeScaling {
        rope_type: RopeScalingType::Llama3,
        factor,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
    };
    if factors.len() * 2 != rotary_dims || scaling.validate().is_err() {
        return None;
    }
    let matches = factors.iter().enumerate().all(|(i, &got)| {
        let f = theta.powf(-((2 * i) as f64) / rotary_dims as f64);
        let want = f / scaling.scale(f);
        (got as f64 - want).abs() <= 1e-5 * want
    });
    matches.then_some(scaling)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The divisors as llama.cpp's converter computes them for a Llama 3.2 checkpoint.
    fn converter_divisors(rotary_dims: usize, theta: f64) -> Vec<f32> {
        let (factor, low, high, old) = (32.0, 1.0, 4.0, 8192.0);
        (0..rotary_dims / 2)
            .map(|i| {
                let freq = 1.0 / theta.powf((2 * i) as f64 / rotary_dims as f64);
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                let d: f64 = if wavelen < old / high {
                    1.0
                } else if wavelen > old / low {
                    factor
                } else {
                    let smooth = (old / wavelen - low) / (high - low);
                    1.0 / ((1.0 - smooth) / factor + smooth)
                };
                d as f32
            })
            .collect()
    }

    #[test]
    fn llama_3_2_divisors_give_back_its_rope_scaling_and_others_are_refused() {
        let divisors = converter_divisors(64, 500_000.0);
        // Llama 3.2-1B's head: all three bands are present.
        assert!(divisors.contains(&1.0) && divisors.contains(&32.0));
        assert!(divisors.iter().any(|&d| d > 1.0 && d < 32.0));
        assert_eq!(
            llama3_from_divisors(&divisors, 64, 500_000.0),
            Some(RopeScaling::llama3_2())
        );
        // Another base, another count, a changed divisor, zeros: not Llama 3's rule.
        assert_eq!(llama3_from_divisors(&divisors, 64, 10_000.0), None);
        assert_eq!(llama3_from_divisors(&divisors, 32, 500_000.0), None);
        let mut changed = divisors.clone();
        changed[20] *= 1.01;
        assert_eq!(llama3_from_divisors(&changed, 64, 500_000.0), None);
        assert_eq!(llama3_from_divisors(&[0.0; 32], 64, 500_000.0), None);
    }
}
