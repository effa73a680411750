//! The training engine end to end on `tiny` and synthetic sources (CPU, seconds): learning, a golden loss
//! curve, bit-exact resume, replay accounting in a real run, the non-finite guard, init-from and
//! shrink-and-perturb's identity limit.

mod common;

use common::*;
use rewarm_plan::Plan;
use rewarm_runfolder::RunDir;
use rewarm_train::{train, InjectSite, Injection, NoProgress};
use serde_json::Value;
use std::path::Path;

#[test]
fn tiny_learns_the_pattern_and_forgets_a_little_on_the_next_source() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let run = s.dir.path().join("run");
    let state = train(&plan, &opts(&run), &NoProgress).unwrap();
    if std::env::var("REWARM_KEEP").is_ok() {
        std::fs::copy(run.join("metrics.jsonl"), "/tmp/learn-metrics.jsonl").unwrap();
    }
    assert_eq!(state.step, plan.total_steps);
    let evals = records(&run, "eval");
    let loss = |step: u64, set: &str| {
        evals
            .iter()
            .find(|r| r["step"] == step && r["set"] == set)
            .unwrap()["loss"]
            .as_f64()
            .unwrap()
    };
    let ln_v = (512f64).ln();
    let end0 = plan.stages[0].steps;
    assert!(loss(0, "a") > 0.9 * ln_v, "starts near ln V");
    assert!(
        loss(end0, "a") < 0.35 * ln_v,
        "learns source a: {}",
        loss(end0, "a")
    );
    let end = plan.total_steps;
    assert!(
        loss(end, "b") < 0.35 * ln_v,
        "learns source b: {}",
        loss(end, "b")
    );
    assert!(loss(end, "b") < loss(end0, "b") - 1.0, "adapts to b");
    // Re-warming on a new source first raises the old source's loss (the stability gap), replay
    // brings it back down.
    let peak_a = evals
        .iter()
        .filter(|r| r["stage"] == "s1" && r["set"] == "a")
        .map(|r| r["loss"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(
        peak_a > loss(end0, "a") + 0.1,
        "no forgetting seen: {peak_a}"
    );
    assert!(
        loss(end, "a") < peak_a,
        "replay lets the old source recover"
    );
    // The run records its count-model baselines: the synthetic language is a first-order chain with
    // rare resets, so the bigram nearly predicts it while token frequencies do not.
    let baselines = rewarm_runfolder::Baselines::read(&RunDir::new(&run))
        .unwrap()
        .expect("baselines.json");
    for set in ["a", "b"] {
        let b = &baselines.sets[set];
        assert!(b.bigram < 0.5 && b.unigram > b.bigram + 0.5, "{set}: {b:?}");
        assert_eq!(
            b.targets, 1024,
            "{set}: scored on the run's evaluation targets"
        );
    }
    // The metrics carry what the schema promises.
    let last = records(&run, "train").pop().unwrap();
    for key in [
        "step",
        "stage",
        "tokens",
        "tokens_by_source",
        "lr",
        "loss",
        "grad_norm",
        "replay_fraction",
    ] {
        assert!(!last[key].is_null(), "train record lacks {key}");
    }
    let e = &evals[0];
    for key in [
        "step",
        "stage",
        "tokens",
        "set",
        "loss",
        "perplexity",
        "bits_per_byte",
    ] {
        assert!(!e[key].is_null(), "eval record lacks {key}");
    }
}

/// Golden first-20 losses of `tiny` (regenerate with REWARM_BLESS=1 after an intended change).
#[test]
fn golden_first_20_losses() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let run = s.dir.path().join("run");
    let mut o = opts(&run);
    o.stop_at_step = Some(20);
    train(&plan, &o, &NoProgress).unwrap();
    let losses: Vec<f64> = train_losses(&run).iter().map(|l| l.1).collect();
    assert_eq!(losses.len(), 20);
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/tiny_first20_losses.json");
    if std::env::var("REWARM_BLESS").is_ok() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, serde_json::to_string_pretty(&losses).unwrap()).unwrap();
    }
    let want: Vec<f64> = serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    for (i, (g, w)) in losses.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "step {}: {g} vs golden {w}",
            i + 1
        );
    }
    assert!(losses[19] < losses[0] - 1.0, "the golden curve falls");
}

#[test]
fn stop_and_resume_is_bit_identical_to_an_uninterrupted_run() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let straight = s.dir.path().join("straight");
    train(&plan, &opts(&straight), &NoProgress).unwrap();
    let resumed = s.dir.path().join("resumed");
    // Stop mid-stage (step 13: not a checkpoint step) and at the stage boundary, then finish.
    for stop in [13, plan.stages[0].steps, 57] {
        let mut o = opts(&resumed);
        o.stop_at_step = Some(stop);
        let st = train(&plan, &o, &NoProgress).unwrap();
        assert_eq!(st.step, stop);
    }
    train(&plan, &opts(&resumed), &NoProgress).unwrap();
    let a = train_losses(&straight);
    let b = train_losses(&resumed);
    assert_eq!(a.len() as u64, plan.total_steps);
    assert_eq!(a, b, "per-step losses differ (or steps were duplicated)");
    assert!(
        final_weights(&straight) == final_weights(&resumed),
        "final weights differ"
    );
    let ea: Vec<Value> = records(&straight, "eval");
    let eb: Vec<Value> = records(&resumed, "eval");
    assert_eq!(ea, eb, "evaluation records differ");
}

/// Records the notes a run prints.
#[derive(Default)]
struct Notes(std::sync::Mutex<Vec<String>>);
impl rewarm_train::Observer for Notes {
    fn note(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_owned());
    }
}

/// Flips one byte in the middle of a checkpoint's weights: a file that still parses, with other values.
fn rot(ckpt: &rewarm_runfolder::CheckpointDir) {
    let mut bytes = std::fs::read(ckpt.model()).unwrap();
    let i = bytes.len() - 1000;
    bytes[i] ^= 0x40;
    std::fs::write(ckpt.model(), bytes).unwrap();
}

/// A checkpoint damaged after it was written (its content no longer matches the hashes in DONE) is
/// passed over: the run resumes from the one before, says so, and ends bit-identical to an uninterrupted
/// run. When every checkpoint is damaged the run refuses to start over silently, and loading one as
/// pretrained weights fails naming the file.
#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_one_before() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let straight = s.dir.path().join("straight");
    train(&plan, &opts(&straight), &NoProgress).unwrap();
    let run = s.dir.path().join("resumed");
    let mut o = opts(&run);
    o.stop_at_step = Some(45);
    train(&plan, &o, &NoProgress).unwrap();
    let dir = RunDir::new(&run);
    let steps: Vec<u64> = dir.complete_checkpoints().iter().map(|c| c.step).collect();
    assert_eq!(steps, [40, 45]);
    rot(&dir.checkpoint(45));
    let notes = Notes::default();
    train(&plan, &opts(&run), &notes).unwrap();
    let notes = notes.0.into_inner().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("step 45 is damaged, resuming from step 40")
                && n.contains("model.safetensors")),
        "{notes:?}"
    );
    assert_eq!(train_losses(&straight), train_losses(&run));
    assert!(
        final_weights(&straight) == final_weights(&run),
        "final weights differ"
    );

    let all = s.dir.path().join("all-damaged");
    let mut o = opts(&all);
    o.stop_at_step = Some(15);
    train(&plan, &o, &NoProgress).unwrap();
    for c in RunDir::new(&all).complete_checkpoints() {
        rot(&c);
    }
    let err = train(&plan, &opts(&all), &NoProgress)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("every checkpoint is damaged") && err.contains("HINT"),
        "{err}"
    ); // Loading a damaged checkpoint for `init_from`, `sample` or `export` fails the same check.
    let damaged = RunDir::new(&all).checkpoint(15).path;
    let err = rewarm_model::pretrained::load_model(&damaged, tch::Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("content hash"),
        "{err}"
    );
}

#[test]
fn replay_accounting_in_a_real_run_matches_the_plan() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let run = s.dir.path().join("run");
    train(&plan, &opts(&run), &NoProgress).unwrap();
    let train_recs = records(&run, "train");
    let s1: Vec<&Value> = train_recs.iter().filter(|r| r["stage"] == "s1").collect();
    let b = plan.stages[1].segments[0].batch_sequences as f64;
    for r in &s1 {
        let replayed = r["replay_fraction"].as_f64().unwrap() * b;
        assert!(
            (replayed - (0.25 * b).round()).abs() <= 1.0,
            "batch replay count {replayed}"
        );
    }
    let last = &train_recs.last().unwrap()["tokens_by_source"];
    let stage_tokens = (plan.stages[1].sequences * plan.seq_len as u64) as f64;
    let replay = last["a/replay"].as_f64().unwrap();
    let new_b = last["b"].as_f64().unwrap();
    let batch_tokens = b * plan.seq_len as f64;
    assert!(
        (replay - 0.25 * stage_tokens).abs() <= batch_tokens,
        "replay tokens {replay}"
    );
    assert!(
        (new_b - 0.75 * stage_tokens).abs() <= batch_tokens,
        "new tokens {new_b}"
    );
    assert_eq!(
        last["a"].as_f64().unwrap(),
        (plan.stages[0].sequences * plan.seq_len as u64) as f64
    );
}

#[test]
fn non_finite_loss_stops_with_step_and_stage_and_saves_nothing_non_finite() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let run = s.dir.path().join("run");
    let mut o = opts(&run);
    o.inject_non_finite = Some(Injection::nan_loss(15));
    let err = train(&plan, &o, &NoProgress).err().unwrap().to_string();
    assert!(
        err.contains("non-finite loss at step 15") && err.contains("s0") && err.contains("HINT"),
        "{err}"
    );
    let steps: Vec<u64> = RunDir::new(&run)
        .complete_checkpoints()
        .iter()
        .map(|c| c.step)
        .collect();
    assert_eq!(steps, [10], "only the checkpoint before the failure");
    // A non-finite loss would be written as null (JSON has no NaN): every logged loss is a number.
    for r in records(&run, "train") {
        let loss = r["loss"].as_f64();
        assert!(
            loss.is_some_and(f64::is_finite),
            "step {}: loss {}",
            r["step"],
            r["loss"]
        );
    }
}

#[test]
fn non_finite_loss_rolls_back_with_a_lower_lr_when_configured() {
    let s = setup("[guard]\nnon_finite = \"rollback\"\nlr_backoff = 0.5", "");
    let plan = load(&s.plan_path);
    let run = s.dir.path().join("run");
    let mut o = opts(&run);
    o.inject_non_finite = Some(Injection::nan_loss(15));
    let state = train(&plan, &o, &NoProgress).unwrap();
    assert_eq!(state.step, plan.total_steps);
    assert_eq!(state.rollbacks, 1);
    assert_eq!(state.lr_scale, 0.5);
    let rb = records(&run, "rollback");
    assert_eq!(rb.len(), 1);
    assert_eq!(rb[0]["step"], 10);
    // Steps 11..=15 were redone: no duplicates in the metrics.
    let steps: Vec<u64> = train_losses(&run).iter().map(|l| l.0).collect();
    assert_eq!(steps, (1..=plan.total_steps).collect::<Vec<_>>());
}

/// Every value of every tensor in every complete checkpoint of `run` (weights and Adam moments) is finite.
fn assert_checkpoints_finite(run: &Path) {
    let ckpts = RunDir::new(run).complete_checkpoints();
    assert!(!ckpts.is_empty());
    for ckpt in ckpts {
        let step = ckpt.step;
        for path in [ckpt.model(), ckpt.optimizer()] {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            for (name, view) in st.tensors() {
                assert_eq!(view.dtype(), safetensors::Dtype::F32);
                let finite = view
                    .data()
                    .chunks_exact(4)
                    .all(|c| f32::from_le_bytes(c.try_into().unwrap()).is_finite());
                assert!(finite, "step {step}: {file} `{name}` is not finite");
            }
        }
    }
}

/// Trains `plan` into `run` with the injection `spec`; the run must fail. Checks that only the step-10
/// checkpoint exists and that it holds finite values only, and returns the error message.
fn fails_with_injection(plan: &Plan, run: &Path, spec: &str) -> String {
    let mut o = opts(run);
    o.inject_non_finite = Some(spec.parse().unwrap());
    let err = train(plan, &o, &NoProgress).err().unwrap().to_string();
    let steps: Vec<u64> = RunDir::new(run)
        .complete_checkpoints()
        .iter()
        .map(|c| c.step)
        .collect();
    assert_eq!(
        steps,
        [10],
        "{spec}: only the checkpoint before the failure"
    );
    assert_checkpoints_finite(run);
    err
}

/// inf as well as NaN, in the gradients and in a data batch as well as in the loss: the guard stops
/// before the update, names what was non-finite, and leaves only finite checkpoints.
#[test]
fn non_finite_gradients_batches_and_inf_are_caught_before_the_update() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let cases = [
        ("grad@12=inf", "non-finite gradient norm at step 12"),
        ("grad@12=nan", "non-finite gradient norm at step 12"),
        ("batch@12=nan", "non-finite loss at step 12"),
        ("batch@12=inf", "non-finite loss at step 12"),
        ("loss@12=-inf", "non-finite loss at step 12"),
    ];
    for (i, (spec, want)) in cases.iter().enumerate() {
        let run = s.dir.path().join(format!("run{i}"));
        let err = fails_with_injection(&plan, &run, spec);
        assert!(err.contains(want) && err.contains("HINT"), "{spec}: {err}");
        let last = train_losses(&run).last().unwrap().0;
        assert_eq!(last, 11, "{spec}: the failed step is not logged");
        assert!(!run.join("LOCK").exists());
    }
    assert!("batch@x".parse::<Injection>().is_err());
    assert_eq!(
        "batch@3=inf".parse::<Injection>().unwrap(),
        Injection {
            step: 3,
            site: InjectSite::Batch,
            value: f64::INFINITY
        }
    );
}

/// A poisoned batch under `rollback`: the run rolls back, finishes with finite weights in every checkpoint,
/// and its metrics hold each step once.
#[test]
fn a_non_finite_batch_rolls_back_and_the_run_folder_stays_consistent() {
    let s = setup("[guard]\nnon_finite = \"rollback\"\nlr_backoff = 0.5", "");
    let plan = load(&s.plan_path);
    let run = s.dir.path().join("run");
    let mut o = opts(&run);
    o.inject_non_finite = Some("batch@15=inf".parse().unwrap());
    let state = train(&plan, &o, &NoProgress).unwrap();
    assert_eq!(
        (state.step, state.rollbacks, state.lr_scale),
        (plan.total_steps, 1, 0.5)
    );
    assert_eq!(records(&run, "rollback")[0]["failed_step"], 15);
    assert_checkpoints_finite(&run);
    let steps: Vec<u64> = train_losses(&run).iter().map(|l| l.0).collect();
    assert_eq!(steps, (1..=plan.total_steps).collect::<Vec<_>>());
    assert!(train_losses(&run).iter().all(|l| l.1.is_finite()));
    assert!(!run.join("LOCK").exists());
}

#[test]
fn init_from_loads_weights_only_and_shrink_perturb_identity_is_plain_cpt() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let run = s.dir.path().join("pre");
    let mut o = opts(&run);
    o.stop_at_step = Some(plan.stages[0].steps);
    train(&plan, &o, &NoProgress).unwrap();
    let ckpt = RunDir::new(&run).latest_checkpoint().unwrap().path;
    let stage1 = |extra: &str, stage_extra: &str, name: &str| {
        let text = std::fs::read_to_string(&s.plan_path).unwrap();
        // A one-stage continuation of the pretrained checkpoint on b.
        let mut cont = text.replacen(
            "seed = 3",
            &format!("seed = 3\ninit_from = \"{}\"\n{extra}", ckpt.display()),
            1,
        );
        let start = cont.find("[[stages]]").unwrap();
        let second = cont[start + 1..].find("[[stages]]").unwrap() + start + 1;
        cont.replace_range(start..second, "");
        cont = cont.replace(
            "replay = { fraction = 0.25 }",
            "replay = { fraction = 0.25, sources = [\"a\"], pool = \"whole\" }",
        );
        cont.push_str(stage_extra);
        let p = s.dir.path().join(format!("{name}.toml"));
        std::fs::write(&p, cont).unwrap();
        let plan = load(&p);
        let r = s.dir.path().join(name);
        train(&plan, &opts(&r), &NoProgress).unwrap();
        r
    };
    let plain = stage1("", "", "plain");
    // The first evaluation of the continuation equals the pretrained model's final evaluation.
    let pre_eval: Vec<f64> = records(&run, "eval")
        .iter()
        .filter(|r| r["step"] == plan.stages[0].steps)
        .map(|r| r["loss"].as_f64().unwrap())
        .collect();
    let cont_eval: Vec<f64> = records(&plain, "eval")
        .iter()
        .filter(|r| r["step"] == 0)
        .map(|r| r["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(pre_eval, cont_eval);
    let sp = stage1(
        "",
        "shrink_perturb = { lambda = 1.0, sigma = 0.0 }\n",
        "sp-identity",
    );
    assert_eq!(train_losses(&plain), train_losses(&sp));
    assert!(final_weights(&plain) == final_weights(&sp));
    let sp = stage1(
        "",
        "shrink_perturb = { lambda = 0.5, sigma = 0.01 }\n",
        "sp-half",
    );
    assert_ne!(train_losses(&plain), train_losses(&sp));
}

/// A run continued from a checkpoint (`init_from`) replays, with `pool = "seen"`, only sequences the
/// checkpoint's run consumed: its checkpoint records them (`consumed.json`) and the continuation's
/// mixture replays from that record.
#[test]
fn seen_replay_after_init_from_draws_only_what_the_earlier_run_consumed() {
    let s = setup("", "");
    let plan = load(&s.plan_path);
    let run = s.dir.path().join("pre");
    let mut o = opts(&run);
    o.stop_at_step = Some(plan.stages[0].steps);
    train(&plan, &o, &NoProgress).unwrap();
    let ckpt = RunDir::new(&run).latest_checkpoint().unwrap();
    let record = rewarm_runfolder::Consumption::read(&ckpt)
        .unwrap()
        .expect("consumed.json");
    let drew = record.sources["a"]
        .segments
        .iter()
        .map(|g| g.draws)
        .sum::<u64>();
    assert_eq!(drew, plan.stages[0].sequences);
    assert!(!record.sources.contains_key("b"), "stage s0 reads only a");
    // The earlier run's sequences of a, and a continuation (another seed) on b replaying a's seen pool.
    let pre_data = rewarm_train::open_data(&plan).unwrap();
    let consumed: std::collections::HashSet<u64> = (0..plan.stages[0].sequences)
        .map(|i| pre_data.mixture.index.draw(0, i).sequence)
        .collect();
    let text = std::fs::read_to_string(&s.plan_path).unwrap();
    let mut cont = text.replacen(
        "seed = 3",
        &format!("seed = 11\ninit_from = \"{}\"", ckpt.path.display()),
        1,
    );
    let start = cont.find("[[stages]]").unwrap();
    let second = cont[start + 1..].find("[[stages]]").unwrap() + start + 1;
    cont.replace_range(start..second, "");
    cont = cont.replace(
        "replay = { fraction = 0.25 }",
        "replay = { fraction = 0.25, sources = [\"a\"], pool = \"seen\" }",
    );
    let p = s.dir.path().join("seen.toml");
    std::fs::write(&p, cont).unwrap();
    let cont_plan = load(&p);
    let later = rewarm_train::open_data(&cont_plan).unwrap();
    let replayed: Vec<u64> = (0..cont_plan.stages[0].sequences)
        .map(|i| later.mixture.index.draw(0, i))
        .filter(|d| d.replay)
        .map(|d| d.sequence)
        .collect();
    assert!(replayed.len() as u64 >= cont_plan.stages[0].sequences / 4 - 1);
    assert!(
        replayed.iter().all(|q| consumed.contains(q)),
        "replayed a sequence the earlier run never saw"
    );
    // It trains, and its own checkpoint carries the record forward.
    let r = s.dir.path().join("seen-run");
    train(&cont_plan, &opts(&r), &NoProgress).unwrap();
    let last = RunDir::new(&r).latest_checkpoint().unwrap();
    let chained = rewarm_runfolder::Consumption::read(&last).unwrap().unwrap();
    assert_eq!(chained.sources["a"], record.sources["a"]);
    assert!(chained.sources.contains_key("b"));
}

/// `setup` with training records every `n` steps: the loss and gradient norm are read back at those steps
/// (and at evaluations and checkpoints) only.
fn setup_logging_every(n: u64, extra: &str) -> Setup {
    let s = setup(extra, "");
    let plan = std::fs::read_to_string(&s.plan_path).unwrap();
    let plan = plan.replace(
        "threads = 1",
        &format!("threads = 1\nlog_every_steps = {n}"),
    );
    std::fs::write(&s.plan_path, plan).unwrap();
    s
}

/// Reading the loss back less often changes nothing: the same weights, bit for bit, and the same losses at
/// the steps both runs log.
#[test]
fn reading_back_less_often_trains_the_same_weights() {
    let every = setup("", "");
    let sparse = setup_logging_every(7, "");
    let mut losses = Vec::new();
    let mut weights = Vec::new();
    for s in [&every, &sparse] {
        let plan = load(&s.plan_path);
        let run = s.dir.path().join("run");
        train(&plan, &opts(&run), &NoProgress).unwrap();
        losses.push(train_losses(&run));
        weights.push(final_weights(&run));
    }
    assert!(weights[0] == weights[1], "final weights differ");
    let logged: Vec<u64> = losses[1].iter().map(|l| l.0).collect();
    assert_eq!(logged, [7, 14, 21, 28, 35, 40, 42, 49, 56, 63, 70, 77, 80]); // and the stage ends
    for (step, loss) in &losses[1] {
        assert_eq!(losses[0][*step as usize - 1], (*step, *loss));
    }
}

/// A non-finite step between read-backs skips its own update on the device and is reported, with its
/// step number, at the next read-back; nothing after it is saved.
#[test]
fn a_non_finite_step_between_read_backs_is_named_at_the_next_one() {
    for (spec, want) in [
        ("loss@12=nan", "non-finite loss at step 12"),
        ("grad@12=inf", "non-finite gradient norm at step 12"),
    ] {
        let s = setup_logging_every(5, "");
        let plan = load(&s.plan_path);
        let run = s.dir.path().join("run");
        let err = fails_with_injection(&plan, &run, spec);
        assert!(err.contains(want), "{spec}: {err}");
        assert_eq!(train_losses(&run).last().unwrap().0, 10, "{spec}");
    }
    // Under `rollback` the run restarts from step 10 and finishes.
    let s = setup_logging_every(5, "[guard]\nnon_finite = \"rollback\"\nlr_backoff = 0.5");
    let plan = load(&s.plan_path);
    let run = s.dir.path().join("run");
    let mut o = opts(&run);
    o.inject_non_finite = Some("loss@12=nan".parse().unwrap());
    let state = train(&plan, &o, &NoProgress).unwrap();
    assert_eq!((state.step, state.rollbacks), (plan.total_steps, 1));
    assert_eq!(records(&run, "rollback")[0]["failed_step"], 12);
    assert_checkpoints_finite(&run);
}

/// A model whose sizes are each in range but whose product is not (550 billion parameters) is refused
/// before anything is allocated, with the sizes and what to lower; nothing is trained.
#[test]
fn a_model_too_big_for_the_memory_is_refused_before_allocation_naming_the_sizes() {
    let s = setup("", "");
    let plan = std::fs::read_to_string(&s.plan_path).unwrap().replace(
        "preset = \"tiny\"",
        "preset = \"tiny\"\nnum_layers = 4096\nintermediate_size = 1048576",
    );
    std::fs::write(&s.plan_path, plan).unwrap();
    let run = s.dir.path().join("run");
    let err = train(&load(&s.plan_path), &opts(&run), &NoProgress)
        .expect_err("a 550B-parameter model trained")
        .to_string();
    assert!(
        err.contains("4096 layers, hidden 64, MLP 1048576, vocabulary 512")
            && err.contains("needs at least")
            && err.contains("GiB")
            && err.contains("micro_batch_sequences"),
        "{err}"
    );
    assert!(!run.join("metrics.jsonl").exists(), "a refused run logged");
}
