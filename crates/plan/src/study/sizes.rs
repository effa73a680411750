//! The sizes a study runs at ([`Size`]) and what each trains ([`Scale`]): model, sequence length,
//! batch, token budgets, peak LR, warmup and evaluation cadence, as data the recipes in the parent module
//! turn into plans.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// `tiny` model, ~100k-token stages: a smoke test in a minute or two on 2 cores.
    Tiny,
    /// The CPU study size (studies/README.md): a 6-layer Llama-style model of 5.8M parameters with tied
    /// embeddings, sized so that D0 pretraining ends well below its bigram baseline on 2 cores.
    Small,
    /// `pythia-70m` shape, ~20M-token stages: a GPU.
    Base,
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tiny" => Ok(Size::Tiny),
            "small" => Ok(Size::Small),
            "base" => Ok(Size::Base),
            _ => Err(format!("--size {s}: expected tiny, small or base")),
        }
    }
}

/// What a [`Size`] trains: the model (the `[model]` table without `vocab_size`, which the sources give),
/// sequence length, batch, token budgets, peak LR, warmup, evaluation cadence.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    /// `[model]` lines: a preset and overrides, or every field.
    pub(super) model: &'static str,
    pub(super) seq_len: usize,
    pub(super) batch_tokens: u64,
    pub(super) pretrain_tokens: u64,
    pub(super) stage_tokens: u64,
    pub(super) max_lr: f64,
    /// The warmup of every schedule (a TOML value of `warmup`).
    pub(super) warmup: &'static str,
    pub(super) eval_every: u64,
    /// Target tokens per evaluation set, at most (`None`: the whole validation split).
    pub(super) eval_tokens: Option<u64>,
    pub(super) eval_batch: u64,
    /// Evaluations after a boundary (the stability gap): every `dense.1` steps for `dense.0` steps.
    pub(super) dense: (u64, u64),
    /// Evaluations before a stage end (the final loss is their mean): every `last.1` over `last.0` steps.
    pub(super) last: (u64, u64),
    /// `train.precision` (bf16 autocast trains the small model 1.5× faster than f32 on a CPU with
    /// AVX-512 BF16, with the same losses to 3 decimals over the first steps).
    pub(super) precision: &'static str,
    /// `data.max_epochs`, where the default cap of 4 passes is too few for the budget.
    pub(super) max_epochs: Option<f64>,
}

/// The CPU study model: Llama blocks (RMSNorm, SwiGLU, rotary), tied embeddings so that a small
/// vocabulary costs few parameters; 6 layers of width 256 (5.8M parameters at V = 4096).
const SMALL_MODEL: &str = "family = \"llama\"\nhidden_size = 256\nnum_layers = 6\nnum_heads = 8\nnum_kv_heads = 8\n\
intermediate_size = 688\nrotary_pct = 1.0\nrope_theta = 10000.0\nnorm_eps = 1e-5\ntie_embeddings = true\n\
use_parallel_residual = false\n";

/// The quickstart model: the CPU study model's blocks at width 192 and 4 layers (2.6M parameters at
/// V = 4096), fast enough to pretrain for several epochs of the sample in minutes.
const QUICKSTART_MODEL: &str = "family = \"llama\"\nhidden_size = 192\nnum_layers = 4\nnum_heads = 6\nnum_kv_heads = 6\n\
intermediate_size = 512\nrotary_pct = 1.0\nrope_theta = 10000.0\nnorm_eps = 1e-5\ntie_embeddings = true\n\
use_parallel_residual = false\n";

impl Size {
    pub fn scale(self) -> Scale {
        match self {
            Size::Tiny => Scale {
                model: "preset = \"tiny\"\n",
                seq_len: 64,
                batch_tokens: 1024,
                pretrain_tokens: 100_000,
                stage_tokens: 100_000,
                max_lr: 3e-3,
                warmup: "0.01",
                eval_every: 10,
                eval_tokens: Some(8192),
                eval_batch: 16,
                dense: (20, 2),
                last: (4, 2),
                precision: "auto",
                max_epochs: None,
            },
            Size::Small => Scale {
                model: SMALL_MODEL,
                seq_len: 256,
                batch_tokens: 8192,
                pretrain_tokens: 6_144_000,
                stage_tokens: 3_072_000,
                max_lr: 1e-3,
                warmup: "{ fraction = 0.01, min_steps = 10 }",
                eval_every: 50,
                eval_tokens: None,
                eval_batch: 64,
                dense: (24, 8),
                last: (10, 5),
                precision: "bf16",
                max_epochs: None,
            },
            Size::Base => Scale {
                model: "preset = \"pythia-70m\"\n",
                seq_len: 512,
                batch_tokens: 65_536,
                pretrain_tokens: 20_000_000,
                stage_tokens: 20_000_000,
                max_lr: 6e-4,
                warmup: "{ fraction = 0.01, min_steps = 10 }",
                eval_every: 50,
                eval_tokens: None,
                eval_batch: 64,
                dense: (100, 12),
                last: (20, 10),
                precision: "auto",
                max_epochs: None,
            },
        }
    }
}

impl Scale {
    /// Study `smollm2`: SmolLM2-135M (its preset; the weights come from `--init`) continued on 1.05M
    /// tokens per run, 256 steps of 16 × 256 tokens, re-warmed to 3e-4 (not tuned: about SmolLM2's own
    /// final LRs' order, a tenth of the CPU study model's 1e-3 for a model 23× its size), bf16 autocast.
    /// Evaluation on the whole splits is most of a run's cost on a CPU (forward passes over about 300k
    /// tokens), so it is sparse: at the start, halfway, and the last three 10, 5 and 0 steps before the end.
    pub fn smollm2() -> Scale {
        Scale {
            model: "preset = \"smollm2-135m\"\n",
            seq_len: 256,
            batch_tokens: 4096,
            pretrain_tokens: 4096,
            stage_tokens: 1_048_576,
            max_lr: 3e-4,
            warmup: "{ fraction = 0.01, min_steps = 10 }",
            eval_every: 128,
            eval_tokens: None,
            eval_batch: 16,
            dense: (0, 0),
            last: (10, 5),
            precision: "bf16",
            max_epochs: None,
        }
    }

    /// The quickstart's scale: the vendored sample (about 230k English and 455k German tokens with the
    /// English tokenizer) in about 15 minutes on 2 cores, all five runs together. Pretraining reads the
    /// English sample 8.9 times (2.05M tokens, 500 steps): that is what it takes this model to end below
    /// the bigram count model of the English validation split (614k tokens ended 0.6 nats above it).
    pub fn quickstart() -> Scale {
        Scale {
            model: QUICKSTART_MODEL,
            seq_len: 128,
            batch_tokens: 4096,
            pretrain_tokens: 2_048_000,
            stage_tokens: 454_656,
            max_lr: 2e-3,
            warmup: "{ fraction = 0.01, min_steps = 10 }",
            eval_every: 25,
            eval_tokens: None,
            eval_batch: 64,
            dense: (20, 5),
            last: (10, 5),
            precision: "bf16",
            max_epochs: Some(10.0),
        }
    }

    /// The same scale with the pretraining and stage token budgets multiplied by `factor` (rounded to whole
    /// batches, at least one): `rewarm study --token-scale` for a quick look or a test. Evaluation keeps its
    /// cadence in steps, and evaluates at every stage end anyway.
    pub fn with_token_scale(mut self, factor: f64) -> Scale {
        let scaled = |tokens: u64| {
            let batches = (tokens as f64 * factor / self.batch_tokens as f64).round() as u64;
            batches.max(1) * self.batch_tokens
        };
        if factor != 1.0 {
            self.pretrain_tokens = scaled(self.pretrain_tokens);
            self.stage_tokens = scaled(self.stage_tokens);
        }
        self
    }
}
