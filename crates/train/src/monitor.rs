//! `[monitor]`: the representation at every evaluation, to see how a continued model's capacity changes
//! (plasticity). On the first `sequences` sequences of one validation set (`set`, default the first):
//!
//! - **RankMe** (Garrido et al. 2023) of the final hidden states Z (N·T × C): exp of the entropy of
//!   p_k = σ_k / Σσ + 1e-7, σ the singular values of Z;
//! - **α-ReQ** (Agrawal et al. 2022): the slope −α of log λ_k against log k, λ the eigenvalues of Z's
//!   covariance above 1e-12·λ_max, by least squares;
//! - **dormant units** (Sokar et al. 2023): per layer, the MLP activation entering its output projection,
//!   s_i = mean |a_i| / mean over units; a unit is dormant when s_i ≤ τ;
//! - per layer, ‖θ‖₂ and ‖θ − θ at the previous measurement‖₂ (kept in memory only: a fresh process
//!   has no previous measurement).
//!
//! Measuring reads the model and draws no random number: a run with `[monitor]` trains bit-identically to
//! one without.

use crate::optim::Slot;
use rewarm_data::eval::EvalSet;
use rewarm_model::Model;
use rewarm_plan::config::MonitorConfig;
use rewarm_runfolder::LayerStats;
use tch::{Device, Kind, Tensor};

/// The numbers of one measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub rank_me: f64,
    pub alpha_req: f64,
    pub dormant_fraction: f64,
    pub layers: Vec<LayerStats>,
}

/// The monitor of a run: its settings and the per-layer weights at the previous measurement.
pub struct Monitor {
    config: MonitorConfig,
    previous: Option<Vec<Vec<Tensor>>>,
}

impl Monitor {
    pub fn new(config: MonitorConfig) -> Self {
        Monitor {
            config,
            previous: None,
        }
    }

    /// The set it measures among `sets`: `monitor.set`, else the first.
    pub fn pick<'a>(&self, sets: &'a [EvalSet]) -> Option<&'a EvalSet> {
        match &self.config.set {
            Some(name) => sets.iter().find(|s| &s.name == name),
            None => sets.first(),
        }
    }

    /// Measures `model` (whose parameters are `slots`) on the first sequences of `set`.
    pub fn measure(
        &mut self,
        model: &Model,
        slots: &[Slot],
        set: &EvalSet,
        device: Device,
    ) -> Measurement {
        let rows = (self.config.sequences as usize).min(set.sequences()).max(1);
        let (w, l) = (set.seq_len as i64 + 1, set.seq_len as i64);
        let ids: Vec<i64> = set.rows(0, rows).iter().map(|&t| t as i64).collect();
        let inputs = Tensor::from_slice(&ids)
            .reshape([rows as i64, w])
            .narrow(1, 0, l)
            .to_device(device);
        let mut units: Vec<Vec<f64>> = Vec::new();
        let hidden = tch::no_grad(|| {
            model
                .f_hidden_seen(&inputs, &mut |_, a| {
                    let i = a.size()[2];
                    units.push(to_vec(
                        &a.abs().to_kind(Kind::Double).reshape([-1, i]).mean_dim(
                            0,
                            false,
                            Kind::Double,
                        ),
                    ));
                })
                .expect("the monitor's batch is checked like an evaluation batch")
        });
        let c = hidden.size()[2];
        let z = hidden.reshape([-1, c]).to_kind(Kind::Double);
        let gram = z.transpose(0, 1).matmul(&z);
        let singular: Vec<f64> = eigenvalues(&gram)
            .into_iter()
            .map(|e| e.max(0.0).sqrt())
            .collect();
        let centred = &z - z.mean_dim(0, true, Kind::Double);
        let n = z.size()[0].max(2) as f64;
        let covariance = centred.transpose(0, 1).matmul(&centred) / (n - 1.0);
        let tau = self.config.dormant_threshold;
        let (weights, updates) = self.layer_norms(slots, units.len());
        let layers = units
            .iter()
            .zip(weights.iter().zip(updates))
            .map(|(u, (&weight_norm, update_norm))| LayerStats {
                weight_norm,
                update_norm,
                dormant_fraction: dormant_fraction(u, tau),
            })
            .collect();
        let all: Vec<f64> = units.iter().flat_map(|u| normalised(u)).collect();
        Measurement {
            rank_me: rank_me(&singular),
            alpha_req: alpha_req(&eigenvalues(&covariance)),
            dormant_fraction: dormant_fraction_of_scores(&all, tau),
            layers,
        }
    }

    /// Per layer: ‖θ‖₂ and the distance to the previous measurement's copy (kept for the next one).
    fn layer_norms(&mut self, slots: &[Slot], layers: usize) -> (Vec<f64>, Vec<Option<f64>>) {
        let mut params: Vec<Vec<&Tensor>> = vec![Vec::new(); layers];
        for s in slots {
            if let Some(i) = layer_of(&s.name).filter(|&i| i < layers) {
                params[i].push(&s.param);
            }
        }
        let sq = |t: &Tensor| {
            t.to_kind(Kind::Double)
                .square()
                .sum(Kind::Double)
                .double_value(&[])
        };
        let weights = params
            .iter()
            .map(|ps| ps.iter().map(|p| sq(p)).sum::<f64>().sqrt())
            .collect();
        let updates = match &self.previous {
            Some(prev) => params
                .iter()
                .zip(prev)
                .map(|(ps, qs)| {
                    Some(
                        ps.iter()
                            .zip(qs)
                            .map(|(p, q)| sq(&(*p - q)))
                            .sum::<f64>()
                            .sqrt(),
                    )
                })
                .collect(),
            None => vec![None; layers],
        };
        self.previous = Some(
            params
                .iter()
                .map(|ps| ps.iter().map(|p| p.detach().copy()).collect())
                .collect(),
        );
        (weights, updates)
    }
}

/// The transformer layer a Hugging Face parameter name belongs to (`….layers.3.…` → 3).
fn layer_of(name: &str) -> Option<usize> {
    let rest = name.split(".layers.").nth(1)?;
    rest.split('.').next()?.parse().ok()
}

/// Eigenvalues of a symmetric matrix, largest first.
fn eigenvalues(m: &Tensor) -> Vec<f64> {
    let mut e = to_vec(&m.linalg_eigvalsh("L"));
    e.sort_by(|a, b| b.total_cmp(a));
    e
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).to_device(Device::Cpu).reshape([-1]))
        .expect("a f64 tensor")
}

/// RankMe of singular values σ: exp(−Σ p log p), p_k = σ_k / Σσ + 1e-7.
pub fn rank_me(singular: &[f64]) -> f64 {
    let total: f64 = singular.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let entropy: f64 = singular
        .iter()
        .map(|s| s / total + 1e-7)
        .map(|p| -p * p.ln())
        .sum();
    entropy.exp()
}

/// α-ReQ of eigenvalues λ (largest first): −slope of log λ_k on log k (k from 1) by least squares, over
/// the eigenvalues above 1e-12·λ_max; 0 with fewer than two.
pub fn alpha_req(eigen: &[f64]) -> f64 {
    let max = eigen.first().copied().unwrap_or(0.0);
    let points: Vec<(f64, f64)> = eigen
        .iter()
        .enumerate()
        .filter(|(_, &l)| l > 1e-12 * max && l > 0.0)
        .map(|(k, &l)| (((k + 1) as f64).ln(), l.ln()))
        .collect();
    if points.len() < 2 {
        return 0.0;
    }
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), p| (a + p.0 / n, b + p.1 / n));
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    -sxy / sxx
}

/// Each unit's mean |activation| over the layer's mean.
fn normalised(units: &[f64]) -> Vec<f64> {
    let mean = units.iter().sum::<f64>() / units.len().max(1) as f64;
    units
        .iter()
        .map(|u| if mean > 0.0 { u / mean } else { 0.0 })
        .collect()
}

/// The fraction of a layer's units whose normalised mean |activation| is ≤ τ.
pub fn dormant_fraction(units: &[f64], tau: f64) -> f64 {
    dormant_fraction_of_scores(&normalised(units), tau)
}

fn dormant_fraction_of_scores(scores: &[f64], tau: f64) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().filter(|&&s| s <= tau).count() as f64 / scores.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_me_counts_equal_directions_and_ignores_empty_ones() {
        // Four equal singular values and four zeros: p = 1/4 (+1e-7) on four, 1e-7 on the rest → ≈ 4.
        let r = rank_me(&[2.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
        assert!((r - 4.0).abs() < 1e-4, "{r}");
        // One direction only: ≈ 1.
        assert!((rank_me(&[5.0, 0.0, 0.0]) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn alpha_req_recovers_a_power_law() {
        // λ_k = 3 k^−1.5 exactly: the fit gives α = 1.5.
        let eigen: Vec<f64> = (1..=50).map(|k| 3.0 * (k as f64).powf(-1.5)).collect();
        assert!((alpha_req(&eigen) - 1.5).abs() < 1e-9);
        assert_eq!(alpha_req(&[1.0]), 0.0);
    }

    #[test]
    fn a_unit_far_below_its_layers_mean_is_dormant() {
        // Means 0.01, 1, 1, 2 → mean 1.0025; scores 0.00998, 0.998, 0.998, 1.995: one of four ≤ 0.1.
        assert_eq!(dormant_fraction(&[0.01, 1.0, 1.0, 2.0], 0.1), 0.25);
        assert_eq!(dormant_fraction(&[1.0, 1.0], 0.1), 0.0);
    }

    #[test]
    fn layer_names_give_their_index() {
        assert_eq!(
            layer_of("gpt_neox.layers.12.mlp.dense_h_to_4h.weight"),
            Some(12)
        );
        assert_eq!(layer_of("model.layers.0.self_attn.q_proj.weight"), Some(0));
        assert_eq!(layer_of("model.embed_tokens.weight"), None);
    }
}
