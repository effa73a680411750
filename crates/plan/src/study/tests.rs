//! The recipes' unit tests: every study builds plans that parse, and each varies what it says.
#![cfg(test)]

use super::*;
use crate::config::PlanConfig;

/// The study's run plans, parsed as `rewarm train` would.
fn parsed(study: &Study) -> Vec<PlanConfig> {
    study
        .runs
        .iter()
        .map(|r| {
            let text = toml::to_string(&r.plan).expect("a study plan is TOML");
            PlanConfig::from_toml(&text, Path::new("s.toml")).expect("a study plan parses")
        })
        .collect()
}

/// Study `name` built from `sources()` at `scale`, its runs continuing `pretrained`.
fn built(name: &str, scale: &Scale, pretrained: &str) -> Study {
    build(name, &sources(), scale, 1, Path::new(pretrained))
        .unwrap_or_else(|e| panic!("study {name} does not build: {e}"))
}

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
            let study = built(name, &size.scale(), "/runs/pretrain/ckpt/step_00000010");
            assert!(study.runs.len() >= 3, "{name}");
            for r in study.runs.iter().chain(
                study
                    .pretrain
                    .as_ref()
                    .map(|p| run("p", &[], p.clone()))
                    .iter(),
            ) {
                let text = toml::to_string(&r.plan).expect("a study plan is TOML");
                PlanConfig::from_toml(&text, Path::new("study.toml"))
                    .unwrap_or_else(|e| panic!("{name} {}: {e}", r.label));
            }
        }
    }
}

#[test]
fn batch_and_shrink_perturb_studies_hold_tokens_and_vary_one_thing() {
    let b = built("batch", &Size::Small.scale(), "/ck");
    assert!(
        b.pretrain.is_none(),
        "batch-size warmup is a pretraining study"
    );
    let plans = parsed(&b);
    let tokens: Vec<u64> = plans.iter().map(|p| p.stages[0].tokens).collect();
    assert!(tokens.iter().all(|&t| t == tokens[0]));
    let batches: Vec<u64> = plans.iter().map(|p| p.train.batch_tokens).collect();
    assert_eq!(batches, [8192, 8192, 32768]);
    assert_eq!(plans[1].train.batch_doubling_tokens, [1_695_744, 5_081_088]);
    assert!(plans[0].train.batch_doubling_tokens.is_empty());
    assert_eq!(plans[2].stages[0].schedule.peak_lr(), 2e-3);
    let j = built("shrink-perturb", &Size::Tiny.scale(), "/ck");
    let labels: Vec<&str> = j.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "lambda=1",
            "lambda=0.8",
            "lambda=0.5",
            "lambda=0.2",
            "scratch"
        ]
    );
    let sp = &j.runs[1].plan["stages"][0]["shrink_perturb"];
    assert_eq!(sp["lambda"].as_float(), Some(0.8));
    assert!((sp["sigma"].as_float().expect("sigma is set") - 0.2).abs() < 1e-12);
    assert_eq!(sp["noise"].as_str(), Some("init"));
}

#[test]
fn stability_study_crosses_passes_over_a_subset_with_replay_at_equal_tokens() {
    let st = built("stability", &Size::Small.scale(), "/ck");
    let labels: Vec<&str> = st.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "passes=1,replay=0",
            "passes=4,replay=0",
            "passes=1,replay=0.25",
            "passes=4,replay=0.25"
        ]
    );
    let plans = parsed(&st);
    let passes: Vec<Option<u64>> = plans.iter().map(|p| p.stages[0].subset_epochs).collect();
    assert_eq!(passes, [None, Some(4), None, Some(4)]);
    let rho: Vec<f64> = plans
        .iter()
        .map(|p| p.stages[0].replay.as_ref().map_or(0.0, |r| r.fraction))
        .collect();
    assert_eq!(rho, [0.0, 0.0, 0.25, 0.25]);
    assert!(plans
        .iter()
        .all(|p| p.stages[0].tokens == plans[0].stages[0].tokens));
    assert!(st.pretrain.is_some(), "the runs continue a D0 model");
    let dense: Vec<(u64, u64)> = plans
        .iter()
        .map(|p| (p.eval.dense_steps, p.eval.dense_every_steps))
        .collect();
    assert!(dense.iter().all(|&d| d == (48, 6)), "{dense:?}");
    assert!(
        plans.iter().all(|p| p.monitor.is_some()),
        "the monitor measures every run"
    );
}

#[test]
fn averaging_study_holds_the_lr_cools_down_or_re_decays_and_scores_the_average() {
    let st = built("averaging", &Size::Small.scale(), "/ck");
    let labels: Vec<&str> = st.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["constant", "wsd-0.2", "cosine"]);
    let plans = parsed(&st);
    let kinds: Vec<&str> = plans
        .iter()
        .map(|p| p.stages[0].schedule.kind_name())
        .collect();
    assert_eq!(kinds, ["wsd", "wsd", "cosine"]);
    // 375 steps: the constant run holds η_max to its last step; the cooldown ends at 0, cosine at η_max/10.
    let last = |i: usize| plans[i].stages[0].schedule.lr(374, 375);
    assert!((last(0) - 1e-3).abs() < 1e-12, "{}", last(0));
    assert!(last(1) < 1e-4 && last(2) > 1e-4 - 1e-9);
    // The average spans the cooldown's 75, and is evaluated; cosine keeps none.
    let ema: Vec<Option<(f64, bool)>> = plans
        .iter()
        .map(|p| p.ema.as_ref().map(|e| (e.decay, e.evaluate)))
        .collect();
    assert_eq!(
        ema,
        [
            Some((1.0 - 1.0 / 75.0, true)),
            Some((1.0 - 1.0 / 75.0, true)),
            None
        ]
    );
    assert!(plans.iter().all(|p| {
        let r = p.stages[0].replay.as_ref().expect("every run replays");
        r.fraction == 0.25 && r.pool == rewarm_data::ReplayPool::Seen
    }));
    assert!(st.pretrain.is_some(), "the runs continue a D0 model");
}

#[test]
fn smollm2_study_continues_the_given_model_with_whole_split_replay() {
    let st = built("smollm2", &Scale::smollm2(), "/models/smollm2");
    let labels: Vec<&str> = st.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["replay=0", "replay=0.05", "replay=0.25"]);
    assert!(st.pretrain.is_none(), "the public model is D0's model");
    for p in parsed(&st) {
        assert_eq!(
            p.init_from.as_deref(),
            Some("/models/smollm2"),
            "every run starts from --init"
        );
        assert_eq!(p.stages.len(), 1);
        assert_eq!(p.stages[0].tokens, 1_048_576);
        if let Some(r) = &p.stages[0].replay {
            assert_eq!(
                r.pool,
                rewarm_data::ReplayPool::Whole,
                "its data is unknown"
            );
        }
    }
}

#[test]
fn mer_study_crosses_additive_replay_with_reptile_over_two_continual_stages() {
    let m = built("mer", &Size::Tiny.scale(), "/ck");
    let labels: Vec<&str> = m.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "replay=0",
            "replay=0 reptile=0.1",
            "replay=0.25",
            "replay=0.25 reptile=0.1",
            "replay=0.25 reptile=0.9",
            "replay=0.5",
            "replay=0.5 reptile=0.1"
        ]
    );
    let r = &m.runs[3].plan;
    assert_eq!(r["init_from"].as_str(), Some("/ck"));
    let stages = r["stages"].as_array().expect("a plan has stages");
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["name"].as_str().expect("a stage has a name"))
        .collect();
    assert_eq!(names, ["cpt-de", "cpt-sotu"]);
    // D2 replays D0 and D1 on top of its new data; the moments carry over from D1.
    let replay = &stages[1]["replay"];
    assert_eq!(replay["mode"].as_str(), Some("additive"));
    assert_eq!(replay["fraction"].as_float(), Some(0.25));
    assert_eq!(
        replay["sources"]
            .as_array()
            .expect("replay names its sources")
            .len(),
        2
    );
    assert_eq!(stages[1]["optimizer"].as_str(), Some("keep"));
    assert_eq!(stages[0]["reptile"]["beta"].as_float(), Some(0.1));
    assert!(m.runs[0].plan["stages"][0].get("replay").is_none());
    assert!(m.runs[2].plan["stages"][1].get("reptile").is_none());
    assert!(build(
        "mer",
        &sources()[..2],
        &Size::Tiny.scale(),
        1,
        Path::new("/ck")
    )
    .is_err());
}

#[test]
fn replay_study_sweeps_the_paper_fractions_and_union_adds_the_baseline() {
    let s = built("replay", &Size::Tiny.scale(), "/ck");
    let labels: Vec<&str> = s.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "replay=0",
            "replay=0.01",
            "replay=0.05",
            "replay=0.1",
            "replay=0.25",
            "replay=0.5",
            "replay-whole=0.25"
        ]
    );
    assert_eq!(s.runs[0].plan["init_from"].as_str(), Some("/ck"));
    let pools: Vec<&str> = s.runs[1..]
        .iter()
        .map(|r| {
            r.plan["stages"][0]["replay"]["pool"]
                .as_str()
                .expect("replay names its pool")
        })
        .collect();
    assert_eq!(pools, ["seen", "seen", "seen", "seen", "seen", "whole"]);
    let u = built("union", &Size::Tiny.scale(), "/ck");
    let labels: Vec<&str> = u.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "cpt-replay=0",
            "cpt-replay=0.05",
            "cpt-replay=0.25",
            "union",
            "scratch"
        ]
    );
    let (union, scratch) = (&u.runs[3], &u.runs[4]);
    assert!(union.plan.get("init_from").is_none());
    assert!(scratch.plan.get("init_from").is_none());
    // Scratch trains D1 alone for the continual runs' tokens with their schedule.
    let cpt_stage = &u.runs[0].plan["stages"][0];
    let scratch_stage = &scratch.plan["stages"][0];
    assert_eq!(scratch_stage["tokens"], cpt_stage["tokens"]);
    assert_eq!(scratch_stage["mixture"], cpt_stage["mixture"]);
    assert_eq!(scratch_stage["schedule"], cpt_stage["schedule"]);
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
            .expect("an unknown study is refused")
            .contains("warmup")
    );
}

/// The label → id of a study's runs.
fn ids(st: &Study) -> BTreeMap<String, String> {
    st.runs
        .iter()
        .map(|r| (r.label.clone(), r.id.clone()))
        .collect()
}

#[test]
fn envelope_cools_one_trunk_at_three_lengths_and_shares_the_full_ones_with_wsd_and_d0() {
    let s = Size::Small.scale();
    let env = built("envelope", &s, "/ck");
    assert!(env.pretrain.is_none(), "F3 trains from scratch");
    let e = ids(&env);
    let w = ids(&built("wsd", &s, "/ck"));
    let d0 = run_id(&pretrain_plan(&sources(), &s, 1));
    assert_eq!(e["cosine@1"], d0, "the full cosine run is D0's pretraining");
    assert_eq!(w["cosine"], d0);
    assert_eq!(e["wsd-0.2@1"], w["wsd-one_minus_sqrt-0.2"]);
    let plans = parsed(&env);
    let steps: Vec<u64> = plans.iter().map(|p| p.stages[0].tokens / 8192).collect();
    assert_eq!(steps, [187, 375, 750, 187, 375, 750]);
    // The WSD runs hold η_max from the end of the 10-step warmup until the shortest one's cooldown
    // (step 0.8 × 187 = 149.6): one trunk, cooled down at three points.
    let lr = |i: usize, t: u64| plans[i].stages[0].schedule.lr(t, steps[i]);
    for t in [0, 9, 10, 100, 149] {
        assert_eq!(lr(3, t), lr(4, t), "step {t}");
        assert_eq!(lr(3, t), lr(5, t), "step {t}");
    }
    assert_eq!(lr(3, 10), 1e-3);
    assert!(lr(3, 186) < 1e-4 && lr(4, 186) == 1e-3 && lr(5, 374) == 1e-3);
}

#[test]
fn same_data_continues_on_d0_beside_the_unions_shift_run() {
    let s = Size::Small.scale();
    let st = built("same-data", &s, "/ck");
    let labels: Vec<&str> = st.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["d0-rewarm", "d0-constant-min-lr", "shift-rewarm"]);
    let plans = parsed(&st);
    let data: Vec<Vec<&String>> = plans
        .iter()
        .map(|p| p.stages[0].mixture.keys().collect())
        .collect();
    assert_eq!(data, [["en"], ["en"], ["de"]]);
    assert!(plans.iter().all(|p| p.init_from.as_deref() == Some("/ck")));
    assert_eq!(plans[0].stages[0].schedule.peak_lr(), 1e-3);
    assert_eq!(plans[1].stages[0].schedule.lr(0, 375), 1e-4);
    let u = ids(&built("union", &s, "/ck"));
    assert_eq!(ids(&st)["shift-rewarm"], u["cpt-replay=0"]);
}

#[test]
fn earlier_checkpoint_runs_stop_d0_itself_part_way_then_continue() {
    let s = Size::Small.scale();
    let st = built("earlier-checkpoint", &s, "/ck");
    let labels: Vec<&str> = st.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["from-d0-0.25", "from-d0-0.5", "from-d0-1"]);
    let plans = parsed(&st);
    let d0 = pretrain_plan(&sources(), &s, 1);
    for (i, stop) in [(0, 187), (1, 375)] {
        let p = &st.runs[i].plan;
        assert!(p.get("init_from").is_none(), "{}", st.runs[i].label);
        // D0's own stage and schedule, stopped: the LR where it stops is D0's there.
        let mut first = p["stages"][0].clone();
        let table = first.as_table_mut().expect("a stage is a table");
        assert_eq!(table.remove("stop_after_steps"), Some(Value::Integer(stop)));
        assert_eq!(first, d0["stages"][0]);
        assert_eq!(plans[i].stages[1], plans[2].stages[0], "the same D1 stage");
    }
    let u = ids(&built("union", &s, "/ck"));
    assert_eq!(ids(&st)["from-d0-1"], u["cpt-replay=0"]);
}

#[test]
fn refined_study_refines_wsds_linear_run_beside_it_and_d0s_cosine() {
    let s = Size::Small.scale();
    let st = built("refined", &s, "/wsd/runs/abc");
    assert!(st.pretrain.is_none(), "F5 trains from scratch");
    let (r, w) = (ids(&st), ids(&built("wsd", &s, "/ck")));
    assert_eq!(r["linear"], w["linear"]);
    assert_eq!(r["cosine"], run_id(&pretrain_plan(&sources(), &s, 1)));
    let schedule = &st.runs[2].plan["stages"][0]["schedule"];
    assert_eq!(schedule["kind"].as_str(), Some("refined"));
    assert_eq!(
        schedule["grad_norms"].as_str(),
        Some("/wsd/runs/abc/metrics.jsonl")
    );
}
