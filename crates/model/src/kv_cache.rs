//! Decoding with a KV cache: each layer keeps the keys and values of the positions it has seen, so that
//! the next token costs one position's forward pass instead of the whole window's. [`Model::f_next_logits`]
//! feeds a prompt once (prefill), then one token at a time.

use tch::Tensor;

use crate::{Model, ModelError};

/// One layer's keys and values so far: (B, H_kv, T_past, hd) each, and for a batch of prompts of
/// different lengths (left-padded) which positions hold real tokens.
#[derive(Debug, Default)]
pub struct LayerCache {
    kv: Option<(Tensor, Tensor)>,
    /// (B, T_past) booleans, false at padding; `None` when every position is real.
    keep: Option<Tensor>,
}

impl LayerCache {
    /// Positions held.
    pub fn len(&self) -> i64 {
        self.kv.as_ref().map_or(0, |(k, _)| k.size()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.kv.is_none()
    }

    /// Appends `k`, `v` (B, H_kv, T, hd) and returns every position's keys and values (the appended
    /// positions count as real tokens).
    pub fn append(&mut self, k: Tensor, v: Tensor) -> (Tensor, Tensor) {
        let (k, v) = match self.kv.take() {
            Some((pk, pv)) => (Tensor::cat(&[pk, k], 2), Tensor::cat(&[pv, v], 2)),
            None => (k, v),
        };
        if let Some(keep) = self.keep.take() {
            let (b, held) = (keep.size()[0], keep.size()[1]);
            let new = k.size()[2] - held;
            let real = Tensor::ones([b, new], (tch::Kind::Bool, keep.device()));
            self.keep = Some(if new > 0 {
                Tensor::cat(&[keep, real], 1)
            } else {
                keep
            });
        }
        self.kv = Some((k.shallow_clone(), v.shallow_clone()));
        (k, v)
    }

    /// Which positions hold real tokens (B, T), for a batch of left-padded prompts.
    pub fn keep(&self) -> Option<&Tensor> {
        self.keep.as_ref()
    }
}

/// Every layer's cache for one batch of sequences.
#[derive(Debug)]
pub struct KvCache {
    pub layers: Vec<LayerCache>,
}

impl KvCache {
    /// An empty cache for `model`.
    pub fn new(model: &Model) -> Self {
        KvCache {
            layers: (0..model.config().num_layers)
                .map(|_| LayerCache::default())
                .collect(),
        }
    }

    /// Positions held (the same in every layer).
    pub fn len(&self) -> i64 {
        self.layers.first().map_or(0, LayerCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty cache for a batch of left-padded prompts, to be filled with them first: `keep` (B, T) is
    /// false at their padding, which no position attends to.
    pub fn padded(model: &Model, keep: &Tensor) -> Self {
        let mut cache = Self::new(model);
        for layer in &mut cache.layers {
            layer.keep = Some(keep.to_kind(tch::Kind::Bool));
        }
        cache
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| {
            l.kv = None;
            l.keep = None;
        });
    }
}

/// Scaled dot-product attention of q (B, H, T_q, hd) over k, v (B, H, T_k, hd): causal when q covers the
/// same positions as k (a whole sequence), unmasked when q is the one position after the cached ones.
/// With a `window` W (Mistral), position i sees only positions i − W < j ≤ i. With `keep` (B, T_k), no
/// position sees a padding key (a padding query sees itself, so that no row of the softmax is empty).
pub(crate) fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    window: Option<i64>,
    keep: Option<&Tensor>,
) -> Tensor {
    let (t_q, t_k) = (q.size()[2], k.size()[2]);
    debug_assert!(
        t_q == t_k || t_q == 1,
        "prefill from empty, or one position at a time"
    );
    if let Some(keep) = keep {
        return sdpa(q, k, v, Some(padded_mask(keep, t_q, window, q)), false);
    }
    match window {
        // Decoding: the window is the last W keys.
        Some(w) if t_q == 1 && t_k > w => {
            let (k, v) = (k.narrow(2, t_k - w, w), v.narrow(2, t_k - w, w));
            sdpa(q, &k, &v, None, false)
        }
        Some(w) if t_q == t_k && t_k > w => sdpa(q, k, v, Some(band_mask(t_k, w, q)), false),
        // softmax(q·kᵀ / √hd + mask) · v; scale None = 1/√hd, as HF.
        _ => sdpa(q, k, v, None, t_q == t_k),
    }
}

/// (B, 1, T_q, T_k) booleans: causal (and within the window) over the keys `keep` marks real.
fn padded_mask(keep: &Tensor, t_q: i64, window: Option<i64>, like: &Tensor) -> Tensor {
    let t_k = keep.size()[1];
    let w = window.unwrap_or(t_k);
    let keys = keep.unsqueeze(1); // (B, 1, T_k)
    let allowed = if t_q == t_k {
        let own = Tensor::eye(t_k, (tch::Kind::Bool, like.device()));
        band_mask(t_k, w, like)
            .unsqueeze(0)
            .logical_and(&keys)
            .logical_or(&own)
    } else {
        let recent = Tensor::arange(t_k, (tch::Kind::Int64, like.device())).ge(t_k - w);
        keys.logical_and(&recent)
    };
    allowed.unsqueeze(1)
}

fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<Tensor>, causal: bool) -> Tensor {
    Tensor::scaled_dot_product_attention(q, k, v, mask, 0.0, causal, None, false)
}

/// (T, T) booleans on `like`'s device: true where i − W < j ≤ i.
fn band_mask(t: i64, window: i64, like: &Tensor) -> Tensor {
    let positions = Tensor::arange(t, (tch::Kind::Int64, like.device()));
    let distance = positions.unsqueeze(1) - positions.unsqueeze(0); // i − j
    distance.ge(0).logical_and(&distance.lt(window))
}

impl Model {
    /// The logits (B, V) after the last of `tokens` (B, T), which continue the positions `cache` holds;
    /// their keys and values are added to it. Feed a prompt into an empty cache, then one token at a time.
    pub fn f_next_logits(
        &self,
        tokens: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor, ModelError> {
        self.check_tokens("tokens", tokens)?;
        let (t, past) = (tokens.size()[1], cache.len());
        if past > 0 && t != 1 {
            return Err(ModelError::input(
                format!("{t} tokens after {past} cached positions"),
                "feed a prompt into an empty cache, then one token at a time",
            ));
        }
        if (past + t) as usize > self.config().max_seq_len {
            return Err(ModelError::input(
                format!(
                    "{past} cached positions + {t} exceed max_seq_len {}",
                    self.config().max_seq_len
                ),
                "clear the cache and feed the last max_seq_len tokens again",
            ));
        }
        let hidden = self.stack().hidden_cached(tokens, cache); // (B, T, C)
        let last = hidden.select(1, t - 1); // (B, C)
        Ok(crate::gemv::linear(&last, self.output_weight(), None))
    }
}
