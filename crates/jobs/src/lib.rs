//! rewarm's jobs beyond one training run, as a library the binary calls (ARCHITECTURE.md rule 4): loading
//! plans, running sweeps and studies, the quickstart, the data-parallel launcher, and a model loaded for
//! inference with its folder's text rules. The binary parses arguments, prints, and says how one run is
//! trained ([`RunTrainer`]); everything else is here, with unit tests.

pub mod inference;
pub mod launch;
pub mod plan_load;
pub mod quickstart;
mod runner;
pub mod study;
pub mod sweep;

pub use plan_load::load_plan;
pub use runner::RunTrainer;
