//! `rewarm branch` and `rewarm merge`: a constant-LR trunk, an anneal branched off it at a checkpoint with
//! the trunk's whole state, the policies at the branch point, the refusals, and a merge of the trunk's
//! checkpoints. `tiny` preset, synthetic sources, CPU.

mod common;
use common::{fails, metrics, ok};
use rewarm_data::synthetic;
use std::path::Path;

/// Sources `a`, `b`; `plan.toml`: a trunk of 20 steps at constant LR on `a` (checkpoint every 5);
/// `anneal.toml`: 6 steps on `a` and `b` annealed from the trunk's LR.
fn project(dir: &Path) {
    for (name, seed) in [("a", 1u32), ("b", 2)] {
        let toks = synthetic::language(seed, 24_000);
        let (train, val) = toks.split_at(20_000);
        synthetic::write_source(&dir.join(name), 512, train, val, 8_000).unwrap();
    }
    let plan = r#"seed = 5
[model]
preset = "tiny"
max_seq_len = 32
[data]
sources = { a = "a", b = "b" }
[train]
batch_tokens = 256
threads = 1
[eval]
every_steps = 5
tokens = 256
[checkpoint]
every_steps = 5
keep_last = 10
[[stages]]
name = "trunk"
tokens = 5120
mixture = { a = 1.0 }
schedule = { kind = "constant", lr = 1e-2 }
"#;
    std::fs::write(dir.join("plan.toml"), plan).unwrap();
    std::fs::write(dir.join("anneal.toml"), anneal("1e-2")).unwrap();
}

fn anneal(start_lr: &str) -> String {
    format!(
        "[[stages]]\nname = \"anneal\"\ntokens = 1536\nmixture = {{ a = 1.0, b = 1.0 }}\nschedule = {{ kind = \"anneal\", start_lr = {start_lr}, min_lr = 1e-3 }}\n"
    )
}

/// (step, stage, lr, loss) of the train records.
fn steps(run: &Path) -> Vec<(u64, String, f64, f64)> {
    metrics(run)
        .into_iter()
        .filter(|r| r["kind"] == "train")
        .map(|r| {
            let f = |k: &str| r[k].as_f64().unwrap();
            (
                r["step"].as_u64().unwrap(),
                r["stage"].as_str().unwrap().into(),
                f("lr"),
                f("loss"),
            )
        })
        .collect()
}

fn final_model(run: &Path) -> Vec<u8> {
    let ckpt = rewarm_runfolder::RunDir::new(run)
        .latest_checkpoint()
        .unwrap();
    std::fs::read(ckpt.model()).unwrap()
}

#[test]
fn an_anneal_branched_at_a_checkpoint_goes_on_from_the_trunks_state_and_curve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    ok(d, "train plan.toml --run trunk --device cpu");
    let said = ok(
        d,
        "branch trunk --step 10 --plan plan.toml --stages anneal.toml --run anneal10 --device cpu",
    );
    assert!(said.contains("branched from trunk at step 10"), "{said}");
    let (trunk, branch) = (steps(&d.join("trunk")), steps(&d.join("anneal10")));
    // The trunk's curve up to the branch point, then the anneal from the trunk's LR down to min_lr.
    assert_eq!(branch[..10], trunk[..10]);
    let anneal: Vec<&(u64, String, f64, f64)> = branch[10..].iter().collect();
    assert_eq!(
        anneal.iter().map(|s| s.0).collect::<Vec<_>>(),
        (11..=16).collect::<Vec<_>>()
    );
    assert!(anneal.iter().all(|s| s.1 == "anneal"));
    assert_eq!(anneal[0].2, 1e-2);
    assert!(anneal.windows(2).all(|w| w[1].2 < w[0].2), "the LR anneals");
    // Its state is the trunk's: the branch ends where its own plan trained straight from step 0 does
    // (same weights, moments, data positions), and it differs from a fresh start of the anneal.
    ok(d, "train anneal10/plan.toml --run straight --device cpu");
    assert_eq!(steps(&d.join("straight")), branch);
    assert!(final_model(&d.join("straight")) == final_model(&d.join("anneal10")));
    let plan: String = std::fs::read_to_string(d.join("anneal10/plan.toml")).unwrap();
    assert!(
        plan.contains("stop_after_steps = 10") && plan.contains("optimizer = \"keep\""),
        "{plan}"
    );
}

#[test]
fn moments_refilled_at_lr_zero_first_then_the_anneal_starts_at_the_trunks_lr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    ok(d, "train plan.toml --run trunk --device cpu");
    ok(d, "branch trunk --step 10 --plan plan.toml --stages anneal.toml --run warm --optimizer warmup:2 --device cpu");
    let lrs: Vec<f64> = steps(&d.join("warm"))[10..].iter().map(|s| s.2).collect();
    assert_eq!(lrs[..3], [0.0, 0.0, 1e-2]);
}

#[test]
fn nonsense_branches_are_refused_naming_the_fix_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    ok(d, "train plan.toml --run trunk --device cpu");
    std::fs::write(d.join("wrong-lr.toml"), anneal("5e-3")).unwrap();
    std::fs::write(
        d.join("other.toml"),
        std::fs::read_to_string(d.join("plan.toml"))
            .unwrap()
            .replace("seed = 5", "seed = 6"),
    )
    .unwrap();
    for (args, want) in [
        (
            "--step 7 --stages anneal.toml",
            "no complete checkpoint at step 7; it has them at steps [5, 10, 15, 20]",
        ),
        (
            "--step 10 --stages wrong-lr.toml",
            "starts at LR 5.000000e-3 and the trunk was at 1.000000e-2 at step 10",
        ),
        (
            "--step 10 --stages anneal.toml --optimizer reset",
            "fresh Adam moments at the trunk's full LR",
        ),
        (
            "--step 10 --stages anneal.toml --plan other.toml",
            "plan.seed: 5 in the run, 6 in this plan",
        ),
    ] {
        let args = if args.contains("--plan") {
            args.to_owned()
        } else {
            format!("{args} --plan plan.toml")
        };
        let err = fails(d, &format!("branch trunk {args} --run br --device cpu"));
        assert!(
            err.contains(want) && err.contains("HINT"),
            "want `{want}` in:\n{err}"
        );
        assert!(!d.join("br").exists(), "{args} left a folder");
    }
    ok(
        d,
        "branch trunk --stages anneal.toml --plan plan.toml --run br --schedule new --device cpu",
    );
    let err = fails(
        d,
        "branch trunk --stages anneal.toml --plan plan.toml --run br --device cpu",
    );
    assert!(err.contains("exists and is not empty"), "{err}");
}

/// The tensors of a safetensors file as f32 values, by name.
fn tensors(file: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            (name, values.collect())
        })
        .collect()
}

#[test]
fn a_merge_of_checkpoints_is_their_weighted_mean_and_trains_as_init_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    ok(d, "train plan.toml --run trunk --device cpu");
    let ckpt = |s: u64| d.join(format!("trunk/ckpt/step_{s:08}/model.safetensors"));
    let said = ok(
        d,
        "merge trunk/ckpt/step_00000010 trunk --weights 1,3 --out merged",
    );
    assert!(
        said.contains("0.2500 × trunk/ckpt/step_00000010") && said.contains("0.7500 × trunk"),
        "{said}"
    );
    let (a, b, m) = (
        tensors(&ckpt(10)),
        tensors(&ckpt(20)),
        tensors(&d.join("merged/model.safetensors")),
    );
    assert_eq!(m.keys().collect::<Vec<_>>(), a.keys().collect::<Vec<_>>());
    for (name, merged) in &m {
        for ((x, y), z) in a[name].iter().zip(&b[name]).zip(merged) {
            let want = (0.25 * f64::from(*x) + 0.75 * f64::from(*y)) as f32;
            assert_eq!(*z, want, "{name}");
        }
    }
    // A model merged with itself is itself, bit for bit.
    ok(d, "merge trunk trunk --out same");
    assert_eq!(tensors(&d.join("same/model.safetensors")), b);
    // The merge is a model a plan continues from.
    let plan = std::fs::read_to_string(d.join("plan.toml")).unwrap();
    std::fs::write(
        d.join("from-merge.toml"),
        plan.replace("seed = 5", "seed = 5\ninit_from = \"merged\""),
    )
    .unwrap();
    ok(
        d,
        "train from-merge.toml --run continued --device cpu --stop-at-step 2",
    );
    let err = fails(d, "merge trunk trunk --weights 1 --out two");
    assert!(
        err.contains("1 weights for 2 models") && err.contains("HINT"),
        "{err}"
    );
}

/// `[ema]`: after each step the average moves (1 − decay) of the way to the weights; it is written with
/// every checkpoint, resumes exactly, and `rewarm merge` turns it into a model folder.
#[test]
fn the_weights_moving_average_is_kept_written_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let plan = std::fs::read_to_string(d.join("plan.toml")).unwrap();
    std::fs::write(
        d.join("ema.toml"),
        plan.replace("[[stages]]", "[ema]\ndecay = 0.9\n[[stages]]"),
    )
    .unwrap();
    ok(d, "train ema.toml --run straight --device cpu");
    ok(d, "train ema.toml --run run --device cpu --stop-at-step 12");
    ok(d, "train ema.toml --run run --device cpu --stop-at-step 13");
    let at = |s: u64, f: &str| tensors(&d.join(format!("run/ckpt/step_{s:08}/{f}.safetensors")));
    let (before, weights, after) = (at(12, "ema"), at(13, "model"), at(13, "ema"));
    for (name, e) in &after {
        for ((b, w), a) in before[name].iter().zip(&weights[name]).zip(e) {
            let want = 0.9 * f64::from(*b) + 0.1 * f64::from(*w);
            assert!(
                (f64::from(*a) - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{name}: {a} vs {want}"
            );
        }
    }
    assert!(after != weights, "the average is not the weights");
    ok(d, "train ema.toml --run run --device cpu");
    let last = |run: &str, f: &str| {
        std::fs::read(d.join(format!("{run}/ckpt/step_00000020/{f}.safetensors"))).unwrap()
    };
    assert!(
        last("run", "ema") == last("straight", "ema"),
        "the resumed average differs"
    );
    ok(
        d,
        "merge straight/ckpt/step_00000020/ema.safetensors --out ema-model",
    );
    assert_eq!(
        tensors(&d.join("ema-model/model.safetensors")),
        tensors(&d.join("straight/ckpt/step_00000020/ema.safetensors"))
    );
}

/// `[ema] evaluate = true`: every evaluation also scores the average (records with `"weights": "ema"`),
/// which starts as the starting weights and then trails them; swapping it in and out changes nothing
/// else, bit for bit; the report shows it as a run of its own, `<run>+ema`.
#[test]
fn an_evaluated_average_changes_nothing_else_and_is_reported_as_its_own_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let plan = std::fs::read_to_string(d.join("plan.toml")).unwrap();
    for (file, ema) in [("kept", ""), ("scored", "evaluate = true\n")] {
        let text = plan.replace(
            "[[stages]]",
            &format!("[ema]\ndecay = 0.9\n{ema}[[stages]]"),
        );
        std::fs::write(d.join(format!("{file}.toml")), text).unwrap();
        ok(d, &format!("train {file}.toml --run {file} --device cpu"));
    }
    assert_eq!(steps(&d.join("kept")), steps(&d.join("scored")));
    assert!(final_model(&d.join("kept")) == final_model(&d.join("scored")));
    let evals = |run: &str, weights: Option<&str>| -> Vec<(u64, f64)> {
        metrics(&d.join(run))
            .into_iter()
            .filter(|r| r["kind"] == "eval" && r["set"] == "a" && r["weights"].as_str() == weights)
            .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap()))
            .collect()
    };
    let (own, average) = (evals("scored", None), evals("scored", Some("ema")));
    assert_eq!(own, evals("kept", None));
    assert!(evals("kept", Some("ema")).is_empty());
    assert_eq!(own.len(), average.len());
    assert_eq!(
        own[0], average[0],
        "the average starts as the starting weights"
    );
    assert!(own.last().unwrap().1 != average.last().unwrap().1);
    let said = ok(d, "report scored --out report");
    let md = std::fs::read_to_string(d.join("report/report.md")).unwrap();
    assert!(md.contains("scored+ema"), "{said}\n{md}");
}

/// `rewarm probe batch`: from the trunk's step-10 checkpoint, branches at 1×, 2× and 4× the batch with
/// the LR × √k each train 2,048 tokens with the trunk's state; the 1× branch is the trunk's own next
/// steps, bit for bit; the table and the suggested doublings are printed; a second call trains nothing.
#[test]
fn a_batch_probe_branches_at_k_times_the_batch_with_the_lr_times_sqrt_k() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    ok(d, "train plan.toml --run trunk --device cpu");
    let probe =
        "probe batch trunk --plan plan.toml --step 10 --factors 1,2,4 --tokens 2048 --device cpu";
    let said = ok(d, probe);
    assert!(said.contains("critical batch:"), "{said}");
    assert!(
        said.contains("suggested batch_doubling_tokens = ["),
        "{said}"
    );
    let trunk = steps(&d.join("trunk"));
    for (k, want_steps) in [(1u64, 8usize), (2, 4), (4, 2)] {
        let arm = d.join(format!("trunk/probes/batch/step_10/x{k}"));
        let records: Vec<_> = metrics(&arm)
            .into_iter()
            .filter(|r| r["kind"] == "train" && r["step"].as_u64().unwrap() > 10)
            .collect();
        assert_eq!(records.len(), want_steps, "x{k}");
        for r in &records {
            assert_eq!(r["batch_sequences"].as_u64(), Some(8 * k), "x{k}");
            let lr = r["lr"].as_f64().unwrap();
            assert!((lr - 1e-2 * (k as f64).sqrt()).abs() < 1e-12, "x{k}: {lr}");
        }
        assert_eq!(
            records.last().unwrap()["tokens"].as_u64(),
            Some(2560 + 2048)
        );
        if k == 1 {
            // The trunk's step 11 at the same batch and LR: the branch starts from its exact state.
            let first = records[0]["loss"].as_f64().unwrap();
            assert_eq!(first, trunk[10].3, "x1 step 11 vs the trunk's");
        }
    }
    let metrics_file = d.join("trunk/probes/batch/step_10/x4/metrics.jsonl");
    let before = std::fs::read(&metrics_file).unwrap();
    assert_eq!(
        ok(d, probe),
        said,
        "the second call reads the same branches"
    );
    assert_eq!(std::fs::read(&metrics_file).unwrap(), before);
    let e = fails(
        d,
        "probe batch trunk --plan plan.toml --step 10 --factors 1,3",
    );
    assert!(e.contains("powers of two"), "{e}");
}
