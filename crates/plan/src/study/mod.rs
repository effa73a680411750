//! Built-in studies: the papers' experiments (docs/papers.md, experiments B–F) as plans, at a size the machine can afford.
//! A study is a pretraining plan on the first source (D0) — unless the study trains from scratch — plus a
//! list of runs (plans) that the sweep runner trains and the report compares. Pure: plans are built as
//! TOML text from the sources' names, folders and vocabulary size.

use crate::sweep::{run_id, union_plan, SweepRun};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Value;

mod checkpoints;
mod schedules;
mod sizes;
pub use sizes::{Scale, Size};

pub const STUDIES: [&str; 17] = [
    "warmup",
    "max-lr",
    "replay",
    "union",
    "infinite",
    "wsd",
    "mer",
    "batch",
    "shrink-perturb",
    "stability",
    "averaging",
    "same-data",
    "earlier-checkpoint",
    "envelope",
    "refined",
    "smollm2",
    "quickstart",
];

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
    let eval_tokens = s
        .eval_tokens
        .map(|t| format!("tokens = {t}\n"))
        .unwrap_or_default();
    let max_epochs = s
        .max_epochs
        .map(|e| format!("max_epochs = {e:?}\n"))
        .unwrap_or_default();
    format!(
        "seed = {seed}\n{init}[model]\n{}vocab_size = {vocab}\nmax_seq_len = {}\n[data]\n{max_epochs}sources = {{ {} }}\n\
         [train]\nbatch_tokens = {}\nprecision = \"{}\"\nlog_every_steps = 5\n[eval]\nevery_steps = {}\n{eval_tokens}batch_sequences = {}\n\
         dense_steps = {}\ndense_every_steps = {}\nfinal_steps = {}\nfinal_every_steps = {}\n\
         [checkpoint]\nevery_steps = 0\nkeep_last = 1\n",
        s.model,
        s.seq_len,
        srcs.join(", "),
        s.batch_tokens,
        s.precision,
        s.eval_every,
        s.eval_batch,
        s.dense.0,
        s.dense.1,
        s.last.0,
        s.last.1,
    )
}

/// Warmup + cosine to η_max/10 (Ibrahim et al., Gupta et al.); `warmup` a TOML value (a fraction, or
/// `{ fraction = f, min_steps = k }`).
fn cosine(max_lr: f64, warmup: &str) -> String {
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
        seed: None,
        id: run_id(&plan),
        label: label.to_owned(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        plan,
    }
}

/// The D0 pretraining plan shared by the continual studies: warmup 1% + cosine to 0.1·η_max
/// (docs/papers.md, experiments).
pub fn pretrain_plan(sources: &[StudySource], s: &Scale, seed: u64) -> toml::Table {
    d0_plan(
        sources,
        s,
        seed,
        s.pretrain_tokens,
        &cosine(s.max_lr, s.warmup),
    )
}

/// Training on D0 alone from a fresh model for `tokens` with `schedule`. With the D0 pretraining's
/// tokens and schedule it is that plan, so a from-scratch study's cosine run is the D0 run (`--reuse`).
fn d0_plan(
    sources: &[StudySource],
    s: &Scale,
    seed: u64,
    tokens: u64,
    schedule: &str,
) -> toml::Table {
    let d0 = &sources[0].name;
    parse(&format!(
        "{}{}",
        header(seed, &sources[..1], s, None),
        stage(&format!("pretrain-{d0}"), tokens, d0, schedule, "")
    ))
}

/// Builds a study. `pretrained` is the D0 checkpoint the continual runs start from (for `smollm2` the
/// public model's folder, for `refined` the folder of the `wsd` study's linear run).
pub fn build(
    name: &str,
    sources: &[StudySource],
    s: &Scale,
    seed: u64,
    pretrained: &Path,
) -> Result<Study, String> {
    let need = match name {
        "infinite" | "mer" => 3,
        "wsd" | "batch" | "envelope" | "refined" => 1,
        _ => 2,
    };
    if sources.len() < need {
        return Err(format!(
            "study `{name}` needs {need} prepared sources (D0{}), got {}",
            if need > 1 { ", D1, …" } else { "" },
            sources.len()
        ));
    }
    let r = Recipe {
        sources,
        s,
        seed,
        pretrained,
    };
    let runs = match name {
        "warmup" => r.warmup_runs(),
        "max-lr" => r.max_lr_runs(),
        "replay" => r.replay_runs(),
        "union" => r.union_runs()?,
        "quickstart" => r.quickstart_runs()?,
        "infinite" => r.infinite_runs(),
        "wsd" => r.wsd_runs(),
        "mer" => r.mer_runs(),
        "batch" => r.batch_runs(),
        "shrink-perturb" => r.shrink_perturb_runs()?,
        "stability" => r.stability_runs(),
        "averaging" => r.averaging_runs(),
        "same-data" => r.same_data_runs(),
        "earlier-checkpoint" => r.earlier_checkpoint_runs(),
        "envelope" => r.envelope_runs(),
        "refined" => r.refined_runs(),
        "smollm2" => r.smollm2_runs(),
        other => {
            return Err(format!(
                "unknown study `{other}` (studies: {})",
                STUDIES.join(", ")
            ))
        }
    };
    let pretrain = match name {
        // smollm2 continues a public model (`--init`), not a D0 run of its own.
        "infinite" | "wsd" | "batch" | "envelope" | "refined" | "smollm2" => None,
        _ => Some(pretrain_plan(sources, s, seed)),
    };
    Ok(Study { pretrain, runs })
}

/// What every study's plans are made from: the sources (D0 first), the scale, the seed, and the D0
/// checkpoint the continual runs start from.
struct Recipe<'a> {
    sources: &'a [StudySource],
    s: &'a Scale,
    seed: u64,
    pretrained: &'a Path,
}

impl Recipe<'_> {
    fn d0(&self) -> &str {
        &self.sources[0].name
    }

    /// D0 and D1: the sources of a two-stage study.
    fn cpt_sources(&self) -> &[StudySource] {
        &self.sources[..2.min(self.sources.len())]
    }

    fn d1(&self) -> &str {
        self.cpt_sources().last().map_or("", |x| x.name.as_str())
    }

    /// One continual stage on D1 from the pretrained D0 checkpoint, Adam's moments reset.
    fn cpt(&self, schedule: &str, extra: &str) -> toml::Table {
        self.cpt_on(self.d1(), schedule, extra)
    }

    /// One continual stage on `source` (D1, or D0 again) from the pretrained D0 checkpoint, Adam's
    /// moments reset; D0 and D1 are evaluated.
    fn cpt_on(&self, source: &str, schedule: &str, extra: &str) -> toml::Table {
        parse(&format!(
            "{}{}",
            header(self.seed, self.cpt_sources(), self.s, Some(self.pretrained)),
            stage(
                &format!("cpt-{source}"),
                self.s.stage_tokens,
                source,
                schedule,
                &format!("optimizer = \"reset\"\n{extra}")
            )
        ))
    }

    /// Retraining from scratch on D0 ∪ D1 with the same schedule shape (D1 in docs/papers.md).
    fn union(&self) -> Result<toml::Table, String> {
        let (s, d0, d1) = (self.s, self.d0(), self.d1());
        let both = parse(&format!(
            "{}{}{}",
            header(self.seed, self.cpt_sources(), s, None),
            stage("d0", s.pretrain_tokens, d0, &cosine(s.max_lr, s.warmup), ""),
            stage("d1", s.stage_tokens, d1, &cosine(s.max_lr, s.warmup), "")
        ));
        union_plan(&both)
    }

    /// The replay line of a continual stage: ρ of every batch from the D0 sequences pretraining consumed
    /// (the checkpoint's record; Ibrahim et al.'s replay).
    fn replay(&self, rho: f64) -> String {
        self.replay_from(rho, "seen")
    }

    /// The replay line with `pool` = `seen` or `whole` (D0's whole training split: the C3 control).
    fn replay_from(&self, rho: f64, pool: &str) -> String {
        if rho > 0.0 {
            let d0 = self.d0();
            format!("replay = {{ fraction = {rho}, sources = [\"{d0}\"], pool = \"{pool}\" }}\n")
        } else {
            String::new()
        }
    }

    /// A re-warmed, re-decayed continual run with replay fraction `rho`.
    fn rewarm_run(&self, label: &str, rho: f64) -> SweepRun {
        run(
            label,
            &[("replay_fraction", Value::Float(rho))],
            self.cpt(&cosine(self.s.max_lr, self.s.warmup), &self.replay(rho)),
        )
    }

    /// A continual run at the constant low LR η_max/10 (no re-warm).
    fn constant_run(&self, label: &str, params: &[(&str, Value)]) -> SweepRun {
        let lr = self.s.max_lr / 10.0;
        run(
            label,
            params,
            self.cpt(&format!("{{ kind = \"constant\", lr = {lr:e} }}"), ""),
        )
    }

    /// Gupta et al. Fig. 1 / B1: re-warm length 0, 0.5, 1, 2% at the pretraining η_max.
    fn warmup_runs(&self) -> Vec<SweepRun> {
        [0.0, 0.005, 0.01, 0.02]
            .iter()
            .map(|&w| {
                run(
                    &format!("warmup={w}"),
                    &[("warmup", Value::Float(w))],
                    self.cpt(&cosine(self.s.max_lr, &w.to_string()), ""),
                )
            })
            .collect()
    }

    /// Gupta et al. Figs. 2–4 / B2: constant η_min (no re-warm) vs re-warm to 0.5×, 1×, 2× η_max.
    fn max_lr_runs(&self) -> Vec<SweepRun> {
        let min = self.s.max_lr / 10.0;
        let mut runs = vec![self.constant_run("constant-min-lr", &[("max_lr", Value::Float(min))])];
        for f in [0.5, 1.0, 2.0] {
            let lr = self.s.max_lr * f;
            runs.push(run(
                &format!("rewarm-{f}x"),
                &[("max_lr", Value::Float(lr))],
                self.cpt(&cosine(lr, self.s.warmup), ""),
            ));
        }
        runs
    }

    /// Ibrahim et al. Table 2 / C1–C2: compute-equivalent replay 0–50%, and the C3 control: 25% replay
    /// from D0's whole split instead of the sequences pretraining saw (the same pool once pretraining has
    /// read the whole split).
    fn replay_runs(&self) -> Vec<SweepRun> {
        let mut runs: Vec<SweepRun> = [0.0, 0.01, 0.05, 0.10, 0.25, 0.50]
            .iter()
            .map(|&r| self.rewarm_run(&format!("replay={r}"), r))
            .collect();
        let whole = self.cpt(
            &cosine(self.s.max_lr, self.s.warmup),
            &self.replay_from(0.25, "whole"),
        );
        let params = [
            ("replay_fraction", Value::Float(0.25)),
            ("replay_pool", Value::String("whole".into())),
        ];
        runs.push(run("replay-whole=0.25", &params, whole));
        runs
    }

    /// Ibrahim et al.'s headline / D: CPT (re-warm + re-decay ± replay) vs retraining on the union; and
    /// B5: CPT vs training on D1 alone from scratch with the same schedule and tokens.
    fn union_runs(&self) -> Result<Vec<SweepRun>, String> {
        let mut runs: Vec<SweepRun> = [0.0, 0.05, 0.25]
            .iter()
            .map(|&r| self.rewarm_run(&format!("cpt-replay={r}"), r))
            .collect();
        runs.push(run("union", &[], self.union()?));
        runs.push(run("scratch", &[], self.scratch()));
        Ok(runs)
    }

    /// D1 alone from a fresh model: a continual stage's schedule and tokens, no `init_from`.
    fn scratch(&self) -> toml::Table {
        let (s, d1) = (self.s, self.d1());
        parse(&format!(
            "{}{}",
            header(self.seed, self.cpt_sources(), s, None),
            stage(
                &format!("scratch-{d1}"),
                s.stage_tokens,
                d1,
                &cosine(s.max_lr, s.warmup),
                ""
            )
        ))
    }

    /// `rewarm quickstart`: continue on D1 three ways (Gupta et al.'s constant low LR; re-warm +
    /// re-decay; plus 25% replay, Ibrahim et al.'s strong-shift choice) against the union retrain.
    fn quickstart_runs(&self) -> Result<Vec<SweepRun>, String> {
        let constant = [("schedule", Value::String("constant".into()))];
        Ok(vec![
            self.constant_run("constant-low-lr", &constant),
            self.rewarm_run("rewarm-redecay", 0.0),
            self.rewarm_run("rewarm-redecay-replay25", 0.25),
            run("union", &[], self.union()?),
        ])
    }

    /// Three stages D0, D1, D2 with one schedule each (Adam's moments kept across boundaries).
    fn three_stages(&self, schedules: [String; 3]) -> toml::Table {
        let (s, sources) = (self.s, &self.sources[..3]);
        let mut text = header(self.seed, sources, s, None);
        for (i, (src, sch)) in sources.iter().zip(&schedules).enumerate() {
            let tokens = if i == 0 {
                s.pretrain_tokens
            } else {
                s.stage_tokens
            };
            let keep = if i == 0 { "" } else { "optimizer = \"keep\"\n" };
            let name = &src.name;
            text.push_str(&stage(&format!("s{i}-{name}"), tokens, name, sch, keep));
        }
        parse(&text)
    }

    /// Ibrahim et al. §7 / Beyond Cosine Decay / E1: three stages, repeated cosine vs infinite schedules
    /// (cosine and inverse-sqrt cooldown) that never re-warm, annealed in the last stage.
    fn infinite_runs(&self) -> Vec<SweepRun> {
        let (max, min) = (self.s.max_lr, self.s.max_lr / 10.0);
        let konst = (max + min) / 2.0; // NeoX configs: η_const = (η_max + η_min)/2
        let infinite = |cooldown: &str| {
            [
                format!("{{ kind = \"infinite\", max_lr = {max:e}, const_lr = {konst:e}, min_lr = {min:e}, warmup = {}, cooldown = \"{cooldown}\", cooldown_fraction = 0.6, constant_fraction = 0.99 }}", self.s.warmup),
                format!("{{ kind = \"constant\", lr = {konst:e} }}"),
                format!("{{ kind = \"infinite\", max_lr = {konst:e}, const_lr = {konst:e}, min_lr = {min:e}, warmup = 0.0, cooldown_fraction = 0.0, constant_fraction = 0.8 }}"),
            ]
        };
        let labelled = |label: &str, what: &str, schedules| {
            run(
                label,
                &[("schedule", Value::String(what.into()))],
                self.three_stages(schedules),
            )
        };
        vec![
            labelled(
                "repeated-cosine",
                "repeated cosine",
                [0, 1, 2].map(|_| cosine(max, self.s.warmup)),
            ),
            labelled("infinite-cosine", "infinite cosine", infinite("cosine")),
            labelled(
                "infinite-inv-sqrt",
                "infinite inverse-sqrt",
                infinite("inverse_sqrt"),
            ),
        ]
    }

    /// Abbes et al. / G1: from the D0 checkpoint, D1 then D2 with additive replay α ∈ {0, 0.25, 0.5} of
    /// the sequences seen before (D0's from pretraining's record), each with and without Reptile (k = 8,
    /// about 2% of a stage; β = 0.1 as G1 says), and β = 0.9 at α = 0.25 (the other reading of the
    /// paper's 0.1, docs/papers.md Q6). Each stage re-warms and re-decays; Adam's moments are kept from
    /// D1 to D2 as MER does.
    fn mer_runs(&self) -> Vec<SweepRun> {
        let cells = [
            (0.0, None),
            (0.0, Some(0.1)),
            (0.25, None),
            (0.25, Some(0.1)),
            (0.25, Some(0.9)),
            (0.5, None),
            (0.5, Some(0.1)),
        ];
        cells
            .iter()
            .map(|&(alpha, beta)| {
                let label = match beta {
                    Some(b) => format!("replay={alpha} reptile={b}"),
                    None => format!("replay={alpha}"),
                };
                let params = [
                    ("replay_fraction", Value::Float(alpha)),
                    ("reptile_beta", Value::Float(beta.unwrap_or(1.0))),
                ];
                run(&label, &params, self.mer_plan(alpha, beta))
            })
            .collect()
    }

    /// Two continual stages (D1, D2) from the D0 checkpoint for study `mer`.
    fn mer_plan(&self, alpha: f64, beta: Option<f64>) -> toml::Table {
        let (s, sources) = (self.s, &self.sources[..3]);
        let mut text = header(self.seed, sources, s, Some(self.pretrained));
        for i in 1..3 {
            let name = &sources[i].name;
            let earlier: Vec<String> = sources[..i]
                .iter()
                .map(|x| format!("{:?}", x.name))
                .collect();
            let mut extra = String::from(if i == 1 {
                "optimizer = \"reset\"\n"
            } else {
                "optimizer = \"keep\"\n"
            });
            if alpha > 0.0 {
                extra.push_str(&format!(
                    "replay = {{ fraction = {alpha}, mode = \"additive\", sources = [{}] }}\n",
                    earlier.join(", ")
                ));
            }
            if let Some(b) = beta {
                extra.push_str(&format!("reptile = {{ inner_steps = 8, beta = {b} }}\n"));
            }
            let sch = cosine(s.max_lr, s.warmup);
            text.push_str(&stage(
                &format!("cpt-{name}"),
                s.stage_tokens,
                name,
                &sch,
                &extra,
            ));
        }
        parse(&text)
    }

    /// Merrill et al. / I2: pretraining D0 at equal tokens with the batch B throughout, with batch-size
    /// warmup (2B from 27.6% of the tokens, 4B from 82.7%: OLMo-1B's 168B and 503B of 608B), and with 4B
    /// from step 0; the LR × √(B/B₀) of each (Adam's rule), the schedule otherwise the same.
    fn batch_runs(&self) -> Vec<SweepRun> {
        let s = self.s;
        let tokens = s.pretrain_tokens;
        let at = |f: f64| ((tokens as f64 * f) as u64).max(1);
        let cases = [
            ("small-batch", s.batch_tokens, String::new(), s.max_lr),
            (
                "batch-warmup",
                s.batch_tokens,
                format!("batch_doubling_tokens = [{}, {}]\n", at(0.276), at(0.827)),
                s.max_lr,
            ),
            (
                "large-batch",
                4 * s.batch_tokens,
                String::new(),
                2.0 * s.max_lr,
            ),
        ];
        cases
            .into_iter()
            .map(|(label, batch, doubling, lr)| {
                let scale = Scale {
                    batch_tokens: batch,
                    ..s.clone()
                };
                let head = header(self.seed, &self.sources[..1], &scale, None)
                    .replace("[train]\n", &format!("[train]\n{doubling}"));
                let plan = parse(&format!(
                    "{head}{}",
                    stage("pretrain", tokens, self.d0(), &cosine(lr, s.warmup), "")
                ));
                run(label, &[("batch", Value::String(label.into()))], plan)
            })
            .collect()
    }

    /// Ash & Adams / J1: continual runs on D1 from the D0 checkpoint shrunk and perturbed toward a fresh
    /// initialization, θ ← λθ + (1 − λ)·θ_init for λ ∈ {1, 0.8, 0.5, 0.2}, and D1 from scratch (λ = 0).
    fn shrink_perturb_runs(&self) -> Result<Vec<SweepRun>, String> {
        let sch = cosine(self.s.max_lr, self.s.warmup);
        let mut runs: Vec<SweepRun> = [1.0f64, 0.8, 0.5, 0.2]
            .iter()
            .map(|&lambda| {
                let sigma = 1.0 - lambda;
                let extra = format!(
                    "shrink_perturb = {{ lambda = {lambda:?}, sigma = {sigma:?}, noise = \"init\" }}\n"
                );
                run(
                    &format!("lambda={lambda}"),
                    &[("lambda", Value::Float(lambda))],
                    self.cpt(&sch, &extra),
                )
            })
            .collect();
        runs.push(run(
            "scratch",
            &[("lambda", Value::Float(0.0))],
            self.scratch(),
        ));
        Ok(runs)
    }

    /// Guo et al. / H2: the stability gap after the shift to D1 and two mitigations at the same tokens
    /// and schedule: 4 passes over a quarter of the new data (`subset_epochs`), a pretraining-like
    /// mixture (25% replay of what D0 read), both; and one pass over fresh data without replay. With the
    /// representation monitor on (issue 19: do RankMe, α-ReQ and dormant units move with forgetting?).
    fn stability_runs(&self) -> Vec<SweepRun> {
        let sch = cosine(self.s.max_lr, self.s.warmup);
        [(1, 0.0), (4, 0.0), (1, 0.25), (4, 0.25)]
            .iter()
            .map(|&(epochs, rho)| {
                let subset = match epochs {
                    1 => String::new(),
                    e => format!("subset_epochs = {e}\n"),
                };
                let params = [
                    ("subset_epochs", Value::Integer(epochs)),
                    ("replay_fraction", Value::Float(rho)),
                ];
                let mut plan = self.cpt(&sch, &format!("{subset}{}", self.replay(rho)));
                self.denser_after_boundaries(&mut plan);
                // The representation monitor at every evaluation: do its measures move with forgetting?
                plan.insert("monitor".into(), Value::Table(toml::Table::new()));
                run(&format!("passes={epochs},replay={rho}"), &params, plan)
            })
            .collect()
    }

    /// Issue 14 item 4 (Hägele et al. 2024 §4; Sanyal et al. 2023, LAWA): on D1 from D0's checkpoint,
    /// the re-warmed LR held to the end (a WSD trunk without decay), the same with a 20% (1−sqrt)
    /// cooldown (the anneal branch of that trunk), and the cosine re-decay. The first two also evaluate
    /// an exponential moving average of their weights spanning the cooldown's length (`<label>+ema` in
    /// the report): averaging in place of the decay, and both together. All replay 25% of D0 (what D0
    /// read), the union study's recipe.
    fn averaging_runs(&self) -> Vec<SweepRun> {
        let (max, warmup) = (self.s.max_lr, self.s.warmup);
        let steps = self.s.stage_tokens / self.s.batch_tokens;
        let decay = 1.0 - 1.0 / (0.2 * steps as f64).max(2.0);
        let wsd = |frac: f64| {
            format!("{{ kind = \"wsd\", max_lr = {max:e}, warmup = {warmup}, decay_fraction = {frac}, shape = \"one_minus_sqrt\" }}")
        };
        let averaged = |label: &str, schedule: String| {
            let mut plan = self.cpt(&schedule, &self.replay(0.25));
            let ema = parse(&format!("decay = {decay}\nevaluate = true\n"));
            plan.insert("ema".into(), Value::Table(ema));
            run(label, &[("schedule", Value::String(label.into()))], plan)
        };
        let cosine_run = self.cpt(&cosine(max, warmup), &self.replay(0.25));
        vec![
            averaged("constant", wsd(0.0)),
            averaged("wsd-0.2", wsd(0.2)),
            run(
                "cosine",
                &[("schedule", Value::String("cosine".into()))],
                cosine_run,
            ),
        ]
    }

    /// Issue 12 item 9: a public model (SmolLM2-135M, `pretrained` is its folder) continued on D1 with
    /// re-warm + re-decay and 0, 5, 25% D0 replay. What the model was trained on is not known, so replay
    /// draws from D0's whole training split (C3's control, here the only choice).
    fn smollm2_runs(&self) -> Vec<SweepRun> {
        let sch = cosine(self.s.max_lr, self.s.warmup);
        [0.0, 0.05, 0.25]
            .iter()
            .map(|&rho| {
                let params = [("replay_fraction", Value::Float(rho))];
                let plan = self.cpt(&sch, &self.replay_from(rho, "whole"));
                run(&format!("replay={rho}"), &params, plan)
            })
            .collect()
    }

    /// Dense evaluation over twice the size's window after a boundary, a quarter more often: the gap's
    /// depth and recovery need more points than the other studies take (`small`: every 6 steps for 48).
    fn denser_after_boundaries(&self, plan: &mut toml::Table) {
        let (steps, every) = self.s.dense;
        if let Some(eval) = plan.get_mut("eval").and_then(|e| e.as_table_mut()) {
            eval.insert("dense_steps".into(), Value::Integer(2 * steps as i64));
            let every = (every * 3 / 4).max(1);
            eval.insert("dense_every_steps".into(), Value::Integer(every as i64));
        }
    }
}

#[cfg(test)]
mod tests;
