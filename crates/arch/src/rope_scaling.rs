//! RoPE scaling: Llama 3.1's rule (`rope_type = "llama3"`), which stretches a model's context by slowing
//! its low-frequency rotary pairs. With L = original_max_position_embeddings, a pair of frequency f has
//! wavelength λ = 2π/f and becomes
//!
//! ```text
//! λ < L / high_freq_factor   (high frequency)   f
//! λ > L / low_freq_factor    (low frequency)    f / factor
//! otherwise, with s = (L/λ − low_freq_factor) / (high_freq_factor − low_freq_factor):
//!                                               (1 − s) · f / factor + s · f
//! ```
//!
//! as Hugging Face's `_compute_llama3_parameters` computes it (the attention scale stays 1). Other rules
//! (linear, dynamic, YaRN, LongRoPE) are refused where a config is read.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// The one scaling rule implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeScalingType {
    /// Llama 3.1 / 3.2 / 3.3.
    Llama3,
}

/// `[model.rope_scaling]`: the Hugging Face `rope_scaling` object of a Llama-3.x checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RopeScaling {
    pub rope_type: RopeScalingType,
    /// Slow-down of the low frequencies (Llama 3.1: 8; Llama 3.2: 32).
    pub factor: f64,
    /// Llama 3.x: 1.
    pub low_freq_factor: f64,
    /// Llama 3.x: 4.
    pub high_freq_factor: f64,
    /// The context length of the model before scaling (Llama 3.x: 8192).
    pub original_max_position_embeddings: usize,
}

impl RopeScaling {
    /// Llama 3.2's values (factor 32, 1, 4, 8192).
    pub fn llama3_2() -> Self {
        RopeScaling {
            rope_type: RopeScalingType::Llama3,
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        }
    }

    /// The frequency (radians per position) that `inv_freq` becomes.
    pub fn scale(&self, inv_freq: f64) -> f64 {
        let context = self.original_max_position_embeddings as f64;
        let wavelength = 2.0 * std::f64::consts::PI / inv_freq;
        if wavelength < context / self.high_freq_factor {
            inv_freq
        } else if wavelength > context / self.low_freq_factor {
            inv_freq / self.factor
        } else {
            let s = (context / wavelength - self.low_freq_factor)
                / (self.high_freq_factor - self.low_freq_factor);
            (1.0 - s) * inv_freq / self.factor + s * inv_freq
        }
    }

    /// factor ≥ 1, 0 < low_freq_factor < high_freq_factor, a positive original context.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |problem: String| {
            Err(ConfigError::new(
                "rope_scaling",
                problem,
                "use the checkpoint's published rope_scaling (Llama 3.2: factor 32, low_freq_factor 1, \
                 high_freq_factor 4, original_max_position_embeddings 8192)",
            ))
        };
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return fail(format!("factor = {} is not ≥ 1", self.factor));
        }
        let (low, high) = (self.low_freq_factor, self.high_freq_factor);
        if !(low.is_finite() && high.is_finite() && low > 0.0 && low < high) {
            return fail(format!(
                "low_freq_factor = {low}, high_freq_factor = {high}: need 0 < low < high"
            ));
        }
        if self.original_max_position_embeddings == 0 {
            return fail("original_max_position_embeddings = 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_bands_by_hand() {
        // L = 128, low 1, high 4: λ < 32 untouched, λ > 128 divided by 4, in between interpolated.
        let r = RopeScaling {
            factor: 4.0,
            original_max_position_embeddings: 128,
            ..RopeScaling::llama3_2()
        };
        let pi2 = 2.0 * std::f64::consts::PI;
        assert_eq!(r.scale(1.0), 1.0); // λ = 6.28
        assert_eq!(r.scale(pi2 / 256.0), pi2 / 256.0 / 4.0); // λ = 256
                                                             // λ = 64: s = (128/64 − 1)/3 = 1/3, f' = (2/3)·f/4 + (1/3)·f = f/2.
        let f = pi2 / 64.0;
        assert!((r.scale(f) - f / 2.0).abs() < 1e-15);
        // The band edges join continuously: s = 1 at λ = 32, s = 0 at λ = 128.
        let (at_high, at_low) = (pi2 / 32.0, pi2 / 128.0);
        assert!((r.scale(at_high) - at_high).abs() < 1e-15);
        assert!((r.scale(at_low) - at_low / 4.0).abs() < 1e-15);
    }

    #[test]
    fn validation_names_rope_scaling() {
        let bad = RopeScaling {
            low_freq_factor: 4.0,
            ..RopeScaling::llama3_2()
        };
        assert_eq!(bad.validate().unwrap_err().field, "rope_scaling");
        assert!(RopeScaling::llama3_2().validate().is_ok());
    }
}
