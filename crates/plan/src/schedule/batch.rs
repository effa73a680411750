//! Batch-size warmup (Merrill, Arora, Groeneveld, Hajishirzi 2025, "Critical Batch Size
//! Revisited"; docs/papers.md#critical-batch-size-merrill-et-al-2025): the global batch doubles at chosen token counts and the LR is
//! rescaled by √(B/B0), the Adam rule (OLMo-core's `BatchSizeSchedulerCallback` multiplies the LR
//! by √(new/old) at each change). Like the LR schedules it is a pure function of progress, here
//! measured in tokens seen so that a change of batch size does not move the doubling points.

use serde::{Deserialize, Serialize};

use super::error::ScheduleError;

/// Global batch size as a function of tokens seen: `start_sequences`, doubled once for every
/// entry of `double_at_tokens` that has been reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSchedule {
    /// Global batch B0 at the start, in sequences.
    pub start_sequences: u64,
    /// Tokens seen at which the batch doubles, non-decreasing and > 0 (a threshold listed twice doubles
    /// twice there: × 4). Empty: constant batch.
    #[serde(default)]
    pub double_at_tokens: Vec<u64>,
}

impl BatchSchedule {
    /// A batch that never changes.
    pub fn constant(sequences: u64) -> Self {
        Self {
            start_sequences: sequences,
            double_at_tokens: Vec::new(),
        }
    }

    /// OLMo-1B batch-size warmup of Merrill et al. (Table 1): 1024 sequences, doubled at 168B and
    /// again at 503B tokens.
    pub fn olmo_1b() -> Self {
        Self {
            start_sequences: 1024,
            double_at_tokens: vec![168_000_000_000, 503_000_000_000],
        }
    }

    /// How many doublings have happened once `tokens_seen` tokens were consumed: the number of
    /// thresholds ≤ `tokens_seen` (a doubling applies from the first step that starts at or past it).
    pub fn doublings_at(&self, tokens_seen: u64) -> u32 {
        let count = self
            .double_at_tokens
            .iter()
            .filter(|&&threshold| threshold <= tokens_seen)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Global batch, in sequences, for the step that starts after `tokens_seen` tokens.
    /// Saturates at `u64::MAX` (validation rejects schedules that would get there).
    pub fn sequences_at(&self, tokens_seen: u64) -> u64 {
        (0..self.doublings_at(tokens_seen)).fold(self.start_sequences, |b, _| b.saturating_mul(2))
    }

    /// LR multiplier √(B/B0) for Adam at `tokens_seen` (Merrill et al.: "η ← √2·η" per doubling).
    pub fn lr_scale(&self, tokens_seen: u64) -> f64 {
        if self.start_sequences == 0 {
            return 1.0;
        }
        (self.sequences_at(tokens_seen) as f64 / self.start_sequences as f64).sqrt()
    }

    /// Checks both fields; errors name `batch.start_sequences` or `batch.double_at_tokens[i]`.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if self.start_sequences == 0 {
            return Err(ScheduleError::new(
                "batch.start_sequences",
                0,
                "at least 1 sequence",
                "set the global batch at the start of the stage, e.g. 1024 (Merrill et al. OLMo-1B)",
            ));
        }
        let mut previous: Option<u64> = None;
        for (i, &threshold) in self.double_at_tokens.iter().enumerate() {
            let field = format!("batch.double_at_tokens[{i}]");
            if threshold == 0 {
                return Err(ScheduleError::new(
                    field,
                    threshold,
                    "a token count > 0",
                    "a doubling at token 0 is a bigger start: double start_sequences instead",
                ));
            }
            if let Some(p) = previous.filter(|&p| threshold < p) {
                return Err(ScheduleError::new(
                    field,
                    threshold,
                    format!("at least the previous threshold ({p})"),
                    "list the doubling points in increasing token order (a point listed twice doubles twice there)",
                ));
            }
            previous = Some(threshold);
        }
        let mut batch = self.start_sequences;
        for _ in &self.double_at_tokens {
            batch = batch.checked_mul(2).ok_or_else(|| {
                ScheduleError::new(
                    "batch.double_at_tokens",
                    format!("{} doublings", self.double_at_tokens.len()),
                    "a final batch that fits in 64 bits",
                    "remove doubling points or lower start_sequences",
                )
            })?;
        }
        Ok(())
    }
}
