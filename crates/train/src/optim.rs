//! AdamW with decoupled weight decay (Loshchilov & Hutter 2019) and global-norm gradient clipping, with
//! its state (moments and step count) in tensors we own, so checkpoints can save and restore it exactly.

use rewarm_plan::config::OptimizerConfig;
use tch::{Kind, Tensor};

/// One parameter and its Adam moments.
pub struct Slot {
    pub name: String,
    pub param: Tensor,
    pub decay: bool,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
}

pub struct AdamW {
    pub config: OptimizerConfig,
    pub slots: Vec<Slot>,
    /// Optimizer steps since the last reset (drives bias correction).
    pub step: u64,
}

impl AdamW {
    /// `params` in a fixed order (sorted by name); `decay` decides which get weight decay.
    pub fn new(
        config: OptimizerConfig,
        params: Vec<(String, Tensor)>,
        decay: impl Fn(&str) -> bool,
    ) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param)| Slot {
                decay: decay(&name),
                exp_avg: param.zeros_like().to_kind(Kind::Float),
                exp_avg_sq: param.zeros_like().to_kind(Kind::Float),
                name,
                param,
            })
            .collect();
        AdamW {
            config,
            slots,
            step: 0,
        }
    }

    /// Zeroes the moments and the step count (a stage boundary with `optimizer = "reset"`).
    pub fn reset(&mut self) {
        tch::no_grad(|| {
            for s in &mut self.slots {
                let _ = s.exp_avg.zero_();
                let _ = s.exp_avg_sq.zero_();
            }
        });
        self.step = 0;
    }

    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            s.param.zero_grad();
        }
    }

    /// Global L2 norm of all gradients (before clipping), as a 0-d tensor.
    pub fn grad_norm(&self) -> Tensor {
        let squares: Vec<Tensor> = self
            .slots
            .iter()
            .filter(|s| s.param.grad().defined())
            .map(|s| {
                s.param
                    .grad()
                    .to_kind(Kind::Float)
                    .square()
                    .sum(Kind::Float)
            })
            .collect();
        Tensor::stack(&squares, 0).sum(Kind::Float).sqrt()
    }

    /// Clips gradients to global norm `clip` given their norm, then takes one AdamW step at `lr`.
    pub fn step(&mut self, lr: f64, grad_norm: f64) {
        let c = &self.config;
        let scale = if c.clip > 0.0 && grad_norm > c.clip {
            c.clip / (grad_norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        tch::no_grad(|| {
            for s in &mut self.slots {
                let g = s.param.grad();
                if !g.defined() {
                    continue;
                }
                let g = if scale != 1.0 {
                    g.to_kind(Kind::Float) * scale
                } else {
                    g.to_kind(Kind::Float)
                };
                let _ = s.exp_avg.lerp_(&g, 1.0 - c.beta1);
                let _ = s.exp_avg_sq.lerp_(&g.square(), 1.0 - c.beta2);
                if s.decay && c.weight_decay > 0.0 {
                    let _ = s.param.g_mul_scalar_(1.0 - lr * c.weight_decay);
                }
                let denom = (s.exp_avg_sq.sqrt() / bc2.sqrt()).g_add_scalar_(c.eps);
                let update = (&s.exp_avg / denom) * (-lr / bc1);
                let _ = s.param.g_add_(&update.to_kind(s.param.kind()));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// One AdamW step by hand: with m = (1−β1)g, v = (1−β2)g², bias correction makes the update
    /// lr·g/(|g| + ε·…) ≈ lr·sign(g), plus decay lr·wd·p.
    #[test]
    fn first_step_matches_the_formula() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let cfg = OptimizerConfig {
            weight_decay: 0.1,
            eps: 1e-8,
            clip: 0.0,
            ..Default::default()
        };
        let mut opt = AdamW::new(cfg, vec![("w.weight".into(), p.shallow_clone())], |_| true);
        let loss = (&p * Tensor::from_slice(&[3.0f32, 0.5])).sum(Kind::Float);
        loss.backward();
        let norm = opt.grad_norm().double_value(&[]);
        assert!((norm - (9.0f64 + 0.25).sqrt()).abs() < 1e-5);
        opt.step(0.01, norm);
        let got: Vec<f32> = Vec::try_from(&p.detach()).unwrap();
        // p ← p(1 − lr·wd) − lr·sign(g)
        let want = [1.0 * (1.0 - 0.001) - 0.01, -2.0 * (1.0 - 0.001) - 0.01];
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
        let _ = Device::Cpu;
    }

    #[test]
    fn clipping_scales_the_gradient_and_reset_clears_moments() {
        let p = Tensor::from_slice(&[0.0f32]).set_requires_grad(true);
        let cfg = OptimizerConfig {
            weight_decay: 0.0,
            clip: 1.0,
            ..Default::default()
        };
        let mut opt = AdamW::new(cfg, vec![("b".into(), p.shallow_clone())], |_| false);
        (&p * 10.0).sum(Kind::Float).backward();
        opt.step(0.1, 10.0);
        // m = (1−β1)·g·(1/10) → after bias correction the update is still −lr·sign.
        let m = opt.slots[0].exp_avg.double_value(&[0]);
        assert!((m - 0.1 * 1.0).abs() < 1e-6, "{m}");
        opt.reset();
        assert_eq!(opt.step, 0);
        assert_eq!(opt.slots[0].exp_avg.double_value(&[0]), 0.0);
    }
}
