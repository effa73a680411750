//! The real pretrained model end to end: SmolLM2-135M-Instruct's Q4_1 GGUF is imported, loaded as a
//! Hugging Face folder, and rewarm's forward is compared with the numpy reference of
//! `scripts/reference_forward.py` (tests/fixtures/smollm2_reference.json); greedy decoding of
//! "The capital of France is" must continue with " Paris".
//!
//! The GGUF (98 MB) is not in the repository: `scripts/fetch-smollm2.sh` puts it in
//! ~/.cache/rewarm/models, or set REWARM_SMOLLM2_GGUF. Without it the test prints why and passes.
//! REWARM_SMOLLM2_REFERENCE may point at another fixture (e.g. one written with `--stride 1`).

use rewarm_data::Tokenizer;
use rewarm_model::generate::{generate, SamplingOptions};
use rewarm_model::pretrained::{load_model, Source};
use serde_json::Value;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

mod smollm2_common;
use smollm2_common::{gguf_path, GGUF_NAME};

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("integer"))
        .collect()
}

#[test]
fn smollm2_gguf_import_matches_the_numpy_reference_and_says_paris() {
    let gguf = gguf_path().unwrap_or_else(|| {
        panic!("{GGUF_NAME} not found: run scripts/fetch-smollm2.sh (scripts/test.sh does), or set REWARM_SMOLLM2_GGUF")
    });
    let reference = std::env::var("REWARM_SMOLLM2_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_reference.json")
        });
    let fixture: Value = serde_json::from_slice(&std::fs::read(&reference).unwrap()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("smollm2");
    let summary = rewarm_interop::import_gguf(&gguf, &hf, &|_, _| {}).unwrap();
    assert_eq!(summary.params, 134_515_008);
    assert!(
        summary.tokenizer && summary.notes.is_empty(),
        "{:?}",
        summary.notes
    );

    // rewarm's tokenization of the text is the reference's.
    let tokenizer =
        Tokenizer::from_hf_file(&hf.join("tokenizer.json"), Some("<|endoftext|>")).unwrap();
    let text = fixture["text"].as_str().unwrap();
    let tokens = ints(&fixture["tokens"]);
    let ours: Vec<i64> = tokenizer
        .encode(text)
        .unwrap()
        .iter()
        .map(|&t| t as i64)
        .collect();
    assert_eq!(ours, tokens);

    let (model, _vs, source) = load_model(&hf, Device::Cpu).unwrap();
    assert_eq!(source, Source::HfFolder(hf.clone()));
    assert_eq!(
        model.config(),
        &rewarm_model::ModelConfig {
            max_seq_len: 8192,
            ..rewarm_model::ModelConfig::smollm2_135m()
        }
    );

    let t = tokens.len() as i64;
    let logits = tch::no_grad(|| model.forward(&Tensor::from_slice(&tokens).view([1, -1])))
        .view([t, -1])
        .to_kind(Kind::Double); // (T, V)
    let lse = logits.logsumexp([-1], false); // (T)
    let targets = Tensor::from_slice(&tokens[1..]);
    let target_logprob = logits
        .narrow(0, 0, t - 1)
        .gather(1, &targets.view([-1, 1]), false)
        .view([-1])
        - lse.narrow(0, 0, t - 1);
    let loss = -target_logprob.mean(Kind::Double).double_value(&[]);
    let loss_diff = (loss - fixture["mean_loss"].as_f64().unwrap()).abs();

    let ids = ints(&fixture["logit_ids"]);
    let ours_subset = logits.index_select(1, &Tensor::from_slice(&ids)); // (T, K)
    let reference_subset = Tensor::from_slice(
        &fixture["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect::<Vec<_>>(),
    )
    .view([t, -1]);
    let logit_diff = (&ours_subset - &reference_subset)
        .abs()
        .max()
        .double_value(&[]);
    let lse_diff = (&lse - Tensor::from_slice(&floats(&fixture["logsumexp"])))
        .abs()
        .max()
        .double_value(&[]);
    let argmax: Vec<i64> = Vec::try_from(logits.argmax(-1, false)).unwrap();
    eprintln!(
        "SmolLM2 vs numpy reference over {t} tokens: mean loss {loss:.6} nats (|Δ| {loss_diff:.2e}), \
         max |Δ logit| {logit_diff:.2e} over {} ids × {t} positions, max |Δ logsumexp| {lse_diff:.2e}",
        ids.len()
    );
    assert!(loss_diff < 1e-3, "mean loss differs by {loss_diff}");
    assert!(logit_diff < 1e-2, "logits differ by up to {logit_diff}");
    assert!(lse_diff < 1e-2, "log-sum-exp differs by up to {lse_diff}");
    assert_eq!(argmax, ints(&fixture["argmax"]));

    // Greedy decoding: " Paris" first, and the reference's whole continuation.
    let greedy = &fixture["greedy"];
    let prompt: Vec<i64> = tokenizer
        .encode(greedy["prompt"].as_str().unwrap())
        .unwrap()
        .iter()
        .map(|&t| t as i64)
        .collect();
    assert_eq!(prompt, ints(&greedy["prompt_tokens"]));
    let expected = ints(&greedy["tokens"]);
    let new = generate(
        &model,
        &prompt,
        expected.len(),
        &SamplingOptions::greedy(),
        &[],
        |_| {},
    )
    .unwrap();
    let words: Vec<u32> = new.iter().map(|&t| t as u32).collect();
    let continuation = tokenizer.decode(&words).unwrap();
    eprintln!(
        "greedy: \"{}\" → {continuation:?}",
        greedy["prompt"].as_str().unwrap()
    );
    assert!(continuation.starts_with(" Paris"), "{continuation:?}");
    assert_eq!(new, expected);
}
