//! rewarm's data path: corpora → tokenizers → token shards → replay-mixed, resumable batches.
//!
//! Knows nothing of tensors or models. The flow: [`prepare`] reads text ([`corpus`]), tokenizes it
//! ([`tokenizer`]) and writes [`shard`]s plus a [`manifest`]; [`source`] opens a prepared folder;
//! [`mixture`] decides, as a pure function of (seed, sequence index, plan), which source and sequence feed
//! each training row; [`eval`] holds the fixed validation token sets; [`baseline`] scores them with
//! count models (unigram, Kneser–Ney bigram) that every trained model must beat.
//!
//! Plans arrive validated by `rewarm-plan`: this crate asserts the rules checked there rather than
//! checking them again, and reports as errors only what depends on the data (see [`mixture`]).

pub mod baseline;
pub mod batch;
pub mod corpus;
pub mod error;
pub mod eval;
pub mod manifest;
pub mod mixture;
pub mod prepare;
pub mod sampler;
pub mod shard;
pub mod source;
pub mod synthetic;
pub mod tasks;
pub mod tokenizer;

pub use batch::{Batch, Mixture};
pub use error::{DataError, Result};
pub use manifest::{Manifest, Split, SplitRule};
pub use mixture::{
    Draw, MixtureIndex, MixturePlan, ReplayOrder, ReplayPool, ReplaySpec, SourceMeta, StageSpec,
};
pub use source::{PreparedSource, TokenStream};
pub use tokenizer::{Tokenizer, TokenizerInfo, TokenizerSpec};
