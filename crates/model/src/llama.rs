//! Llama (Touvron et al. 2023), computing what Hugging Face's `LlamaForCausalLM` computes, with its
//! parameter names:
//!
//! ```text
//! x = embed_tokens[tokens]                                     (B, T, C)
//! per block:  x = x + attention(input_layernorm(x))
//!             x = x + mlp(post_attention_layernorm(x))
//! logits = norm(x) · lm_headᵀ   (lm_head = embed_tokens when tied)   (B, T, V)
//! ```
//!
//! Norms are RMSNorm (weight only). Attention is grouped-query: H query heads share Hkv key/value heads,
//! query head h reading kv head ⌊h / (H/Hkv)⌋; RoPE turns the whole head. The MLP is SwiGLU:
//! down(silu(gate(x)) ⊙ up(x)). No linear has a bias.
//!
//! The other Llama-like families differ only in attention, each as its Hugging Face model does:
//! Qwen2 adds biases to q_proj, k_proj and v_proj; Qwen3 RMS-normalizes every query and key head
//! (`self_attn.q_norm`, `self_attn.k_norm`, over the head's dims) before RoPE; Mistral lets a position
//! see only the `sliding_window` positions up to itself. A `head_dim` other than C / H makes q_proj
//! C → H·hd and o_proj H·hd → C.

use tch::{nn, Tensor};

use crate::init::{self, Linear, INIT_STD};
use crate::kv_cache::{causal_attention, LayerCache};
use crate::rope::Rotary;
use crate::stack::{Block, Decoder, Norm};
use crate::{ModelConfig, ModelError};

/// RMSNorm: x / √(mean(x²) + ε) · weight, over the last axis (computed in f32 for low-precision inputs).
#[derive(Debug)]
pub struct RmsNorm {
    /// (C), initialized to 1.
    pub weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(path: &nn::Path, size: i64, eps: f64) -> Result<Self, ModelError> {
        Ok(RmsNorm {
            weight: init::constant(path, "weight", &[size], 1.0)?,
            eps,
        })
    }
}

impl Norm for RmsNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.rms_norm(self.weight.size(), Some(&self.weight), self.eps)
    }
}

/// Causal grouped-query self-attention with rotary on the full head.
#[derive(Debug)]
pub struct Attention {
    /// C → H·hd (with a bias in Qwen2)
    pub q_proj: Linear,
    /// C → Hkv·hd (with a bias in Qwen2)
    pub k_proj: Linear,
    /// C → Hkv·hd (with a bias in Qwen2)
    pub v_proj: Linear,
    /// H·hd → C, writes into the residual stream.
    pub o_proj: Linear,
    /// Qwen3: RMSNorm (hd) of each query head, before RoPE.
    pub q_norm: Option<RmsNorm>,
    /// Qwen3: RMSNorm (hd) of each key head, before RoPE.
    pub k_norm: Option<RmsNorm>,
    num_heads: i64,
    num_kv_heads: i64,
    head_dim: i64,
    /// Mistral: positions a query sees, itself included.
    window: Option<i64>,
}

impl Attention {
    fn new(path: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        let (c, hd) = (config.hidden_size as i64, config.head_dim() as i64);
        let (q, kv) = (
            config.num_heads as i64 * hd,
            config.num_kv_heads as i64 * hd,
        );
        let residual_std = init::residual_std(config.num_layers);
        let bias = config.family.qkv_bias();
        let head_norm = |name: &str| {
            config
                .family
                .qk_norm()
                .then(|| RmsNorm::new(&(path / name), hd, config.norm_eps))
                .transpose()
        };
        Ok(Attention {
            q_proj: Linear::new(&(path / "q_proj"), c, q, bias, INIT_STD)?,
            k_proj: Linear::new(&(path / "k_proj"), c, kv, bias, INIT_STD)?,
            v_proj: Linear::new(&(path / "v_proj"), c, kv, bias, INIT_STD)?,
            o_proj: Linear::new(&(path / "o_proj"), q, c, false, residual_std)?,
            q_norm: head_norm("q_norm")?,
            k_norm: head_norm("k_norm")?,
            num_heads: config.num_heads as i64,
            num_kv_heads: config.num_kv_heads as i64,
            head_dim: hd,
            window: config.sliding_window.map(|w| w as i64),
        })
    }

    /// (B, T, C) → (B, T, C)
    pub fn forward(&self, x: &Tensor, rotary: &Rotary) -> Tensor {
        let (q, k, v) = self.project(x, rotary, 0);
        self.attend(&q, k, v, x, None)
    }

    /// [`Self::forward`] for positions `cache.len()..` of a sequence whose earlier keys and values
    /// `cache` holds (appending these positions', at H_kv heads). Without earlier positions this is
    /// `forward`; with them, `x` must be one position (decoding).
    pub fn forward_cached(&self, x: &Tensor, rotary: &Rotary, cache: &mut LayerCache) -> Tensor {
        let (q, k, v) = self.project(x, rotary, cache.len());
        let (k, v) = cache.append(k, v);
        self.attend(&q, k, v, x, cache.keep())
    }

    /// q (B, H, T, hd) and k, v (B, Hkv, T, hd) of `x` at positions `offset..`, q and k rotated.
    fn project(&self, x: &Tensor, rotary: &Rotary, offset: i64) -> (Tensor, Tensor, Tensor) {
        let (b, t, _) = x
            .size3()
            .expect("(B, T, C) input, checked by Model::forward");
        let heads = |proj: &Linear, n: i64, norm: Option<&RmsNorm>| {
            let h = proj.forward(x).view([b, t, n, self.head_dim]);
            let h = norm.map_or(h.shallow_clone(), |norm| norm.forward(&h));
            h.transpose(1, 2) // (B, n, T, hd)
        };
        let q = heads(&self.q_proj, self.num_heads, self.q_norm.as_ref());
        let k = heads(&self.k_proj, self.num_kv_heads, self.k_norm.as_ref());
        let v = heads(&self.v_proj, self.num_kv_heads, None);
        (
            rotary.apply_from(&q, offset),
            rotary.apply_from(&k, offset),
            v,
        )
    }

    /// Attention of q over k, v through `o_proj`, shaped like `x`.
    fn attend(
        &self,
        q: &Tensor,
        k: Tensor,
        v: Tensor,
        x: &Tensor,
        keep: Option<&Tensor>,
    ) -> Tensor {
        let (b, t, _) = x.size3().expect("(B, T, C) input");
        // Each kv head serves H/Hkv consecutive query heads. Repeating them here (as HF's `repeat_kv`)
        // instead of sdpa's `enable_gqa` keeps every sdpa backend (flash, memory-efficient) available.
        let group = self.num_heads / self.num_kv_heads;
        let (k, v) = if group > 1 {
            (
                k.repeat_interleave_self_int(group, 1, None),
                v.repeat_interleave_self_int(group, 1, None),
            )
        } else {
            (k, v)
        }; // (B, H, T, hd)
        let y = causal_attention(q, &k, &v, self.window, keep); // (B, H, T, hd)
        let y = y
            .transpose(1, 2)
            .reshape([b, t, self.num_heads * self.head_dim]); // (B, T, H·hd)
        self.o_proj.forward(&y)
    }
}

/// SwiGLU MLP (Shazeer 2020): C → I (gated) → C.
#[derive(Debug)]
pub struct Mlp {
    /// C → I, through SiLU.
    pub gate_proj: Linear,
    /// C → I
    pub up_proj: Linear,
    /// I → C, writes into the residual stream.
    pub down_proj: Linear,
}

impl Mlp {
    fn new(path: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        let (c, i) = (config.hidden_size as i64, config.intermediate_size as i64);
        let residual_std = init::residual_std(config.num_layers);
        Ok(Mlp {
            gate_proj: Linear::new(&(path / "gate_proj"), c, i, false, INIT_STD)?,
            up_proj: Linear::new(&(path / "up_proj"), c, i, false, INIT_STD)?,
            down_proj: Linear::new(&(path / "down_proj"), i, c, false, residual_std)?,
        })
    }

    /// (B, T, C) → (B, T, C)
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_seen(x, &mut |_| {})
    }

    /// [`Self::forward`], showing `seen` the activation (B, T, I) that enters `down_proj`.
    pub fn forward_seen(&self, x: &Tensor, seen: &mut dyn FnMut(&Tensor)) -> Tensor {
        let hidden = self.gate_proj.forward(x).silu() * self.up_proj.forward(x); // (B, T, I)
        seen(&hidden);
        self.down_proj.forward(&hidden)
    }
}

/// One transformer block, `model.layers.{i}`.
#[derive(Debug)]
pub struct Layer {
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
    /// Self-attention (`self_attn`).
    pub self_attn: Attention,
    /// Feed-forward.
    pub mlp: Mlp,
}

impl Layer {
    fn new(path: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        let (c, eps) = (config.hidden_size as i64, config.norm_eps);
        Ok(Layer {
            input_layernorm: RmsNorm::new(&(path / "input_layernorm"), c, eps)?,
            self_attn: Attention::new(&(path / "self_attn"), config)?,
            post_attention_layernorm: RmsNorm::new(&(path / "post_attention_layernorm"), c, eps)?,
            mlp: Mlp::new(&(path / "mlp"), config)?,
        })
    }
}

impl Block for Layer {
    fn forward(&self, x: &Tensor, rotary: &Rotary, seen: &mut dyn FnMut(&Tensor)) -> Tensor {
        let x = x + self
            .self_attn
            .forward(&self.input_layernorm.forward(x), rotary);
        let mlp = self
            .mlp
            .forward_seen(&self.post_attention_layernorm.forward(&x), seen);
        x + mlp
    }

    fn forward_cached(&self, x: &Tensor, rotary: &Rotary, cache: &mut LayerCache) -> Tensor {
        let x = x + self
            .self_attn
            .forward_cached(&self.input_layernorm.forward(x), rotary, cache);
        let mlp = self.mlp.forward(&self.post_attention_layernorm.forward(&x));
        x + mlp
    }
}

/// The whole Llama causal LM (HF `LlamaForCausalLM`): `model.embed_tokens`, `model.layers.{i}`, `model.norm`, `lm_head`.
pub type Llama = Decoder<Layer, RmsNorm>;

impl Llama {
    /// Creates the parameters under `path` with their HF names; `config` must be valid.
    pub fn new(path: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        let (v, c) = (config.vocab_size as i64, config.hidden_size as i64);
        let base = path / "model";
        let embed_tokens = init::normal(&(&base / "embed_tokens"), "weight", &[v, c], INIT_STD)?;
        let layers = (0..config.num_layers)
            .map(|i| Layer::new(&(&base / "layers" / i), config))
            .collect::<Result<Vec<_>, _>>()?;
        let norm = RmsNorm::new(&(&base / "norm"), c, config.norm_eps)?;
        let lm_head = init::head(&(path / "lm_head"), config)?;
        let rotary = Rotary::for_model(config, path.device())?;
        Ok(Decoder {
            embedding: embed_tokens,
            layers,
            norm,
            head: lm_head,
            rotary,
        })
    }
}
