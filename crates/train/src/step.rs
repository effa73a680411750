//! The tensor work of one training step, shared by the loop (`trainer`) and `rewarm bench train`: token
//! windows onto the device, forward and backward over micro-batches (with bf16 autocast and a
//! data-parallel sum when asked), and the evaluation loss.

use crate::backend::dist::{all_reduce_flat, ProcessGroup};
use crate::error::TrainResult;
use crate::optim::AdamW;
use rewarm_data::eval::EvalSet;
use rewarm_model::Model;
use tch::{Device, Kind, Tensor};

/// Kind used for tokens on the device.
pub const TOKEN_KIND: Kind = Kind::Int64;

/// Rows `first_row..first_row + rows` of a batch of (seq_len + 1)-token windows as (inputs, targets), each
/// (rows, seq_len) on `device`: targets are the inputs shifted by one token.
pub fn window_tensors(
    tokens: &[u32],
    seq_len: usize,
    first_row: usize,
    rows: usize,
    device: Device,
) -> (Tensor, Tensor) {
    let w = seq_len + 1;
    let ids: Vec<i64> = tokens[first_row * w..(first_row + rows) * w]
        .iter()
        .map(|&t| t as i64)
        .collect();
    let host = Tensor::from_slice(&ids).reshape([rows as i64, w as i64]);
    let all = match device {
        // From page-locked memory the copy is asynchronous: the host goes on preparing the step while the
        // tokens travel (libtorch's pinned-memory cache keeps the buffer until the copy is done).
        Device::Cuda(_) => {
            crate::backend::cuda::pinned(&host).to_device_(device, TOKEN_KIND, true, false)
        }
        _ => host,
    };
    let l = seq_len as i64;
    (all.narrow(1, 0, l), all.narrow(1, 1, l))
}

/// How a step's tensor work runs: in which precision, and over which processes gradients are summed.
#[derive(Clone, Copy, Default)]
pub struct Execution<'a> {
    /// Forward passes under bf16 autocast (`train.precision`).
    pub bf16: bool,
    /// Data parallel: sum gradients and losses over this group.
    pub group: Option<&'a ProcessGroup>,
    /// z-loss coefficient of training's gradients (`train.z_loss`; 0: none).
    pub z_loss: f64,
    /// Recompute each block in the backward pass (`train.activation_checkpointing`).
    pub recompute: bool,
}

/// The tensor work of one step before the update, shared by [`crate::train`] and `rewarm bench train`: zero the
/// gradients, accumulate them over `micro_batches` of (inputs, targets, weight = rows / B, B the global
/// batch), sum them over the processes of a data-parallel group, then measure the global gradient norm.
/// Returns (mean loss, gradient norm before clipping) as 0-d tensors on the device (f64, f32), nothing
/// read back; the caller applies [`AdamW::step`] and checks them when it reads them.
pub fn accumulate_gradients(
    model: &Model,
    opt: &mut AdamW,
    micro_batches: impl IntoIterator<Item = (Tensor, Tensor, f64)>,
    exec: Execution,
) -> TrainResult<(Tensor, Tensor)> {
    opt.zero_grad();
    let mut loss: Option<Tensor> = None;
    for (inputs, targets, weight) in micro_batches {
        // The output projection and cross-entropy go chunk by chunk (no full logits); `seed.backward()`
        // puts weight × the loss's gradient into every parameter.
        let (l, seed) =
            crate::backend::autocast::bf16(exec.bf16, inputs.device(), || match exec.recompute {
                true => model.f_loss_for_backward_recompute(&inputs, &targets, weight, exec.z_loss),
                false => model.f_loss_for_backward_z(&inputs, &targets, weight, exec.z_loss),
            })?;
        seed.backward();
        // Summed in f64 on the device: no read-back per micro-batch.
        let part = l.detach().to_kind(Kind::Double) * weight;
        loss = Some(match loss {
            Some(sum) => sum + part,
            None => part,
        });
    }
    let loss = loss.unwrap_or_else(|| Tensor::zeros([], (Kind::Double, Device::Cpu)));
    if let Some(group) = exec.group {
        let grads: Vec<Tensor> = opt
            .slots
            .iter()
            .map(|s| s.param.grad())
            .filter(|g| g.defined())
            .collect();
        all_reduce_flat(group, &grads)?;
        all_reduce_flat(group, std::slice::from_ref(&loss))?;
    }
    Ok((loss, opt.grad_norm()))
}

/// Mean per-token loss (nats) of `model` on a fixed evaluation set. In a data-parallel group each
/// process evaluates every n-th batch and the sums are added up.
pub fn evaluate_set(
    model: &Model,
    set: &EvalSet,
    batch_sequences: usize,
    device: Device,
    exec: Execution,
) -> TrainResult<f64> {
    let (w, l) = (set.seq_len + 1, set.seq_len as i64);
    let (rank, ranks) = exec.group.map_or((0, 1), |g| (g.world.rank, g.world.size));
    let mut total = 0.0;
    tch::no_grad(|| -> TrainResult<()> {
        let batches = (0..set.sequences()).step_by(batch_sequences.max(1));
        for first in batches.skip(rank).step_by(ranks) {
            let rows = batch_sequences.min(set.sequences() - first);
            let ids: Vec<i64> = set.rows(first, rows).iter().map(|&t| t as i64).collect();
            let all = Tensor::from_slice(&ids)
                .reshape([rows as i64, w as i64])
                .to_device(device);
            let loss = crate::backend::autocast::bf16(exec.bf16, device, || {
                model.f_loss_no_grad(&all.narrow(1, 0, l), &all.narrow(1, 1, l))
            })?;
            total += loss.double_value(&[]) * rows as f64;
        }
        Ok(())
    })?;
    if let Some(group) = exec.group {
        let sum = Tensor::from_slice(&[total]);
        all_reduce_flat(group, std::slice::from_ref(&sum))?;
        total = sum.double_value(&[0]);
    }
    Ok(total / set.sequences() as f64)
}
