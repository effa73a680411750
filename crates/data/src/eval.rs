//! Fixed evaluation token sets: the first sequences of a source's validation split, identical every time
//! (never random batches — STYLE "do not copy").

use crate::error::{DataError, Result};
use crate::source::PreparedSource;

/// A labelled validation set: `sequences` rows of `seq_len + 1` tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalSet {
    pub name: String,
    pub seq_len: usize,
    pub tokens: Vec<u32>,
    /// Source bytes per token of the validation split, to report bits per byte.
    pub bytes_per_token: f64,
}

impl EvalSet {
    /// Takes up to `max_tokens` target tokens (whole sequences) from the start of the validation split.
    pub fn new(
        name: &str,
        source: &PreparedSource,
        seq_len: usize,
        max_tokens: u64,
    ) -> Result<Self> {
        let stream = &source.validation;
        let available = stream.sequences(seq_len);
        let n = available.min(max_tokens / seq_len as u64);
        if n == 0 {
            return Err(DataError::Mixture(format!(
                "validation set `{name}` ({}): {} validation tokens, not one sequence of {seq_len}{}\nHINT: prepare the source with a validation split (--split or --val), or raise eval.tokens",
                source.dir.display(),
                stream.len(),
                if available > 0 { " within eval.tokens" } else { "" }
            )));
        }
        let w = seq_len + 1;
        let mut tokens = vec![0u32; n as usize * w];
        for j in 0..n as usize {
            stream.copy_sequence(j as u64, seq_len, &mut tokens[j * w..(j + 1) * w]);
        }
        Ok(EvalSet {
            name: name.to_owned(),
            seq_len,
            tokens,
            bytes_per_token: source.manifest.validation.bytes_per_token(),
        })
    }

    pub fn sequences(&self) -> usize {
        self.tokens.len() / (self.seq_len + 1)
    }

    /// Target tokens evaluated.
    pub fn target_tokens(&self) -> u64 {
        (self.sequences() * self.seq_len) as u64
    }

    /// Rows `[first, first + rows)` as one flat slice.
    pub fn rows(&self, first: usize, rows: usize) -> &[u32] {
        let w = self.seq_len + 1;
        let end = ((first + rows) * w).min(self.tokens.len());
        &self.tokens[first * w..end]
    }

    /// Bits per byte of a mean per-token loss in nats.
    pub fn bits_per_byte(&self, loss_nats: f64) -> f64 {
        if self.bytes_per_token > 0.0 {
            loss_nats / std::f64::consts::LN_2 / self.bytes_per_token
        } else {
            f64::NAN
        }
    }
}
