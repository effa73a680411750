//! `rewarm study`: the built-in studies end to end at a tiny scale — pretraining, runs, reports,
//! resuming, and sharing D0 and finished runs between studies.

mod common;
use common::*;
use std::path::Path;

/// The id of the run labelled `label` in the study folder `out` (its runs/sweep.json).
fn run_id(out: &Path, label: &str) -> String {
    let index = read_json(&out.join("runs/sweep.json"));
    let runs = index.as_array().expect("sweep.json lists the runs");
    let run = runs.iter().find(|r| r["label"] == label);
    run.unwrap_or_else(|| panic!("no {label} in {}", out.display()))["id"]
        .as_str()
        .expect("a run has an id")
        .to_owned()
}

#[test]
fn study_runs_end_to_end_and_a_second_call_skips_the_finished_runs() {
    let tmp = tempdir();
    let dir = tmp.path();
    tiny_project(dir);
    // `union` at 3% of the tiny budgets with 2 seeds: per seed, pretraining on a (3 steps), three
    // continual runs on b from its final checkpoint (replay 0, 5, 25% of what pretraining saw), the
    // union retrain (6 steps) and b from scratch (3 steps); then one report over both seeds.
    let args =
        "study union --data a=pa --data b=pb --out st --size tiny --token-scale 0.03 --seeds 2";
    let first = ok(dir, args);
    assert_has(
        &first,
        &[
            "pretraining on a with seed 1 (3 steps)",
            "pretraining on a with seed 2 (3 steps)",
            "report.md",
        ],
    );
    let index = read_json(&dir.join("st/runs/sweep.json"));
    let runs = index.as_array().unwrap();
    let labels: Vec<&str> = runs.iter().map(|r| r["label"].as_str().unwrap()).collect();
    let methods = [
        "cpt-replay=0",
        "cpt-replay=0.05",
        "cpt-replay=0.25",
        "union",
        "scratch",
    ];
    assert_eq!(labels, [methods, methods].concat());
    let seeds: Vec<u64> = runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [[1; 5], [2; 5]].concat());
    // `rewarm plan` shows a continual run that replays what pretraining saw, as training sees it.
    let replay = &runs[2];
    assert_eq!(replay["label"], "cpt-replay=0.25");
    let plan = format!("st/runs/{}/plan.toml", replay["id"].as_str().unwrap());
    assert_has(&ok(dir, &format!("plan {plan}")), &["replay"]);
    for r in runs {
        let m = metrics(&dir.join("st/runs").join(r["id"].as_str().unwrap()));
        let last = m.iter().filter_map(|r| r["step"].as_u64()).max().unwrap();
        let steps = if r["label"] == "union" { 6 } else { 3 };
        assert_eq!(last, steps, "{}", r["label"]);
    }
    // The report compares the methods over both seeds: the continual runs' English-like set `a` is old
    // (forgetting measured from the pretrained model at step 0), `b` is new.
    let md = std::fs::read_to_string(dir.join("st/report/report.md")).unwrap();
    assert_has(
        &md,
        &["## Forgetting and adaptation", "union baseline", "(2)"],
    );
    // One row per continual method, in nats and again in bits per byte.
    let rows: Vec<&str> = md.lines().filter(|l| l.contains("| a   | old")).collect();
    assert_eq!(rows.len(), 2 * 3, "{md}");
    assert!(
        rows.iter()
            .all(|l| l.matches('+').count() + l.matches('-').count() >= 2),
        "{rows:?}"
    );
    // Everything is finished: a second call trains nothing, not even D0 after its checkpoints went.
    std::fs::remove_dir_all(dir.join("st/pretrain-seed1/ckpt")).unwrap();
    let second = ok(dir, args);
    assert!(!second.contains("pretraining on"), "{second}");
    assert_eq!(second.matches("all 5 runs done").count(), 2, "{second}");
    // A budget that is no number of tokens is refused.
    let err = fails(
        dir,
        "study union --data a=pa --data b=pb --out st2 --token-scale 0",
    );
    assert_has(&err, &["--token-scale 0", "positive"]);
}

#[test]
fn studies_given_one_pretrain_dir_share_their_d0() {
    let tmp = tempdir();
    let dir = tmp.path();
    tiny_project(dir);
    let study = |name: &str, out: &str, scale: &str| {
        format!("study {name} --data a=pa --data b=pb --out {out} --size tiny --token-scale {scale} --pretrain-dir d0")
    };
    let first = ok(dir, &study("averaging", "s1", "0.03"));
    assert_has(&first, &["pretraining on a with seed 1 (3 steps)"]);
    assert!(!dir.join("s1/pretrain-seed1").exists());
    let d0 = dir.join("d0/pretrain-seed1");
    let d0_metrics = std::fs::read(d0.join("metrics.jsonl")).unwrap();
    // Another study with the same D0 plan trains its runs from that D0, without pretraining again.
    let second = ok(dir, &study("max-lr", "s2", "0.03"));
    assert!(!second.contains("pretraining on"), "{second}");
    let index = read_json(&dir.join("s2/runs/sweep.json"));
    let id = index[0]["id"].as_str().unwrap();
    let plan = std::fs::read_to_string(dir.join("s2/runs").join(id).join("plan.toml")).unwrap();
    let init = d0.canonicalize().unwrap().join("ckpt");
    assert!(plan.contains(init.to_str().unwrap()), "{plan}");
    assert_eq!(std::fs::read(d0.join("metrics.jsonl")).unwrap(), d0_metrics);
    // A run another study finished with the same plan is linked in: warmup's 1% run is max-lr's 1×
    // re-warm (averaging, in s1, has none of warmup's runs).
    let third = ok(
        dir,
        &(study("warmup", "s4", "0.03") + " --reuse s1 --reuse s2"),
    );
    assert_eq!(
        third.matches("linked in, not trained again").count(),
        1,
        "{third}"
    );
    let id_of = |out: &str, label: &str| run_id(&dir.join(out), label);
    let (mine, theirs) = (id_of("s4", "warmup=0.01"), id_of("s2", "rewarm-1x"));
    assert_eq!(mine, theirs);
    let records = |out: &str| {
        std::fs::read(dir.join(out).join("runs").join(&mine).join("metrics.jsonl")).unwrap()
    };
    assert_eq!(records("s4"), records("s2"));
    // A from-scratch run whose plan is D0's (envelope's full-length cosine) is D0, linked in.
    let fifth = ok(dir, &(study("envelope", "s5", "0.03") + " --reuse d0"));
    assert_eq!(fifth.matches("linked in").count(), 1, "{fifth}");
    let cosine = dir.join("s5/runs").join(id_of("s5", "cosine@1"));
    assert_eq!(
        std::fs::read(cosine.join("metrics.jsonl")).unwrap(),
        d0_metrics
    );
    // A study whose D0 differs (here its budget) is refused and changes nothing there.
    let plan_before = std::fs::read(d0.join("plan.toml")).unwrap();
    let other = fails(dir, &study("max-lr", "s3", "0.04"));
    assert_has(
        &other,
        &["pretrain-seed1/plan.toml", "another D0", "--pretrain-dir"],
    );
    assert_eq!(std::fs::read(d0.join("plan.toml")).unwrap(), plan_before);
    assert!(!dir.join("s3/runs").exists());
}

#[test]
fn study_init_goes_with_the_smollm2_study_only() {
    let tmp = tempdir();
    let dir = tmp.path();
    tiny_project(dir);
    let needs = fails(dir, "study smollm2 --data a=pa --data b=pb --out s1");
    assert_has(&needs, &["pass --init", "fetch-smollm2.sh"]);
    let missing = fails(
        dir,
        "study smollm2 --data a=pa --data b=pb --out s2 --init nowhere",
    );
    assert_has(&missing, &["--init nowhere", "no such folder"]);
    let refused = fails(
        dir,
        "study union --data a=pa --data b=pb --out s3 --init pa",
    );
    assert_has(&refused, &["--init is for study smollm2", "drop --init"]);
    let no_d0 = fails(
        dir,
        "study smollm2 --data a=pa --data b=pb --out s4 --init pa --pretrain-dir d0",
    );
    assert_has(
        &no_d0,
        &["--pretrain-dir is for the studies", "drop --pretrain-dir"],
    );
    assert!(!dir.join("s1/runs").exists() && !dir.join("s3/runs").exists());
    assert!(!dir.join("d0").exists());
}

#[test]
fn refined_study_refines_the_wsd_studys_linear_run_and_reuses_it() {
    let tmp = tempdir();
    let dir = tmp.path();
    tiny_project(dir);
    let refined = "study refined --data a=pa --out r --size tiny --token-scale 0.2";
    // (0.2: enough steps for the 5-step train records to carry several gradient norms.)
    // Without the wsd study's linear run there is nothing to refine: refused before anything is written.
    let err = fails(dir, refined);
    assert_has(
        &err,
        &["study wsd's linear run", "rewarm study wsd", "--reuse"],
    );
    assert!(!dir.join("r/runs").exists());
    ok(
        dir,
        "study wsd --data a=pa --out w --size tiny --token-scale 0.2",
    );
    let out = ok(dir, &format!("{refined} --reuse w"));
    // cosine and linear are wsd's runs; only the refined one trains.
    assert_eq!(
        out.matches("linked in, not trained again").count(),
        2,
        "{out}"
    );
    let id = |label: &str| run_id(&dir.join("r"), label);
    let plan = std::fs::read_to_string(dir.join("r/runs").join(id("refined")).join("plan.toml"))
        .expect("the refined run's plan");
    let linear = dir
        .join("w/runs")
        .join(id("linear"))
        .canonicalize()
        .expect("wsd's linear run");
    assert!(
        plan.contains(linear.join("metrics.jsonl").to_str().expect("a path")),
        "{plan}"
    );
    // Its LR follows those norms, not the linear decay they were recorded under.
    let lrs = |run: &std::path::Path| -> Vec<f64> {
        let m = metrics(run);
        m.iter()
            .filter(|r| r["kind"] == "train")
            .map(|r| r["lr"].as_f64().expect("a train record has its lr"))
            .collect()
    };
    let (mine, theirs) = (lrs(&dir.join("r/runs").join(id("refined"))), lrs(&linear));
    assert_eq!(mine.len(), theirs.len());
    assert!(!mine.is_empty() && mine != theirs, "{mine:?} vs {theirs:?}");
}
