//! The shape both families share: an input embedding, blocks on the residual stream, a final norm and an
//! output projection (the embedding itself when tied) — [`Decoder`]. A family supplies its block and its
//! norm ([`Block`], [`Norm`]) and creates the parameters under its Hugging Face names; the walks over the
//! pieces — the hidden states, one block at a time, cached decoding — are written once, here.

use tch::Tensor;

use crate::kv_cache::{KvCache, LayerCache};
use crate::rope::Rotary;

/// A decoder-only transformer of blocks `L` and norm `N` (`GptNeox`, `Llama`).
#[derive(Debug)]
pub struct Decoder<L, N> {
    /// The input embedding (V, C): `gpt_neox.embed_in.weight` / `model.embed_tokens.weight`.
    pub embedding: Tensor,
    /// The blocks: `gpt_neox.layers.{i}` / `model.layers.{i}`.
    pub layers: Vec<L>,
    /// The norm after the last block: `gpt_neox.final_layer_norm` / `model.norm`.
    pub norm: N,
    /// The output projection (V, C): `embed_out.weight` / `lm_head.weight`; `None` when tied to the
    /// embedding.
    pub head: Option<Tensor>,
    pub(crate) rotary: Rotary,
}

/// A family's transformer block on the residual stream.
pub(crate) trait Block {
    /// (B, T, C) → (B, T, C); `seen` is shown the activation entering the MLP's output projection
    /// (B, T, I).
    fn forward(&self, x: &Tensor, rotary: &Rotary, seen: &mut dyn FnMut(&Tensor)) -> Tensor;
    /// [`Self::forward`] of the positions after those `cache` holds, adding theirs to it.
    fn forward_cached(&self, x: &Tensor, rotary: &Rotary, cache: &mut LayerCache) -> Tensor;
}

/// A family's norm over the last axis: (…, C) → (…, C).
pub(crate) trait Norm {
    fn forward(&self, x: &Tensor) -> Tensor;
}

/// What the model needs of a decoder, whichever its family ([`crate::Model`] holds one of each kind).
pub(crate) trait Stack {
    fn embedding(&self) -> &Tensor;
    /// tokens (B, T) → final hidden states (B, T, C), showing `seen` each block's index and MLP activation.
    fn hidden_seen(&self, tokens: &Tensor, seen: &mut dyn FnMut(usize, &Tensor)) -> Tensor;
    /// The final hidden states (B, T, C) of the positions after those `cache` holds, adding theirs to it.
    fn hidden_cached(&self, tokens: &Tensor, cache: &mut KvCache) -> Tensor;
    /// Block `i`: (B, T, C) → (B, T, C).
    fn block(&self, i: usize, x: &Tensor) -> Tensor;
    /// The norm after the last block.
    fn final_norm(&self, x: &Tensor) -> Tensor;
    /// The output projection (V, C): the head, or the embedding when tied.
    fn output_weight(&self) -> &Tensor;

    /// tokens (B, T) → the input embedding (B, T, C).
    fn embed(&self, tokens: &Tensor) -> Tensor {
        Tensor::embedding(self.embedding(), tokens, -1, false, false)
    }
}

impl<L: Block, N: Norm> Stack for Decoder<L, N> {
    fn embedding(&self) -> &Tensor {
        &self.embedding
    }

    fn hidden_seen(&self, tokens: &Tensor, seen: &mut dyn FnMut(usize, &Tensor)) -> Tensor {
        let mut x = self.embed(tokens);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, &self.rotary, &mut |a| seen(i, a));
        }
        self.norm.forward(&x)
    }

    fn hidden_cached(&self, tokens: &Tensor, cache: &mut KvCache) -> Tensor {
        let mut x = self.embed(tokens);
        for (layer, c) in self.layers.iter().zip(cache.layers.iter_mut()) {
            x = layer.forward_cached(&x, &self.rotary, c);
        }
        self.norm.forward(&x)
    }

    fn block(&self, i: usize, x: &Tensor) -> Tensor {
        self.layers[i].forward(x, &self.rotary, &mut |_| {})
    }

    fn final_norm(&self, x: &Tensor) -> Tensor {
        self.norm.forward(x)
    }

    fn output_weight(&self) -> &Tensor {
        self.head.as_ref().unwrap_or(&self.embedding)
    }
}
