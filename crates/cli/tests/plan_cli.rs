//! `rewarm plan` end to end: the resolved stages and replay as text, JSON, CSV and an SVG, and plans with
//! unknown keys or sources refused naming them; `rewarm predict` and `rewarm sweep --probe`.

mod common;
use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------------------
// plan

#[test]
fn plan_prints_stages_and_replay() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = ok(d, "plan plan.toml");
    assert_has(
        &out,
        &[
            "8 steps, 2048 tokens",
            "sequence length 32",
            "union retrain",
        ],
    );
    let words = |first: &str| -> Vec<Vec<String>> {
        out.lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .filter(|w| w.first().map(String::as_str) == Some(first))
            .collect()
    };
    // stage, first step, steps, tokens, batch, replay.
    assert_eq!(
        words("first")[0][..6],
        ["first", "0", "4", "1024", "256", "0.0%"]
    );
    assert_eq!(
        words("second")[0][..6],
        ["second", "4", "4", "1024", "256", "25.0%"]
    );
    // Source lines: `a` new in stage 1 and replayed in stage 2 (25% of 1024 tokens), `b` new.
    let a: Vec<_> = words("a").into_iter().map(|w| w[1..3].join(" ")).collect();
    assert_eq!(a, ["new 1024", "replay 256"], "{out}");
    assert_eq!(words("b")[0][1..3], ["new", "768"]);
}

#[test]
fn plan_json_parses_with_stages_and_replay() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = ok(d, "plan plan.toml --format json");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    assert_eq!(v["total_steps"], PLAN_STEPS);
    assert_eq!(v["seq_len"], 32);
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0]["name"], "first");
    assert_eq!(stages[1]["name"], "second");
    assert_eq!(stages[1]["replay_fraction"], 0.25);
    let replayed: Vec<_> = stages[1]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["replay"] == true)
        .map(|s| (s["source"].clone(), s["tokens"].clone()))
        .collect();
    assert_eq!(replayed, [("a".into(), 256.into())]);
}

#[test]
fn plan_csv_has_a_header_and_one_row_per_step() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = ok(d, "plan plan.toml --format csv");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len() as u64, PLAN_STEPS + 1, "{out}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[..2], ["step", "stage"]);
    let lr_column = header
        .iter()
        .position(|h| *h == "lr")
        .expect("an lr column");
    for (i, line) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{line}");
        assert_eq!(cells[0], i.to_string());
        assert_eq!(cells[1], if i < 4 { "first" } else { "second" });
        let lr: f64 = cells[lr_column].parse().unwrap();
        assert!((0.0..=1e-3).contains(&lr), "{line}");
    }
}

#[test]
fn plan_plot_writes_an_svg() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    let out = rewarm(d, "plan plan.toml --plot lr.svg");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_has(&text(&out.stderr), &["wrote lr.svg"]);
    let svg = std::fs::read_to_string(d.join("lr.svg")).unwrap();
    assert!(svg.trim_start().starts_with("<svg"), "{}", &svg[..100]);
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn plan_with_unknown_key_fails_naming_it() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    write(
        d,
        "typo.toml",
        PLAN.replace(
            "batch_tokens = 256",
            "batch_tokens = 256\nbatch_tokenz = 512",
        ),
    );
    let err = fails(d, "plan typo.toml");
    assert_has(
        &err,
        &[
            "typo.toml",
            "line 12",
            "unknown field `batch_tokenz`",
            "HINT",
        ],
    );
    write(
        d,
        "model.toml",
        PLAN.replace("max_seq_len = 32", "max_seq_len = 32\nwidth = 64"),
    );
    let err = fails(d, "plan model.toml");
    assert_has(
        &err,
        &["model.toml", "[model]", "unknown field `width`", "HINT"],
    );
}

#[test]
fn plan_with_unknown_source_fails_naming_it() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    write(
        d,
        "mix.toml",
        PLAN.replace("mixture = { b = 1.0 }", "mixture = { c = 1.0 }"),
    );
    let err = fails(d, "plan mix.toml");
    assert_has(
        &err,
        &[
            "mix.toml",
            "stages[1] (second).mixture",
            "unknown source `c`",
            "sources: a, b",
            "HINT",
        ],
    );
    write(
        d,
        "replay.toml",
        PLAN.replace("sources = [\"a\"]", "sources = [\"en\"]"),
    );
    let err = fails(d, "plan replay.toml");
    assert_has(&err, &["replay.sources", "unknown source `en`", "HINT"]);
    // A source whose folder is missing is named by its plan key, not only by its path.
    write(d, "dir.toml", PLAN.replace("b = \"pb\"", "b = \"nowhere\""));
    let err = fails(d, "plan dir.toml");
    assert_has(
        &err,
        &[
            "dir.toml",
            "data.sources.b",
            "nowhere/manifest.json",
            "HINT",
        ],
    );
}

// ---------------------------------------------------------------------------------------------------------
// predict (the law itself: crates/report/src/predict.rs; its errors on real runs: docs/predict.md)

#[test]
fn predict_refuses_a_fraction_outside_the_stage_and_a_folder_without_a_run() {
    let dir = tempdir();
    let d = dir.path();
    let err = fails(d, "predict runs/a --until-fraction 1.5");
    assert_has(&err, &["--until-fraction 1.5", "[0, 1]"]);
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let err = fails(d, "predict empty");
    assert_has(&err, &["empty", "HINT"]);
}

/// `rewarm sweep --probe 0.5`: every run stops half way into its last stage, with a checkpoint, and the
/// predictions are printed; the same command without `--probe` resumes the runs to the end, and
/// `rewarm predict` then sets the law against the measured final losses.
#[test]
fn a_probe_sweep_stops_half_way_predicts_and_the_same_sweep_finishes_it() {
    let dir = tempdir();
    let d = dir.path();
    tiny_project(d);
    // The second stage is 24 steps evaluated every 2: 7 evaluations of it by the probe's stop at 4 + 12.
    let plan = PLAN.replace(
        "tokens = 1024\nmixture = { b = 1.0 }",
        "tokens = 6144\nmixture = { b = 1.0 }",
    );
    write(d, "plan.toml", plan);
    write(
        d,
        "sweep.toml",
        "base = \"plan.toml\"\n[grid]\n\"stages.1.replay.fraction\" = [0.0, 0.25]\n",
    );
    let last_step = |d: &std::path::Path| -> Vec<u64> {
        let index = read_json(&d.join("out/sweep.json"));
        let runs = index.as_array().unwrap();
        assert_eq!(runs.len(), 2);
        runs.iter()
            .map(|r| {
                let run = d.join("out").join(r["id"].as_str().unwrap());
                let train = metrics(&run);
                let train = train.iter().filter(|m| m["kind"] == "train");
                train.map(|m| m["step"].as_u64().unwrap()).max().unwrap()
            })
            .collect()
    };
    let out = ok(d, "sweep sweep.toml --out out --device cpu --probe 0.5");
    assert_eq!(last_step(d), [16, 16]);
    assert_has(&out, &["predicted AVG", "Recommended:", "without --probe"]);
    ok(d, "sweep sweep.toml --out out --device cpu");
    assert_eq!(last_step(d), [28, 28]);
    let out = ok(d, "predict out --until-fraction 0.5");
    assert_has(&out, &["finished sets", "mean |error|"]);
    let err = fails(d, "sweep sweep.toml --out out --probe 0");
    assert_has(&err, &["--probe 0", "(0, 1]"]);
}
