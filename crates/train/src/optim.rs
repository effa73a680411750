//! AdamW with decoupled weight decay (Loshchilov & Hutter 2019) and global-norm gradient clipping, with
//! its state (moments and step count) in tensors we own, so checkpoints can save and restore it exactly.
//!
//! The update runs in libtorch's fused AdamW kernel (`torch.optim.AdamW(fused=True)`, through
//! csrc/fused_adamw.cpp): one pass per parameter instead of a dozen tensor ops, which made the optimizer
//! the slowest part of a CPU step after the matmuls (BENCHMARKS.md). Parameters that are not f32 take the
//! same formula as separate tensor ops ([`AdamW::step_unfused`]).

use crate::backend::fused_adamw::{fused_adamw, FusedGroup, Hyper};
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

    /// Global L2 norm of all gradients (before clipping), as a 0-d f32 tensor: the norm of the per-tensor
    /// norms, as `torch.nn.utils.clip_grad_norm_` computes it (one read of each gradient, no temporaries).
    pub fn grad_norm(&self) -> Tensor {
        self.per_tensor_norms(2.0).norm()
    }

    /// Global ℓ1 norm of all gradients, Σ|g| (before clipping), as a 0-d f32 tensor.
    pub fn grad_norm_l1(&self) -> Tensor {
        self.per_tensor_norms(1.0).sum(Kind::Float)
    }

    /// Each defined gradient's p-norm, stacked (f32).
    fn per_tensor_norms(&self, p: f64) -> Tensor {
        let norms: Vec<Tensor> = self
            .slots
            .iter()
            .map(|s| s.param.grad())
            .filter(|g| g.defined())
            .map(|g| g.norm_scalaropt_dtype(p, Kind::Float))
            .collect();
        Tensor::stack(&norms, 0)
    }

    /// Clips gradients to global norm `clip` given their norm, then takes one AdamW step at `lr`:
    ///
    /// ```text
    /// g ← g · clip / (‖g‖ + 1e-6)   if ‖g‖ + 1e-6 > clip   (torch.nn.utils.clip_grad_norm_'s rule)
    /// p ← p · (1 − lr·wd)            (decayed parameters only)
    /// m ← lerp(m, g, 1 − β1);  v ← β2·v + (1 − β2)·g²
    /// p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
    /// ```
    ///
    /// `grad_norm` is [`Self::grad_norm`]'s 0-d tensor: the clip factor is computed from it on the device,
    /// so the step needs no read-back. When `skip` (a 0-d f32 tensor) holds 1 the parameters and moments
    /// are left as they were (a step whose loss or gradients turned out non-finite); the step count still
    /// advances. The gradients may be left scaled.
    pub fn step(&mut self, lr: f64, grad_norm: &Tensor, skip: Option<&Tensor>) {
        let fusable = self.slots.iter().all(|s| {
            let g = s.param.grad();
            !g.defined()
                || [&s.param, &g, &s.exp_avg, &s.exp_avg_sq]
                    .iter()
                    .all(|t| t.kind() == Kind::Float && t.is_contiguous())
        });
        if fusable {
            self.step_fused(lr, grad_norm, skip)
        } else {
            let skipped = skip.is_some_and(|s| s.double_value(&[]) != 0.0);
            if skipped {
                self.step += 1;
            } else {
                self.step_unfused(lr, grad_norm.double_value(&[]))
            }
        }
    }

    /// [`Self::step`] in libtorch's fused kernel: one call for the decayed parameters, one for the rest.
    fn step_fused(&mut self, lr: f64, grad_norm: &Tensor, skip: Option<&Tensor>) {
        let c = &self.config;
        self.step += 1;
        let Some(device) = self.slots.first().map(|s| s.param.device()) else {
            return;
        };
        let options = (Kind::Float, device);
        let step = Tensor::full([], self.step as f64, options);
        // The kernel divides the gradients by grad_scale: max(1, (‖g‖ + 1e-6) / clip) multiplies them by the
        // clip factor, computed on the device.
        let grad_scale = (c.clip > 0.0).then(|| {
            ((grad_norm.to_kind(Kind::Float) + 1e-6) / c.clip)
                .clamp_min(1.0)
                .to_device(device)
        });
        let skip = skip.map(|s| s.to_kind(Kind::Float).to_device(device));
        for decay in [true, false] {
            let slots: Vec<(&Slot, Tensor)> = self
                .slots
                .iter()
                .filter(|s| s.decay == decay)
                .map(|s| (s, s.param.grad()))
                .filter(|(_, g)| g.defined())
                .collect();
            if slots.is_empty() {
                continue;
            }
            let group = FusedGroup {
                params: slots.iter().map(|(s, _)| &s.param).collect(),
                grads: slots.iter().map(|(_, g)| g).collect(),
                exp_avgs: slots.iter().map(|(s, _)| &s.exp_avg).collect(),
                exp_avg_sqs: slots.iter().map(|(s, _)| &s.exp_avg_sq).collect(),
            };
            let hyper = Hyper {
                lr,
                beta1: c.beta1,
                beta2: c.beta2,
                weight_decay: if decay { c.weight_decay } else { 0.0 },
                eps: c.eps,
            };
            fused_adamw(&group, &step, &hyper, grad_scale.as_ref(), skip.as_ref());
        }
    }

    /// [`Self::step`] as separate tensor ops, for parameters the fused kernel does not take (not f32), with
    /// the gradient norm read back.
    pub fn step_unfused(&mut self, lr: f64, grad_norm: f64) {
        let c = &self.config;
        let scale = if c.clip > 0.0 && grad_norm + 1e-6 > c.clip {
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
        let norm = opt.grad_norm();
        assert!((norm.double_value(&[]) - (9.0f64 + 0.25).sqrt()).abs() < 1e-5);
        opt.step(0.01, &norm, None);
        let got: Vec<f32> = Vec::try_from(&p.detach()).unwrap();
        // p ← p(1 − lr·wd) − lr·sign(g)
        let want = [1.0 * (1.0 - 0.001) - 0.01, -2.0 * (1.0 - 0.001) - 0.01];
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
        let _ = Device::Cpu;
    }

    /// The fused kernel and the separate tensor ops compute the same update (to f32 rounding), with and
    /// without clipping, for decayed and undecayed parameters, over several steps.
    #[test]
    fn fused_step_matches_the_tensor_op_formula() {
        tch::manual_seed(7);
        let make = || {
            let w = Tensor::randn([33, 17], tch::kind::FLOAT_CPU).set_requires_grad(true);
            let b = Tensor::randn([17], tch::kind::FLOAT_CPU).set_requires_grad(true);
            (w, b)
        };
        let (w1, b1) = make();
        let (w2, b2) = (
            w1.detach().copy().set_requires_grad(true),
            b1.detach().copy().set_requires_grad(true),
        );
        let opt = |w: &Tensor, b: &Tensor| {
            AdamW::new(
                OptimizerConfig::default(),
                vec![
                    ("l.bias".into(), b.shallow_clone()),
                    ("l.weight".into(), w.shallow_clone()),
                ],
                |n| n.ends_with("weight"),
            )
        };
        let (mut fused, mut unfused) = (opt(&w1, &b1), opt(&w2, &b2));
        for step in 0..5 {
            let x = Tensor::randn([4, 33], tch::kind::FLOAT_CPU);
            // Large gradients at even steps (clipped), small ones at odd steps.
            let k = if step % 2 == 0 { 10.0 } else { 0.01 };
            for (is_fused, o, w, b) in [
                (true, &mut fused, &w1, &b1),
                (false, &mut unfused, &w2, &b2),
            ] {
                o.zero_grad();
                ((x.matmul(w) + b).square().sum(Kind::Float) * k).backward();
                let norm = o.grad_norm();
                if is_fused {
                    o.step(1e-2, &norm, None);
                } else {
                    o.step_unfused(1e-2, norm.double_value(&[]));
                }
            }
            assert_eq!(fused.step, unfused.step);
            for (a, b) in [(&w1, &w2), (&b1, &b2)] {
                let diff = (a - b).abs().max().double_value(&[]);
                assert!(diff < 1e-5, "step {step}: parameters differ by {diff}");
            }
            let m = (&fused.slots[1].exp_avg_sq - &unfused.slots[1].exp_avg_sq)
                .abs()
                .max()
                .double_value(&[]);
            assert!(m < 1e-5, "step {step}: second moments differ by {m}");
        }
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
        opt.step(0.1, &opt.grad_norm(), None);
        // m = (1−β1)·g·(1/10) → after bias correction the update is still −lr·sign.
        let m = opt.slots[0].exp_avg.double_value(&[0]);
        assert!((m - 0.1 * 1.0).abs() < 1e-6, "{m}");
        opt.reset();
        assert_eq!(opt.step, 0);
        assert_eq!(opt.slots[0].exp_avg.double_value(&[0]), 0.0);
    }

    /// A step flagged to skip leaves parameters and moments untouched (even with non-finite gradients),
    /// and the next unflagged step updates as usual.
    #[test]
    fn a_skipped_step_changes_nothing() {
        let p = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        let mut opt = AdamW::new(
            OptimizerConfig::default(),
            vec![("w.weight".into(), p.shallow_clone())],
            |_| true,
        );
        (&p * f64::NAN).sum(Kind::Float).backward();
        let norm = opt.grad_norm();
        assert!(norm.double_value(&[]).is_nan());
        opt.step(0.1, &norm, Some(&Tensor::from(1.0f32)));
        assert_eq!(Vec::<f32>::try_from(&p.detach()).unwrap(), [1.0, 2.0]);
        assert_eq!(
            opt.slots[0]
                .exp_avg
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
        opt.zero_grad();
        (&p * 3.0).sum(Kind::Float).backward();
        opt.step(0.1, &opt.grad_norm(), Some(&Tensor::from(0.0f32)));
        let moved = Vec::<f32>::try_from(&p.detach()).unwrap();
        assert!(moved[0] < 1.0 && moved[1] < 2.0, "{moved:?}");
    }
}
