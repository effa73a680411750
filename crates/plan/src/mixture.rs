//! The mixture a plan trains on, from its sources' manifests alone (no shard opened): each source's
//! fingerprint, and the seen replay pools started with what the `init_from` run consumed when that run
//! recorded it. Training and `rewarm plan` build the same one, and neither needs libtorch for it.

use crate::Plan;
use rewarm_data::mixture::Consumed;
use rewarm_data::{Manifest, MixturePlan};
use rewarm_interop::source::{checkpoint_dir, Source};
use rewarm_interop::InteropError;
use rewarm_runfolder::Consumption;
use sha2::{Digest, Sha256};

/// The plan's mixture over sources with `counts` training sequences (fingerprinted by
/// [`source_fingerprint`]), whose seen replay pools start with what the `init_from` checkpoint's run
/// consumed, when it recorded that.
pub fn mixture_plan(
    plan: &Plan,
    fingerprints: &[String],
    counts: &[u64],
) -> Result<MixturePlan, InteropError> {
    let mut mixture_plan = plan.mixture_plan(counts);
    if let Some(record) = init_from_record(plan)? {
        mixture_plan.earlier = earlier_draws(plan, &record, fingerprints, counts);
    }
    Ok(mixture_plan)
}

/// A hash of a source's training split as its manifest describes it (in consumption records).
pub fn source_fingerprint(manifest: &Manifest) -> String {
    hash_hex(&[&manifest.train])
}

/// The first 16 bytes of sha256 over the JSON of `parts`, in hex.
pub fn hash_hex<T: serde::Serialize>(parts: &[&T]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(serde_json::to_string(p).expect("serializes"));
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the run `init_from` names had consumed, when it is a rewarm checkpoint (or run folder) that
/// recorded it.
fn init_from_record(plan: &Plan) -> Result<Option<Consumption>, InteropError> {
    let Some(init) = &plan.config.init_from else {
        return Ok(None);
    };
    match Source::detect(&plan.base_dir.join(init))? {
        Source::Checkpoint(path) => Ok(Consumption::read(&checkpoint_dir(&path))?),
        _ => Ok(None),
    }
}

/// Per plan source, the record's draws of it — only where the record's data and sequence length are
/// this plan's (else the sequences it names would be other ones).
fn earlier_draws(
    plan: &Plan,
    record: &Consumption,
    fingerprints: &[String],
    counts: &[u64],
) -> Vec<Vec<Consumed>> {
    plan.sources
        .iter()
        .enumerate()
        .map(|(k, s)| match record.sources.get(&s.name) {
            Some(r)
                if record.seq_len == plan.seq_len
                    && r.fingerprint == fingerprints[k]
                    && r.sequences == counts[k] =>
            {
                let segs = r.segments.iter();
                segs.map(|g| Consumed {
                    key: g.key,
                    draws: g.draws,
                })
                .collect()
            }
            _ => Vec::new(),
        })
        .collect()
}
