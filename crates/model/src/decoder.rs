//! [`Model`]: one entry point over both families, with input checks and the training loss.

use tch::{nn, Kind, Tensor};

use crate::llama::Llama;
use crate::neox::GptNeox;
use crate::stack::Stack;
use crate::{Family, ModelConfig, ModelError};

/// A causal language model of either family, its parameters living in the caller's VarStore.
#[derive(Debug)]
pub struct Model {
    config: ModelConfig,
    arch: Arch,
}

/// The family-specific network.
#[derive(Debug)]
pub enum Arch {
    /// GPT-NeoX / Pythia.
    Neox(GptNeox),
    /// Llama and the Llama-like families (Mistral, Qwen2, Qwen3).
    Llama(Llama),
}

impl Model {
    /// Validates `config`, then creates and initializes the parameters under `path` with their Hugging Face
    /// names (pass `vs.root()` to get exactly the HF keys). Seed first with `tch::manual_seed` for
    /// reproducible weights; they do not depend on the device.
    pub fn new(path: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        config.validate()?;
        let arch = match config.family {
            Family::Neox => Arch::Neox(GptNeox::new(path, config)?),
            _ => Arch::Llama(Llama::new(path, config)?),
        };
        Ok(Model {
            config: config.clone(),
            arch,
        })
    }

    /// The (validated) config the model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The family-specific network, for inspecting its blocks.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// The family's network as the pieces both families have.
    pub(crate) fn stack(&self) -> &dyn Stack {
        match &self.arch {
            Arch::Neox(model) => model,
            Arch::Llama(model) => model,
        }
    }

    /// tokens (B, T) of Int64 ids < V, 1 ≤ T ≤ max_seq_len → logits (B, T, V) in the parameters' dtype
    /// (or the autocast dtype).
    ///
    /// # Panics
    /// On the input errors [`Self::f_forward`] reports, and on ids outside 0..V (libtorch's index check).
    pub fn forward(&self, tokens: &Tensor) -> Tensor {
        self.f_forward(tokens).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::forward`], returning an error for a tensor of the wrong shape, dtype or length.
    pub fn f_forward(&self, tokens: &Tensor) -> Result<Tensor, ModelError> {
        self.check_tokens("tokens", tokens)?;
        let hidden = self.stack().hidden_seen(tokens, &mut |_, _| {}); // (B, T, C)
        Ok(hidden.linear(self.output_weight(), None::<Tensor>)) // (B, T, V)
    }

    /// Mean next-token cross-entropy in nats, an f32 scalar: inputs and targets are (B, T), targets[b, t]
    /// being the token after inputs[b, t]. Targets equal to -100 are ignored (PyTorch's `ignore_index`).
    ///
    /// # Panics
    /// On the input errors [`Self::f_loss`] reports.
    pub fn loss(&self, inputs: &Tensor, targets: &Tensor) -> Tensor {
        self.f_loss(inputs, targets)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::loss`], returning an error for tensors of the wrong shape, dtype or length.
    pub fn f_loss(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
        self.check_pair(inputs, targets)?;
        let logits = self.f_forward(inputs)?; // (B, T, V)
        let v = self.config.vocab_size as i64;
        // log-softmax in f32 even when the logits are bf16/fp16 (autocast), then mean NLL over B·T tokens.
        let log_probs = logits.reshape([-1, v]).log_softmax(-1, Kind::Float); // (B·T, V)
        Ok(log_probs.nll_loss(&targets.reshape([-1]))) // ()
    }

    /// tokens (B, T) → final hidden states (B, T, C): the network below the output projection.
    pub fn f_hidden(&self, tokens: &Tensor) -> Result<Tensor, ModelError> {
        self.check_tokens("tokens", tokens)?;
        Ok(self.stack().hidden_seen(tokens, &mut |_, _| {}))
    }

    /// [`Self::f_hidden`], showing `seen` each layer's index and the activation (B, T, I) entering its
    /// MLP's output projection (the representation monitor's dormant units).
    pub fn f_hidden_seen(
        &self,
        tokens: &Tensor,
        seen: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Tensor, ModelError> {
        self.check_tokens("tokens", tokens)?;
        Ok(self.stack().hidden_seen(tokens, seen))
    }

    /// The input embedding of `tokens` (B, T) → (B, T, C).
    pub(crate) fn embed(&self, tokens: &Tensor) -> Tensor {
        self.stack().embed(tokens)
    }

    /// Block `i` of the residual stream: (B, T, C) → (B, T, C).
    pub(crate) fn block(&self, i: usize, x: &Tensor) -> Tensor {
        self.stack().block(i, x)
    }

    /// The norm after the last block.
    pub(crate) fn final_norm(&self, x: &Tensor) -> Tensor {
        self.stack().final_norm(x)
    }

    /// The output projection (V, C) (the input embedding when tied).
    pub fn output_weight(&self) -> &Tensor {
        self.stack().output_weight()
    }

    /// Training's loss: [`Self::f_loss`]'s value, with the output projection and cross-entropy computed
    /// chunk by chunk ([`crate::loss_head`]), never holding the (B·T, V) logits. Returns the loss and a
    /// tensor whose `backward()` puts ∂(scale · loss) into every parameter's gradient.
    pub fn f_loss_for_backward(
        &self,
        inputs: &Tensor,
        targets: &Tensor,
        scale: f64,
    ) -> Result<(Tensor, Tensor), ModelError> {
        self.f_loss_for_backward_z(inputs, targets, scale, 0.0)
    }

    /// [`Self::f_loss_for_backward`] whose gradients also carry a z-loss of coefficient `z_loss`
    /// ([`crate::loss_head`]); the loss returned is the cross-entropy alone.
    pub fn f_loss_for_backward_z(
        &self,
        inputs: &Tensor,
        targets: &Tensor,
        scale: f64,
        z_loss: f64,
    ) -> Result<(Tensor, Tensor), ModelError> {
        self.check_pair(inputs, targets)?;
        let hidden = self.f_hidden(inputs)?;
        Ok(self.head_for_backward(&hidden, targets, scale, z_loss))
    }

    /// The loss of the final hidden states (B, T, C), the head computed chunk by chunk, and the seed whose
    /// `backward()` carries ∂(scale · loss) into `hidden`'s graph and the output projection.
    pub(crate) fn head_for_backward(
        &self,
        hidden: &Tensor,
        targets: &Tensor,
        scale: f64,
        z_loss: f64,
    ) -> (Tensor, Tensor) {
        let c = hidden.size()[2];
        let hidden = hidden.reshape([-1, c]); // (B·T, C)
        let w = self.output_weight();
        let head = crate::loss_head::linear_cross_entropy_z(
            &hidden.detach(),
            &w.detach(),
            &targets.reshape([-1]),
            scale,
            z_loss,
        );
        let (gh, gw) = (
            head.grad_hidden.expect("gradients were asked for"),
            head.grad_weight.expect("gradients were asked for"),
        );
        // Σ h·∂h + Σ W·∂W has exactly ∂h and ∂W as its gradients: its backward pass carries the head's
        // gradients into the network and into W (which also gets the embedding's share when tied).
        let seed = (&hidden * gh.detach()).sum(Kind::Float) + (w * gw.detach()).sum(Kind::Float);
        (head.loss, seed)
    }

    /// Mean loss without gradients, chunk by chunk like [`Self::f_loss_for_backward`] (evaluation).
    pub fn f_loss_no_grad(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
        self.check_pair(inputs, targets)?;
        let hidden = tch::no_grad(|| self.f_hidden(inputs))?;
        let c = hidden.size()[2];
        let head = crate::loss_head::linear_cross_entropy(
            &hidden.reshape([-1, c]),
            self.output_weight(),
            &targets.reshape([-1]),
            1.0,
            false,
        );
        Ok(head.loss)
    }

    pub(crate) fn check_pair(&self, inputs: &Tensor, targets: &Tensor) -> Result<(), ModelError> {
        self.check_tokens("targets", targets)?;
        if inputs.size() != targets.size() {
            return Err(ModelError::input(
                format!(
                    "inputs {:?} and targets {:?} differ in shape",
                    inputs.size(),
                    targets.size()
                ),
                "targets are the inputs shifted by one token: take both from one (B, T + 1) window",
            ));
        }
        Ok(())
    }

    pub(crate) fn check_tokens(&self, name: &str, tokens: &Tensor) -> Result<(), ModelError> {
        let size = tokens.size();
        if size.len() != 2 || size.contains(&0) {
            return Err(ModelError::input(
                format!("{name} have shape {size:?}, expected (B, T) with B, T ≥ 1"),
                "pass a 2-D batch of token ids; add a batch axis with `unsqueeze(0)` for one sequence",
            ));
        }
        if tokens.kind() != Kind::Int64 {
            return Err(ModelError::input(
                format!(
                    "{name} have dtype {:?}, expected Int64 token ids",
                    tokens.kind()
                ),
                "convert with `to_kind(Kind::Int64)`",
            ));
        }
        if size[1] as usize > self.config.max_seq_len {
            return Err(ModelError::input(
                format!(
                    "{name} hold {} positions but max_seq_len is {}",
                    size[1], self.config.max_seq_len
                ),
                "use a seq_len ≤ max_seq_len, or raise max_seq_len in the model config",
            ));
        }
        Ok(())
    }
}
