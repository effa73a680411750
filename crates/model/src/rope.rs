//! Rotary position embedding (RoPE; Su et al. 2021) in the Hugging Face "rotate_half" layout that both
//! GPT-NeoX and Llama checkpoints use: within the d rotated dims of a head, dim j is paired with dim j + d/2
//! (not with j + 1 as in the paper), and the pair turns by the angle pos · θ^(−2j/d).
//!
//! The cos/sin tables are computed once for `max_seq_len` positions and kept as plain tensors outside the
//! VarStore: they are not parameters, are never trained and never saved. A model with RoPE scaling
//! (Llama 3.x) has its frequencies rescaled by [`RopeScaling::scale`] before the tables are built.

use rewarm_arch::RopeScaling;
use tch::{Device, Kind, TchError, Tensor};

use crate::ModelConfig;

/// Precomputed cos/sin tables, each (T_max, d), for rotating the first d dims of every head.
#[derive(Debug)]
pub struct Rotary {
    cos: Tensor,
    sin: Tensor,
    dims: i64,
}

impl Rotary {
    /// The tables of `config`'s model on `device`.
    pub fn for_model(config: &ModelConfig, device: Device) -> Result<Self, TchError> {
        Self::new(
            config.rotary_dims(),
            config.max_seq_len,
            config.rope_theta,
            config.rope_scaling.as_ref(),
            device,
        )
    }

    /// Tables for `dims` rotated dims (even), positions 0..max_seq_len, base `theta`, frequencies
    /// rescaled by `scaling`, stored on `device`.
    pub fn new(
        dims: usize,
        max_seq_len: usize,
        theta: f64,
        scaling: Option<&RopeScaling>,
        device: Device,
    ) -> Result<Self, TchError> {
        let d = dims as i64;
        // f32 throughout, in the order HF computes it, so the tables equal HF's:
        // inv_freq = 1 / θ^(arange(0, d, 2) / d).
        let exponent = Tensor::f_arange_start_step(0, d, 2, (Kind::Int64, Device::Cpu))?
            .f_to_kind(Kind::Float)?
            .f_div_scalar(d)?;
        let mut inv_freq = Tensor::f_pow_scalar(theta, &exponent)?.f_reciprocal()?; // (d/2)
        if let Some(scaling) = scaling {
            let scaled: Vec<f32> = Vec::<f32>::try_from(&inv_freq)?
                .into_iter()
                .map(|f| scaling.scale(f as f64) as f32)
                .collect();
            inv_freq = Tensor::from_slice(&scaled);
        }
        let positions = Tensor::f_arange(max_seq_len as i64, (Kind::Float, Device::Cpu))?; // (T_max)
        let angles = positions.f_outer(&inv_freq)?; // (T_max, d/2)
        let angles = Tensor::f_cat(&[&angles, &angles], -1)?; // (T_max, d)
        Ok(Rotary {
            cos: angles.f_cos()?.f_to(device)?,
            sin: angles.f_sin()?.f_to(device)?,
            dims: d,
        })
    }

    /// Number of rotated dims per head.
    pub fn dims(&self) -> i64 {
        self.dims
    }

    /// Rotates the first `dims` of each head of `x`: (B, H, T, head_dim) at positions 0..T; the rest of
    /// the head passes through (GPT-NeoX's partial rotary).
    pub fn apply(&self, x: &Tensor) -> Tensor {
        self.apply_from(x, 0)
    }

    /// [`Self::apply`] at positions `offset..offset + T` (decoding with a KV cache).
    pub fn apply_from(&self, x: &Tensor, offset: i64) -> Tensor {
        let size = x.size();
        let (t, head_dim) = (size[size.len() - 2], size[size.len() - 1]);
        // (T, d), broadcast over B and H; cast to x's dtype as HF does (matters under autocast).
        let cos = self
            .cos
            .narrow(0, offset, t)
            .to_device_(x.device(), x.kind(), false, false);
        let sin = self
            .sin
            .narrow(0, offset, t)
            .to_device_(x.device(), x.kind(), false, false);
        if self.dims == head_dim {
            x * cos + rotate_half(x) * sin
        } else {
            let rotated = x.narrow(-1, 0, self.dims);
            let passed = x.narrow(-1, self.dims, head_dim - self.dims);
            let rotated = &rotated * cos + rotate_half(&rotated) * sin;
            Tensor::cat(&[rotated, passed], -1)
        }
    }
}

/// (x1, x2) → (−x2, x1) over the halves of the last axis.
fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size()[x.dim() - 1] / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    Tensor::cat(&[x2.neg(), x1], -1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same vector placed at every position 0..t: (1, 1, t, d).
    fn at_every_position(v: &Tensor, t: i64) -> Tensor {
        v.view([1, 1, 1, -1])
            .expand([1, 1, t, -1], false)
            .contiguous()
    }

    fn dot(a: &Tensor, b: &Tensor) -> f64 {
        (a * b).sum(Kind::Double).double_value(&[])
    }

    #[test]
    fn scores_depend_only_on_relative_position() {
        tch::manual_seed(0);
        let (head_dim, t) = (16, 64);
        for dims in [16, 4] {
            let rotary = Rotary::new(dims, t as usize, 10_000.0, None, Device::Cpu).unwrap();
            let q = rotary.apply(&at_every_position(
                &Tensor::randn([head_dim], tch::kind::FLOAT_CPU),
                t,
            ));
            let k = rotary.apply(&at_every_position(
                &Tensor::randn([head_dim], tch::kind::FLOAT_CPU),
                t,
            ));
            let (q, k) = (q.view([t, head_dim]), k.view([t, head_dim]));
            for (m, n) in [(5, 2), (9, 9), (3, 11)] {
                let base = dot(&q.get(m), &k.get(n));
                for shift in [1, 17, 40] {
                    let shifted = dot(&q.get(m + shift), &k.get(n + shift));
                    assert!(
                        (base - shifted).abs() < 1e-4,
                        "d={dims} m={m} n={n} s={shift}: {base} vs {shifted}"
                    );
                }
            }
            // A rotation keeps norms, and position 0 is the identity.
            let norms = q.norm_scalaropt_dim(2, [1], false);
            assert!(norms.max().double_value(&[]) - norms.min().double_value(&[]) < 1e-4);
        }
    }

    #[test]
    fn rotates_the_first_dims_only_and_position_zero_is_identity() {
        tch::manual_seed(1);
        let rotary = Rotary::new(4, 8, 10_000.0, None, Device::Cpu).unwrap();
        let x = Tensor::randn([2, 3, 8, 16], tch::kind::FLOAT_CPU);
        let y = rotary.apply(&x);
        assert!(y.narrow(-1, 4, 12).equal(&x.narrow(-1, 4, 12)));
        assert!(y
            .narrow(2, 0, 1)
            .allclose(&x.narrow(2, 0, 1), 1e-6, 1e-6, false));
        assert!(!y
            .narrow(2, 1, 1)
            .allclose(&x.narrow(2, 1, 1), 1e-3, 1e-3, false));
    }

    #[test]
    fn matches_the_rotate_half_formula_by_hand() {
        // d = 2: one pair (x0, x1) at frequency θ^0 = 1, so position p turns it by p radians.
        let rotary = Rotary::new(2, 4, 10_000.0, None, Device::Cpu).unwrap();
        let x = Tensor::from_slice(&[1.0f32, 0.0])
            .view([1, 1, 1, 2])
            .expand([1, 1, 4, 2], false);
        let y = rotary.apply(&x.contiguous()).view([4, 2]);
        for p in 0..4i64 {
            let (c, s) = ((p as f64).cos(), (p as f64).sin());
            assert!((y.double_value(&[p, 0]) - c).abs() < 1e-6);
            assert!((y.double_value(&[p, 1]) - s).abs() < 1e-6);
        }
    }
}
