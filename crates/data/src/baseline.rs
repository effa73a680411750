//! Count-model baselines: what a model that only counts tokens would score on a validation set. A
//! trained LM that does not beat the bigram has learned token frequencies, not language, and no finding
//! should rest on it (issue 12).
//!
//! Both are fitted on a source's whole training split and scored on exactly the targets the model is
//! scored on (the evaluation set's windows: every target after the first position of a window has its
//! previous token in the window, and so does the first, whose context is the window's first token).
//!
//! - **Unigram**, add-one smoothed: `P(w) = (c(w) + 1) / (N + V)`.
//! - **Bigram**, interpolated Kneser–Ney (Chen & Goodman 1998) with one discount
//!   `D = n₁ / (n₁ + 2·n₂)` (n₁, n₂: bigram types seen once, twice):
//!   `P(w | v) = max(c(v w) − D, 0) / c(v ·) + D · N₁₊(v ·) / c(v ·) · P_cont(w)`, and `P_cont(w)` for a
//!   context never seen. The continuation distribution is add-one smoothed over the vocabulary,
//!   `P_cont(w) = (N₁₊(· w) + 1) / (N₁₊(· ·) + V)`, so no target has probability 0.
//!
//! Pure Rust, no tensors; fitting a few million tokens takes about a second.

use crate::eval::EvalSet;
use crate::source::TokenStream;
use std::collections::HashMap;

/// Counts of a training split: unigrams, bigrams, and what Kneser–Ney needs of them.
pub struct CountModel {
    vocab: usize,
    unigram: Vec<u64>,
    total: u64,
    bigram: HashMap<u64, u32>,
    /// c(v ·): bigrams starting with v.
    context: Vec<u64>,
    /// N₁₊(v ·): distinct followers of v.
    followers: Vec<u32>,
    /// N₁₊(· w): distinct predecessors of w.
    predecessors: Vec<u32>,
    /// N₁₊(· ·): distinct bigram types.
    types: u64,
    discount: f64,
}

/// The baselines' cross-entropy on one evaluation set, nats per target token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BaselineLoss {
    pub unigram: f64,
    pub bigram: f64,
    /// Target tokens scored.
    pub targets: u64,
}

fn key(v: u32, w: u32) -> u64 {
    (u64::from(v) << 32) | u64::from(w)
}

impl CountModel {
    /// Counts every token and adjacent pair of `tokens` (ids below `vocab`; larger ids are clamped into
    /// the last id, which never happens for shards checked against their tokenizer).
    pub fn fit(tokens: &[u32], vocab: usize) -> Self {
        let vocab = vocab.max(1);
        let id = |t: u32| (t as usize).min(vocab - 1) as u32;
        let mut unigram = vec![0u64; vocab];
        let mut bigram: HashMap<u64, u32> = HashMap::new();
        for (i, &t) in tokens.iter().enumerate() {
            unigram[id(t) as usize] += 1;
            if i > 0 {
                *bigram.entry(key(id(tokens[i - 1]), id(t))).or_insert(0) += 1;
            }
        }
        let mut context = vec![0u64; vocab];
        let mut followers = vec![0u32; vocab];
        let mut predecessors = vec![0u32; vocab];
        let (mut once, mut twice) = (0u64, 0u64);
        for (&k, &c) in &bigram {
            let (v, w) = ((k >> 32) as usize, (k & 0xffff_ffff) as usize);
            context[v] += u64::from(c);
            followers[v] += 1;
            predecessors[w] += 1;
            once += u64::from(c == 1);
            twice += u64::from(c == 2);
        }
        // Chen & Goodman's estimate; 0.75 when there are no singletons or doubletons to estimate from.
        let discount = if once + twice > 0 && once > 0 {
            once as f64 / (once + 2 * twice) as f64
        } else {
            0.75
        };
        CountModel {
            vocab,
            total: tokens.len() as u64,
            types: bigram.len() as u64,
            unigram,
            bigram,
            context,
            followers,
            predecessors,
            discount,
        }
    }

    /// Fits the counts of a whole token stream (a source's training split).
    pub fn fit_stream(stream: &TokenStream, vocab: usize) -> Self {
        let mut tokens = vec![0u32; stream.len() as usize];
        stream.copy(0, &mut tokens);
        Self::fit(&tokens, vocab)
    }

    /// P(w), add-one smoothed.
    pub fn unigram_p(&self, w: u32) -> f64 {
        let c = self.unigram.get(w as usize).copied().unwrap_or(0);
        (c + 1) as f64 / (self.total + self.vocab as u64) as f64
    }

    /// P_cont(w): how many distinct tokens w follows, add-one smoothed.
    fn continuation_p(&self, w: u32) -> f64 {
        let n = self.predecessors.get(w as usize).copied().unwrap_or(0);
        (u64::from(n) + 1) as f64 / (self.types + self.vocab as u64) as f64
    }

    /// P(w | v), interpolated Kneser–Ney.
    pub fn bigram_p(&self, v: u32, w: u32) -> f64 {
        let c_v = self.context.get(v as usize).copied().unwrap_or(0);
        if c_v == 0 {
            return self.continuation_p(w);
        }
        let c_vw = self.bigram.get(&key(v, w)).copied().unwrap_or(0);
        let d = self.discount;
        let seen = (f64::from(c_vw) - d).max(0.0) / c_v as f64;
        let backoff = d * f64::from(self.followers[v as usize]) / c_v as f64;
        seen + backoff * self.continuation_p(w)
    }

    /// Mean cross-entropy (nats) of both count models on the targets of `set`.
    pub fn score(&self, set: &EvalSet) -> BaselineLoss {
        let w = set.seq_len + 1;
        let (mut uni, mut bi, mut n) = (0.0f64, 0.0f64, 0u64);
        for row in set.tokens.chunks_exact(w) {
            for pair in row.windows(2) {
                uni -= self.unigram_p(pair[1]).ln();
                bi -= self.bigram_p(pair[0], pair[1]).ln();
                n += 1;
            }
        }
        let n_f = n.max(1) as f64;
        BaselineLoss {
            unigram: uni / n_f,
            bigram: bi / n_f,
            targets: n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Training text "a b a b a c" over a vocabulary of 4 (a = 0, b = 1, c = 2, d = 3).
    fn model() -> CountModel {
        CountModel::fit(&[0, 1, 0, 1, 0, 2], 4)
    }

    #[test]
    fn unigram_by_hand() {
        let m = model();
        // c(a) = 3, c(b) = 2, c(c) = 1, c(d) = 0; N = 6, V = 4: (c + 1) / 10.
        assert_eq!(m.unigram_p(0), 0.4);
        assert_eq!(m.unigram_p(3), 0.1);
        let total: f64 = (0..4).map(|w| m.unigram_p(w)).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn kneser_ney_bigram_by_hand() {
        let m = model();
        // Bigrams: ab ×2, ba ×2, ac ×1 → types 3, n1 = 1, n2 = 2: D = 1 / (1 + 4) = 0.2.
        assert!((m.discount - 0.2).abs() < 1e-12);
        // P_cont: a follows b (1 type), b follows a (1), c follows a (1), d none; (n + 1) / (3 + 4).
        assert!((m.continuation_p(3) - 1.0 / 7.0).abs() < 1e-12);
        // Context a: c(a ·) = 3 (ab, ab, ac), N1+(a ·) = 2.
        // P(b | a) = (2 − 0.2)/3 + 0.2·2/3 · P_cont(b) = 0.6 + (0.4/3)·(2/7).
        let want = 0.6 + (0.4 / 3.0) * (2.0 / 7.0);
        assert!((m.bigram_p(0, 1) - want).abs() < 1e-12);
        // An unseen pair in a seen context gets only the back-off mass.
        assert!((m.bigram_p(0, 3) - (0.4 / 3.0) / 7.0).abs() < 1e-12);
        // An unseen context (c never starts a bigram) falls back to P_cont.
        assert!((m.bigram_p(2, 1) - 2.0 / 7.0).abs() < 1e-12);
        // Each conditional distribution sums to 1.
        for v in 0..4 {
            let total: f64 = (0..4).map(|w| m.bigram_p(v, w)).sum();
            assert!((total - 1.0).abs() < 1e-12, "context {v}: {total}");
        }
    }

    #[test]
    fn scores_the_targets_of_every_window() {
        let m = model();
        // Two windows of seq_len 2: targets (a→b, b→a) and (a→c, c→d).
        let set = EvalSet {
            name: "t".into(),
            seq_len: 2,
            tokens: vec![0, 1, 0, 0, 2, 3],
            bytes_per_token: 1.0,
        };
        let s = m.score(&set);
        assert_eq!(s.targets, 4);
        let uni = -(m.unigram_p(1).ln()
            + m.unigram_p(0).ln()
            + m.unigram_p(2).ln()
            + m.unigram_p(3).ln())
            / 4.0;
        assert!((s.unigram - uni).abs() < 1e-12);
        let bi = -(m.bigram_p(0, 1).ln()
            + m.bigram_p(1, 0).ln()
            + m.bigram_p(0, 2).ln()
            + m.bigram_p(2, 3).ln())
            / 4.0;
        assert!((s.bigram - bi).abs() < 1e-12);
        // A text the counts predict well: the bigram beats the unigram.
        assert!(s.bigram < s.unigram);
    }
}
