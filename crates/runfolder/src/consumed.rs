//! `consumed.json` of a checkpoint: what the run (and the runs it continued) had drawn of each source
//! as new data when the checkpoint was written — compactly, as the draw streams that rebuild those
//! sequences. A run started from the checkpoint (`init_from`) replays exactly these with
//! `replay.pool = "seen"`.

use crate::error::Result;
use crate::CheckpointDir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Consumption {
    /// Training sequence length the draws are counted in.
    pub seq_len: usize,
    /// Source name → what was drawn of it.
    pub sources: BTreeMap<String, SourceConsumption>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceConsumption {
    /// The source's training split as the draws saw it (a hash of its manifest entry): a record is only
    /// used for the same data.
    pub fingerprint: String,
    /// Training sequences of `seq_len` in the split.
    pub sequences: u64,
    /// In order: draws `0..draws` of the epoch-permutation stream `key` (one per run that trained on it).
    pub segments: Vec<ConsumedSegment>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumedSegment {
    pub key: u64,
    pub draws: u64,
}

impl Consumption {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializes")
    }

    /// The record of a checkpoint; `None` when it has none (written before records, or not a rewarm
    /// checkpoint).
    pub fn read(ckpt: &CheckpointDir) -> Result<Option<Self>> {
        crate::json_file::read_if_present(&ckpt.consumed(), "consumed.json is written with every checkpoint; restore it, or replay with replay.pool = \"whole\"")
    }
}
