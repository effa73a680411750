//! Methods: what the report compares. A method is the runs of one sweep folder that share a sweep.json
//! label — they differ only by their seed and are named `{group}/{label}/seed={s}` — or a run given
//! directly. The sections report per method, every number as mean ± sd (n) over its runs
//! ([`crate::stat`]).

use crate::run::RunData;
use std::collections::BTreeMap;

/// One method and its runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Method {
    /// `{group}/{label}` (a sweep's runs), or the run's name (a run given directly).
    pub(crate) name: String,
    /// Indices of its runs in the report's runs, in their order (by name).
    pub(crate) runs: Vec<usize>,
}

impl Method {
    /// Its first run (by name): what its runs share, such as stages and sets, is read from it.
    pub(crate) fn first(&self) -> usize {
        self.runs[0]
    }
}

/// The method a run belongs to, by name.
pub(crate) fn method_name(run: &RunData) -> String {
    match &run.group {
        Some(group) => format!("{group}/{}", run.method),
        None => run.method.clone(),
    }
}

/// `runs` grouped by method (runs sharing group and method), sorted by the method's name.
pub(crate) fn group_by_method(runs: &[RunData]) -> Vec<Method> {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        by_name.entry(method_name(r)).or_default().push(i);
    }
    by_name
        .into_iter()
        .map(|(name, runs)| Method { name, runs })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::tests::one_stage_run;

    fn run(group: Option<&str>, label: &str, seed: Option<u64>) -> RunData {
        let mut r = one_stage_run(None);
        r.group = group.map(str::to_owned);
        r.method = label.into();
        r.seed = seed;
        r.name = match (group, seed) {
            (Some(g), Some(s)) => format!("{g}/{label}/seed={s}"),
            (Some(g), None) => format!("{g}/{label}"),
            (None, _) => label.into(),
        };
        r
    }

    #[test]
    fn runs_that_differ_by_seed_are_one_method_per_sweep_folder() {
        let mut runs = vec![
            run(Some("weak"), "replay=0.25", Some(2)),
            run(Some("weak"), "replay=0.25", Some(1)),
            run(Some("weak"), "union", None),
            run(Some("strong"), "replay=0.25", Some(1)),
            run(None, "scratch", None),
        ];
        runs.sort_by(|a, b| a.name.cmp(&b.name));
        let methods = group_by_method(&runs);
        let named: Vec<(&str, Vec<&str>)> = methods
            .iter()
            .map(|m| {
                let names = m.runs.iter().map(|&i| runs[i].name.as_str()).collect();
                (m.name.as_str(), names)
            })
            .collect();
        assert_eq!(
            named,
            [
                ("scratch", vec!["scratch"]),
                ("strong/replay=0.25", vec!["strong/replay=0.25/seed=1"]),
                (
                    "weak/replay=0.25",
                    vec!["weak/replay=0.25/seed=1", "weak/replay=0.25/seed=2"]
                ),
                ("weak/union", vec!["weak/union"]),
            ]
        );
        assert_eq!(runs[methods[2].first()].seed, Some(1));
    }
}
