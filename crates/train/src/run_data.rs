//! The data a run reads, opened from its plan: the prepared sources with their tokenizer checked against
//! the plan and the model, the mixture that assembles batches, the fixed evaluation sets, and a
//! fingerprint of it all that resume checks; and the count-model baselines of the evaluation sets.

use crate::error::{TrainError, TrainResult};
use rewarm_data::baseline::CountModel;
use rewarm_data::eval::EvalSet;
use rewarm_data::{Mixture, MixtureIndex, PreparedSource, Tokenizer, TokenizerSpec};
use rewarm_plan::mixture::{hash_hex, mixture_plan, source_fingerprint};
use rewarm_plan::Plan;
use rewarm_runfolder::{Baselines, ConsumedSegment, Consumption, SetBaseline, SourceConsumption};
use std::sync::Arc;

/// Opened data of a plan.
pub struct Data {
    pub sources: Vec<Arc<PreparedSource>>,
    pub mixture: Mixture,
    pub eval_sets: Vec<EvalSet>,
    /// sha256 over the sources' manifests: stored in checkpoints, checked on resume.
    pub fingerprint: String,
    /// Per source, a hash of its training split's manifest entry (in consumption records).
    pub source_fingerprints: Vec<String>,
}

/// Opens the plan's sources (their tokenizer checked), its mixture — whose seen replay pools start with
/// what the `init_from` checkpoint's run consumed, when it recorded that — and its evaluation sets.
pub fn open_data(plan: &Plan) -> TrainResult<Data> {
    let sources = open_sources(plan)?;
    let source_fingerprints: Vec<String> = sources
        .iter()
        .map(|s| source_fingerprint(&s.manifest))
        .collect();
    let counts: Vec<u64> = sources
        .iter()
        .map(|s| s.train.sequences(plan.seq_len))
        .collect();
    let mixture_plan = mixture_plan(plan, &source_fingerprints, &counts)
        .map_err(|e| rewarm_model::ModelError::Weights(e.to_string()))?;
    let index = MixtureIndex::new(mixture_plan)?;
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
    Ok(Data {
        fingerprint: fingerprint(&sources),
        sources,
        mixture,
        eval_sets,
        source_fingerprints,
    })
}

/// sha256 over the manifests (both splits) of `sources`.
fn fingerprint<'a>(sources: impl IntoIterator<Item = &'a Arc<PreparedSource>>) -> String {
    let manifests: Vec<_> = sources
        .into_iter()
        .flat_map(|s| [&s.manifest.train, &s.manifest.validation])
        .collect();
    hash_hex(&manifests)
}

impl Data {
    /// The fingerprint of the sources named `names` alone, as a run of a plan with just those (a run this
    /// plan extends) recorded it.
    pub fn fingerprint_of(&self, plan: &Plan, names: &[String]) -> String {
        let named = |k: &usize| names.contains(&plan.sources[*k].name);
        fingerprint(
            (0..self.sources.len())
                .filter(named)
                .map(|k| &self.sources[k]),
        )
    }
}

/// The plan's sources, each checked against the plan's tokenizer (or the first source's) and the
/// model's vocabulary.
fn open_sources(plan: &Plan) -> TrainResult<Vec<Arc<PreparedSource>>> {
    let mut sources = Vec::new();
    for s in &plan.sources {
        sources.push(Arc::new(PreparedSource::open(&s.dir)?));
    }
    let expected = match plan_tokenizer(plan)? {
        Some(spec) => Some(Tokenizer::load(&spec, None)?.info().clone()),
        None => None,
    };
    let first = &sources[0].manifest.tokenizer;
    let vocab = plan.model.vocab_size;
    for (plan_src, src) in plan.sources.iter().zip(&sources) {
        let want = expected.as_ref().unwrap_or(first);
        src.manifest.check_tokenizer(&plan_src.dir, want)?;
        let theirs = src.manifest.tokenizer.vocab_size as usize;
        if theirs > vocab {
            return Err(TrainError::Config(format!(
                "source `{}`: tokenizer vocabulary {theirs} > model.vocab_size {vocab}\nHINT: set model.vocab_size ≥ {theirs} (a multiple of 64 is fastest)",
                plan_src.name
            )));
        }
    }
    Ok(sources)
}

/// The plan's `[data] tokenizer`: `gpt2`, or a tokenizer.json relative to the plan's folder.
pub(crate) fn plan_tokenizer(plan: &Plan) -> TrainResult<Option<TokenizerSpec>> {
    Ok(match &plan.config.data.tokenizer {
        Some(t) if t.ends_with(".json") => Some(TokenizerSpec::HfFile(plan.base_dir.join(t))),
        Some(t) => Some(t.parse()?),
        None => None,
    })
}

/// What this run and the runs it continued have drawn of each source once `step` steps are done, as
/// the checkpoint records it (`consumed.json`).
pub fn consumption(plan: &Plan, data: &Data, step: u64) -> Consumption {
    let (stage, m) = match step {
        0 => (0, 0),
        _ => {
            let info = plan.step(step - 1);
            (info.data_stage, info.data_sequence + info.batch_sequences)
        }
    };
    let drawn = data.mixture.index.consumed_through(stage, m);
    let mut out = Consumption {
        seq_len: plan.seq_len,
        ..Consumption::default()
    };
    for (k, segments) in drawn.into_iter().enumerate().filter(|(_, s)| !s.is_empty()) {
        out.sources.insert(
            plan.sources[k].name.clone(),
            SourceConsumption {
                fingerprint: data.source_fingerprints[k].clone(),
                sequences: data.sources[k].train.sequences(plan.seq_len),
                segments: segments
                    .iter()
                    .map(|c| ConsumedSegment {
                        key: c.key,
                        draws: c.draws,
                    })
                    .collect(),
            },
        );
    }
    out
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
