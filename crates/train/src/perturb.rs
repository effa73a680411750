//! Shrink-and-perturb at a stage boundary (Ash & Adams 2020, `shrink_perturb` in a stage): θ ← λθ + σ·p
//! for every parameter (or every one but the norm gains and biases), p either isotropic Gaussian noise or
//! a fresh draw of the model's initializer. Both are drawn from the seeded stream `stage/<i>/perturb`, so
//! a plan and a seed fix the result.

use crate::error::TrainResult;
use crate::train_loop::seeded;
use rewarm_model::weights::sorted_variables;
use rewarm_model::{Model, ModelConfig};
use rewarm_plan::config::{PerturbNoise, ShrinkPerturbConfig};
use tch::nn;

/// Applies `sp` to the parameters of `vs` (a model of `config`), drawing from stream `stream` of `seed`.
pub fn shrink_perturb(
    vs: &nn::VarStore,
    config: &ModelConfig,
    sp: &ShrinkPerturbConfig,
    (seed, stream): (u64, &str),
) -> TrainResult<()> {
    let vars = sorted_variables(vs);
    let fresh = match sp.noise {
        PerturbNoise::Init => {
            let fresh = nn::VarStore::new(vs.device());
            seeded(seed, stream, || Model::new(&fresh.root(), config))?;
            Some(fresh.variables())
        }
        PerturbNoise::Gaussian => None,
    };
    seeded(seed, stream, || {
        tch::no_grad(|| {
            for (name, p) in vars {
                if !sp.norms_and_biases && p.dim() == 1 {
                    continue;
                }
                let noise = match &fresh {
                    Some(init) => init[&name].shallow_clone(),
                    None => p.randn_like(),
                };
                let _ = p
                    .shallow_clone()
                    .g_mul_scalar_(sp.lambda)
                    .g_add_(&(noise * sp.sigma));
            }
        })
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Tensor};

    fn model(seed: u64) -> (nn::VarStore, ModelConfig) {
        let config = ModelConfig::tiny_llama();
        let vs = nn::VarStore::new(Device::Cpu);
        seeded(seed, "model/init", || Model::new(&vs.root(), &config)).unwrap();
        // Norm gains off their initial 1, so that leaving them alone shows.
        tch::no_grad(|| {
            for (_, t) in vs.variables() {
                let _ = t.shallow_clone().g_add_scalar_(0.5);
            }
        });
        (vs, config)
    }

    fn values(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
        let mut v: Vec<_> = vs
            .variables()
            .into_iter()
            .map(|(k, t)| (k, t.copy()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The fresh model the tests' stream (seed 9, `s`) draws.
    fn fresh(config: &ModelConfig) -> Vec<(String, Tensor)> {
        let vs = nn::VarStore::new(Device::Cpu);
        seeded(9, "s", || Model::new(&vs.root(), config)).unwrap();
        values(&vs)
    }

    fn sp(
        lambda: f64,
        sigma: f64,
        noise: PerturbNoise,
        norms_and_biases: bool,
    ) -> ShrinkPerturbConfig {
        ShrinkPerturbConfig {
            lambda,
            sigma,
            noise,
            norms_and_biases,
        }
    }

    #[test]
    fn init_noise_with_lambda_0_and_sigma_1_is_a_fresh_initialization() {
        let (vs, config) = model(1);
        shrink_perturb(
            &vs,
            &config,
            &sp(0.0, 1.0, PerturbNoise::Init, true),
            (9, "s"),
        )
        .unwrap();
        for ((name, a), (_, b)) in values(&vs).iter().zip(fresh(&config)) {
            assert!(a.equal(&b), "{name}");
        }
    }

    #[test]
    fn a_blend_and_the_identity_by_hand() {
        let (vs, config) = model(1);
        let before = values(&vs);
        // λ = 1, σ = 0: unchanged bit for bit, whatever the noise.
        for noise in [PerturbNoise::Gaussian, PerturbNoise::Init] {
            shrink_perturb(&vs, &config, &sp(1.0, 0.0, noise, true), (9, "s")).unwrap();
            for ((name, a), (_, b)) in values(&vs).iter().zip(&before) {
                assert!(a.equal(b), "{name}");
            }
        }
        // λ = 0.75, σ = 0.25 toward the initializer: 0.75·θ + 0.25·θ_fresh, per element.
        shrink_perturb(
            &vs,
            &config,
            &sp(0.75, 0.25, PerturbNoise::Init, true),
            (9, "s"),
        )
        .unwrap();
        for (((name, got), (_, was)), (_, init)) in
            values(&vs).iter().zip(&before).zip(fresh(&config))
        {
            let want = was * 0.75 + init * 0.25;
            assert!(got.allclose(&want, 1e-6, 1e-7, false), "{name}");
        }
    }

    #[test]
    fn norms_and_biases_may_be_left_as_trained() {
        let (vs, config) = model(1);
        let before = values(&vs);
        shrink_perturb(
            &vs,
            &config,
            &sp(0.5, 0.01, PerturbNoise::Gaussian, false),
            (9, "s"),
        )
        .unwrap();
        for ((name, a), (_, b)) in values(&vs).iter().zip(&before) {
            let one_dimensional = a.dim() == 1;
            assert_eq!(a.equal(b), one_dimensional, "{name}");
        }
        assert!(
            before.iter().any(|(_, t)| t.dim() == 1),
            "tiny-llama has norm gains"
        );
    }
}
