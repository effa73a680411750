//! Log-likelihood scoring for multiple-choice tasks (as lm-evaluation-harness scores them): the summed
//! log-probability of each continuation's tokens after a context, one forward pass for all of a
//! question's choices.

use tch::{Device, Kind, Tensor};

use crate::{Model, ModelError};

impl Model {
    /// For each `(context, continuation)` pair: Σ log p(continuation token | everything before it), in
    /// nats. A sequence longer than max_seq_len loses context tokens from its left; a continuation needs
    /// at least one token of context before it and must fit the window with it.
    pub fn f_continuation_logprobs(
        &self,
        pairs: &[(Vec<i64>, Vec<i64>)],
    ) -> Result<Vec<f64>, ModelError> {
        let window = self.config().max_seq_len;
        let mut rows: Vec<(Vec<i64>, usize)> = Vec::with_capacity(pairs.len());
        for (context, continuation) in pairs {
            if continuation.is_empty() || context.is_empty() {
                return Err(ModelError::input(
                    "a context or continuation without tokens",
                    "give every question a non-empty context and non-empty choices",
                ));
            }
            if continuation.len() >= window {
                return Err(ModelError::input(
                    format!(
                        "a continuation of {} tokens in a {window}-token window",
                        continuation.len()
                    ),
                    "shorten the choice, or use a model with a longer max_seq_len",
                ));
            }
            let whole: Vec<i64> = context.iter().chain(continuation).copied().collect();
            let kept = whole[whole.len().saturating_sub(window)..].to_vec();
            rows.push((kept, continuation.len()));
        }
        let t = rows.iter().map(|r| r.0.len()).max().unwrap_or(1);
        // Right padding: causal attention keeps it from changing the real positions.
        let ids: Vec<i64> = rows
            .iter()
            .flat_map(|(r, _)| r.iter().copied().chain(std::iter::repeat_n(0, t - r.len())))
            .collect();
        let input = Tensor::from_slice(&ids)
            .view([rows.len() as i64, t as i64])
            .to_device(self.device());
        let log_probs = tch::no_grad(|| self.f_forward(&input))?
            .to_kind(Kind::Float)
            .log_softmax(-1, Kind::Float); // (B, T, V)
                                           // The log-probability of each next token: positions 0..T-1 predict 1..T.
        let next = input.narrow(1, 1, t as i64 - 1).unsqueeze(-1);
        let picked = log_probs
            .narrow(1, 0, t as i64 - 1)
            .gather(-1, &next, false)
            .squeeze_dim(-1)
            .to_device(Device::Cpu); // (B, T-1)
        let picked = Vec::<f32>::try_from(picked.reshape([-1]))?;
        Ok(rows
            .iter()
            .enumerate()
            .map(|(b, (row, c))| {
                // Continuation tokens sit at positions len-c..len, predicted from len-c-1..len-1.
                let start = b * (t - 1) + row.len() - c - 1;
                picked[start..start + c].iter().map(|&x| x as f64).sum()
            })
            .collect())
    }
}
