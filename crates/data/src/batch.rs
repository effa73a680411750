//! Batches: the sequences a [`MixtureIndex`] picks, copied out of the sources' token streams.

use crate::error::{DataError, Result};
use crate::mixture::MixtureIndex;
use crate::source::PreparedSource;
use std::sync::Arc;

/// One batch of training sequences: rows of `seq_len + 1` tokens, each with its source and replay flag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub seq_len: usize,
    pub tokens: Vec<u32>,
    pub sources: Vec<u16>,
    pub replay: Vec<bool>,
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.sources.len()
    }
    pub fn row(&self, r: usize) -> &[u32] {
        let w = self.seq_len + 1;
        &self.tokens[r * w..(r + 1) * w]
    }
    pub fn replayed(&self) -> usize {
        self.replay.iter().filter(|&&r| r).count()
    }
}

/// A mixture index plus the sources' token streams: assembles batches.
pub struct Mixture {
    pub index: MixtureIndex,
    pub seq_len: usize,
    sources: Vec<Arc<PreparedSource>>,
}

impl Mixture {
    pub fn new(
        index: MixtureIndex,
        seq_len: usize,
        sources: Vec<Arc<PreparedSource>>,
    ) -> Result<Self> {
        for (meta, src) in index.plan().sources.iter().zip(&sources) {
            let n = src.train.sequences(seq_len);
            if n != meta.sequences {
                return Err(DataError::Mixture(format!(
                    "source `{}` ({}) holds {n} sequences of {seq_len} tokens, the plan counted {}\nHINT: the prepared folder changed since planning; plan again",
                    meta.name,
                    src.dir.display(),
                    meta.sequences
                )));
            }
        }
        Ok(Mixture {
            index,
            seq_len,
            sources,
        })
    }

    /// Fills `batch` with sequences `first .. first + rows` of `stage`.
    pub fn fill(&self, stage: usize, first: u64, rows: usize, batch: &mut Batch) {
        let w = self.seq_len + 1;
        batch.seq_len = self.seq_len;
        batch.tokens.resize(rows * w, 0);
        batch.sources.clear();
        batch.replay.clear();
        for r in 0..rows {
            let d = self.index.draw(stage, first + r as u64);
            self.sources[d.source].train.copy_sequence(
                d.sequence,
                self.seq_len,
                &mut batch.tokens[r * w..(r + 1) * w],
            );
            batch.sources.push(d.source as u16);
            batch.replay.push(d.replay);
        }
    }
}
