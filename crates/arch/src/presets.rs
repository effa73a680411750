//! The presets: named [`ModelConfig`]s, from the test models to the shapes of the public models people
//! continue (Pythia, GPT-2 small, SmolLM2, Qwen2.5, Qwen3, Llama 3.2).

use crate::{Family, ModelConfig, RopeScaling};

/// Names accepted by [`ModelConfig::preset`]: the two test models, then by size.
pub const PRESETS: &[&str] = &[
    "tiny",
    "tiny-llama",
    "small",
    "pythia-70m",
    "gpt2-124m",
    "smollm2-135m",
    "pythia-160m",
    "pythia-410m",
    "qwen2.5-0.5b",
    "qwen3-0.6b",
    "llama-3.2-1b",
    "qwen2.5-1.5b",
];

impl ModelConfig {
    /// The preset called `name` (one of [`PRESETS`]), or `None`.
    pub fn preset(name: &str) -> Option<ModelConfig> {
        Some(match name {
            "tiny" => Self::tiny(),
            "tiny-llama" => Self::tiny_llama(),
            "small" => Self::small(),
            "pythia-70m" => Self::pythia_70m(),
            "pythia-160m" => Self::pythia_160m(),
            "pythia-410m" => Self::pythia_410m(),
            "gpt2-124m" => Self::gpt2_124m(),
            "smollm2-135m" => Self::smollm2_135m(),
            "qwen2.5-0.5b" => Self::qwen2_5_0_5b(),
            "qwen3-0.6b" => Self::qwen3_0_6b(),
            "llama-3.2-1b" => Self::llama_3_2_1b(),
            "qwen2.5-1.5b" => Self::qwen2_5_1_5b(),
            _ => return None,
        })
    }

    /// A Pythia-shaped NeoX with the given sizes: rotary 25%, θ 10⁴, parallel residual, untied, MLP 4·C.
    fn neox(vocab_size: usize, hidden_size: usize, num_layers: usize, num_heads: usize) -> Self {
        ModelConfig {
            family: Family::Neox,
            vocab_size,
            hidden_size,
            num_layers,
            num_heads,
            num_kv_heads: num_heads,
            intermediate_size: 4 * hidden_size,
            max_seq_len: 2048,
            rotary_pct: 0.25,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
            tie_embeddings: false,
            use_parallel_residual: true,
            head_dim: None,
            rope_scaling: None,
            sliding_window: None,
        }
    }

    /// `tiny`: NeoX, 2 layers, C=64, 4 heads, V=512, T=128 (166K params): milliseconds per step, for tests.
    pub fn tiny() -> Self {
        ModelConfig {
            max_seq_len: 128,
            ..Self::neox(512, 64, 2, 4)
        }
    }

    /// `tiny-llama`: Llama, 2 layers, C=64, 4 q / 2 kv heads, tied, V=512, T=128 (125K params): for tests.
    pub fn tiny_llama() -> Self {
        // MLP ≈ 8/3·C rounded up to a multiple of 16, the usual SwiGLU width.
        ModelConfig {
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
            ..Self::llama_like(Family::Llama, [512, 64, 2, 4, 2, 176, 16], 128)
        }
    }

    /// `small`: NeoX, 4 layers, C=256, 8 heads, V=8192, T=256 (7.4M params): the CPU quickstart.
    pub fn small() -> Self {
        ModelConfig {
            max_seq_len: 256,
            ..Self::neox(8192, 256, 4, 8)
        }
    }

    /// `pythia-70m`: EleutherAI Pythia-70M exactly (6 layers, C=512, 8 heads, V=50304, T=2048; 70.4M params).
    pub fn pythia_70m() -> Self {
        Self::neox(50304, 512, 6, 8)
    }

    /// `pythia-160m`: Pythia-160M exactly (12 layers, C=768, 12 heads, V=50304, T=2048; 162.3M params).
    pub fn pythia_160m() -> Self {
        Self::neox(50304, 768, 12, 12)
    }

    /// `pythia-410m`: Pythia-410M exactly (24 layers, C=1024, 16 heads, V=50304, T=2048; 405.3M params),
    /// the model of Gupta et al. 2023 and Ibrahim et al. 2024.
    pub fn pythia_410m() -> Self {
        Self::neox(50304, 1024, 24, 16)
    }

    /// `gpt2-124m`: the GPT-2-small shape as a NeoX (12 layers, C=768, 12 heads, V=50304, T=1024; tied and
    /// sequential like GPT-2, rotary instead of learned positions; 123.7M params): the usual speed benchmark.
    pub fn gpt2_124m() -> Self {
        ModelConfig {
            max_seq_len: 1024,
            tie_embeddings: true,
            use_parallel_residual: false,
            ..Self::neox(50304, 768, 12, 12)
        }
    }

    /// `smollm2-135m`: HuggingFaceTB SmolLM2-135M's shape (Llama, 30 layers, C=576, 9 q / 3 kv heads,
    /// MLP 1536, V=49152, θ=10⁵, tied, T=2048; 134.5M params).
    pub fn smollm2_135m() -> Self {
        ModelConfig {
            rope_theta: 100_000.0,
            norm_eps: 1e-5,
            ..Self::llama_like(Family::Llama, [49_152, 576, 30, 9, 3, 1536, 64], 2048)
        }
    }

    /// A Llama-like shape of sizes [V, C, L, H, Hkv, I, head dim]: full rotary, sequential blocks, ε 1e-6
    /// and θ 10⁶ (Qwen's), tied; `head_dim` is set only when the head dim is not C / H.
    fn llama_like(family: Family, sizes: [usize; 7], max_seq_len: usize) -> Self {
        let [vocab_size, hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size, head] =
            sizes;
        ModelConfig {
            family,
            vocab_size,
            hidden_size,
            num_layers,
            num_heads,
            num_kv_heads,
            intermediate_size,
            max_seq_len,
            rotary_pct: 1.0,
            rope_theta: 1_000_000.0,
            norm_eps: 1e-6,
            tie_embeddings: true,
            use_parallel_residual: false,
            head_dim: (head != hidden_size / num_heads).then_some(head),
            rope_scaling: None,
            sliding_window: None,
        }
    }

    /// `qwen2.5-0.5b`: Qwen2.5-0.5B's shape (24 layers, C=896, 14 q / 2 kv heads, MLP 4864, V=151936,
    /// q/k/v biases, tied, θ=10⁶, T=32768; 494.0M params).
    pub fn qwen2_5_0_5b() -> Self {
        Self::llama_like(Family::Qwen2, [151_936, 896, 24, 14, 2, 4864, 64], 32_768)
    }

    /// `qwen2.5-1.5b`: Qwen2.5-1.5B's shape (28 layers, C=1536, 12 q / 2 kv heads, MLP 8960, V=151936,
    /// q/k/v biases, tied, θ=10⁶, T=131072; 1.54B params).
    pub fn qwen2_5_1_5b() -> Self {
        Self::llama_like(
            Family::Qwen2,
            [151_936, 1536, 28, 12, 2, 8960, 128],
            131_072,
        )
    }

    /// `qwen3-0.6b`: Qwen3-0.6B's shape (28 layers, C=1024, 16 q / 8 kv heads of 128 dims, q/k norms,
    /// MLP 3072, V=151936, tied, θ=10⁶, T=40960; 596.0M params).
    pub fn qwen3_0_6b() -> Self {
        Self::llama_like(Family::Qwen3, [151_936, 1024, 28, 16, 8, 3072, 128], 40_960)
    }

    /// `llama-3.2-1b`: Llama-3.2-1B's shape (16 layers, C=2048, 32 q / 8 kv heads, MLP 8192, V=128256,
    /// tied, θ=5·10⁵ with Llama 3.2's RoPE scaling, ε=1e-5, T=131072; 1.24B params).
    pub fn llama_3_2_1b() -> Self {
        ModelConfig {
            rope_theta: 500_000.0,
            norm_eps: 1e-5,
            rope_scaling: Some(RopeScaling::llama3_2()),
            ..Self::llama_like(Family::Llama, [128_256, 2048, 16, 32, 8, 8192, 64], 131_072)
        }
    }
}
