//! Reptile's meta-update during a stage (`reptile = { inner_steps, beta }`; MER, Abbes et al. 2025):
//! every k steps θ ← θ_anchor + β·(θ − θ_anchor), then the anchor becomes θ. The anchor starts as the
//! stage's starting weights (after shrink-and-perturb) and is written with every checkpoint of the stage
//! (`reptile_anchor.safetensors`), so a run resumed between two meta-updates goes on bit-exactly.
//!
//! The update is `θ.lerp_(anchor, 1 − β)`: libtorch's lerp returns its start exactly at weight 0, so
//! β = 1 leaves every weight bit-for-bit as it was (spec G2).

use crate::error::TrainResult;
use crate::weight_copy::WeightCopy;
use rewarm_plan::Plan;
use rewarm_runfolder::CheckpointDir;
use tch::{nn, Tensor};

pub struct Reptile {
    anchor: WeightCopy,
}

impl Reptile {
    /// An anchor at the weights as they are now (a stage's start).
    pub fn new(vs: &nn::VarStore) -> Self {
        Reptile {
            anchor: WeightCopy::new(vs),
        }
    }

    /// The meta-update with step size `beta`; the anchor moves to the result.
    pub fn meta_update(&mut self, beta: f64) {
        self.anchor.for_each(|p, a| {
            let _ = p.lerp_(&*a, 1.0 - beta);
            a.copy_(p);
        });
    }

    /// The anchor by name, for a checkpoint.
    pub fn tensors(&self) -> Vec<(String, &Tensor)> {
        self.anchor.tensors()
    }

    /// The anchor a run resumed at `step` continues with: the checkpoint's, when `step` is inside a
    /// stage with Reptile (at a stage's first step the stage sets a fresh one).
    pub fn resumed(
        plan: &Plan,
        step: u64,
        ckpt: &CheckpointDir,
        vs: &nn::VarStore,
    ) -> TrainResult<Option<Reptile>> {
        if step >= plan.total_steps {
            return Ok(None);
        }
        let info = plan.step(step);
        if info.local_step == 0 || plan.stages[info.stage].reptile.is_none() {
            return Ok(None);
        }
        let mut r = Reptile::new(vs);
        r.anchor
            .load(&ckpt.reptile_anchor(), "Reptile's anchor weights")?;
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn store(values: &[f32]) -> (nn::VarStore, Tensor) {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().zeros("w", &[values.len() as i64]);
        tch::no_grad(|| w.shallow_clone().copy_(&Tensor::from_slice(values)));
        (vs, w)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.to_kind(Kind::Float)).unwrap()
    }

    #[test]
    fn one_meta_update_matches_the_hand_computation() {
        let (vs, w) = store(&[1.0, -2.0, 0.5]);
        let mut r = Reptile::new(&vs);
        // k inner steps moved the weights to θ = (3, 2, 0.5).
        tch::no_grad(|| {
            w.shallow_clone()
                .copy_(&Tensor::from_slice(&[3.0f32, 2.0, 0.5]))
        });
        r.meta_update(0.25);
        // anchor + β(θ − anchor) = (1 + 0.5, −2 + 1, 0.5)
        assert_eq!(values(&w), vec![1.5, -1.0, 0.5]);
        assert_eq!(values(&r.anchor.copy[0].1), vec![1.5, -1.0, 0.5]);
        // The next meta-update is measured from the new anchor: θ = (2.5, −1, 4.5) → (1.75, −1, 1.5).
        tch::no_grad(|| {
            w.shallow_clone()
                .copy_(&Tensor::from_slice(&[2.5f32, -1.0, 4.5]))
        });
        r.meta_update(0.25);
        assert_eq!(values(&w), vec![1.75, -1.0, 1.5]);
    }

    #[test]
    fn beta_one_leaves_every_bit() {
        let start: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin() * 1e-3).collect();
        let (vs, w) = store(&start);
        let mut r = Reptile::new(&vs);
        let moved: Vec<f32> = start.iter().map(|x| x * 3.1 + 1e-7).collect();
        tch::no_grad(|| w.shallow_clone().copy_(&Tensor::from_slice(&moved)));
        r.meta_update(1.0);
        let got = values(&w);
        assert!(got
            .iter()
            .zip(&moved)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
