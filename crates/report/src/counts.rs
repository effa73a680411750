//! The count-model baselines a report shows (`baselines.json`, issue 12): per validation set, the unigram
//! and bigram cross-entropy of the first run that has them. A final loss that is not below the bigram's
//! is flagged: such a model learned token frequencies, not language.

use crate::run::RunData;
use rewarm_runfolder::SetBaseline;
use std::collections::BTreeMap;

/// Marks a final loss that is not below its set's bigram.
pub(crate) const FLAG: &str = "†";
/// Said under every table with a [`FLAG`].
pub(crate) const FLAG_NOTE: &str = "† not below the bigram count model: this model learned token \
     frequencies, not language; no finding should rest on it.";

/// One set's count baselines as shown.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shown {
    /// The run whose baselines.json they come from.
    pub(crate) run: String,
    pub(crate) baseline: SetBaseline,
    /// That run's bytes per token of the set (for bits per byte).
    pub(crate) bytes_per_token: Option<f64>,
    /// Runs whose baselines.json holds other values for the set.
    pub(crate) disagree: Vec<String>,
}

/// Validation set → its count baselines as shown.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CountBaselines {
    pub(crate) sets: BTreeMap<String, Shown>,
}

impl CountBaselines {
    /// The baselines of `runs`: per set the first run's that has one, and the runs that disagree with it.
    pub(crate) fn of<'a>(runs: impl IntoIterator<Item = &'a RunData>) -> Self {
        let mut sets: BTreeMap<String, Shown> = BTreeMap::new();
        for r in runs {
            for (set, b) in r.baselines.iter().flat_map(|b| &b.sets) {
                match sets.get_mut(set) {
                    Some(shown) if !same(&shown.baseline, b) => shown.disagree.push(r.name.clone()),
                    Some(_) => {}
                    None => {
                        let shown = Shown {
                            run: r.name.clone(),
                            baseline: *b,
                            bytes_per_token: r.bytes_per_token.get(set).copied(),
                            disagree: Vec::new(),
                        };
                        sets.insert(set.clone(), shown);
                    }
                }
            }
        }
        CountBaselines { sets }
    }

    /// Whether a final loss (nats) on `set` is not below the set's bigram; false without a bigram.
    pub(crate) fn flags(&self, set: &str, loss: Option<f64>) -> bool {
        let bigram = self.sets.get(set).map(|s| s.baseline.bigram);
        matches!((loss, bigram), (Some(l), Some(b)) if l >= b)
    }

    /// A note per set whose runs disagree on its baselines.
    pub(crate) fn notes(&self) -> Vec<String> {
        self.sets
            .iter()
            .filter(|(_, s)| !s.disagree.is_empty())
            .map(|(set, s)| {
                format!(
                    "The runs disagree on the count baselines of `{set}` (their evaluation targets differ): \
                     the rows show {}'s; {} differ.",
                    s.run,
                    s.disagree.join(", ")
                )
            })
            .collect()
    }
}

/// Equal up to rounding in the last digits.
fn same(a: &SetBaseline, b: &SetBaseline) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
    close(a.unigram, b.unigram) && close(a.bigram, b.bigram)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::tests::one_stage_run;
    use rewarm_runfolder::Baselines;

    fn with_bigram(name: &str, bigram: f64) -> RunData {
        let mut r = one_stage_run(None);
        r.name = name.into();
        let b = SetBaseline {
            unigram: 6.0,
            bigram,
            targets: 100,
            bytes_per_token: Some(4.0),
        };
        r.baselines = Some(Baselines {
            sets: BTreeMap::from([("de".to_owned(), b)]),
        });
        r
    }

    #[test]
    fn a_loss_not_below_the_bigram_is_flagged() {
        let counts = CountBaselines::of([&with_bigram("a", 5.5)]);
        assert!(counts.flags("de", Some(5.5)));
        assert!(counts.flags("de", Some(5.6)));
        assert!(!counts.flags("de", Some(5.4999)));
        // No bigram, no loss: nothing to flag.
        assert!(!counts.flags("en", Some(9.0)));
        assert!(!counts.flags("de", None));
        assert!(counts.notes().is_empty());
    }

    #[test]
    fn the_first_runs_baselines_are_shown_and_a_disagreement_is_noted() {
        let (a, b) = (with_bigram("a", 5.5), with_bigram("b", 5.0));
        let counts = CountBaselines::of([&a, &b]);
        let de = &counts.sets["de"];
        assert_eq!((de.run.as_str(), de.baseline.bigram), ("a", 5.5));
        assert_eq!(de.disagree, ["b"]);
        let notes = counts.notes();
        assert!(
            notes.len() == 1 && notes[0].contains("a's; b differ"),
            "{notes:?}"
        );
    }
}
