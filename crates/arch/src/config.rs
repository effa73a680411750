//! Model shapes: [`ModelConfig`], its presets, validation, parameter and FLOP counts.
//!
//! Field names follow the Hugging Face `config.json` keys where the two families agree; the HF spellings
//! of the others are accepted as aliases (`num_hidden_layers`, `num_attention_heads`, `num_key_value_heads`,
//! `max_position_embeddings`, `rotary_emb_base`, `layer_norm_eps` / `rms_norm_eps`, `tie_word_embeddings`).

use serde::{Deserialize, Serialize};

use crate::{ConfigError, RopeScaling};

/// The architecture family; it decides the block layout and the parameter names.
///
/// Mistral, Qwen2 and Qwen3 are Llama blocks (RMSNorm, grouped-query attention, SwiGLU, Llama's parameter
/// names) with one difference each, and export under their own Hugging Face `model_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// GPT-NeoX / Pythia: LayerNorm with bias, fused QKV with bias, partial rotary, GELU MLP,
    /// optionally parallel residual (HF `GPTNeoXForCausalLM`).
    #[serde(alias = "gpt_neox")]
    Neox,
    /// Llama: RMSNorm, no biases, grouped-query attention, full rotary, SwiGLU MLP (HF `LlamaForCausalLM`).
    Llama,
    /// Mistral: Llama with an optional sliding attention window (HF `MistralForCausalLM`).
    Mistral,
    /// Qwen 2 / 2.5: Llama with biases on the q, k and v projections (HF `Qwen2ForCausalLM`).
    Qwen2,
    /// Qwen 3: Llama with an RMSNorm over each query and key head before RoPE (HF `Qwen3ForCausalLM`).
    Qwen3,
}

impl Family {
    /// Built from Llama blocks (every family but NeoX).
    pub fn is_llama_like(self) -> bool {
        self != Family::Neox
    }

    /// The q, k and v projections have biases (Qwen2).
    pub fn qkv_bias(self) -> bool {
        self == Family::Qwen2
    }

    /// Each query and key head is RMS-normalized before RoPE (Qwen3's `q_norm`, `k_norm`).
    pub fn qk_norm(self) -> bool {
        self == Family::Qwen3
    }

    /// The `model_type` of its Hugging Face config.json.
    pub fn hf_model_type(self) -> &'static str {
        match self {
            Family::Neox => "gpt_neox",
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
        }
    }

    /// The `architectures` entry of its Hugging Face config.json.
    pub fn hf_architecture(self) -> &'static str {
        match self {
            Family::Neox => "GPTNeoXForCausalLM",
            Family::Llama => "LlamaForCausalLM",
            Family::Mistral => "MistralForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Qwen3 => "Qwen3ForCausalLM",
        }
    }
}

/// The shape of a decoder-only transformer. Build a model from it with `rewarm_model::Model::new`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture family (`neox`, `llama`, `mistral`, `qwen2` or `qwen3`).
    pub family: Family,
    /// V: rows of the embedding and of the output projection.
    pub vocab_size: usize,
    /// C: model width.
    pub hidden_size: usize,
    /// L: number of transformer blocks.
    #[serde(alias = "num_hidden_layers")]
    pub num_layers: usize,
    /// H: query heads; head_dim = C / H unless `head_dim` says otherwise.
    #[serde(alias = "num_attention_heads")]
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention); must equal `num_heads` for `neox`.
    #[serde(alias = "num_key_value_heads")]
    pub num_kv_heads: usize,
    /// Width of the MLP's hidden layer (4·C in Pythia; the SwiGLU width in Llama).
    pub intermediate_size: usize,
    /// Longest sequence the model accepts; the rotary tables are precomputed for this many positions.
    #[serde(alias = "max_position_embeddings")]
    pub max_seq_len: usize,
    /// Fraction of each head's dims that are rotated (HF GPT-NeoX `rotary_pct`); Llama rotates all (1.0).
    #[serde(default = "default_rotary_pct")]
    pub rotary_pct: f64,
    /// RoPE base θ (GPT-NeoX `rotary_emb_base`, Llama `rope_theta`).
    #[serde(default = "default_rope_theta", alias = "rotary_emb_base")]
    pub rope_theta: f64,
    /// ε of LayerNorm (neox) or RMSNorm (llama).
    #[serde(alias = "layer_norm_eps", alias = "rms_norm_eps")]
    pub norm_eps: f64,
    /// Share the input embedding with the output projection (logits = x·Eᵀ).
    #[serde(alias = "tie_word_embeddings")]
    pub tie_embeddings: bool,
    /// NeoX only: x + attn(ln1(x)) + mlp(ln2(x)) instead of two sequential residual steps (Pythia: true).
    /// Llama is always sequential, so it must be false there.
    #[serde(default = "default_use_parallel_residual")]
    pub use_parallel_residual: bool,
    /// Width of each attention head when it is not C / H (Qwen3: 128 at C = 1024, H = 16); Llama-like
    /// families only. The queries then span H·head_dim, and `o_proj` maps that back to C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// RoPE scaling (Llama 3.x's `llama3` rule); Llama-like families only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// Mistral only: each position attends to itself and the `sliding_window − 1` before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<usize>,
}

// Defaults are those of HF `GPTNeoXConfig`, so a Pythia config.json's omitted keys mean the same here.
pub(crate) fn default_rotary_pct() -> f64 {
    0.25
}
pub(crate) fn default_rope_theta() -> f64 {
    10_000.0
}
pub(crate) fn default_use_parallel_residual() -> bool {
    true
}

// Guards against typos such as an extra zero; far above any model this tool trains.
const MAX_WIDTH: usize = 1 << 20;
const MAX_VOCAB: usize = 1 << 24;
const MAX_LAYERS: usize = 1 << 12;
const MAX_SEQ_LEN: usize = 1 << 24;

impl ModelConfig {
    /// Checks every field; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_sizes()?;
        self.check_heads()?;
        self.check_numbers()?;
        self.check_family()
    }

    /// Every size positive and below a bound far above any model (a typo such as an extra zero).
    fn check_sizes(&self) -> Result<(), ConfigError> {
        let sizes = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_WIDTH),
            ("num_layers", self.num_layers, MAX_LAYERS),
            ("num_heads", self.num_heads, MAX_WIDTH),
            ("num_kv_heads", self.num_kv_heads, MAX_WIDTH),
            ("intermediate_size", self.intermediate_size, MAX_WIDTH),
            ("max_seq_len", self.max_seq_len, MAX_SEQ_LEN),
        ];
        let optional = [
            ("head_dim", self.head_dim, MAX_WIDTH),
            ("sliding_window", self.sliding_window, MAX_SEQ_LEN),
        ];
        let optional = optional
            .into_iter()
            .filter_map(|(field, value, max)| Some((field, value?, max)));
        for (field, value, max) in sizes.into_iter().chain(optional) {
            if value == 0 || value > max {
                return Err(ConfigError::new(
                    field,
                    format!("= {value} is outside 1..={max}"),
                    format!("set `{field}` to a positive size (check for a typo)"),
                ));
            }
        }
        Ok(())
    }

    /// Heads split the width, and kv heads the query heads.
    fn check_heads(&self) -> Result<(), ConfigError> {
        if self.head_dim.is_none() && self.hidden_size % self.num_heads != 0 {
            return Err(ConfigError::new(
                "hidden_size",
                format!(
                    "= {} is not divisible by num_heads = {}",
                    self.hidden_size, self.num_heads
                ),
                "choose hidden_size = num_heads × head_dim (e.g. a head_dim of 64)",
            ));
        }
        if self.num_heads % self.num_kv_heads != 0 {
            return Err(ConfigError::new(
                "num_kv_heads",
                format!("= {} does not divide num_heads = {}", self.num_kv_heads, self.num_heads),
                "grouped-query attention shares each kv head among num_heads / num_kv_heads query heads; \
                 pick a divisor of num_heads",
            ));
        }
        Ok(())
    }

    /// RoPE base, norm ε and the rotated fraction of each head.
    fn check_numbers(&self) -> Result<(), ConfigError> {
        for (field, value) in [("rope_theta", self.rope_theta), ("norm_eps", self.norm_eps)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ConfigError::new(
                    field,
                    format!("= {value} is not a positive finite number"),
                    "use the published value (rope_theta 10000, norm_eps 1e-5)",
                ));
            }
        }
        if !(self.rotary_pct > 0.0 && self.rotary_pct <= 1.0) {
            return Err(ConfigError::new(
                "rotary_pct",
                format!("= {} is outside (0, 1]", self.rotary_pct),
                "set the fraction of head dims to rotate (Pythia 0.25, Llama 1.0)",
            ));
        }
        let rotary_dims = self.rotary_dims();
        if rotary_dims == 0 || rotary_dims % 2 != 0 {
            return Err(ConfigError::new(
                "rotary_pct",
                format!(
                    "= {} rotates {rotary_dims} of head_dim = {} dims, but rotary needs a positive even count",
                    self.rotary_pct,
                    self.head_dim()
                ),
                "choose rotary_pct so that head_dim × rotary_pct is even (e.g. 0.25 with head_dim 64)",
            ));
        }
        Ok(())
    }

    /// What each family's blocks require.
    fn check_family(&self) -> Result<(), ConfigError> {
        if self.family == Family::Neox {
            return self.check_neox();
        }
        if self.rotary_pct != 1.0 {
            return Err(ConfigError::new(
                "rotary_pct",
                format!("= {} but Llama rotates the whole head", self.rotary_pct),
                "set rotary_pct = 1.0 for the Llama-like families",
            ));
        }
        if self.use_parallel_residual {
            return Err(ConfigError::new(
                "use_parallel_residual",
                "= true but Llama blocks are sequential",
                "set use_parallel_residual = false for the Llama-like families",
            ));
        }
        if self.sliding_window.is_some() && self.family != Family::Mistral {
            return Err(ConfigError::new(
                "sliding_window",
                format!(
                    "is set, but only Mistral's attention has a window (family = \"{}\")",
                    self.family.hf_model_type()
                ),
                "remove sliding_window, or set family = \"mistral\"",
            ));
        }
        self.rope_scaling
            .as_ref()
            .map_or(Ok(()), RopeScaling::validate)
    }

    /// GPT-NeoX: no grouped-query attention, and none of the Llama-like options.
    fn check_neox(&self) -> Result<(), ConfigError> {
        if self.num_kv_heads != self.num_heads {
            return Err(ConfigError::new(
                "num_kv_heads",
                format!(
                    "= {} differs from num_heads = {}, but GPT-NeoX has no grouped-query attention",
                    self.num_kv_heads, self.num_heads
                ),
                "set num_kv_heads = num_heads, or use family = \"llama\"",
            ));
        }
        let llama_only = [
            ("head_dim", self.head_dim.is_some()),
            ("rope_scaling", self.rope_scaling.is_some()),
            ("sliding_window", self.sliding_window.is_some()),
        ];
        match llama_only.into_iter().find(|(_, set)| *set) {
            Some((field, _)) => Err(ConfigError::new(
                field,
                "is set, but rewarm's GPT-NeoX does not have it",
                format!("remove {field} for family = \"neox\", or use a Llama-like family"),
            )),
            None => Ok(()),
        }
    }

    /// The width of one attention head: `head_dim` when set, else C / H.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_heads)
    }

    /// H·head_dim: the width of the queries (and of `o_proj`'s input); C unless `head_dim` is set.
    pub fn attention_width(&self) -> usize {
        self.num_heads * self.head_dim()
    }

    /// Rotated dims per head: ⌊head_dim · rotary_pct⌋ as HF computes it (Pythia-410M: 64·0.25 = 16).
    pub fn rotary_dims(&self) -> usize {
        (self.head_dim() as f64 * self.rotary_pct) as usize
    }

    /// Exact number of parameters (tied embeddings counted once), from the shapes alone; equals the sum of
    /// `numel` over the tensors `rewarm_model::Model::new` creates.
    pub fn num_params(&self) -> u64 {
        let (v, c, l, i) = self.sizes();
        let (hd, q) = (self.head_dim() as u64, self.attention_width() as u64);
        let kv = self.num_kv_heads as u64 * hd;
        let (per_layer, final_norm) = match self.family {
            Family::Neox => {
                let norms = 2 * (c + c); // input + post-attention LayerNorm, weight and bias
                let attention = (3 * c * c + 3 * c) + (c * c + c); // query_key_value, dense
                let mlp = (i * c + i) + (c * i + c); // dense_h_to_4h, dense_4h_to_h
                (norms + attention + mlp, 2 * c)
            }
            family => {
                let norms = 2 * c; // input + post-attention RMSNorm
                let attention = 2 * c * q + 2 * c * kv; // q, o: C×(H·hd); k, v: C×(Hkv·hd)
                let biases = if family.qkv_bias() { q + 2 * kv } else { 0 };
                let qk_norms = if family.qk_norm() { 2 * hd } else { 0 };
                let mlp = 3 * c * i; // gate, up, down
                (norms + attention + biases + qk_norms + mlp, c)
            }
        };
        let embeddings = if self.tie_embeddings {
            v * c
        } else {
            2 * v * c
        };
        l * per_layer + final_norm + embeddings
    }

    /// Parameters outside the input embedding and the output projection (Kaplan et al. 2020's N; Pythia's
    /// "non-embedding params", e.g. 18,915,328 for Pythia-70M).
    pub fn non_embedding_params(&self) -> u64 {
        let (v, c, _, _) = self.sizes();
        let embeddings = if self.tie_embeddings {
            v * c
        } else {
            2 * v * c
        };
        self.num_params() - embeddings
    }

    /// Training FLOPs per token (forward + backward) at sequence length `seq_len`:
    ///
    /// `6·(N + V·C) + 12·L·T·(H·hd)`
    ///
    /// with N = [`Self::non_embedding_params`]. Each weight in a matmul costs 2 FLOPs per token forward and
    /// 4 backward (Kaplan et al. 2020; Chinchilla, Hoffmann et al. 2022, App. F); the output projection
    /// (V·C) is such a matmul, the input embedding is a lookup. Attention scores QKᵀ and the weighted sum
    /// over V cost 2·2·T·(H·hd) per layer forward (H·hd = C unless `head_dim` is set), ×3 with backward:
    /// 12·L·T·(H·hd), the PaLM (Chowdhery et al.
    /// 2022, App. B) term, which ignores the causal mask's savings. Norms, softmax and biases are left
    /// out. This is the numerator of MFU as PaLM, nanoGPT and torchtitan report it.
    pub fn flops_per_token(&self, seq_len: usize) -> u64 {
        let (v, c, l, _) = self.sizes();
        let attention = 12 * l * seq_len as u64 * self.attention_width() as u64;
        6 * (self.non_embedding_params() + v * c) + attention
    }

    fn sizes(&self) -> (u64, u64, u64, u64) {
        (
            self.vocab_size as u64,
            self.hidden_size as u64,
            self.num_layers as u64,
            self.intermediate_size as u64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PRESETS;

    #[test]
    fn every_preset_name_resolves_and_validates() {
        for name in PRESETS {
            let config = ModelConfig::preset(name).expect("listed preset exists");
            config.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert_eq!(ModelConfig::preset("gpt-5"), None);
    }

    // Hand-computed from the shapes:
    // NeoX per layer = 12C² + 13C (+ 2C final LayerNorm, + V·C per embedding matrix).
    //   70m:  6·(12·512² + 13·512)   + 2·512   + 2·50304·512   = 70,426,624
    //   160m: 12·(12·768² + 13·768)  + 2·768   + 2·50304·768   = 162,322,944
    //   410m: 24·(12·1024² + 13·1024)+ 2·1024  + 2·50304·1024  = 405,334,016
    // Llama per layer = 2C² + 2·C·(Hkv·64) + 3·C·I + 2C (+ C final RMSNorm, + V·C tied):
    //   smollm2: 30·(2·576² + 2·576·192 + 3·576·1536 + 2·576) + 576 + 49152·576 = 134,515,008
    #[test]
    fn published_parameter_counts() {
        assert_eq!(ModelConfig::pythia_70m().num_params(), 70_426_624);
        assert_eq!(ModelConfig::pythia_160m().num_params(), 162_322_944);
        assert_eq!(ModelConfig::pythia_410m().num_params(), 405_334_016);
        assert_eq!(ModelConfig::smollm2_135m().num_params(), 134_515_008);
        // The Pythia paper's "non-embedding params" column.
        assert_eq!(ModelConfig::pythia_70m().non_embedding_params(), 18_915_328);
        assert_eq!(
            ModelConfig::pythia_160m().non_embedding_params(),
            85_056_000
        );
        assert_eq!(
            ModelConfig::pythia_410m().non_embedding_params(),
            302_311_424
        );
        // GPT-2 small is "124M": 85,056,000 + 50304·768 tied.
        assert_eq!(ModelConfig::gpt2_124m().num_params(), 123_689_472);
        // transformers' own count (sum of numel of the model built from the published config):
        // Qwen2.5 adds the q/k/v biases, Qwen3 the 2·128 q/k norm weights and 128-dim heads.
        assert_eq!(ModelConfig::qwen2_5_0_5b().num_params(), 494_032_768);
        assert_eq!(ModelConfig::qwen2_5_1_5b().num_params(), 1_543_714_304);
        assert_eq!(ModelConfig::qwen3_0_6b().num_params(), 596_049_920);
        assert_eq!(ModelConfig::llama_3_2_1b().num_params(), 1_235_814_400);
    }

    #[test]
    fn flops_per_token_by_hand() {
        // tiny: N = 2·(12·64² + 13·64) + 128 = 100,096; V·C = 32,768; 12·L·T·C = 12·2·128·64 = 196,608.
        let tiny = ModelConfig::tiny();
        assert_eq!(tiny.non_embedding_params(), 100_096);
        assert_eq!(tiny.flops_per_token(128), 6 * (100_096 + 32_768) + 196_608);
        // Attention grows linearly with the sequence length.
        assert_eq!(
            tiny.flops_per_token(256) - tiny.flops_per_token(128),
            196_608
        );
        // Qwen3-0.6B's attention spans H·hd = 16·128 = 2048, twice its width C = 1024.
        let qwen3 = ModelConfig::qwen3_0_6b();
        assert_eq!(
            qwen3.flops_per_token(2) - qwen3.flops_per_token(1),
            12 * 28 * 2048
        );
    }

    #[test]
    fn validation_names_the_field() {
        let field_of = |c: ModelConfig| match c.validate() {
            Err(ConfigError { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(
            field_of(ModelConfig {
                hidden_size: 65,
                ..ModelConfig::tiny()
            }),
            "hidden_size"
        );
        assert_eq!(
            field_of(ModelConfig {
                num_kv_heads: 3,
                ..ModelConfig::tiny_llama()
            }),
            "num_kv_heads"
        );
        assert_eq!(
            field_of(ModelConfig {
                num_kv_heads: 2,
                ..ModelConfig::tiny()
            }),
            "num_kv_heads"
        );
        assert_eq!(
            field_of(ModelConfig {
                rotary_pct: 0.1,
                ..ModelConfig::tiny()
            }),
            "rotary_pct"
        );
        assert_eq!(
            field_of(ModelConfig {
                rotary_pct: 0.5,
                ..ModelConfig::tiny_llama()
            }),
            "rotary_pct"
        );
        assert_eq!(
            field_of(ModelConfig {
                vocab_size: 0,
                ..ModelConfig::tiny()
            }),
            "vocab_size"
        );
        assert_eq!(
            field_of(ModelConfig {
                norm_eps: f64::NAN,
                ..ModelConfig::tiny()
            }),
            "norm_eps"
        );
        assert_eq!(
            field_of(ModelConfig {
                use_parallel_residual: true,
                ..ModelConfig::tiny_llama()
            }),
            "use_parallel_residual"
        );
        assert_eq!(
            field_of(ModelConfig {
                sliding_window: Some(64),
                ..ModelConfig::tiny_llama()
            }),
            "sliding_window"
        );
        assert_eq!(
            field_of(ModelConfig {
                head_dim: Some(32),
                ..ModelConfig::tiny()
            }),
            "head_dim"
        );
        assert_eq!(
            field_of(ModelConfig {
                rope_scaling: Some(crate::RopeScaling::llama3_2()),
                ..ModelConfig::tiny()
            }),
            "rope_scaling"
        );
        // A head_dim of its own frees hidden_size from being a multiple of num_heads.
        let odd = ModelConfig {
            hidden_size: 72,
            head_dim: Some(16),
            family: Family::Qwen3,
            ..ModelConfig::tiny_llama()
        };
        assert!(odd.validate().is_ok());
        assert_eq!(odd.attention_width(), 64);
        let message = ModelConfig {
            hidden_size: 65,
            ..ModelConfig::tiny()
        }
        .validate()
        .unwrap_err();
        assert!(message.to_string().contains("HINT:"), "{message}");
    }

    #[test]
    fn serde_round_trip_defaults_and_hf_aliases() {
        let tiny = ModelConfig::tiny();
        let json = serde_json::to_string(&tiny).unwrap();
        assert_eq!(serde_json::from_str::<ModelConfig>(&json).unwrap(), tiny);

        // A Pythia-style config.json subset, HF spellings, defaults left out.
        let hf = r#"{"family": "gpt_neox", "vocab_size": 50304, "hidden_size": 512,
            "num_hidden_layers": 6, "num_attention_heads": 8, "num_key_value_heads": 8,
            "intermediate_size": 2048, "max_position_embeddings": 2048, "layer_norm_eps": 1e-5,
            "tie_word_embeddings": false}"#;
        assert_eq!(
            serde_json::from_str::<ModelConfig>(hf).unwrap(),
            ModelConfig::pythia_70m()
        );

        let unknown = json.replace("\"vocab_size\"", "\"vocab_sise\"");
        let err = serde_json::from_str::<ModelConfig>(&unknown).unwrap_err();
        assert!(err.to_string().contains("vocab_sise"), "{err}");
    }
}
