//! Text generation: choosing the next token is a pure function of the logits, the options and a seeded
//! RNG ([`sample_next`]); [`generate`] feeds the model its own output, one token at a time.
//!
//! Sampling follows the usual order (as in transformers' logits processors): temperature, then top-k, then
//! top-p (nucleus; Holtzman et al. 2020) over what is left, then one draw. Temperature 0 is greedy.

use tch::{Device, Kind, Tensor};

use crate::{KvCache, Model, ModelError};

/// How to pick each next token.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingOptions {
    /// Divides the logits; 0 means greedy (argmax, lowest id on ties).
    pub temperature: f64,
    /// Keep only the k most likely tokens (`None`: all).
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches p (`None`: all).
    pub top_p: Option<f64>,
    /// Seed of the draws: the same seed, prompt and options give the same text.
    pub seed: u64,
}

impl SamplingOptions {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        SamplingOptions {
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
        }
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, seedable generator; one draw per sampled token.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The next token id given the logits (V) of the last position. NaN logits count as −∞.
pub fn sample_next(logits: &[f32], opts: &SamplingOptions, rng: &mut Rng) -> usize {
    let value = |i: usize| {
        if logits[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            logits[i] as f64
        }
    };
    // Candidates, most likely first (ties: lower id first, so the order is total and deterministic).
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    let by_logit = |a: &usize, b: &usize| value(*b).total_cmp(&value(*a)).then(a.cmp(b));
    if opts.temperature <= 0.0 {
        return ids.into_iter().min_by(by_logit).unwrap_or(0);
    }
    if let Some(k) = opts.top_k.filter(|&k| k > 0 && k < ids.len()) {
        ids.select_nth_unstable_by(k - 1, by_logit);
        ids.truncate(k);
    }
    ids.sort_unstable_by(by_logit);
    let Some(&best) = ids.first() else { return 0 };
    let max = value(best) / opts.temperature;
    let mut probs: Vec<f64> = ids
        .iter()
        .map(|&i| (value(i) / opts.temperature - max).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    if let Some(p) = opts.top_p.filter(|&p| p < 1.0) {
        let mut cumulative = 0.0;
        let keep = probs
            .iter()
            .position(|&q| {
                cumulative += q / total;
                cumulative >= p
            })
            .map_or(probs.len(), |last| last + 1);
        probs.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut target = rng.uniform() * total;
    for (&id, &q) in ids.iter().zip(&probs) {
        target -= q;
        if target < 0.0 {
            return id;
        }
    }
    ids[probs.len() - 1]
}

impl Model {
    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.stack().embedding().device()
    }

    /// The parameters' element type (f32 unless loaded as bf16).
    pub fn kind(&self) -> Kind {
        self.stack().embedding().kind()
    }
}

/// Appends up to `max_new_tokens` tokens to `prompt`, calling `on_token` with each as soon as it is
/// chosen, and stopping after any id in `stop`. Returns the new tokens. The model sees at most its last
/// `max_seq_len` tokens. Decoding keeps a KV cache ([`KvCache`]): the prompt is fed once, then one token
/// per step; once the text outgrows `max_seq_len`, every step feeds the last `max_seq_len` tokens afresh
/// (as without a cache), so the choices are the same either way.
pub fn generate(
    model: &Model,
    prompt: &[i64],
    max_new_tokens: usize,
    opts: &SamplingOptions,
    stop: &[i64],
    mut on_token: impl FnMut(i64),
) -> Result<Vec<i64>, ModelError> {
    if prompt.is_empty() {
        return Err(ModelError::input(
            "the prompt has no tokens",
            "give a non-empty prompt",
        ));
    }
    let mut rng = Rng::new(opts.seed);
    let mut tokens = prompt.to_vec();
    let window = model.config().max_seq_len;
    let mut cache = KvCache::new(model);
    let mut new = Vec::with_capacity(max_new_tokens);
    for _ in 0..max_new_tokens {
        // The tokens the cache has not seen: all of the window at the start or after an overflow.
        let unseen = if !cache.is_empty() && (cache.len() as usize) < window {
            &tokens[tokens.len() - 1..]
        } else {
            cache.clear();
            &tokens[tokens.len().saturating_sub(window)..]
        };
        let input = Tensor::from_slice(unseen)
            .view([1, -1])
            .to_device(model.device()); // (1, T)
        let logits = tch::no_grad(|| model.f_next_logits(&input, &mut cache))?; // (1, V)
        let last = logits
            .view([-1])
            .to_kind(Kind::Float)
            .to_device(Device::Cpu); // (V)
        let last = Vec::<f32>::try_from(&last)?;
        let next = sample_next(&last, opts, &mut rng) as i64;
        tokens.push(next);
        new.push(next);
        on_token(next);
        if stop.contains(&next) {
            break;
        }
    }
    Ok(new)
}

/// [`generate`] for several prompts in one batch: they are left-padded to the longest, the padding
/// masked out of attention ([`KvCache::padded`]), and each row decodes one token per forward pass, with
/// its own RNG seeded as [`generate`] seeds it, until it emits a `stop` id or has `max_new_tokens`.
/// RoPE sees a padded row shifted by its padding, which leaves its attention scores unchanged (they
/// depend on relative positions only), so each row's text is the one [`generate`] gives up to rounding.
/// Every prompt plus `max_new_tokens` must fit `max_seq_len`. Returns each row's new tokens.
pub fn generate_batch(
    model: &Model,
    prompts: &[Vec<i64>],
    max_new_tokens: usize,
    opts: &SamplingOptions,
    stop: &[i64],
) -> Result<Vec<Vec<i64>>, ModelError> {
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::input(
            "a prompt has no tokens",
            "give every prompt at least one token",
        ));
    }
    if longest + max_new_tokens > model.config().max_seq_len {
        return Err(ModelError::input(
            format!(
                "the longest prompt ({longest} tokens) + {max_new_tokens} new tokens exceed max_seq_len {}",
                model.config().max_seq_len
            ),
            "ask for fewer new tokens, or sample long prompts one at a time",
        ));
    }
    let (ids, keep): (Vec<i64>, Vec<bool>) = prompts
        .iter()
        .flat_map(|p| {
            let pad = longest - p.len();
            let row = std::iter::repeat_n((0, false), pad);
            row.chain(p.iter().map(|&t| (t, true)))
        })
        .unzip();
    let device = model.device();
    let b = prompts.len() as i64;
    let keep = Tensor::from_slice(&keep).view([b, -1]).to_device(device);
    let mut cache = KvCache::padded(model, &keep);
    let mut input = Tensor::from_slice(&ids).view([b, -1]).to_device(device);
    let mut rngs: Vec<Rng> = prompts.iter().map(|_| Rng::new(opts.seed)).collect();
    let mut new: Vec<Vec<i64>> = vec![Vec::new(); prompts.len()];
    let mut done = vec![max_new_tokens == 0; prompts.len()];
    while !done.iter().all(|&d| d) {
        let logits = tch::no_grad(|| model.f_next_logits(&input, &mut cache))?; // (B, V)
        let logits = Vec::<f32>::try_from(
            logits
                .to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .view([-1]),
        )?;
        let v = logits.len() / prompts.len();
        let mut next = Vec::with_capacity(prompts.len());
        for (row, out) in new.iter_mut().enumerate() {
            let token = sample_next(&logits[row * v..(row + 1) * v], opts, &mut rngs[row]) as i64;
            if !done[row] {
                out.push(token);
                done[row] = stop.contains(&token) || out.len() == max_new_tokens;
            }
            next.push(token);
        }
        input = Tensor::from_slice(&next).view([b, 1]).to_device(device);
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(temperature: f64, top_k: Option<usize>, top_p: Option<f64>) -> SamplingOptions {
        SamplingOptions {
            temperature,
            top_k,
            top_p,
            seed: 7,
        }
    }

    #[test]
    fn greedy_takes_the_argmax_lowest_id_on_ties_and_ignores_nan() {
        let mut rng = Rng::new(0);
        assert_eq!(
            sample_next(&[0.1, 2.0, -1.0, 2.0], &SamplingOptions::greedy(), &mut rng),
            1
        );
        assert_eq!(
            sample_next(&[f32::NAN, 0.5, 0.4], &SamplingOptions::greedy(), &mut rng),
            1
        );
    }

    #[test]
    fn top_k_and_top_p_restrict_the_draws() {
        let logits = [3.0f32, 2.9, 2.8, -20.0, 0.0];
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            assert!(sample_next(&logits, &opts(1.0, Some(2), None), &mut rng) < 2);
            assert_eq!(sample_next(&logits, &opts(1.0, Some(1), None), &mut rng), 0);
            // p = 0.3 is reached by the first token alone (≈ 0.36 of the mass).
            assert_eq!(
                sample_next(&logits, &opts(1.0, None, Some(0.3)), &mut rng),
                0
            );
        }
        // Without restrictions every plausible token shows up.
        let mut seen = [false; 5];
        for _ in 0..500 {
            seen[sample_next(&logits, &opts(1.0, None, None), &mut rng)] = true;
        }
        assert_eq!(seen, [true, true, true, false, true]);
    }

    #[test]
    fn draws_follow_the_softmax_and_are_seeded() {
        // logits ln(1), ln(3): probabilities 1/4, 3/4.
        let logits = [0.0f32, 3f32.ln()];
        let mut rng = Rng::new(42);
        let ones = (0..20_000)
            .filter(|_| sample_next(&logits, &opts(1.0, None, None), &mut rng) == 1)
            .count();
        assert!((ones as f64 / 20_000.0 - 0.75).abs() < 0.015, "{ones}");
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..32)
                .map(|_| sample_next(&[0.0, 0.1, 0.2, 0.3], &opts(1.0, None, None), &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        // A high temperature flattens: 1/4 vs 3/4 at T=1 becomes close to 1/2 at T=100.
        let mut rng = Rng::new(5);
        let ones = (0..20_000)
            .filter(|_| sample_next(&logits, &opts(100.0, None, None), &mut rng) == 1)
            .count();
        assert!((ones as f64 / 20_000.0 - 0.5).abs() < 0.02, "{ones}");
    }
}
