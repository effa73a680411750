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
//! Replay (Ibrahim et al. 2024 §5; docs/papers.md#data-operations-and-replay) takes a fraction ρ of every
//! batch from earlier stages' sources. `ReplayPool::Seen` replays only sequences consumed before: by the
//! runs this one continues (`MixturePlan::earlier`, from their checkpoints' records), then by the earlier
//! stages (draws `0..S` of that source), in their original order or reshuffled — an open question,
//! docs/papers.md#q2-replay-order-and-pool, so both are options); `Whole` draws from the whole old training
//! set with its own permutation. Several old sources are weighted by how many sequences were seen from each
//! (NeoX `replay_config_calculator.py`) unless weights are given.
//! A replay buffer (`ReplaySpec::buffer`, MER's reservoir) narrows a shuffled seen pool to a uniform
//! sample of it, positions `0..size` of a seeded permutation of the pool drawn per stage and source.
//! A stage read in passes over a subset (`StageSpec::subset_epochs`, Guo et al. 2024) takes the next
//! ⌈draws / E⌉ draws of each new source's stream as the subset and repeats them: the first pass in the
//! stream's order, each later pass reshuffled. The subset is what the stage has seen of the source, so
//! replay and the consumed record count it once.
//!
//! A [`MixturePlan`] comes from a plan `rewarm-plan` validated (`Plan::new`, the one place plans are
//! checked), so the rules checked there are only `debug_assert!`ed here: source indices in range, every
//! stage has sources, mixture and replay weights finite and > 0, replay fraction in [0, 1), replay sources
//! named with one weight each, and `max_epochs` > 0. What depends on the sources' sizes or on the stages' draws is an error: a source with
//! no training sequence of the plan's length, a seen pool nothing drew into (a source too lightly weighted
//! for its stage's length, or a run continued without a record of the source), a source or replay pool
//! read past `max_epochs`, and, in
//! [`Mixture::new`], a prepared folder whose sequence count changed since planning.

use crate::error::{DataError, Result};
use crate::sampler::{stream_seed, unit_float, Permutation};
use serde::{Deserialize, Serialize};

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
    /// A replay buffer of about this many sequences (seen pool, shuffled order only): at the stage's
    /// start a uniform sample of the seen pool, split across the replayed sources by their pools' sizes;
    /// replay draws only from it. `None`: the whole seen pool.
    pub buffer: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StageSpec {
    pub name: String,
    /// New-data sources with token-fraction weights (normalized here).
    pub sources: Vec<(usize, f64)>,
    pub replay: Option<ReplaySpec>,
    /// Training sequences the stage draws in total (replay included).
    pub sequences: u64,
    /// Read each new-data source's draws as this many passes over a subset of it (Guo et al. 2024): the
    /// next ⌈draws / E⌉ sequences of its stream, in the stream's order, then reshuffled for every later
    /// pass. `None` (or 1): one pass, every draw a fresh sequence.
    pub subset_epochs: Option<u64>,
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
    /// Per source (empty: none), what the runs this one continues (`init_from`) drew of it, in order:
    /// the front of its seen-only replay pool.
    pub earlier: Vec<Vec<Consumed>>,
}

/// Sequences of a source that a run drew as new data, in the order it drew them: draws `0..draws` of
/// the epoch-permutation stream `key` over the source's training sequences. A run's record of these
/// (its checkpoint's `consumed.json`) lets a run that continues it replay exactly what it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumed {
    pub key: u64,
    pub draws: u64,
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
    /// Seen-only replay from a buffer: its size and the key of the permutation of the pool that picks it.
    buffer: Option<(u64, u64)>,
    /// New data read in passes over a subset (`StageSpec::subset_epochs`): the subset's size and the key
    /// of the permutations that reshuffle the passes after the first.
    subset: Option<(u64, u64)>,
}

impl Leaf {
    /// The leaf's `j`-th draw of the stage as a draw of its stream after `offset`: itself, or in passes
    /// over a subset, its place in the subset (the first pass in order, each later one reshuffled).
    fn subset_draw(&self, j: u64) -> u64 {
        match self.subset {
            Some((size, key)) if j >= size => epoch_permuted(key, size, j),
            _ => j,
        }
    }

    /// Distinct sequences of its stream that `c` draws of the leaf read.
    fn fresh(&self, c: u64) -> u64 {
        self.subset.map_or(c, |(size, _)| c.min(size))
    }
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
    /// Indexes a plan that `rewarm-plan` validated (the module doc lists what is asserted, not checked).
    /// Errors are what only the sources' sizes and the stages' draws can tell: a source without a
    /// sequence of the plan's length, an empty seen pool, a source or pool read past the repetition cap.
    pub fn new(plan: MixturePlan) -> Result<Self> {
        debug_assert!(
            plan.max_epochs > 0.0,
            "data.max_epochs = {}: the plan checks it is > 0",
            plan.max_epochs
        );
        let mut tally = Tally::new(&plan);
        let mut stages = Vec::with_capacity(plan.stages.len());
        for (s, stage) in plan.stages.iter().enumerate() {
            let at = format!("stage `{}`", stage.name);
            let index = tally.stage_index(s, &at)?;
            tally.count(&at, &index)?;
            stages.push(index);
        }
        let main_keys = source_keys(&plan, "data");
        let replay_keys = source_keys(&plan, "data/replay");
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
            self.main_sequence(k, leaf.offset + leaf.subset_draw(j))
        } else if leaf.whole {
            epoch_permuted(self.replay_keys[k], self.plan.sources[k].sequences, g)
        } else {
            let d = match (leaf.order, leaf.buffer) {
                (ReplayOrder::Original, _) => g % leaf.pool,
                (ReplayOrder::Shuffled, None) => epoch_permuted(self.replay_keys[k], leaf.pool, g),
                // The buffer is positions 0..size of a permutation of the pool.
                (ReplayOrder::Shuffled, Some((size, key))) => {
                    let slot = epoch_permuted(self.replay_keys[k], size, g);
                    Permutation::new(leaf.pool, key).apply(slot)
                }
            };
            self.seen_sequence(k, d)
        };
        Draw {
            source: k,
            replay: leaf.replay,
            sequence,
        }
    }

    /// The sequence of main-stream draw `g` of source `k`.
    fn main_sequence(&self, k: usize, g: u64) -> u64 {
        epoch_permuted(self.main_keys[k], self.plan.sources[k].sequences, g)
    }

    /// Position `d` of source `k`'s seen pool: what the runs this one continues drew, in their order,
    /// then this run's own main draws.
    fn seen_sequence(&self, k: usize, mut d: u64) -> u64 {
        for seg in self.plan.earlier.get(k).into_iter().flatten() {
            if d < seg.draws {
                return epoch_permuted(seg.key, self.plan.sources[k].sequences, d);
            }
            d -= seg.draws;
        }
        self.main_sequence(k, d)
    }

    /// What this run and the runs it continues have drawn of each source as new data once the first
    /// `m` sequences of stage `stage` are done: the record a run that continues from there replays from.
    pub fn consumed_through(&self, stage: usize, m: u64) -> Vec<Vec<Consumed>> {
        let mut own = vec![0u64; self.plan.sources.len()];
        for s in 0..=stage {
            let first = if s == stage {
                m
            } else {
                self.stages[s].sequences
            };
            let st = &self.stages[s];
            let mut counts = vec![0u64; st.leaves.len()];
            st.tree.count(first, &mut counts);
            for (leaf, c) in st.leaves.iter().zip(counts).filter(|(l, _)| !l.replay) {
                own[leaf.source] += leaf.fresh(c);
            }
        }
        own.iter()
            .enumerate()
            .map(|(k, &draws)| {
                let mut record = self.plan.earlier.get(k).cloned().unwrap_or_default();
                if draws > 0 {
                    record.push(Consumed {
                        key: self.main_keys[k],
                        draws,
                    });
                }
                record
            })
            .collect()
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

/// Position `g mod n` of the `⌊g/n⌋`-th seeded permutation of `0..n`.
fn epoch_permuted(key: u64, n: u64, g: u64) -> u64 {
    let epoch_key = key ^ (g / n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Permutation::new(n, epoch_key).apply(g % n)
}

/// One key base per source for its epoch permutations: the seed's stream `{prefix}/{source name}`.
fn source_keys(plan: &MixturePlan, prefix: &str) -> Vec<u64> {
    plan.sources
        .iter()
        .map(|s| stream_seed(plan.seed, &format!("{prefix}/{}", s.name)))
        .collect()
}

/// Appends `leaf` to a stage's leaves and, with weight `w`, to the slots of the subtree it belongs to.
fn add_leaf(at: &str, leaves: &mut Vec<Leaf>, slots: &mut Vec<(usize, f64)>, leaf: Leaf, w: f64) {
    debug_assert!(
        w.is_finite() && w > 0.0,
        "{at}: weight {w} of source {} (replay: {}); the plan checks mixture and replay weights are > 0",
        leaf.source,
        leaf.replay
    );
    slots.push((leaves.len(), w));
    leaves.push(leaf);
}

/// The draws of each source by the stages indexed so far, new data and replay apart: where the next
/// stage's leaves continue, and what the repetition cap is held to.
struct Tally<'a> {
    plan: &'a MixturePlan,
    main: Vec<u64>,
    replay: Vec<u64>,
}

impl<'a> Tally<'a> {
    fn new(plan: &'a MixturePlan) -> Self {
        let n_sources = plan.sources.len();
        Tally {
            plan,
            main: vec![0; n_sources],
            replay: vec![0; n_sources],
        }
    }

    fn name(&self, k: usize) -> &str {
        &self.plan.sources[k].name
    }

    /// Stage `s`'s leaves and apportionment tree: new data split by token weight, under a root that
    /// splits off the replay fraction ρ when the stage replays.
    fn stage_index(&self, s: usize, at: &str) -> Result<StageIndex> {
        let stage = &self.plan.stages[s];
        let mut leaves = Vec::new();
        let new_slots = self.new_data_leaves(stage, at, &mut leaves)?;
        let seed = stream_seed(self.plan.seed, &format!("data/stage/{s}"));
        let new_tree = Node::build(&new_slots, seed);
        let tree = match &stage.replay {
            Some(r) if r.fraction > 0.0 => {
                let slots = self.replay_leaves(r, (s, at), &mut leaves)?;
                Node::Split {
                    p_left: r.fraction,
                    phase: unit_float(seed ^ 0x5EED),
                    left: Box::new(Node::build(&slots, seed ^ 0xBEEF)),
                    right: Box::new(new_tree),
                }
            }
            _ => new_tree,
        };
        if let Some(epochs) = stage.subset_epochs.filter(|&e| e > 1) {
            self.subsets(s, epochs, &tree, stage.sequences, &mut leaves);
        }
        Ok(StageIndex {
            tree,
            leaves,
            sequences: stage.sequences,
        })
    }

    /// Stage `s`'s new-data leaves read in `epochs` passes over a subset: ⌈draws / epochs⌉ sequences each.
    fn subsets(&self, s: usize, epochs: u64, tree: &Node, sequences: u64, leaves: &mut [Leaf]) {
        let mut counts = vec![0u64; leaves.len()];
        tree.count(sequences, &mut counts);
        for (leaf, c) in leaves.iter_mut().zip(counts).filter(|(l, _)| !l.replay) {
            let key = stream_seed(
                self.plan.seed,
                &format!("data/subset/{s}/{}", self.name(leaf.source)),
            );
            leaf.subset = Some((c.div_ceil(epochs).max(1), key));
        }
    }

    /// One leaf per mixture source, continuing its main draws; returns the leaves' (slot, weight).
    fn new_data_leaves(
        &self,
        stage: &StageSpec,
        at: &str,
        leaves: &mut Vec<Leaf>,
    ) -> Result<Vec<(usize, f64)>> {
        debug_assert!(
            !stage.sources.is_empty(),
            "{at}: no sources; the plan rejects an empty mixture"
        );
        let mut slots = Vec::new();
        for &(k, w) in &stage.sources {
            self.check_source(at, k)?;
            let leaf = Leaf {
                source: k,
                replay: false,
                offset: self.main[k],
                pool: 0,
                order: ReplayOrder::Original,
                whole: false,
                buffer: None,
                subset: None,
            };
            add_leaf(at, leaves, &mut slots, leaf, w);
        }
        Ok(slots)
    }

    /// One leaf per replayed source of a stage, continuing its replay draws from its pool; returns the
    /// leaves' (slot, weight).
    fn replay_leaves(
        &self,
        r: &ReplaySpec,
        (s, at): (usize, &str),
        leaves: &mut Vec<Leaf>,
    ) -> Result<Vec<(usize, f64)>> {
        debug_assert!(
            r.fraction < 1.0 && !r.sources.is_empty(),
            "{at}: replay fraction {} of {:?}; the plan checks 0 ≤ ρ < 1 and names the sources",
            r.fraction,
            r.sources
        );
        debug_assert!(
            r.weights
                .as_ref()
                .is_none_or(|w| w.len() == r.sources.len()),
            "{at}: the plan checks there is one replay weight per replay source"
        );
        let pools: Vec<u64> = r.sources.iter().map(|&k| self.pool(k)).collect();
        let mut slots = Vec::new();
        for (i, &k) in r.sources.iter().enumerate() {
            self.check_source(at, k)?;
            let pool = pools[i];
            let w = match &r.weights {
                Some(w) => w[i],
                // Weighted by sequences seen so far; a whole-set replay of a source no stage
                // of this plan read (e.g. after init_from) counts as one unit.
                None if pool > 0 => pool as f64,
                None => 1.0,
            };
            if r.pool == ReplayPool::Seen {
                self.check_seen_pool(at, k, pool)?;
            }
            let leaf = Leaf {
                source: k,
                replay: true,
                offset: self.replay[k],
                pool,
                order: r.order,
                whole: r.pool == ReplayPool::Whole,
                buffer: r.buffer.map(|m| self.buffer(s, k, m, (pool, &pools))),
                subset: None,
            };
            add_leaf(at, leaves, &mut slots, leaf, w);
        }
        Ok(slots)
    }

    /// Source `k`'s seen pool before the stage being indexed: what the runs this one continues drew, then
    /// the main draws of the stages before.
    fn pool(&self, k: usize) -> u64 {
        self.earlier_draws(k) + self.main[k]
    }

    /// Source `k`'s part of stage `s`'s replay buffer of `m` sequences, shared by pool sizes (at least
    /// one sequence, at most its whole pool), and the key of the pool permutation that picks it.
    fn buffer(&self, s: usize, k: usize, m: u64, (pool, pools): (u64, &[u64])) -> (u64, u64) {
        let total: u64 = pools.iter().sum();
        let share = (m as f64 * pool as f64 / total.max(1) as f64).round() as u64;
        let key = stream_seed(
            self.plan.seed,
            &format!("data/replay-buffer/{s}/{}", self.name(k)),
        );
        (share.clamp(1, pool.max(1)), key)
    }

    /// Draws of source `k` by the runs this one continues (the front of its seen pool).
    fn earlier_draws(&self, k: usize) -> u64 {
        self.plan
            .earlier
            .get(k)
            .map_or(0, |segs| segs.iter().map(|s| s.draws).sum())
    }

    /// Source `k` has a training sequence of the plan's length (its index is the plan's to check).
    fn check_source(&self, at: &str, k: usize) -> Result<()> {
        debug_assert!(
            k < self.plan.sources.len(),
            "{at}: source index {k} of {} sources; the plan resolves source names",
            self.plan.sources.len()
        );
        if self.plan.sources[k].sequences == 0 {
            return Err(err(format!(
                "{at}: source `{}` has no training sequence of the plan's length\nHINT: add data or shorten model.max_seq_len",
                self.name(k)
            )));
        }
        Ok(())
    }

    /// Seen-only replay of source `k` by stage `s` has a pool: what the runs this one continues drew,
    /// then the main draws of the stages before. The plan checks that an earlier stage's mixture lists
    /// the source or that the run continues another (`init_from`); it does not count draws: a weight too
    /// small for a stage's length leaves a listed source undrawn, and the run continued may have no
    /// record of the source.
    fn check_seen_pool(&self, at: &str, k: usize, pool: u64) -> Result<()> {
        if pool == 0 {
            return Err(err(format!(
                "{at}: replays `{}` from sequences seen earlier, but earlier stages and the run this one continues (init_from) drew none of it\nHINT: use replay.pool = \"whole\", continue from a rewarm checkpoint that trained on it, or give it more weight in an earlier stage's mixture",
                self.name(k)
            )));
        }
        Ok(())
    }

    /// Adds a stage's draws to the tally, holding every source and replay pool to the repetition cap.
    fn count(&mut self, at: &str, index: &StageIndex) -> Result<()> {
        let mut counts = vec![0u64; index.leaves.len()];
        index.tree.count(index.sequences, &mut counts);
        for (leaf, &c) in index.leaves.iter().zip(&counts) {
            if leaf.replay {
                self.replay[leaf.source] += c;
                self.check_replay_cap(at, leaf)?;
            } else {
                self.main[leaf.source] += leaf.fresh(c);
                self.check_main_cap(at, leaf.source)?;
                self.check_subset_cap(at, leaf, c)?;
            }
        }
        Ok(())
    }

    /// Source `k`'s main draws so far, all stages, are at most `max_epochs` passes over it.
    fn check_main_cap(&self, at: &str, k: usize) -> Result<()> {
        let (drawn, sequences) = (self.main[k], self.plan.sources[k].sequences);
        let epochs = drawn as f64 / sequences as f64;
        if epochs > self.plan.max_epochs {
            return Err(err(format!(
                "{at}: reads source `{}` {epochs:.2} times over ({drawn} of its {sequences} sequences, all stages so far), over the repetition cap data.max_epochs = {}\nHINT: add data, shorten the stage, or raise data.max_epochs",
                self.name(k), self.plan.max_epochs
            )));
        }
        Ok(())
    }

    /// A leaf read in passes over a subset is read at most `max_epochs` times over it.
    fn check_subset_cap(&self, at: &str, leaf: &Leaf, c: u64) -> Result<()> {
        let Some((size, _)) = leaf.subset else {
            return Ok(());
        };
        let epochs = c as f64 / size as f64;
        if epochs > self.plan.max_epochs {
            return Err(err(format!(
                "{at}: reads a subset of `{}` {epochs:.2} times over ({c} draws of {size} sequences), over the repetition cap data.max_epochs = {}\nHINT: lower the stage's subset_epochs or raise data.max_epochs",
                self.name(leaf.source), self.plan.max_epochs
            )));
        }
        Ok(())
    }

    /// A replay leaf's source's replay draws so far are at most `max_epochs` passes over its pool.
    fn check_replay_cap(&self, at: &str, leaf: &Leaf) -> Result<()> {
        let k = leaf.source;
        let pool = match (leaf.whole, leaf.buffer) {
            (true, _) => self.plan.sources[k].sequences,
            (false, Some((size, _))) => size,
            (false, None) => leaf.pool,
        };
        let epochs = self.replay[k] as f64 / pool as f64;
        if epochs > self.plan.max_epochs {
            return Err(err(format!(
                "{at}: replaying `{}` takes {} sequences from a pool of {pool} ({epochs:.2} passes), over the repetition cap data.max_epochs = {}\nHINT: lower the replay fraction, enlarge or drop replay.buffer_sequences, replay from the whole old set, add data, or raise data.max_epochs",
                self.name(k), self.replay[k], self.plan.max_epochs
            )));
        }
        Ok(())
    }
}
