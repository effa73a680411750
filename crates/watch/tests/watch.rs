//! The dashboard, drawn headless: a two-stage run caught in its second stage (its English loss rising
//! after the boundary), and a sweep folder of several runs.

use rewarm_watch::view::RunView;
use serde_json::json;
use std::path::{Path, PathBuf};

const BATCH_TOKENS: u64 = 512;
/// Stage `en` has 10 steps, stage `de` 10 more; the run has logged 15.
const LOGGED: u64 = 15;

/// A run folder as `rewarm train` leaves it mid-run: plan.json with two stages, metrics.jsonl up to step
/// [`LOGGED`]. English falls to 4.0 by step 10, then rises by 0.1 a step (the stability gap, never
/// recovered); German falls throughout.
fn write_run(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let stage = |name: &str, source: &str, replay: f64| {
        json!({
            "name": name, "tokens": 10 * BATCH_TOKENS, "mixture": { source: 1.0 },
            "replay": (replay > 0.0).then(|| json!({ "fraction": replay, "sources": ["en"] })),
            "schedule": { "kind": "constant", "lr": 1e-3 }
        })
    };
    let plan = json!({
        "plan": {
            "seed": 1, "model": { "preset": "tiny" },
            "data": { "sources": { "en": "prepared/en", "de": "prepared/de" } },
            "train": { "batch_tokens": BATCH_TOKENS },
            "stages": [stage("en", "en", 0.0), stage("de", "de", 0.25)]
        },
        "model": {
            "family": "neox", "vocab_size": 512, "hidden_size": 64, "num_layers": 2, "num_heads": 4,
            "num_kv_heads": 4, "intermediate_size": 256, "max_seq_len": 32, "norm_eps": 1e-5,
            "rotary_pct": 0.25, "rope_theta": 10000.0, "tie_embeddings": false,
            "use_parallel_residual": true
        }
    });
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
    let en = |step: u64| {
        if step <= 10 {
            6.0 - 0.2 * step as f64
        } else {
            4.0 + 0.1 * (step - 10) as f64
        }
    };
    let de = |step: u64| 7.0 - 0.1 * step as f64;
    let mut lines = Vec::new();
    for step in 0..=LOGGED {
        let stage = if step <= 10 { "en" } else { "de" };
        if step > 0 {
            lines.push(json!({
                "kind": "train", "step": step, "stage": stage, "tokens": step * BATCH_TOKENS,
                "tokens_by_source": { stage: step * BATCH_TOKENS }, "lr": 1e-3, "loss": 5.0,
                "grad_norm": 1.0, "batch_sequences": 16,
                "replay_fraction": if step > 10 { 0.25 } else { 0.0 }, "tokens_per_second": 1024.0
            }));
        }
        for (set, loss) in [("en", en(step)), ("de", de(step))] {
            lines.push(json!({
                "kind": "eval", "step": step, "stage": stage, "tokens": step * BATCH_TOKENS,
                "set": set, "loss": loss, "perplexity": loss.exp()
            }));
        }
    }
    // `[monitor]` measured at steps 10 and 15: RankMe 20 → 18.
    for (step, rank) in [(10, 20.0), (15, 18.0)] {
        lines.push(json!({
            "kind": "representation", "step": step, "stage": "de", "tokens": step * BATCH_TOKENS,
            "set": "de", "rank_me": rank, "alpha_req": 1.5, "dormant_fraction": 0.25, "layers": []
        }));
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
}

#[test]
fn a_run_in_its_second_stage_shows_where_it_is_its_eta_and_its_stability_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("cpt-run");
    write_run(&run);
    let (views, problem) = rewarm_watch::load(std::slice::from_ref(&run));
    assert_eq!(problem, None);
    let v: &RunView = &views[0];
    assert_eq!((v.stage.as_str(), v.stage_index, v.stages), ("de", 1, 2));
    assert_eq!((v.step, v.planned_steps), (LOGGED, Some(20)));
    // 5 steps left × 512 tokens / 1024 tokens/s = 2.5 s.
    assert_eq!(v.eta_seconds, Some(2.5));
    assert_eq!(v.boundaries, [(10.0, "de".to_owned())]);
    let gap = v.gap.as_ref().expect("a gap since the boundary");
    assert_eq!((gap.stage.as_str(), gap.boundary), ("de", 10));
    // English: 4.0 at the boundary, 4.5 at step 15 → depth 0.5 at +5, not recovered; German falls.
    let en = &gap.sets["en"];
    assert!((en.depth - 0.5).abs() < 1e-9 && en.peak_after == 5 && en.recovery.is_none());
    assert_eq!(gap.sets["de"].depth, 0.0);

    let frame = rewarm_watch::snapshot(&[run], 100, 40);
    for expected in [
        "cpt-run",
        "stage de (2/2) · step 15/20",
        "1024 tok/s · ETA ≈ 3s · lr 1.00e-3 · replay ρ 0.25",
        "validation loss",
        "train loss",
        "learning rate",
        "stability gap since de @ step 10",
        "en: +0.500 at +5 steps, not recovered",
        "de: no rise",
        "representation: RankMe 20.000 → 18.000 · α-ReQ 1.500 → 1.500 · dormant 0.250 → 0.250",
        "q quit",
    ] {
        assert!(
            frame.contains(expected),
            "`{expected}` missing from:\n{frame}"
        );
    }
    // The frame has the asked size.
    assert_eq!(frame.lines().count(), 40);
    assert!(frame.lines().all(|l| l.chars().count() <= 100));
}

#[test]
fn a_sweep_folder_shows_its_runs_side_by_side_and_pages_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep");
    let ids = ["aaa111", "bbb222", "ccc333"];
    for id in ids {
        write_run(&sweep.join(id));
    }
    let entries: Vec<_> = ids
        .iter()
        .map(|id| json!({ "id": id, "label": format!("label-{id}"), "params": {}, "steps": 20 }))
        .collect();
    std::fs::write(sweep.join("sweep.json"), json!(entries).to_string()).unwrap();
    let inputs: Vec<PathBuf> = vec![sweep];
    let (views, _) = rewarm_watch::load(&inputs);
    assert_eq!(views.len(), 3);
    // 130 columns hold two panels of at least 60: the third run is on the next page.
    let frame = rewarm_watch::snapshot(&inputs, 130, 30);
    let shown = views.iter().filter(|v| frame.contains(&v.name)).count();
    assert_eq!(shown, 2, "{frame}");
    assert!(frame.contains("runs 1–2 of 3"), "{frame}");
    // 200 columns hold all three.
    let wide = rewarm_watch::snapshot(&inputs, 200, 30);
    assert!(views.iter().all(|v| wide.contains(&v.name)), "{wide}");
    // A study folder: its pretraining run beside it and its sweep under runs/ are both followed.
    let study = tmp.path().join("study");
    std::fs::create_dir_all(&study).unwrap();
    std::fs::rename(tmp.path().join("sweep"), study.join("runs")).unwrap();
    write_run(&study.join("pretrain-seed1"));
    let (views, problem) = rewarm_watch::load(&[study]);
    assert_eq!((views.len(), problem), (4, None));
}

#[test]
fn a_folder_without_runs_says_so_instead_of_failing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("not-yet");
    let frame = rewarm_watch::snapshot(&[missing], 80, 20);
    assert!(frame.contains("no runs with metrics yet"), "{frame}");
}
