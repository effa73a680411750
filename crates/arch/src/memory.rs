//! What training a model needs in memory at least, from its shapes alone: checked against the device's
//! free memory before anything is allocated, so that a plan whose sizes are each in range but whose
//! product is not ends with an error naming the sizes instead of an allocator's panic.

use crate::ModelConfig;

/// Bytes training needs at least, by part. Every part is a lower bound (libtorch's temporaries, the
/// attention scores, the loss head's chunks and the allocator's caching come on top), so a plan refused
/// for it cannot have fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainingMemory {
    /// f32 weights (the master copy under bf16 autocast too).
    pub weights: u64,
    pub gradients: u64,
    /// AdamW's two f32 moments.
    pub optimizer: u64,
    /// What each layer keeps for the backward pass: at least its input, its normalized input, the
    /// attention output and the MLP's hidden activations, per token of a micro-batch, in f32. With
    /// activation checkpointing: every layer's input, and one layer's tensors while it is recomputed.
    pub activations: u64,
}

impl TrainingMemory {
    /// At least what one forward and backward pass over `micro_batch_sequences` sequences of `seq_len`
    /// tokens, and the AdamW update, hold at once; `recompute`: with activation checkpointing.
    pub fn at_least(
        config: &ModelConfig,
        micro_batch_sequences: u64,
        seq_len: u64,
        recompute: bool,
    ) -> Self {
        let params = config.num_params();
        let f32_bytes = |n: u128| u64::try_from(n.saturating_mul(4)).unwrap_or(u64::MAX);
        let tokens = micro_batch_sequences as u128 * seq_len as u128;
        let (c, l) = (config.hidden_size as u128, config.num_layers as u128);
        let per_layer = 3 * c + 2 * config.intermediate_size as u128;
        let per_token = match recompute {
            true => l * c + per_layer,
            false => l * per_layer,
        };
        TrainingMemory {
            weights: f32_bytes(params as u128),
            gradients: f32_bytes(params as u128),
            optimizer: f32_bytes(2 * params as u128),
            activations: f32_bytes(tokens.saturating_mul(per_token)),
        }
    }

    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.gradients)
            .saturating_add(self.optimizer)
            .saturating_add(self.activations)
    }

    /// `12.30 GiB (weights 1.00 GiB, gradients 1.00 GiB, AdamW moments 2.00 GiB, activations 8.30 GiB)`.
    pub fn to_text(&self) -> String {
        format!(
            "{} (weights {}, gradients {}, AdamW moments {}, activations {})",
            gib(self.total()),
            gib(self.weights),
            gib(self.gradients),
            gib(self.optimizer),
            gib(self.activations)
        )
    }
}

/// Bytes in GiB with two decimals.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_follow_from_the_shapes() {
        let c = ModelConfig::pythia_70m();
        let n = c.num_params();
        let m = TrainingMemory::at_least(&c, 8, 2048, false);
        assert_eq!((m.weights, m.gradients, m.optimizer), (4 * n, 4 * n, 8 * n));
        // 6 layers × (3·512 + 2·2048) floats per token × 8·2048 tokens × 4 bytes.
        assert_eq!(m.activations, 6 * (3 * 512 + 2 * 2048) * 8 * 2048 * 4);
        assert_eq!(m.total(), 16 * n + m.activations);
        // Recomputing: 6 layer inputs (512 each) and one layer's (3·512 + 2·2048) per token.
        let r = TrainingMemory::at_least(&c, 8, 2048, true);
        assert_eq!(r.activations, (6 * 512 + 3 * 512 + 2 * 2048) * 8 * 2048 * 4);
        assert_eq!(r.weights + r.gradients + r.optimizer, 16 * n);
        assert!(m.to_text().starts_with(&gib(m.total())), "{}", m.to_text());
    }

    #[test]
    fn sizes_whose_product_overflows_saturate() {
        let m = TrainingMemory::at_least(&ModelConfig::tiny(), u64::MAX, u64::MAX, false);
        assert_eq!((m.activations, m.total()), (u64::MAX, u64::MAX));
    }
}
