//! The shape both families share: an input embedding, blocks on the residual stream, a final norm and an
//! output projection (the embedding itself when tied). A family says what its pieces are
//! ([`Stack`]); the walks over them — the hidden states, one block at a time, cached decoding — are
//! written once, here.

use tch::Tensor;

use crate::kv_cache::{KvCache, LayerCache};

/// A family's pieces, block by block.
pub(crate) trait Stack {
    /// The input embedding (V, C).
    fn embedding(&self) -> &Tensor;
    /// The output projection (V, C), `None` when tied to the embedding.
    fn head(&self) -> Option<&Tensor>;
    /// How many blocks.
    fn blocks(&self) -> usize;
    /// Block `i`: (B, T, C) → (B, T, C); `seen` is shown the activation entering its MLP's output
    /// projection (B, T, I).
    fn block_seen(&self, i: usize, x: &Tensor, seen: &mut dyn FnMut(&Tensor)) -> Tensor;
    /// Block `i` of the positions after those `cache` holds, adding theirs to it.
    fn block_cached(&self, i: usize, x: &Tensor, cache: &mut LayerCache) -> Tensor;
    /// The norm after the last block: (…, C) → (…, C).
    fn final_norm(&self, x: &Tensor) -> Tensor;
}

impl dyn Stack + '_ {
    /// tokens (B, T) → the input embedding (B, T, C).
    pub(crate) fn embed(&self, tokens: &Tensor) -> Tensor {
        Tensor::embedding(self.embedding(), tokens, -1, false, false)
    }

    /// tokens (B, T) → final hidden states (B, T, C), showing `seen` each block's index and MLP activation.
    pub(crate) fn hidden_seen(
        &self,
        tokens: &Tensor,
        seen: &mut dyn FnMut(usize, &Tensor),
    ) -> Tensor {
        let mut x = self.embed(tokens);
        for i in 0..self.blocks() {
            x = self.block_seen(i, &x, &mut |a| seen(i, a));
        }
        self.final_norm(&x)
    }

    /// The final hidden states (B, T, C) of the positions after those `cache` holds, adding theirs to it.
    pub(crate) fn hidden_cached(&self, tokens: &Tensor, cache: &mut KvCache) -> Tensor {
        let mut x = self.embed(tokens);
        for (i, c) in cache.layers.iter_mut().take(self.blocks()).enumerate() {
            x = self.block_cached(i, &x, c);
        }
        self.final_norm(&x)
    }

    /// The output projection (V, C): the head, or the embedding when tied.
    pub(crate) fn output_weight(&self) -> &Tensor {
        self.head().unwrap_or(self.embedding())
    }
}
