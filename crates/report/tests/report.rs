//! `rewarm report` end to end on synthetic run folders written here by hand (plan.json + metrics.jsonl,
//! and for the seeded study baselines.json and a sweep.json with seeds): golden report.md files (regenerate
//! with `REWARM_BLESS=1 cargo test --release -p rewarm-report` and read the diff), byte-identical output
//! on two runs, the figure files, and loading details.

use rewarm_report::run::BoundarySource;
use rewarm_report::{write_report, ReportOptions, RunData};
use rewarm_runfolder::{Baselines, RunDir, SetBaseline};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SEQ_LEN: u64 = 128;
const BATCH_TOKENS: u64 = 1024; // 8 sequences
const STAGE_STEPS: u64 = 10;

/// The tiny model (`ModelConfig::tiny()`): what plan.json's "model" holds.
fn tiny_model() -> serde_json::Value {
    json!({
        "family": "neox", "vocab_size": 512, "hidden_size": 64, "num_layers": 2, "num_heads": 4,
        "num_kv_heads": 4, "intermediate_size": 256, "max_seq_len": SEQ_LEN, "norm_eps": 1e-5,
        "rotary_pct": 0.25, "rope_theta": 10000.0, "tie_embeddings": false, "use_parallel_residual": true
    })
}

/// UTF-8 bytes per token of a set's validation text, for the eval records' bits per byte.
fn bytes_per_token(set: &str) -> f64 {
    if set == "a" {
        4.0
    } else {
        3.5
    }
}

/// Loss of a set (`a` or `b`) after a number of steps.
type LossFn = dyn Fn(&str, u64) -> f64;

/// A run to write: stages as (name, mixture sources, replay fraction, peak LR, steps).
struct Synthetic {
    stages: Vec<(&'static str, Vec<&'static str>, f64, f64, u64)>,
    /// Loss of set (`a` or `b`) after `step` steps.
    loss: Box<LossFn>,
    device: Option<&'static str>,
    seed: u64,
}

impl Synthetic {
    /// The same run trained with `seed`, its every loss shifted by `offset` (seed noise).
    fn seeded(self, seed: u64, offset: f64) -> Synthetic {
        let loss = self.loss;
        Synthetic {
            loss: Box::new(move |set, step| r4(loss(set, step) + offset)),
            seed,
            ..self
        }
    }
}

fn write_run(dir: &Path, run: &Synthetic) {
    std::fs::create_dir_all(dir).unwrap();
    let stages: Vec<serde_json::Value> = run
        .stages
        .iter()
        .map(|(name, sources, rho, lr, steps)| {
            let mixture: BTreeMap<&str, f64> = sources.iter().map(|s| (*s, 1.0)).collect();
            let replay = (*rho > 0.0).then(|| json!({ "fraction": rho, "sources": ["a"] }));
            json!({
                "name": name, "tokens": steps * BATCH_TOKENS, "mixture": mixture, "replay": replay,
                "schedule": { "kind": "cosine", "max_lr": lr, "min_lr": lr / 10.0 }
            })
        })
        .collect();
    let plan = json!({
        "plan": {
            "seed": run.seed, "model": { "preset": "tiny" },
            "data": { "sources": { "a": "prepared/a", "b": "prepared/b" } },
            "train": { "batch_tokens": BATCH_TOKENS },
            "stages": stages
        },
        "model": tiny_model()
    });
    std::fs::write(
        dir.join("plan.json"),
        serde_json::to_string_pretty(&plan).unwrap(),
    )
    .unwrap();
    if let Some(device) = run.device {
        std::fs::write(
            dir.join("environment.json"),
            json!({ "device": device, "rewarm_version": "0.1.0" }).to_string(),
        )
        .unwrap();
    }
    let mut lines = Vec::new();
    let eval = |lines: &mut Vec<String>, step: u64, stage: &str| {
        for set in ["a", "b"] {
            lines.push(
                json!({
                    "kind": "eval", "step": step, "stage": stage, "tokens": step * BATCH_TOKENS,
                    "set": set, "loss": (run.loss)(set, step), "perplexity": 1.0,
                    "bits_per_byte": (run.loss)(set, step) / std::f64::consts::LN_2 / bytes_per_token(set)
                })
                .to_string(),
            );
        }
    };
    eval(&mut lines, 0, run.stages[0].0);
    let mut step = 0;
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    for (name, sources, rho, lr, steps) in &run.stages {
        for local in 0..*steps {
            step += 1;
            let replayed = (BATCH_TOKENS as f64 * rho) as u64;
            *by_source.entry("a/replay".into()).or_default() += replayed;
            for s in sources {
                *by_source.entry(s.to_string()).or_default() +=
                    (BATCH_TOKENS - replayed) / sources.len() as u64;
            }
            by_source.retain(|_, v| *v > 0);
            // A linear warmup over the first step, then linear decay: enough for the figures.
            let lr_now = if local == 0 {
                0.0
            } else {
                lr * (1.0 - 0.9 * (local - 1) as f64 / (*steps - 1) as f64)
            };
            lines.push(
                json!({
                    "kind": "train", "step": step, "stage": name, "tokens": step * BATCH_TOKENS,
                    "tokens_by_source": by_source, "lr": lr_now, "loss": 5.0, "grad_norm": 1.0,
                    "batch_sequences": BATCH_TOKENS / SEQ_LEN, "replay_fraction": rho,
                    "tokens_per_second": 1000.0
                })
                .to_string(),
            );
            // Every 2 steps, densely (every step) for 4 steps after a boundary, and at the stage end.
            if step % 2 == 0 || (local < 4 && step > STAGE_STEPS) || local + 1 == *steps {
                eval(&mut lines, step, name);
            }
        }
    }
    std::fs::write(dir.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
}

/// Rounded to 4 decimals so the golden shows the hand-made values.
fn r4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// A two-stage a → b run: `a` learned in stage 1 and forgotten in stage 2 (less with replay, more with a
/// hotter LR; a weak shift with replay even recovers) with a stability gap right after the boundary; `b` learned in stage 2. `shift` scales
/// forgetting (a strong shift forgets more).
fn cpt(rho: f64, lr: f64, shift: f64) -> Synthetic {
    let hot = lr / 1e-3;
    Synthetic {
        stages: vec![
            ("pretrain-a", vec!["a"], 0.0, 1e-3, STAGE_STEPS),
            ("continue-b", vec!["b"], rho, lr, STAGE_STEPS),
        ],
        loss: Box::new(move |set, step| {
            let t = step as f64;
            let x = match (set, step <= STAGE_STEPS) {
                ("a", true) => 6.0 - 0.3 * t,
                ("b", true) => 6.5 - 0.05 * t,
                ("a", false) => {
                    let u = t - STAGE_STEPS as f64;
                    // Spike peaking 2 steps after the boundary, then settling at the forgotten level.
                    let forgotten = shift * hot * (0.3 - rho);
                    let spike = 0.3 * hot * (u / 2.0) * (-(u / 2.0 - 1.0)).exp();
                    3.0 + forgotten * (1.0 - (-u / 3.0).exp()) + spike
                        - 0.02 * u * (1.0 - hot / 4.0)
                }
                _ => {
                    let u = t - STAGE_STEPS as f64;
                    6.0 - (1.6 + 0.3 * hot - rho) * (1.0 - (-u / 4.0).exp())
                }
            };
            r4(x)
        }),
        device: None,
        seed: 1,
    }
}

fn union() -> Synthetic {
    Synthetic {
        stages: vec![("union", vec!["a", "b"], 0.0, 1e-3, 2 * STAGE_STEPS)],
        loss: Box::new(|set, step| {
            let t = step as f64;
            r4(match set {
                "a" => 6.0 - 2.9 * (1.0 - (-t / 8.0).exp()),
                _ => 6.5 - 2.3 * (1.0 - (-t / 8.0).exp()),
            })
        }),
        device: Some("Cpu"),
        seed: 1,
    }
}

/// Two sweep folders (workloads): a weak and a strong shift, each with a union baseline (named by
/// sweep.json like `rewarm sweep` does) and three CPT runs; one more folder without metrics (skipped).
fn write_study(root: &Path) -> Vec<PathBuf> {
    let mut inputs = Vec::new();
    for (sweep, shift) in [("weak", 1.0), ("strong", 3.0)] {
        let dir = root.join(sweep);
        write_run(&dir.join("0a1b2c3d4e5f"), &union());
        write_run(&dir.join("replay-0"), &cpt(0.0, 1e-3, shift));
        write_run(&dir.join("replay-0.25"), &cpt(0.25, 1e-3, shift));
        write_run(&dir.join("replay-0-lr2e-3"), &cpt(0.0, 2e-3, shift));
        std::fs::write(
            dir.join("sweep.json"),
            json!([{ "id": "0a1b2c3d4e5f", "label": "union", "params": {}, "steps": 20 }])
                .to_string(),
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("pending")).unwrap();
        std::fs::write(dir.join("pending/plan.toml"), "").unwrap();
        inputs.push(dir);
    }
    inputs
}

fn options() -> ReportOptions {
    ReportOptions {
        stamp: "Generated (test) by rewarm.".into(),
        ..ReportOptions::default()
    }
}

/// Every file under `dir` (relative path → bytes).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Compares `md` with `tests/golden/<name>`, or writes it there with `REWARM_BLESS=1`.
fn check_golden(name: &str, md: &str) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("REWARM_BLESS").is_some() {
        std::fs::write(&golden, md).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_else(|_| {
        panic!(
            "{} exists (create it with REWARM_BLESS=1)",
            golden.display()
        )
    });
    assert!(
        md == want,
        "report.md differs from {}; if the change is intended, rerun with REWARM_BLESS=1 and review the diff.\n{md}",
        golden.display()
    );
}

#[test]
fn golden_report_md() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = write_study(tmp.path());
    let out = tmp.path().join("report");
    let report = write_report(&inputs, &options(), &out).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    // To look at the figures: REWARM_REPORT_OUT=/tmp/golden-report.
    if let Some(keep) = std::env::var_os("REWARM_REPORT_OUT") {
        write_report(&inputs, &options(), Path::new(&keep)).unwrap();
    }
    check_golden("report.md", &md);
    // The terminal shows the main tables.
    let term = report.to_terminal();
    for title in [
        "== Final validation loss ==",
        "== Forgetting and adaptation ==",
        "== Stability gap ==",
        "== Tokens and FLOPs ==",
        "== Continual runs against the union retrain ==",
        "== Time to target ==",
        "== Performance profiles ==",
    ] {
        assert!(term.contains(title), "{title} missing from:\n{term}");
    }
}

/// Seed `s` of 1, 2, 3 shifts every loss by `step`·(s − 2): the final losses of a method's three seeds
/// are its seed-2 value ± `step`, so their sample sd is exactly `step`.
fn seed_offset(seed: u64, step: f64) -> f64 {
    (seed as f64 - 2.0) * step
}

/// Count-model baselines on the synthetic sets: the bigram on `b` (4.5) is above the replay run's final
/// loss there (4.5923), so that run is flagged; `a`'s bigram (3.6) is above no method's final loss.
fn synthetic_baselines() -> Baselines {
    let set = |unigram, bigram, s| SetBaseline {
        unigram,
        bigram,
        targets: 2048,
        bytes_per_token: Some(bytes_per_token(s)),
    };
    Baselines {
        sets: BTreeMap::from([
            ("a".to_owned(), set(5.0, 3.6, "a")),
            ("b".to_owned(), set(5.5, 4.5, "b")),
        ]),
    }
}

/// A sweep folder `seeds` with 2 methods × 3 seeds, as `rewarm sweep` with seeds writes it: 25% replay
/// (sd 0.02 between seeds) and the union retrain (sd 0.04), each run with baselines.json.
fn write_seeded_study(root: &Path) -> PathBuf {
    let dir = root.join("seeds");
    let mut entries = Vec::new();
    for seed in 1..=3 {
        let runs = [
            (
                "replay-0.25",
                cpt(0.25, 1e-3, 1.0).seeded(seed, seed_offset(seed, 0.02)),
            ),
            ("union", union().seeded(seed, seed_offset(seed, 0.04))),
        ];
        for (label, run) in runs {
            let id = format!("{label}-s{seed}");
            write_run(&dir.join(&id), &run);
            synthetic_baselines()
                .write(&RunDir::new(dir.join(&id)))
                .unwrap();
            entries
                .push(json!({ "id": id, "label": label, "seed": seed, "params": {}, "steps": 20 }));
        }
    }
    std::fs::write(dir.join("sweep.json"), json!(entries).to_string()).unwrap();
    dir
}

#[test]
fn a_seeded_sweep_reports_mean_sd_n_against_the_count_baselines() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [write_seeded_study(tmp.path())];
    let out = tmp.path().join("report");
    let report = write_report(&inputs, &options(), &out).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    if let Some(keep) = std::env::var_os("REWARM_REPORT_OUT") {
        write_report(&inputs, &options(), &Path::new(&keep).join("seeds")).unwrap();
    }
    check_golden("report-seeds.md", &md);
    let row = |start: &str| -> Vec<&str> { md.lines().filter(|l| l.starts_with(start)).collect() };
    // Runs are named by seed, the union's all marked as the baseline; the other tables have a row per
    // method with mean ± sd (n = 3).
    let names: Vec<&str> = report.runs.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"seeds/replay-0.25/seed=2"), "{names:?}");
    assert_eq!(row("| seeds/union/seed=").len(), 3);
    assert!(row("| seeds/union/seed=")
        .iter()
        .all(|l| l.contains("union baseline")));
    let replay = row("| seeds/replay-0.25 ");
    assert!(replay[0].contains(" ± 0.0200 (3)"), "{replay:?}");
    assert!(row("| seeds/union ")[0].contains(" ± 0.0400 (3)"));
    // The count baselines are rows, and the replay method (b: 4.5923 ≥ 4.5) is flagged.
    assert_eq!(
        row("| unigram (counts) ").len(),
        3,
        "the summary, then nats and bits per byte"
    );
    assert!(row("| bigram (counts) ")[0].contains("4.5000"));
    assert!(replay[0].contains("4.5923 ± 0.0200 (3)†"), "{}", replay[0]);
    assert!(!row("| seeds/union ")[0].contains('†'));
    assert!(md.contains("† not below the bigram count model"));
    assert!(report
        .to_terminal()
        .contains("† not below the bigram count model"));
    // AVG 3.7940 ± 0.02 against 3.9298 ± 0.04: σ_diff = √((0.02² + 0.04²)/3) = 0.0258, Δ = −0.1358.
    let verdict = row("| seeds/replay-0.25 ")
        .into_iter()
        .find(|l| l.ends_with("|") && l.contains(" better "))
        .expect("a comparison row");
    assert!(
        verdict.contains("-0.1358") && verdict.contains("0.0258") && verdict.contains("better"),
        "{verdict}"
    );
    // The report leads with the answer: one row per method with its losses beside the count baselines,
    // forgetting, adaptation, tokens against the union and the verdict.
    let summary = &report.sections[0];
    assert_eq!(summary.title, "Summary");
    assert_eq!(
        summary.tables[0].rows[0],
        [
            "seeds/replay-0.25",
            "2.9957 ± 0.0200 (3)",
            "4.5923 ± 0.0200 (3)†",
            "3.7940 ± 0.0200 (3)",
            "-0.0043 ± 0.0000 (3)",
            "+1.4077 ± 0.0000 (3)",
            "1.000×",
            "-0.1358 (σ 0.0258) better",
        ]
    );
    assert_eq!(summary.tables[0].rows[1][7], "baseline");
    assert_eq!(summary.tables[0].rows[3][0], "bigram (counts)");
    assert_eq!(summary.figures, ["loss-set-a", "loss-set-b"]);
    // The figures draw each method's mean with a band.
    let svg = std::fs::read_to_string(out.join("figures/loss-seeds-replay-0.25.svg")).unwrap();
    assert!(svg.contains("<polygon"), "no band");
}

#[test]
fn two_reports_of_the_same_runs_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = write_study(tmp.path());
    write_report(&inputs, &options(), &tmp.path().join("one")).unwrap();
    write_report(&inputs, &options(), &tmp.path().join("two")).unwrap();
    let (one, two) = (tree(&tmp.path().join("one")), tree(&tmp.path().join("two")));
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        two.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &one {
        assert!(bytes == &two[path], "{} differs", path.display());
    }
}

#[test]
fn figures_come_as_svg_and_png_and_html_inlines_them() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = write_study(tmp.path());
    let out = tmp.path().join("report");
    let report = write_report(&inputs, &options(), &out).unwrap();
    let stems: Vec<&str> = report.figures.iter().map(|f| f.stem.as_str()).collect();
    for want in [
        "lr",
        "loss-weak-union",
        "loss-set-a",
        "loss-set-b",
        "replay-vs-forgetting",
        "maxlr-vs-forgetting",
        "performance-profile",
    ] {
        assert!(stems.contains(&want), "{want} not in {stems:?}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for stem in &stems {
        let svg = std::fs::read_to_string(out.join(format!("figures/{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{stem}.svg");
        let png = std::fs::read(out.join(format!("figures/{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png");
        assert!(
            html.contains(&format!("<figure id=\"{stem}\">")),
            "{stem} not inlined"
        );
    }
    assert!(html.contains("<table>") && html.contains("<svg"));
}

#[test]
fn boundaries_from_the_plan_or_from_the_metrics_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir, &cpt(0.25, 1e-3, 1.0));
    let run = RunData::load(&dir).unwrap();
    assert_eq!(run.boundaries_from, BoundarySource::Plan);
    assert_eq!(run.boundaries(), vec![0, STAGE_STEPS]);
    assert_eq!(run.stages[1].tokens_before, STAGE_STEPS * BATCH_TOKENS);
    assert_eq!(run.stages[1].replay_fraction, 0.25);
    assert_eq!(run.planned_steps, Some(2 * STAGE_STEPS));
    assert_eq!(run.seed, Some(1));
    // A plan.json from another rewarm version (an unknown key) falls back to the train records.
    let text = std::fs::read_to_string(dir.join("plan.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["plan"]["from_the_future"] = json!(true);
    std::fs::write(dir.join("plan.json"), v.to_string()).unwrap();
    let old = RunData::load(&dir).unwrap();
    assert_eq!(old.boundaries_from, BoundarySource::Metrics);
    assert_eq!(old.boundaries(), run.boundaries());
    assert_eq!(old.stages[1].tokens_before, run.stages[1].tokens_before);
    assert_eq!(old.stages[1].sources, vec!["b".to_owned()]);
    assert_eq!(old.seed, Some(1));
}

#[test]
fn a_torn_last_line_is_skipped_but_a_bad_line_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir, &cpt(0.0, 1e-3, 1.0));
    let path = dir.join("metrics.jsonl");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{good}{{\"kind\": \"ev")).unwrap();
    let run = RunData::load(&dir).unwrap();
    assert_eq!(run.last_step(), 2 * STAGE_STEPS);
    std::fs::write(&path, format!("not json\n{good}")).unwrap();
    let e = RunData::load(&dir).unwrap_err().to_string();
    assert!(
        e.contains("metrics.jsonl") && e.contains("line 1") && e.contains("HINT"),
        "{e}"
    );
}

#[test]
fn a_folder_that_is_not_a_run_names_itself_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let e = write_report(
        &[tmp.path().to_path_buf()],
        &options(),
        &tmp.path().join("out"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&tmp.path().display().to_string()) && e.contains("HINT"),
        "{e}"
    );
}

#[test]
fn an_explicit_baseline_and_target_are_used() {
    let tmp = tempfile::tempdir().unwrap();
    write_run(&tmp.path().join("cpt"), &cpt(0.0, 1e-3, 1.0));
    write_run(&tmp.path().join("scratch"), &union());
    let options = ReportOptions {
        baseline: Some(tmp.path().join("scratch")),
        target_set: Some("b".into()),
        target_loss: Some(4.3),
        ..options()
    };
    let report =
        write_report(&[tmp.path().join("cpt")], &options, &tmp.path().join("out")).unwrap();
    let md = report.to_markdown();
    // The baseline was loaded although not an input; CPT spends half the union's tokens after stage 1.
    assert!(md.contains("union baseline"), "{md}");
    let cost = md
        .lines()
        .find(|l| l.starts_with("| cpt ") && l.contains("scratch") && l.contains('×'))
        .unwrap_or_else(|| panic!("no cost row for cpt:\n{md}"));
    assert!(cost.contains("1.000×") && cost.contains("0.500×"), "{cost}");
    // b reaches 4.3 in the CPT run; the union run never does (∞).
    let ttt: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("4.3000 (given)"))
        .collect();
    assert_eq!(ttt.len(), 2, "{md}");
    assert!(!ttt[0].contains('∞') && ttt[1].contains('∞'), "{ttt:?}");
}

#[test]
fn a_ceiling_on_the_old_data_rules_out_evaluations_above_it() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = write_study(tmp.path());
    let options = ReportOptions {
        ceiling: Some(0.5),
        ..options()
    };
    let md = write_report(&inputs, &options, &tmp.path().join("out"))
        .unwrap()
        .to_markdown();
    // `a` was learned to 3.0 by the end of pretraining: the ceiling is 3.5. At step 18, where b first
    // reaches the target, the weak shift's replay-0 run has forgotten a to 3.22 (it counts), the strong
    // shift's to 3.78 and the hotter LR's to above 3.5 from the boundary on (they never count); the union
    // retrain is at 3.40.
    let row = |run: &str| {
        md.lines()
            .find(|l| {
                l.contains(&format!("| {run} ")) && l.contains("a ≤ 3.5000 (3.0000 + margin)")
            })
            .unwrap_or_else(|| panic!("no time-to-target row for {run}:\n{md}"))
            .to_owned()
    };
    assert!(row("weak/replay-0").contains("| 18,432 |"), "{md}");
    assert!(row("strong/union").contains("| 18,432 |"), "{md}");
    for missed in [
        "strong/replay-0",
        "weak/replay-0-lr2e-3",
        "strong/replay-0-lr2e-3",
    ] {
        assert!(row(missed).contains('∞'), "{}", row(missed));
    }
    assert!(md.contains("Ceiling (K1)"), "{md}");
}
