//! Multiple-choice scoring: each continuation's summed log-probability equals what one unpadded forward
//! pass of that sequence alone gives, whatever the other choices' lengths (right padding), and a context
//! too long for the window loses tokens from its left.

use rewarm_model::{Model, ModelConfig};
use tch::{nn, Device, Kind, Tensor};

/// Σ log p(continuation | context) from one forward pass of exactly `tokens` (the last `c` scored).
fn by_hand(model: &Model, tokens: &[i64], c: usize) -> f64 {
    let input = Tensor::from_slice(tokens).view([1, -1]);
    let lp = tch::no_grad(|| model.forward(&input)).log_softmax(-1, Kind::Float);
    (tokens.len() - c..tokens.len())
        .map(|j| lp.double_value(&[0, j as i64 - 1, tokens[j]]))
        .sum()
}

#[test]
fn each_choice_scores_as_its_own_forward_pass_would() {
    tch::manual_seed(3);
    let config = ModelConfig {
        max_seq_len: 16,
        ..ModelConfig::tiny_llama()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let model = Model::new(&vs.root(), &config).unwrap();
    let context: Vec<i64> = vec![5, 9, 17, 3];
    let choices: Vec<Vec<i64>> = vec![vec![7], vec![40, 41, 42], vec![100, 2]];
    let pairs: Vec<(Vec<i64>, Vec<i64>)> = choices
        .iter()
        .map(|c| (context.clone(), c.clone()))
        .collect();
    let scores = model.f_continuation_logprobs(&pairs).unwrap();
    for (choice, score) in choices.iter().zip(&scores) {
        let whole: Vec<i64> = context.iter().chain(choice).copied().collect();
        let want = by_hand(&model, &whole, choice.len());
        assert!((score - want).abs() < 1e-4, "{score} vs {want}");
    }
    // A 20-token context in a 16-token window: the first 6 tokens go (with a 2-token continuation).
    let long: Vec<i64> = (1..=20).collect();
    let got = model
        .f_continuation_logprobs(&[(long.clone(), vec![8, 9])])
        .unwrap()[0];
    let kept: Vec<i64> = long[6..].iter().copied().chain([8, 9]).collect();
    assert!((got - by_hand(&model, &kept, 2)).abs() < 1e-4);
    // Empty parts and continuations that cannot fit are refused.
    assert!(model.f_continuation_logprobs(&[(vec![], vec![1])]).is_err());
    assert!(model
        .f_continuation_logprobs(&[(vec![1], vec![1; 16])])
        .is_err());
}
