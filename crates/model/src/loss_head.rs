//! The output projection and its cross-entropy, chunk by chunk, gradients included: the (N, V) logits
//! (and their log-softmax and gradient, each as large) are never held whole.
//!
//! For N positions with final hidden states h (N, C), output weight W (V, C) and targets y:
//!
//! ```text
//! for each chunk of rows:  z = h·Wᵀ                 (rows, V), in the autocast dtype if any
//!                          log p = log_softmax(z)    (f32, one kernel)
//!                          ℓ = −log p[y]
//!                          g = exp(log p) − onehot(y) (in place, then in the autocast dtype)
//!                          ∂h = (s / N) · g·W,  ∂W += gᵀ·((s / N) · h)
//! loss = Σℓ / N
//! ```
//!
//! with N counting only targets ≠ −100 (PyTorch's `ignore_index`) and s the caller's scale (a
//! micro-batch's share of the batch). With a z-loss coefficient c > 0 (PaLM; OLMo 2) the gradient is that of
//! loss + c·mean(lse²), lse = log Σ exp z per row: g = softmax·(1 + 2c·lse) − onehot; the loss returned stays
//! the cross-entropy, and the z term is returned apart. The gradients come out of the forward pass itself, so nothing is
//! recomputed; the caller feeds ∂h into the backward pass of the network below and ∂W to W (see
//! `rewarm_train::accumulate_gradients`). The same FLOPs as logits + log-softmax + NLL and their backward,
//! fewer passes over the (rows, V) block (the scale goes on the (rows, C) operands), in a fraction of the
//! memory: for GPT-2-small at B=16, T=1024 the logits alone are 3.3 GB in f32.

use tch::{Device, Kind, Tensor};

/// Target value whose position is left out of the loss (PyTorch's default `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// Elements of one chunk's logits on the CPU: 2²⁵ (128 MiB in f32), e.g. 667 rows at V = 50,304.
const CHUNK_ELEMENTS_CPU: i64 = 1 << 25;

/// Elements of one chunk's logits on a GPU: 2²⁸ (1 GiB in f32), e.g. 5,336 rows at V = 50,304. Measured
/// on an H200 at GPT-2-small's shape (B=16, T=1024; BENCHMARKS.md): the head took 23.2 ms at 667 rows per
/// chunk, 16.9 ms at 2,668 and 14.6 ms in one chunk (PyTorch's full logits: 15.8 ms), so larger chunks
/// buy speed with memory that a GPU has.
const CHUNK_ELEMENTS_GPU: i64 = 1 << 28;

/// Loss and, if asked, gradients of [`linear_cross_entropy`].
pub struct HeadLoss {
    /// Mean cross-entropy over the kept positions (nats), an f32 scalar, not scaled.
    pub loss: Tensor,
    /// ∂(scale · loss)/∂h: (N, C).
    pub grad_hidden: Option<Tensor>,
    /// ∂(scale · loss)/∂W: (V, C), f32.
    pub grad_weight: Option<Tensor>,
    /// mean(lse²) over the kept positions, when a z-loss was asked for.
    pub z: Option<Tensor>,
}

/// Mean cross-entropy of `hidden` (N, C) · `weight` (V, C)ᵀ against `targets` (N), chunk by chunk (see the
/// module doc), with the gradients of `scale` × the loss when `grads`. Runs without autograd; matmuls
/// follow the autocast state of the caller.
pub fn linear_cross_entropy(
    hidden: &Tensor,
    weight: &Tensor,
    targets: &Tensor,
    scale: f64,
    grads: bool,
) -> HeadLoss {
    let rows = default_rows(weight.size()[0], hidden.device());
    chunked(hidden, weight, targets, scale, grads, rows)
}

/// [`linear_cross_entropy`] with gradients, of the loss plus `z_loss` · mean(lse²) (see the module doc).
pub fn linear_cross_entropy_z(
    hidden: &Tensor,
    weight: &Tensor,
    targets: &Tensor,
    scale: f64,
    z_loss: f64,
) -> HeadLoss {
    let rows = default_rows(weight.size()[0], hidden.device());
    chunked_z(hidden, weight, targets, (scale, z_loss), true, rows)
}

/// Positions per chunk at vocabulary size `vocab` on `device`.
pub fn default_rows(vocab: i64, device: Device) -> i64 {
    let elements = match device {
        Device::Cpu => CHUNK_ELEMENTS_CPU,
        _ => CHUNK_ELEMENTS_GPU,
    };
    (elements / vocab.max(1)).max(1)
}

/// [`linear_cross_entropy`] with `rows` positions per chunk (the benchmark compares chunk sizes).
pub fn chunked(
    hidden: &Tensor,
    weight: &Tensor,
    targets: &Tensor,
    scale: f64,
    grads: bool,
    rows: i64,
) -> HeadLoss {
    chunked_z(hidden, weight, targets, (scale, 0.0), grads, rows)
}

/// [`chunked`] with a z-loss coefficient: `scale_z` is (scale, z-loss coefficient).
fn chunked_z(
    hidden: &Tensor,
    weight: &Tensor,
    targets: &Tensor,
    scale_z: (f64, f64),
    grads: bool,
    rows: i64,
) -> HeadLoss {
    let (scale, z_loss) = scale_z;
    tch::no_grad(|| {
        let (n, c) = (hidden.size()[0], hidden.size()[1]);
        let v = weight.size()[0];
        let device = hidden.device();
        let kept = targets.ne(IGNORE_INDEX).to_kind(Kind::Float); // (N)
                                                                  // 1 / (number of kept targets), on the device: nothing is read back.
        let inv_n = kept.sum(Kind::Float).clamp_min(1.0).reciprocal();
        let safe_targets = targets.clamp_min(0).unsqueeze(1); // (N, 1)
        let rows = rows.clamp(1, n.max(1));
        let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
        let mut z_sum = Tensor::zeros([], (Kind::Float, device));
        let mut grad_hidden = Vec::new();
        let mut grad_weight = grads.then(|| Tensor::zeros([v, c], (Kind::Float, device)));
        let g_scale = &inv_n * scale;
        for start in (0..n).step_by(rows as usize) {
            let k = rows.min(n - start);
            let h = hidden.narrow(0, start, k);
            let y = safe_targets.narrow(0, start, k);
            let keep = kept.narrow(0, start, k);
            // One fused kernel from the (autocast-dtype) logits to f32 log-probabilities.
            let logits = h.matmul(&weight.tr());
            let mut log_p = logits.log_softmax(-1, Kind::Float); // (k, V)
                                                                 // lse = z − log p at any column: the first.
            let lse = (z_loss > 0.0).then(|| {
                (logits.narrow(1, 0, 1).to_kind(Kind::Float) - log_p.narrow(1, 0, 1)).squeeze_dim(1)
            });
            drop(logits);
            let target_log_p = log_p.gather(1, &y, false).squeeze_dim(1); // (k)
            loss_sum -= (target_log_p * &keep).sum(Kind::Float);
            if let Some(lse) = &lse {
                z_sum += (lse.square() * &keep).sum(Kind::Float);
            }
            if let Some(gw) = &mut grad_weight {
                // softmax − onehot: the logits' gradient up to a per-row factor (zero on ignored rows),
                // which is applied to the (k, C) operands and results rather than to the (k, V) block.
                let mut g = log_p.exp_();
                if let Some(lse) = &lse {
                    let _ = g.g_mul_(&(lse * (2.0 * z_loss) + 1.0).unsqueeze(1));
                }
                let _ = g.scatter_add_(1, &y, &(-&keep).unsqueeze(1));
                let g = g.to_kind(h.kind());
                let row_scale = (&keep * &g_scale).unsqueeze(1); // (k, 1)
                let gh = g.matmul(weight).to_kind(Kind::Float) * &row_scale;
                grad_hidden.push(gh.to_kind(hidden.kind())); // (k, C)
                let h_scaled = (&h * &row_scale).to_kind(h.kind());
                let _ = gw.g_add_(&g.tr().matmul(&h_scaled)); // (V, C)
            }
        }
        HeadLoss {
            loss: loss_sum * &inv_n,
            grad_hidden: grads.then(|| Tensor::cat(&grad_hidden, 0)),
            grad_weight,
            z: (z_loss > 0.0).then(|| z_sum * inv_n),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a` equals `b` to 1e-5 of `b`'s largest magnitude.
    fn close(a: &Tensor, b: &Tensor, what: &str) {
        let d = (a - b).abs().max().double_value(&[]);
        let m = b.abs().max().double_value(&[]);
        assert!(
            d <= 1e-5 * m.max(1e-3),
            "{what}: max |Δ| {d} (max |value| {m})"
        );
    }

    /// Loss and gradients equal those of logits → log-softmax → NLL through autograd, with ignored
    /// targets, over three chunks (16 + 16 + 8 rows) and in one.
    #[test]
    fn matches_autograd_through_the_full_logits() {
        tch::manual_seed(0);
        let (n, c, v) = (40i64, 8i64, 1000i64);
        let h = Tensor::randn([n, c], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let w = (Tensor::randn([v, c], (Kind::Float, Device::Cpu)) * 0.1).set_requires_grad(true);
        let y = Tensor::randint(v, [n], (Kind::Int64, Device::Cpu));
        let _ = y.narrow(0, 3, 2).fill_(IGNORE_INDEX);
        let scale = 0.25;
        let full = h.matmul(&w.tr()).log_softmax(-1, Kind::Float).nll_loss(&y);
        (&full * scale).backward();
        for rows in [16, 40] {
            let head = chunked(&h.detach(), &w.detach(), &y, scale, true, rows);
            close(&head.loss, &full, "loss");
            close(head.grad_hidden.as_ref().unwrap(), &h.grad(), "∂h");
            close(head.grad_weight.as_ref().unwrap(), &w.grad(), "∂W");
        }
        let loss_only = linear_cross_entropy(&h.detach(), &w.detach(), &y, scale, false);
        assert!(loss_only.grad_hidden.is_none() && loss_only.grad_weight.is_none());
        close(&loss_only.loss, &full, "loss without gradients");
    }

    /// With a z-loss, the gradients are those of NLL + c·mean(logsumexp(z)²) over the kept rows through
    /// autograd; the loss returned is still the NLL, the z term apart.
    #[test]
    fn the_z_loss_gradient_matches_autograd() {
        tch::manual_seed(1);
        let (n, c, v, z) = (24i64, 8i64, 300i64, 1e-2);
        let h = Tensor::randn([n, c], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let w = (Tensor::randn([v, c], (Kind::Float, Device::Cpu)) * 0.5).set_requires_grad(true);
        let y = Tensor::randint(v, [n], (Kind::Int64, Device::Cpu));
        let _ = y.narrow(0, 5, 3).fill_(IGNORE_INDEX);
        let keep = y.ne(IGNORE_INDEX).to_kind(Kind::Float);
        let logits = h.matmul(&w.tr());
        let nll = logits.log_softmax(-1, Kind::Float).nll_loss(&y);
        let lse = logits.logsumexp([1i64].as_slice(), false);
        let z_term = (lse.square() * &keep).sum(Kind::Float) / keep.sum(Kind::Float);
        ((&nll + &z_term * z) * 0.5).backward();
        let head = chunked_z(&h.detach(), &w.detach(), &y, (0.5, z), true, 10);
        close(&head.loss, &nll, "loss");
        close(head.z.as_ref().unwrap(), &z_term, "z term");
        close(head.grad_hidden.as_ref().unwrap(), &h.grad(), "∂h");
        close(head.grad_weight.as_ref().unwrap(), &w.grad(), "∂W");
    }
}
