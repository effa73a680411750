//! The data a run reads, opened from its plan: the prepared sources with their tokenizer checked against
//! the plan and the model, the mixture that assembles batches, the fixed evaluation sets, and a
//! fingerprint of it all that resume checks; and the count-model baselines of the evaluation sets.

use crate::error::{TrainError, TrainResult};
use rewarm_data::baseline::CountModel;
use rewarm_data::eval::EvalSet;
use rewarm_data::{Mixture, MixtureIndex, PreparedSource, Tokenizer, TokenizerSpec};
use rewarm_plan::Plan;
use rewarm_runfolder::{Baselines, SetBaseline};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Opened data of a plan.
pub struct Data {
    pub sources: Vec<Arc<PreparedSource>>,
    pub mixture: Mixture,
    pub eval_sets: Vec<EvalSet>,
    /// sha256 over the sources' manifests: stored in checkpoints, checked on resume.
    pub fingerprint: String,
}

pub fn open_data(plan: &Plan) -> TrainResult<Data> {
    let model = &plan.model;
    let mut sources = Vec::new();
    for s in &plan.sources {
        sources.push(Arc::new(PreparedSource::open(&s.dir)?));
    }
    let expected = match &plan.config.data.tokenizer {
        Some(t) => {
            let spec: TokenizerSpec = if t.ends_with(".json") {
                TokenizerSpec::HfFile(plan.base_dir.join(t))
            } else {
                t.parse()?
            };
            Some(Tokenizer::load(&spec, None)?.info().clone())
        }
        None => None,
    };
    let first = &sources[0].manifest.tokenizer;
    for (plan_src, src) in plan.sources.iter().zip(&sources) {
        let want = expected.as_ref().unwrap_or(first);
        src.manifest.check_tokenizer(&plan_src.dir, want)?;
        if src.manifest.tokenizer.vocab_size as usize > model.vocab_size {
            return Err(TrainError::Config(format!(
                "source `{}`: tokenizer vocabulary {} > model.vocab_size {}\nHINT: set model.vocab_size ≥ {} (a multiple of 64 is fastest)",
                plan_src.name, src.manifest.tokenizer.vocab_size, model.vocab_size, src.manifest.tokenizer.vocab_size
            )));
        }
    }
    let counts: Vec<u64> = sources
        .iter()
        .map(|s| s.train.sequences(plan.seq_len))
        .collect();
    let index = MixtureIndex::new(plan.mixture_plan(&counts))?;
    let mixture = Mixture::new(index, plan.seq_len, sources.clone())?;
    let eval_sets = plan
        .eval_sets
        .iter()
        .map(|&k| {
            EvalSet::new(
                &plan.sources[k].name,
                &sources[k],
                plan.seq_len,
                plan.config.eval.tokens.unwrap_or(u64::MAX),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut h = Sha256::new();
    for s in &sources {
        h.update(serde_json::to_string(&s.manifest.train).expect("serializes"));
        h.update(serde_json::to_string(&s.manifest.validation).expect("serializes"));
    }
    let fingerprint = h
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Data {
        sources,
        mixture,
        eval_sets,
        fingerprint,
    })
}

/// The count-model baselines of every evaluation set: unigram and Kneser–Ney bigram fitted on the
/// set's source's whole training split, scored on exactly the targets the model is evaluated on.
pub fn baselines(plan: &Plan, data: &Data) -> Baselines {
    let mut out = Baselines::default();
    for (set, &k) in data.eval_sets.iter().zip(&plan.eval_sets) {
        let source = &data.sources[k];
        let vocab = source.manifest.tokenizer.vocab_size as usize;
        let loss = CountModel::fit_stream(&source.train, vocab).score(set);
        let bytes_per_token = Some(set.bytes_per_token).filter(|b| *b > 0.0);
        out.sets.insert(
            set.name.clone(),
            SetBaseline {
                unigram: loss.unigram,
                bigram: loss.bigram,
                targets: loss.targets,
                bytes_per_token,
            },
        );
    }
    out
}
