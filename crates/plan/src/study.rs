//! Built-in studies: the papers' experiments (spec §3 B–F) as plans, at a size the machine can afford.
//! A study is a pretraining plan on the first source (D0) — unless the study trains from scratch — plus a
//! list of runs (plans) that the sweep runner trains and the report compares. Pure: plans are built as
//! TOML text from the sources' names, folders and vocabulary size.

use crate::sweep::{run_id, union_plan, SweepRun};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Value;

pub const STUDIES: [&str; 7] = [
    "warmup",
    "max-lr",
    "replay",
    "union",
    "infinite",
    "wsd",
    "quickstart",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// `tiny` model, ~100k-token stages: a smoke test in a minute or two on 2 cores.
    Tiny,
    /// `small` (7M parameters), ~0.4M-token stages: minutes per run on 2 cores.
    Small,
    /// `pythia-70m` shape, ~20M-token stages: a GPU.
    Base,
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tiny" => Ok(Size::Tiny),
            "small" => Ok(Size::Small),
            "base" => Ok(Size::Base),
            _ => Err(format!("--size {s}: expected tiny, small or base")),
        }
    }
}

/// What a [`Size`] trains: model preset, sequence length, batch, token budgets, peak LR, eval cadence.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    preset: &'static str,
    seq_len: usize,
    batch_tokens: u64,
    pretrain_tokens: u64,
    stage_tokens: u64,
    max_lr: f64,
    eval_every: u64,
    eval_tokens: u64,
}

impl Size {
    pub fn scale(self) -> Scale {
        match self {
            Size::Tiny => Scale {
                preset: "tiny",
                seq_len: 64,
                batch_tokens: 1024,
                pretrain_tokens: 100_000,
                stage_tokens: 100_000,
                max_lr: 3e-3,
                eval_every: 10,
                eval_tokens: 8192,
            },
            Size::Small => Scale {
                preset: "small",
                seq_len: 128,
                batch_tokens: 4096,
                pretrain_tokens: 400_000,
                stage_tokens: 300_000,
                max_lr: 2e-3,
                eval_every: 10,
                eval_tokens: 8192,
            },
            Size::Base => Scale {
                preset: "pythia-70m",
                seq_len: 512,
                batch_tokens: 65_536,
                pretrain_tokens: 20_000_000,
                stage_tokens: 20_000_000,
                max_lr: 6e-4,
                eval_every: 50,
                eval_tokens: 262_144,
            },
        }
    }
}

impl Scale {
    /// The same scale with the pretraining and stage token budgets multiplied by `factor` (rounded to whole
    /// batches, at least one): `rewarm study --token-scale` for a quick look or a test. Evaluation keeps its
    /// cadence in steps, and evaluates at every stage end anyway.
    pub fn with_token_scale(mut self, factor: f64) -> Scale {
        let scaled = |tokens: u64| {
            let batches = (tokens as f64 * factor / self.batch_tokens as f64).round() as u64;
            batches.max(1) * self.batch_tokens
        };
        if factor != 1.0 {
            self.pretrain_tokens = scaled(self.pretrain_tokens);
            self.stage_tokens = scaled(self.stage_tokens);
        }
        self
    }
}

/// A prepared source given to a study: name, absolute folder, tokenizer vocabulary.
#[derive(Clone, Debug)]
pub struct StudySource {
    pub name: String,
    pub dir: PathBuf,
    pub vocab_size: u32,
}

/// What a study trains: an optional D0 pretraining plan (its final checkpoint is `init_from` of the runs),
/// then the runs.
pub struct Study {
    pub pretrain: Option<toml::Table>,
    pub runs: Vec<SweepRun>,
}

fn header(seed: u64, sources: &[StudySource], s: &Scale, init_from: Option<&Path>) -> String {
    let vocab =
        (sources.iter().map(|x| x.vocab_size).max().unwrap_or(0) as usize).div_ceil(64) * 64;
    let srcs: Vec<String> = sources
        .iter()
        .map(|x| format!("{} = {:?}", x.name, x.dir.display().to_string()))
        .collect();
    let init = init_from
        .map(|p| format!("init_from = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    format!(
        "seed = {seed}\n{init}[model]\npreset = \"{}\"\nvocab_size = {vocab}\nmax_seq_len = {}\n[data]\nsources = {{ {} }}\n\
         [train]\nbatch_tokens = {}\n[eval]\nevery_steps = {}\ntokens = {}\ndense_steps = {}\ndense_every_steps = {}\n\
         [checkpoint]\nevery_steps = 0\nkeep_last = 1\n",
        s.preset,
        s.seq_len,
        srcs.join(", "),
        s.batch_tokens,
        s.eval_every,
        s.eval_tokens,
        s.eval_every * 2,
        (s.eval_every / 4).max(1),
    )
}

fn cosine(max_lr: f64, warmup: f64) -> String {
    format!(
        "{{ kind = \"cosine\", max_lr = {max_lr:e}, min_lr = {:e}, warmup = {warmup} }}",
        max_lr / 10.0
    )
}

fn stage(name: &str, tokens: u64, source: &str, schedule: &str, extra: &str) -> String {
    format!("[[stages]]\nname = \"{name}\"\ntokens = {tokens}\nmixture = {{ {source} = 1.0 }}\nschedule = {schedule}\n{extra}")
}

fn parse(text: &str) -> toml::Table {
    toml::from_str(text)
        .unwrap_or_else(|e| panic!("built-in study plan does not parse: {e}\n{text}"))
}

fn run(label: &str, params: &[(&str, Value)], plan: toml::Table) -> SweepRun {
    SweepRun {
        id: run_id(&plan),
        label: label.to_owned(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        plan,
    }
}

/// The D0 pretraining plan shared by the continual studies: warmup 1% + cosine to 0.1·η_max (spec §3).
pub fn pretrain_plan(sources: &[StudySource], s: &Scale, seed: u64) -> toml::Table {
    let d0 = &sources[0].name;
    parse(&format!(
        "{}{}",
        header(seed, &sources[..1], s, None),
        stage(
            &format!("pretrain-{d0}"),
            s.pretrain_tokens,
            d0,
            &cosine(s.max_lr, 0.01),
            ""
        )
    ))
}

/// Builds a study. `pretrained` is the D0 checkpoint the continual runs start from.
pub fn build(
    name: &str,
    sources: &[StudySource],
    s: &Scale,
    seed: u64,
    pretrained: &Path,
) -> Result<Study, String> {
    let need = if name == "infinite" {
        3
    } else if name == "wsd" {
        1
    } else {
        2
    };
    if sources.len() < need {
        return Err(format!(
            "study `{name}` needs {need} prepared sources (D0{}), got {}",
            if need > 1 { ", D1, …" } else { "" },
            sources.len()
        ));
    }
    let (d0, cpt_sources) = (&sources[0].name, &sources[..2.min(sources.len())]);
    let d1 = cpt_sources
        .last()
        .map(|x| x.name.clone())
        .unwrap_or_default();
    let cpt = |schedule: &str, extra: &str| -> toml::Table {
        parse(&format!(
            "{}{}",
            header(seed, cpt_sources, s, Some(pretrained)),
            stage(
                &format!("cpt-{d1}"),
                s.stage_tokens,
                &d1,
                schedule,
                &format!("optimizer = \"reset\"\n{extra}")
            )
        ))
    };
    // Retraining from scratch on D0 ∪ D1 with the same schedule shape (spec §3 D1).
    let union = || {
        let both = parse(&format!(
            "{}{}{}",
            header(seed, cpt_sources, s, None),
            stage("d0", s.pretrain_tokens, d0, &cosine(s.max_lr, 0.01), ""),
            stage("d1", s.stage_tokens, &d1, &cosine(s.max_lr, 0.01), "")
        ));
        union_plan(&both)
    };
    let replay = |rho: f64| {
        if rho > 0.0 {
            format!("replay = {{ fraction = {rho}, sources = [\"{d0}\"], pool = \"whole\" }}\n")
        } else {
            String::new()
        }
    };
    let runs = match name {
        // Gupta et al. Fig. 1 / spec B1: re-warm length 0, 0.5, 1, 2% at the pretraining η_max.
        "warmup" => [0.0, 0.005, 0.01, 0.02]
            .iter()
            .map(|&w| {
                run(
                    &format!("warmup={w}"),
                    &[("warmup", Value::Float(w))],
                    cpt(&cosine(s.max_lr, w), ""),
                )
            })
            .collect(),
        // Gupta et al. Figs. 2–4 / spec B2: constant η_min (no re-warm) vs re-warm to 0.5×, 1×, 2× η_max.
        "max-lr" => std::iter::once(run(
            "constant-min-lr",
            &[("max_lr", Value::Float(s.max_lr / 10.0))],
            cpt(
                &format!("{{ kind = \"constant\", lr = {:e} }}", s.max_lr / 10.0),
                "",
            ),
        ))
        .chain([0.5, 1.0, 2.0].iter().map(|&f| {
            let lr = s.max_lr * f;
            run(
                &format!("rewarm-{f}x"),
                &[("max_lr", Value::Float(lr))],
                cpt(&cosine(lr, 0.01), ""),
            )
        }))
        .collect(),
        // Ibrahim et al. Table 2 / spec C1–C2: compute-equivalent replay 0–50%.
        "replay" => [0.0, 0.01, 0.05, 0.10, 0.25, 0.50]
            .iter()
            .map(|&r| {
                run(
                    &format!("replay={r}"),
                    &[("replay_fraction", Value::Float(r))],
                    cpt(&cosine(s.max_lr, 0.01), &replay(r)),
                )
            })
            .collect(),
        // Ibrahim et al.'s headline / spec D: CPT (re-warm + re-decay ± replay) vs retraining on the union.
        "union" => {
            let mut runs: Vec<SweepRun> = [0.0, 0.05, 0.25]
                .iter()
                .map(|&r| {
                    run(
                        &format!("cpt-replay={r}"),
                        &[("replay_fraction", Value::Float(r))],
                        cpt(&cosine(s.max_lr, 0.01), &replay(r)),
                    )
                })
                .collect();
            runs.push(run("union", &[], union()?));
            runs
        }
        // `rewarm quickstart`: continue on D1 three ways (Gupta et al.'s constant low LR; re-warm + re-decay;
        // plus 25% replay, Ibrahim et al.'s strong-shift choice) against the union retrain.
        "quickstart" => vec![
            run(
                "constant-low-lr",
                &[("schedule", Value::String("constant".into()))],
                cpt(
                    &format!("{{ kind = \"constant\", lr = {:e} }}", s.max_lr / 10.0),
                    "",
                ),
            ),
            run(
                "rewarm-redecay",
                &[("replay_fraction", Value::Float(0.0))],
                cpt(&cosine(s.max_lr, 0.01), ""),
            ),
            run(
                "rewarm-redecay-replay25",
                &[("replay_fraction", Value::Float(0.25))],
                cpt(&cosine(s.max_lr, 0.01), &replay(0.25)),
            ),
            run("union", &[], union()?),
        ],
        // Ibrahim et al. §7 / Beyond Cosine Decay / spec E1: three stages, repeated cosine vs infinite
        // schedules (cosine and inverse-sqrt cooldown) that never re-warm, annealed in the last stage.
        "infinite" => {
            let names: Vec<&str> = sources[..3].iter().map(|x| x.name.as_str()).collect();
            let three = |schedules: [String; 3]| {
                let mut text = header(seed, &sources[..3], s, None);
                for (i, (src, sch)) in names.iter().zip(&schedules).enumerate() {
                    let tokens = if i == 0 {
                        s.pretrain_tokens
                    } else {
                        s.stage_tokens
                    };
                    let keep = if i == 0 { "" } else { "optimizer = \"keep\"\n" };
                    text.push_str(&stage(&format!("s{i}-{src}"), tokens, src, sch, keep));
                }
                parse(&text)
            };
            let (max, min) = (s.max_lr, s.max_lr / 10.0);
            let konst = (max + min) / 2.0; // NeoX configs: η_const = (η_max + η_min)/2
            let infinite = |cooldown: &str| {
                [
                    format!("{{ kind = \"infinite\", max_lr = {max:e}, const_lr = {konst:e}, min_lr = {min:e}, warmup = 0.01, cooldown = \"{cooldown}\", cooldown_fraction = 0.6, constant_fraction = 0.99 }}"),
                    format!("{{ kind = \"constant\", lr = {konst:e} }}"),
                    format!("{{ kind = \"infinite\", max_lr = {konst:e}, const_lr = {konst:e}, min_lr = {min:e}, warmup = 0.0, cooldown_fraction = 0.0, constant_fraction = 0.8 }}"),
                ]
            };
            vec![
                run(
                    "repeated-cosine",
                    &[("schedule", Value::String("repeated cosine".into()))],
                    three([cosine(max, 0.01), cosine(max, 0.01), cosine(max, 0.01)]),
                ),
                run(
                    "infinite-cosine",
                    &[("schedule", Value::String("infinite cosine".into()))],
                    three(infinite("cosine")),
                ),
                run(
                    "infinite-inv-sqrt",
                    &[("schedule", Value::String("infinite inverse-sqrt".into()))],
                    three(infinite("inverse_sqrt")),
                ),
            ]
        }
        // Hägele et al. / MiniCPM / Defazio et al. / spec F1, F2, F4: one pretraining stage at fixed N.
        "wsd" => {
            let one = |label: &str, schedule: String| {
                run(
                    label,
                    &[("schedule", Value::String(label.into()))],
                    parse(&format!(
                        "{}{}",
                        header(seed, &sources[..1], s, None),
                        stage("pretrain", s.pretrain_tokens, d0, &schedule, "")
                    )),
                )
            };
            let mut runs = vec![
                one("cosine", cosine(s.max_lr, 0.01)),
                one(
                    "linear",
                    format!(
                        "{{ kind = \"linear\", max_lr = {:e}, warmup = 0.01 }}",
                        s.max_lr
                    ),
                ),
            ];
            for (frac, shape) in [
                (0.025, "one_minus_sqrt"),
                (0.1, "one_minus_sqrt"),
                (0.2, "one_minus_sqrt"),
                (0.2, "linear"),
            ] {
                runs.push(one(
                    &format!("wsd-{shape}-{frac}"),
                    format!("{{ kind = \"wsd\", max_lr = {:e}, warmup = 0.01, decay_fraction = {frac}, shape = \"{shape}\" }}", s.max_lr),
                ));
            }
            runs
        }
        other => {
            return Err(format!(
                "unknown study `{other}` (studies: {})",
                STUDIES.join(", ")
            ))
        }
    };
    let pretrain = if matches!(name, "infinite" | "wsd") {
        None
    } else {
        Some(pretrain_plan(sources, s, seed))
    };
    Ok(Study { pretrain, runs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PlanConfig;

    fn sources() -> Vec<StudySource> {
        ["en", "de", "sotu"]
            .iter()
            .map(|n| StudySource {
                name: n.to_string(),
                dir: PathBuf::from(format!("/data/{n}")),
                vocab_size: 8192,
            })
            .collect()
    }

    #[test]
    fn every_study_builds_plans_that_parse() {
        for name in STUDIES {
            for size in [Size::Tiny, Size::Small, Size::Base] {
                let study = build(
                    name,
                    &sources(),
                    &size.scale(),
                    1,
                    Path::new("/runs/pretrain/ckpt/step_00000010"),
                )
                .unwrap();
                assert!(study.runs.len() >= 3, "{name}");
                for r in study.runs.iter().chain(
                    study
                        .pretrain
                        .as_ref()
                        .map(|p| run("p", &[], p.clone()))
                        .iter(),
                ) {
                    let text = toml::to_string(&r.plan).unwrap();
                    PlanConfig::from_toml(&text, Path::new("study.toml"))
                        .unwrap_or_else(|e| panic!("{name} {}: {e}", r.label));
                }
            }
        }
    }

    #[test]
    fn replay_study_sweeps_the_paper_fractions_and_union_adds_the_baseline() {
        let s = build(
            "replay",
            &sources(),
            &Size::Tiny.scale(),
            1,
            Path::new("/ck"),
        )
        .unwrap();
        let labels: Vec<&str> = s.runs.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "replay=0",
                "replay=0.01",
                "replay=0.05",
                "replay=0.1",
                "replay=0.25",
                "replay=0.5"
            ]
        );
        assert_eq!(s.runs[0].plan["init_from"].as_str(), Some("/ck"));
        let u = build(
            "union",
            &sources(),
            &Size::Tiny.scale(),
            1,
            Path::new("/ck"),
        )
        .unwrap();
        let union = u.runs.last().unwrap();
        assert_eq!(union.label, "union");
        assert!(union.plan.get("init_from").is_none());
        assert!(build(
            "infinite",
            &sources()[..2],
            &Size::Tiny.scale(),
            1,
            Path::new("/ck")
        )
        .is_err());
        assert!(
            build("nope", &sources(), &Size::Tiny.scale(), 1, Path::new("/ck"))
                .err()
                .unwrap()
                .contains("warmup")
        );
    }
}
