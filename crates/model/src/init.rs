//! Parameter creation with the GPT-2 / GPT-NeoX initialization, and the `Linear` layer both families use.
//!
//! - linear weights and embeddings: normal(0, 0.02) (GPT-2; GPT-NeoX's `init_method = "normal"`);
//! - the two projections that write into the residual stream (attention `dense` / `o_proj`, MLP
//!   `dense_4h_to_h` / `down_proj`): normal(0, 0.02/√(2L)), so the residual's variance stays O(1) over
//!   the 2L additions (GPT-2 paper §2.3; nanoGPT `c_proj`);
//! - biases 0, norm weights 1, norm biases 0.
//!
//! Values are drawn on the CPU generator and then moved, so `tch::manual_seed(s)` gives the same weights on
//! every device; they depend only on the seed and the creation order, which the model files fix.

use tch::{nn, Device, Kind, TchError, Tensor};

use crate::ModelConfig;

/// Standard deviation of every linear weight and embedding.
pub const INIT_STD: f64 = 0.02;

/// Standard deviation of the residual output projections of an `num_layers`-block model.
pub fn residual_std(num_layers: usize) -> f64 {
    INIT_STD / (2.0 * num_layers as f64).sqrt()
}

/// A trainable `name` under `path` drawn from normal(0, std).
pub(crate) fn normal(
    path: &nn::Path,
    name: &str,
    dims: &[i64],
    std: f64,
) -> Result<Tensor, TchError> {
    let values = Tensor::f_randn(dims, (Kind::Float, Device::Cpu))?.f_mul_scalar(std)?;
    add(path, name, values)
}

/// A trainable `name` under `path` filled with `value` (0 for biases, 1 for norm weights).
pub(crate) fn constant(
    path: &nn::Path,
    name: &str,
    dims: &[i64],
    value: f64,
) -> Result<Tensor, TchError> {
    add(
        path,
        name,
        Tensor::f_full(dims, value, (Kind::Float, Device::Cpu))?,
    )
}

/// The output projection `path/weight` (V, C) ~ normal(0, [`INIT_STD`]), or `None` when tied to the input
/// embedding.
pub(crate) fn head(path: &nn::Path, config: &ModelConfig) -> Result<Option<Tensor>, TchError> {
    if config.tie_embeddings {
        return Ok(None);
    }
    let (v, c) = (config.vocab_size as i64, config.hidden_size as i64);
    normal(path, "weight", &[v, c], INIT_STD).map(Some)
}

fn add(path: &nn::Path, name: &str, values: Tensor) -> Result<Tensor, TchError> {
    let values = values.f_to_device_(path.device(), path.kind(), false, false)?;
    Ok(path.add(name, values, true))
}

/// y = x·Wᵀ + b, with W of shape (out, in) as in PyTorch and Hugging Face checkpoints.
#[derive(Debug)]
pub struct Linear {
    /// (out, in)
    pub weight: Tensor,
    /// (out), absent in Llama.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// `path/weight` ~ normal(0, std) and, if `bias`, `path/bias` = 0.
    pub(crate) fn new(
        path: &nn::Path,
        in_dim: i64,
        out_dim: i64,
        bias: bool,
        std: f64,
    ) -> Result<Self, TchError> {
        let weight = normal(path, "weight", &[out_dim, in_dim], std)?;
        let bias = if bias {
            Some(constant(path, "bias", &[out_dim], 0.0)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// (…, in) → (…, out)
    pub fn forward(&self, x: &Tensor) -> Tensor {
        crate::gemv::linear(x, &self.weight, self.bias.as_ref())
    }
}
