//! Activation checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"): the
//! forward pass keeps only each block's input, and the backward pass recomputes one block at a time from
//! it. Memory for activations drops from every block's intermediate tensors to L inputs of (B, T, C) plus
//! one block's intermediates; the price is a second forward pass of every block (about a third more
//! compute per step).
//!
//! The gradient of each piece is carried by the same seed trick as the loss head: for a block y = f(x)
//! with ∂L/∂y = g known, Σ y·g has exactly g as its gradient with respect to y, so its `backward()` puts
//! the block's share into the parameters' gradients and ∂L/∂x into x's.

use tch::{Kind, Tensor};

use crate::{Model, ModelError};

impl Model {
    /// [`Self::f_loss_for_backward_z`] with activation checkpointing: the same loss and gradients (up to
    /// the order in which a tied embedding's two shares are added), holding one block's intermediate
    /// tensors at a time. The head and the blocks are back-propagated here; the returned seed's
    /// `backward()` adds the input embedding's share.
    pub fn f_loss_for_backward_recompute(
        &self,
        inputs: &Tensor,
        targets: &Tensor,
        scale: f64,
        z_loss: f64,
    ) -> Result<(Tensor, Tensor), ModelError> {
        self.check_pair(inputs, targets)?;
        let layers = self.config().num_layers;
        // Forward without a graph, keeping each block's input and the last block's output.
        let mut kept = Vec::with_capacity(layers + 1);
        tch::no_grad(|| {
            let mut x = self.embed(inputs);
            for i in 0..layers {
                let y = self.block(i, &x);
                kept.push(x);
                x = y;
            }
            kept.push(x);
        });
        // The head, from the last block's output as a leaf.
        let top = leaf(kept.pop().expect("the last block's output"));
        let (loss, seed) = self.head_for_backward(&self.final_norm(&top), targets, scale, z_loss);
        seed.backward();
        let mut grad = top.grad();
        // The blocks, last first, each recomputed from its input.
        for i in (0..layers).rev() {
            let x = leaf(kept.pop().expect("one input per block"));
            let y = self.block(i, &x);
            (y * grad.detach()).sum(Kind::Float).backward();
            grad = x.grad();
        }
        let seed = (self.embed(inputs) * grad.detach()).sum(Kind::Float);
        Ok((loss, seed))
    }
}

/// `x` as a leaf of a new graph, gathering its gradient.
fn leaf(x: Tensor) -> Tensor {
    x.detach().set_requires_grad(true)
}
