//! Mixtures and replay: which source feeds sequence `i` of a stage, as a pure function of (seed, i, plan).
//!
//! A stage draws `sequences` training sequences. Each is assigned by a binary *apportionment tree*: at a node
//! with left weight `p`, the `j`-th sequence reaching the node goes left iff `⌊p(j+1)+φ⌋ > ⌊pj+φ⌋`
//! (φ a seeded phase in [0, 1)). The root splits replay (weight ρ) from new data, the subtrees split among
//! sources by token weight. Consequences, all O(depth) with no state:
//! - after `m` sequences exactly `⌊ρm+φ⌋` were replay, so every batch of B holds `round(ρB) ± 1` replayed
//!   sequences and a stage's replay total is within one sequence of `ρ·N`;
//! - a source's draws are numbered `0, 1, 2, …` across the whole plan; draw `g` of a source with `n`
//!   sequences is position `g mod n` of epoch `⌊g/n⌋`, whose order is a seeded permutation: no repetition
//!   within an epoch, and resuming needs only the step counter.
//!
//! Replay (Ibrahim et al. 2024 §5; spec §1.3) takes a fraction ρ of every batch from earlier stages' sources.
//! `ReplayPool::Seen` replays only sequences the earlier stages consumed (draws `0..S` of that source, in
//! their original order or reshuffled — spec §4.2 leaves it open, both are options); `Whole` draws from the
//! whole old training set with its own permutation. Several old sources are weighted by how many sequences
//! were seen from each (NeoX `replay_config_calculator.py`) unless weights are given.

use crate::error::{DataError, Result};
use crate::sampler::{stream_seed, unit_float, Permutation};
use crate::source::PreparedSource;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayPool {
    /// Only sequences consumed by earlier stages (Ibrahim et al.'s code).
    #[default]
    Seen,
    /// The whole old training split.
    Whole,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayOrder {
    /// Reshuffled with the "data/replay" seed (NeoX code default `replay_reshuffle_idx: True`).
    #[default]
    Shuffled,
    /// In the order the earlier stage consumed them.
    Original,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReplaySpec {
    /// Fraction ρ of every batch's sequences drawn from old sources.
    pub fraction: f64,
    /// Indices of the replayed sources.
    pub sources: Vec<usize>,
    /// Relative weights; `None` weights each source by the sequences seen from it before this stage.
    pub weights: Option<Vec<f64>>,
    pub pool: ReplayPool,
    pub order: ReplayOrder,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StageSpec {
    pub name: String,
    /// New-data sources with token-fraction weights (normalized here).
    pub sources: Vec<(usize, f64)>,
    pub replay: Option<ReplaySpec>,
    /// Training sequences the stage draws in total (replay included).
    pub sequences: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SourceMeta {
    pub name: String,
    /// Training sequences of the plan's length in this source's train split.
    pub sequences: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MixturePlan {
    pub seed: u64,
    /// A source may be read at most this many times over (replay pools likewise); more is an error.
    pub max_epochs: f64,
    pub sources: Vec<SourceMeta>,
    pub stages: Vec<StageSpec>,
}

/// Where one training sequence comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    pub source: usize,
    pub replay: bool,
    /// Index of the sequence in the source's train split.
    pub sequence: u64,
}

#[derive(Clone, Debug)]
enum Node {
    Leaf(usize),
    Split {
        p_left: f64,
        phase: f64,
        left: Box<Node>,
        right: Box<Node>,
    },
}

impl Node {
    /// Splits `slots` (weights > 0) into halves, recursively.
    fn build(slots: &[(usize, f64)], seed: u64) -> Node {
        if slots.len() == 1 {
            return Node::Leaf(slots[0].0);
        }
        let mid = slots.len() / 2;
        let (l, r) = slots.split_at(mid);
        let wl: f64 = l.iter().map(|s| s.1).sum();
        let wr: f64 = r.iter().map(|s| s.1).sum();
        Node::Split {
            p_left: wl / (wl + wr),
            phase: unit_float(seed),
            left: Box::new(Node::build(l, seed.wrapping_mul(31).wrapping_add(1))),
            right: Box::new(Node::build(r, seed.wrapping_mul(31).wrapping_add(2))),
        }
    }

    fn lefts(p: f64, phase: f64, m: u64) -> u64 {
        (p * m as f64 + phase).floor() as u64
    }

    /// The leaf of the `j`-th sequence reaching this node, and its index among that leaf's sequences.
    fn pick(&self, j: u64) -> (usize, u64) {
        match self {
            Node::Leaf(slot) => (*slot, j),
            Node::Split {
                p_left,
                phase,
                left,
                right,
            } => {
                let before = Self::lefts(*p_left, *phase, j);
                if Self::lefts(*p_left, *phase, j + 1) > before {
                    left.pick(before)
                } else {
                    right.pick(j - before)
                }
            }
        }
    }

    /// How many of the first `m` sequences reach each leaf.
    fn count(&self, m: u64, out: &mut [u64]) {
        match self {
            Node::Leaf(slot) => out[*slot] += m,
            Node::Split {
                p_left,
                phase,
                left,
                right,
            } => {
                let l = Self::lefts(*p_left, *phase, m);
                left.count(l, out);
                right.count(m - l, out);
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Leaf {
    source: usize,
    replay: bool,
    /// Draws of this (source, kind) made by earlier stages.
    offset: u64,
    /// For seen-only replay: the source's main draws before this stage (the pool).
    pool: u64,
    order: ReplayOrder,
    whole: bool,
}

#[derive(Clone, Debug)]
struct StageIndex {
    tree: Node,
    leaves: Vec<Leaf>,
    sequences: u64,
}

/// The pure, validated index of a plan's data: no tokens, only arithmetic.
#[derive(Clone, Debug)]
pub struct MixtureIndex {
    plan: MixturePlan,
    stages: Vec<StageIndex>,
    /// Per-source key bases for epoch permutations (main and replay streams).
    main_keys: Vec<u64>,
    replay_keys: Vec<u64>,
}

/// Planned draws of one stage from one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageDraws {
    pub source: usize,
    pub replay: bool,
    pub sequences: u64,
}

fn err(msg: String) -> DataError {
    DataError::Mixture(msg)
}

impl MixtureIndex {
    pub fn new(plan: MixturePlan) -> Result<Self> {
        let n_sources = plan.sources.len();
        let name = |k: usize| plan.sources[k].name.clone();
        if plan.max_epochs.is_nan() || plan.max_epochs <= 0.0 {
            return Err(err(format!(
                "data.max_epochs = {}: must be > 0",
                plan.max_epochs
            )));
        }
        let mut main_draws = vec![0u64; n_sources];
        let mut replay_draws = vec![0u64; n_sources];
        let mut stages = Vec::with_capacity(plan.stages.len());
        for (s, stage) in plan.stages.iter().enumerate() {
            let at = format!("stage `{}`", stage.name);
            let mut leaves = Vec::new();
            let check_source = |k: usize| -> Result<()> {
                if k >= n_sources {
                    return Err(err(format!(
                        "{at}: source index {k} is not among the {n_sources} sources"
                    )));
                }
                if plan.sources[k].sequences == 0 {
                    return Err(err(format!(
                        "{at}: source `{}` has no training sequence of the plan's length\nHINT: add data or shorten model.max_seq_len",
                        name(k)
                    )));
                }
                Ok(())
            };
            if stage.sources.is_empty() {
                return Err(err(format!(
                    "{at}: no sources\nHINT: list at least one source in the stage's mixture"
                )));
            }
            let mut new_slots = Vec::new();
            for &(k, w) in &stage.sources {
                check_source(k)?;
                if !(w.is_finite() && w > 0.0) {
                    return Err(err(format!(
                        "{at}: weight of `{}` is {w}; weights must be > 0",
                        name(k)
                    )));
                }
                new_slots.push((leaves.len(), w));
                leaves.push(Leaf {
                    source: k,
                    replay: false,
                    offset: main_draws[k],
                    pool: 0,
                    order: ReplayOrder::Original,
                    whole: false,
                });
            }
            let seed = stream_seed(plan.seed, &format!("data/stage/{s}"));
            let new_tree = Node::build(&new_slots, seed);
            let tree = match &stage.replay {
                Some(r) if r.fraction > 0.0 => {
                    if r.fraction.is_nan() || r.fraction >= 1.0 {
                        return Err(err(format!(
                            "{at}: replay fraction {} must be in [0, 1)",
                            r.fraction
                        )));
                    }
                    if r.sources.is_empty() {
                        return Err(err(format!(
                            "{at}: replay fraction {} but no replay sources",
                            r.fraction
                        )));
                    }
                    let mut slots = Vec::new();
                    for (i, &k) in r.sources.iter().enumerate() {
                        check_source(k)?;
                        let pool = main_draws[k];
                        let w = match &r.weights {
                            Some(w) => *w.get(i).ok_or_else(|| {
                                err(format!("{at}: one replay weight per replay source"))
                            })?,
                            // Weighted by sequences seen so far; a whole-set replay of a source no stage
                            // of this plan read (e.g. after init_from) counts as one unit.
                            None if pool > 0 => pool as f64,
                            None => 1.0,
                        };
                        if r.pool == ReplayPool::Seen && pool == 0 {
                            return Err(err(format!(
                                "{at}: replays `{}` from sequences seen in earlier stages, but no earlier stage trained on it\nHINT: use replay.pool = \"whole\" or replay a source an earlier stage read",
                                name(k)
                            )));
                        }
                        if !(w.is_finite() && w > 0.0) {
                            return Err(err(format!(
                                "{at}: replay weight of `{}` is {w}; must be > 0",
                                name(k)
                            )));
                        }
                        slots.push((leaves.len(), w));
                        leaves.push(Leaf {
                            source: k,
                            replay: true,
                            offset: replay_draws[k],
                            pool,
                            order: r.order,
                            whole: r.pool == ReplayPool::Whole,
                        });
                    }
                    Node::Split {
                        p_left: r.fraction,
                        phase: unit_float(seed ^ 0x5EED),
                        left: Box::new(Node::build(&slots, seed ^ 0xBEEF)),
                        right: Box::new(new_tree),
                    }
                }
                _ => new_tree,
            };
            let index = StageIndex {
                tree,
                leaves,
                sequences: stage.sequences,
            };
            let mut counts = vec![0u64; index.leaves.len()];
            index.tree.count(stage.sequences, &mut counts);
            for (leaf, &c) in index.leaves.iter().zip(&counts) {
                let k = leaf.source;
                if leaf.replay {
                    replay_draws[k] += c;
                    let pool = if leaf.whole {
                        plan.sources[k].sequences
                    } else {
                        leaf.pool
                    };
                    let epochs = replay_draws[k] as f64 / pool as f64;
                    if epochs > plan.max_epochs {
                        return Err(err(format!(
                            "{at}: replaying `{}` takes {} sequences from a pool of {pool} ({epochs:.2} passes), over the repetition cap data.max_epochs = {}\nHINT: lower the replay fraction, replay from the whole old set, add data, or raise data.max_epochs",
                            name(k), replay_draws[k], plan.max_epochs
                        )));
                    }
                } else {
                    main_draws[k] += c;
                    let epochs = main_draws[k] as f64 / plan.sources[k].sequences as f64;
                    if epochs > plan.max_epochs {
                        return Err(err(format!(
                            "{at}: reads source `{}` {epochs:.2} times over ({} of its {} sequences, all stages so far), over the repetition cap data.max_epochs = {}\nHINT: add data, shorten the stage, or raise data.max_epochs",
                            name(k), main_draws[k], plan.sources[k].sequences, plan.max_epochs
                        )));
                    }
                }
            }
            stages.push(index);
        }
        let main_keys = (0..n_sources)
            .map(|k| stream_seed(plan.seed, &format!("data/{}", name(k))))
            .collect();
        let replay_keys = (0..n_sources)
            .map(|k| stream_seed(plan.seed, &format!("data/replay/{}", name(k))))
            .collect();
        Ok(MixtureIndex {
            plan,
            stages,
            main_keys,
            replay_keys,
        })
    }

    pub fn plan(&self) -> &MixturePlan {
        &self.plan
    }

    /// Where sequence `i` (0-based, within the stage) of stage `stage` comes from.
    pub fn draw(&self, stage: usize, i: u64) -> Draw {
        let st = &self.stages[stage];
        debug_assert!(
            i < st.sequences,
            "sequence {i} past the end of stage {stage}"
        );
        let (slot, j) = st.tree.pick(i);
        let leaf = &st.leaves[slot];
        let k = leaf.source;
        let g = leaf.offset + j;
        let sequence = if !leaf.replay {
            self.main_sequence(k, g)
        } else if leaf.whole {
            self.epoch_permuted(self.replay_keys[k], self.plan.sources[k].sequences, g)
        } else {
            let d = match leaf.order {
                ReplayOrder::Original => g % leaf.pool,
                ReplayOrder::Shuffled => self.epoch_permuted(self.replay_keys[k], leaf.pool, g),
            };
            self.main_sequence(k, d)
        };
        Draw {
            source: k,
            replay: leaf.replay,
            sequence,
        }
    }

    /// The sequence of main-stream draw `g` of source `k`.
    fn main_sequence(&self, k: usize, g: u64) -> u64 {
        self.epoch_permuted(self.main_keys[k], self.plan.sources[k].sequences, g)
    }

    /// Position `g mod n` of the `⌊g/n⌋`-th seeded permutation of `0..n`.
    fn epoch_permuted(&self, key: u64, n: u64, g: u64) -> u64 {
        let epoch_key = key ^ (g / n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Permutation::new(n, epoch_key).apply(g % n)
    }

    /// Planned draws per (source, replay) of a stage's first `m` sequences.
    pub fn draws_in_first(&self, stage: usize, m: u64) -> Vec<StageDraws> {
        let st = &self.stages[stage];
        let mut counts = vec![0u64; st.leaves.len()];
        st.tree.count(m, &mut counts);
        st.leaves
            .iter()
            .zip(counts)
            .map(|(l, c)| StageDraws {
                source: l.source,
                replay: l.replay,
                sequences: c,
            })
            .collect()
    }

    /// Planned draws per (source, replay) of a whole stage.
    pub fn stage_draws(&self, stage: usize) -> Vec<StageDraws> {
        self.draws_in_first(stage, self.stages[stage].sequences)
    }
}

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
        for (meta, src) in index.plan.sources.iter().zip(&sources) {
            let n = src.train.sequences(seq_len);
            if n != meta.sequences {
                return Err(err(format!(
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
