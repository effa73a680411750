//! Decoding with a KV cache: each layer keeps the keys and values of the positions it has seen, so that
//! the next token costs one position's forward pass instead of the whole window's. [`Model::f_next_logits`]
//! feeds a prompt once (prefill), then one token at a time.

use tch::Tensor;

use crate::{Arch, Model, ModelError};

/// One layer's keys and values so far: (B, H_kv, T_past, hd) each.
#[derive(Debug, Default)]
pub struct LayerCache {
    kv: Option<(Tensor, Tensor)>,
}

impl LayerCache {
    /// Positions held.
    pub fn len(&self) -> i64 {
        self.kv.as_ref().map_or(0, |(k, _)| k.size()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.kv.is_none()
    }

    /// Appends `k`, `v` (B, H_kv, T, hd) and returns every position's keys and values.
    pub fn append(&mut self, k: Tensor, v: Tensor) -> (Tensor, Tensor) {
        let (k, v) = match self.kv.take() {
            Some((pk, pv)) => (Tensor::cat(&[pk, k], 2), Tensor::cat(&[pv, v], 2)),
            None => (k, v),
        };
        self.kv = Some((k.shallow_clone(), v.shallow_clone()));
        (k, v)
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

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| l.kv = None);
    }
}

/// Scaled dot-product attention of q (B, H, T_q, hd) over k, v (B, H, T_k, hd): causal when q covers the
/// same positions as k (a whole sequence), unmasked when q is the one position after the cached ones.
/// With a `window` W (Mistral), position i sees only positions i − W < j ≤ i.
pub(crate) fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, window: Option<i64>) -> Tensor {
    let (t_q, t_k) = (q.size()[2], k.size()[2]);
    debug_assert!(
        t_q == t_k || t_q == 1,
        "prefill from empty, or one position at a time"
    );
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
        let hidden = match self.arch() {
            Arch::Neox(m) => m.hidden_cached(tokens, cache),
            Arch::Llama(m) => m.hidden_cached(tokens, cache),
        }; // (B, T, C)
        let last = hidden.select(1, t - 1); // (B, C)
        Ok(last.linear(self.output_weight(), None::<Tensor>))
    }
}
