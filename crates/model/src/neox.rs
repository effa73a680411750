//! GPT-NeoX / Pythia (Black et al. 2022; Biderman et al. 2023), computing what Hugging Face's
//! `GPTNeoXForCausalLM` computes, with its parameter names:
//!
//! ```text
//! x = embed_in[tokens]                                         (B, T, C)
//! per block:  a = attention(input_layernorm(x))
//!             parallel:   x = x + a + mlp(post_attention_layernorm(x))
//!             sequential: x = x + a;  x = x + mlp(post_attention_layernorm(x))
//! logits = final_layer_norm(x) · embed_outᵀ                     (B, T, V)
//! ```
//!
//! Attention has a fused `query_key_value` projection laid out per head as (H, 3, head_dim): head h's
//! q, k and v are rows [3h·hd, 3h·hd + hd), then k, then v. Rotary turns the first `rotary_pct · head_dim`
//! dims of q and k. The MLP is dense_h_to_4h → GELU (exact, erf) → dense_4h_to_h. Every linear has a bias.

use tch::{nn, Tensor};

use crate::init::{self, Linear, INIT_STD};
use crate::kv_cache::{causal_attention, LayerCache};
use crate::rope::Rotary;
use crate::stack::{Block, Decoder, Norm};
use crate::{ModelConfig, ModelError};

/// LayerNorm over the last axis with weight and bias.
#[derive(Debug)]
pub struct LayerNorm {
    /// (C), initialized to 1.
    pub weight: Tensor,
    /// (C), initialized to 0.
    pub bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn new(path: &nn::Path, size: i64, eps: f64) -> Result<Self, ModelError> {
        let weight = init::constant(path, "weight", &[size], 1.0)?;
        let bias = init::constant(path, "bias", &[size], 0.0)?;
        Ok(LayerNorm { weight, bias, eps })
    }
}

impl Norm for LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm(
            self.weight.size(),
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )
    }
}

/// Causal multi-head self-attention with a fused QKV projection and partial rotary.
#[derive(Debug)]
pub struct Attention {
    /// C → 3C, rows grouped per head as (H, 3, head_dim).
    pub query_key_value: Linear,
    /// C → C, writes into the residual stream.
    pub dense: Linear,
    num_heads: i64,
    head_dim: i64,
}

impl Attention {
    fn new(path: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        let c = config.hidden_size as i64;
        Ok(Attention {
            query_key_value: Linear::new(&(path / "query_key_value"), c, 3 * c, true, INIT_STD)?,
            dense: Linear::new(
                &(path / "dense"),
                c,
                c,
                true,
                init::residual_std(config.num_layers),
            )?,
            num_heads: config.num_heads as i64,
            head_dim: config.head_dim() as i64,
        })
    }

    /// (B, T, C) → (B, T, C)
    pub fn forward(&self, x: &Tensor, rotary: &Rotary) -> Tensor {
        let (q, k, v) = self.project(x, rotary, 0);
        self.attend(&q, &k, &v, x, None)
    }

    /// [`Self::forward`] for positions `cache.len()..` of a sequence whose earlier keys and values
    /// `cache` holds (appending these positions'). Without earlier positions this is `forward`; with
    /// them, `x` must be one position (decoding).
    pub fn forward_cached(&self, x: &Tensor, rotary: &Rotary, cache: &mut LayerCache) -> Tensor {
        let (q, k, v) = self.project(x, rotary, cache.len());
        let (k, v) = cache.append(k, v);
        self.attend(&q, &k, &v, x, cache.keep())
    }

    /// q, k, v (B, H, T, hd) of `x` at positions `offset..`, q and k rotated.
    fn project(&self, x: &Tensor, rotary: &Rotary, offset: i64) -> (Tensor, Tensor, Tensor) {
        let (b, t, _) = x
            .size3()
            .expect("(B, T, C) input, checked by Model::forward");
        let qkv = self
            .query_key_value
            .forward(x) // (B, T, 3C)
            .view([b, t, self.num_heads, 3 * self.head_dim])
            .transpose(1, 2); // (B, H, T, 3·hd)
        let qkv = qkv.chunk(3, -1); // q, k, v: (B, H, T, hd) each
        let q = rotary.apply_from(&qkv[0], offset);
        let k = rotary.apply_from(&qkv[1], offset);
        (q, k, qkv[2].shallow_clone())
    }

    /// softmax(q·kᵀ / √hd + causal mask) · v through `dense`, shaped like `x`.
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        x: &Tensor,
        keep: Option<&Tensor>,
    ) -> Tensor {
        let (b, t, c) = x.size3().expect("(B, T, C) input");
        let y = causal_attention(q, k, v, None, keep); // (B, H, T, hd)
        let y = y.transpose(1, 2).reshape([b, t, c]); // (B, T, C)
        self.dense.forward(&y)
    }
}

/// Position-wise MLP: C → I → C with exact GELU.
#[derive(Debug)]
pub struct Mlp {
    /// C → I
    pub dense_h_to_4h: Linear,
    /// I → C, writes into the residual stream.
    pub dense_4h_to_h: Linear,
}

impl Mlp {
    fn new(path: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        let (c, i) = (config.hidden_size as i64, config.intermediate_size as i64);
        let residual_std = init::residual_std(config.num_layers);
        Ok(Mlp {
            dense_h_to_4h: Linear::new(&(path / "dense_h_to_4h"), c, i, true, INIT_STD)?,
            dense_4h_to_h: Linear::new(&(path / "dense_4h_to_h"), i, c, true, residual_std)?,
        })
    }

    /// (B, T, C) → (B, T, C)
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_seen(x, &mut |_| {})
    }

    /// [`Self::forward`], showing `seen` the activation (B, T, I) that enters `dense_4h_to_h`.
    pub fn forward_seen(&self, x: &Tensor, seen: &mut dyn FnMut(&Tensor)) -> Tensor {
        // HF "gelu" is the exact erf form, not the tanh approximation.
        let a = self.dense_h_to_4h.forward(x).gelu("none");
        seen(&a);
        self.dense_4h_to_h.forward(&a)
    }
}

/// One transformer block, `gpt_neox.layers.{i}`.
#[derive(Debug)]
pub struct Layer {
    /// Norm before attention.
    pub input_layernorm: LayerNorm,
    /// Norm before the MLP (applied to x itself when the residual is parallel).
    pub post_attention_layernorm: LayerNorm,
    /// Self-attention.
    pub attention: Attention,
    /// Feed-forward.
    pub mlp: Mlp,
    use_parallel_residual: bool,
}

impl Layer {
    fn new(path: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        let (c, eps) = (config.hidden_size as i64, config.norm_eps);
        Ok(Layer {
            input_layernorm: LayerNorm::new(&(path / "input_layernorm"), c, eps)?,
            post_attention_layernorm: LayerNorm::new(&(path / "post_attention_layernorm"), c, eps)?,
            attention: Attention::new(&(path / "attention"), config)?,
            mlp: Mlp::new(&(path / "mlp"), config)?,
            use_parallel_residual: config.use_parallel_residual,
        })
    }

    /// The residual stream after the attention output `attention`: plus the MLP, in parallel or after.
    fn finish(&self, x: &Tensor, attention: Tensor, seen: &mut dyn FnMut(&Tensor)) -> Tensor {
        if self.use_parallel_residual {
            // GPT-J style: both branches read the same x.
            let mlp = self
                .mlp
                .forward_seen(&self.post_attention_layernorm.forward(x), seen);
            x + attention + mlp
        } else {
            let x = x + attention;
            let mlp = self
                .mlp
                .forward_seen(&self.post_attention_layernorm.forward(&x), seen);
            x + mlp
        }
    }
}

impl Block for Layer {
    fn forward(&self, x: &Tensor, rotary: &Rotary, seen: &mut dyn FnMut(&Tensor)) -> Tensor {
        let attention = self
            .attention
            .forward(&self.input_layernorm.forward(x), rotary);
        self.finish(x, attention, seen)
    }

    fn forward_cached(&self, x: &Tensor, rotary: &Rotary, cache: &mut LayerCache) -> Tensor {
        let attention =
            self.attention
                .forward_cached(&self.input_layernorm.forward(x), rotary, cache);
        self.finish(x, attention, &mut |_| {})
    }
}

/// The whole GPT-NeoX causal LM (HF `GPTNeoXForCausalLM`): `gpt_neox.embed_in`, `gpt_neox.layers.{i}`, `gpt_neox.final_layer_norm`, `embed_out`.
pub type GptNeox = Decoder<Layer, LayerNorm>;

impl GptNeox {
    /// Creates the parameters under `path` with their HF names; `config` must be valid.
    pub fn new(path: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        let (v, c) = (config.vocab_size as i64, config.hidden_size as i64);
        let base = path / "gpt_neox";
        let embed_in = init::normal(&(&base / "embed_in"), "weight", &[v, c], INIT_STD)?;
        let layers = (0..config.num_layers)
            .map(|i| Layer::new(&(&base / "layers" / i), config))
            .collect::<Result<Vec<_>, _>>()?;
        let final_layer_norm = LayerNorm::new(&(&base / "final_layer_norm"), c, config.norm_eps)?;
        let embed_out = init::head(&(path / "embed_out"), config)?;
        let rotary = Rotary::for_model(config, path.device())?;
        Ok(Decoder {
            embedding: embed_in,
            layers,
            norm: final_layer_norm,
            head: embed_out,
            rotary,
        })
    }
}
