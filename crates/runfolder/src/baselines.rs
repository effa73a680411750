//! `baselines.json`: what count models score on each validation set of the run (unigram and bigram
//! cross-entropy, fitted on the source's training split and scored on the run's evaluation targets). A
//! run that does not beat the bigram has learned token frequencies, not language.

use crate::atomic::write_atomic;
use crate::error::{Result, RunFolderError};
use crate::RunDir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Validation set → its baselines.
    pub sets: BTreeMap<String, SetBaseline>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetBaseline {
    /// Add-one smoothed unigram, nats per target token.
    pub unigram: f64,
    /// Interpolated Kneser–Ney bigram, nats per target token.
    pub bigram: f64,
    /// Target tokens scored (the run's evaluation set).
    pub targets: u64,
    /// UTF-8 bytes per token of the validation split, for bits per byte (`None` if unknown).
    pub bytes_per_token: Option<f64>,
}

impl SetBaseline {
    /// `nats` per token as bits per byte of this set's text.
    pub fn bits_per_byte(&self, nats: f64) -> Option<f64> {
        let b = self.bytes_per_token.filter(|b| *b > 0.0)?;
        Some(nats / std::f64::consts::LN_2 / b)
    }
}

impl Baselines {
    pub fn write(&self, run: &RunDir) -> Result<()> {
        let path = run.baselines();
        let json = serde_json::to_string_pretty(self).expect("serializes");
        write_atomic(&path, json.as_bytes()).map_err(|e| RunFolderError::io(&path, e))
    }

    /// The run's baselines; `None` for a run folder written before they were recorded.
    pub fn read(run: &RunDir) -> Result<Option<Self>> {
        crate::json_file::read_if_present(&run.baselines(), "baselines.json is written by `rewarm train` at the start of a run; delete it and train (or resume) the run again to rewrite it")
    }
}
