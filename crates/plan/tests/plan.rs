//! Plans: parsing rejects unknown keys, validation names the field and the fix, and the shipped and
//! documented examples parse and validate. The base plan is `tests/common/base_plan.rs`; stage
//! accounting is in `plan_accounting.rs`, the step function and periodic actions in `plan_steps.rs`.

mod common;
use common::base_plan::*;
use rewarm_plan::{Plan, PlanConfig};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- parsing

#[test]
fn the_base_plan_is_valid() {
    let p = ok(BASE);
    assert_eq!(p.seq_len, 16);
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.total_steps, 250);
    assert_eq!(p.total_tokens(), 32_000);
    let names: Vec<&str> = p.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["code", "de", "en"]);
    assert_eq!(p.sources[2].dir, PathBuf::from("prepared/en"));
}

#[test]
fn unknown_keys_anywhere_are_rejected_naming_the_key_and_file() {
    let appended = |table: &str| format!("{BASE}\n[{table}]\nbogus_key = 1\n");
    let cases: Vec<(&str, String)> =
        vec![
        ("top level", format!("bogus_key = 1\n{BASE}")),
        ("[model] is free-form, so not here", String::new()),
        ("[data]", with("[data]\n", "[data]\nbogus_key = 1\n")),
        ("[train]", with("[train]\n", "[train]\nbogus_key = 1\n")),
        ("[optimizer]", appended("optimizer")),
        ("[eval]", with("[eval]\n", "[eval]\nbogus_key = 1\n")),
        (
            "[checkpoint]",
            with("[checkpoint]\n", "[checkpoint]\nbogus_key = 1\n"),
        ),
        ("[guard]", appended("guard")),
        (
            "a stage",
            with("name = \"de\"\n", "name = \"de\"\nbogus_key = 1\n"),
        ),
        (
            "a stage's replay",
            with("fraction = 0.25 }", "fraction = 0.25, bogus_key = 1 }"),
        ),
        (
            "a schedule",
            with("warmup = 0.04 }\n\n[[stages]]", "warmup = 0.04, bogus_key = 1 }\n\n[[stages]]"),
        ),
        (
            "a stage's shrink_perturb",
            with(
                "name = \"de\"\n",
                "name = \"de\"\nshrink_perturb = { lambda = 0.5, sigma = 0.01, bogus_key = 1 }\n",
            ),
        ),
        (
            "a stage's reptile",
            with(
                "name = \"de\"\n",
                "name = \"de\"\nreptile = { inner_steps = 5, beta = 0.1, bogus_key = 0.1 }\n",
            ),
        ),
    ];
    for (place, text) in cases {
        if text.is_empty() {
            continue;
        }
        let e = parse(&text).expect_err(place);
        let shown = e.to_string();
        assert!(
            shown.contains("bogus_key") && shown.contains("p.toml") && shown.contains("HINT:"),
            "{place}: {shown}"
        );
        assert!(e.field.starts_with("line "), "{place}: {}", e.field);
    }
    // The location is the key's line: `bogus_key` is the first line of the top-level case.
    let e = parse(&format!("bogus_key = 1\n{BASE}")).expect_err("unknown");
    assert_eq!(e.field, "line 1, column 1");
}

#[test]
fn model_table_is_typed_and_resolved_with_the_plan() {
    // `[model]` is a preset plus ModelConfig overrides: a misspelled key is refused where it stands.
    let e = parse(&with(
        "preset = \"tiny\"\n",
        "preset = \"tiny\"\nnot_a_field = 1\n",
    ))
    .expect_err("unknown model key");
    assert!(
        e.to_string().contains("not_a_field") && e.field.starts_with("line 5"),
        "{e}"
    );
    let e = plan(&with("preset = \"tiny\"\n", "preset = \"gpt5\"\n")).expect_err("no such preset");
    assert_eq!(e.field, "model.preset");
    assert!(e.to_string().contains("pythia-70m"), "{e}");
    let p = ok(&with(
        "preset = \"tiny\"\n",
        "preset = \"tiny\"\nnum_layers = 3\n",
    ));
    assert_eq!((p.model.num_layers, p.model.max_seq_len), (3, 64));
}

#[test]
fn missing_required_keys_and_wrong_types_name_the_key() {
    let e =
        parse(&with("tokens = 16_000\nmixture = { de", "mixture = { de")).expect_err("no tokens");
    assert!(e.to_string().contains("`tokens`"), "{e}");
    let e = parse(&with("batch_tokens = 128", "batch_tokens = \"128\"")).expect_err("string");
    assert!(e.to_string().contains("p.toml"), "{e}");
    assert!(e.field.starts_with("line 12,"), "{}", e.field);
    let e = parse(&with(
        "fraction = 0.25",
        "fraction = 0.25, mode = \"extra\"",
    ))
    .expect_err("mode");
    assert!(e.to_string().contains("extra"), "{e}");
}

// ---------------------------------------------------------------- validation

#[test]
fn every_validation_error_names_the_field_and_carries_a_hint() {
    let no_stages = BASE[..BASE.find("[[stages]]").expect("stages")].to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown source in a mixture",
            with("mixture = { de = 1.0 }", "mixture = { fr = 1.0 }"),
            "stages[1] (de).mixture",
        ),
        (
            "unknown source in replay.sources",
            with("fraction = 0.25 }", "fraction = 0.25, sources = [\"fr\"] }"),
            "stages[1] (de).replay.sources",
        ),
        (
            "unknown source in eval.sets",
            with("[eval]\n", "[eval]\nsets = [\"en\", \"fr\"]\n"),
            "eval.sets",
        ),
        (
            "batch_tokens not a multiple of seq_len",
            with("batch_tokens = 128", "batch_tokens = 100"),
            "train.batch_tokens",
        ),
        (
            "batch_tokens = 0",
            with("batch_tokens = 128", "batch_tokens = 0"),
            "train.batch_tokens",
        ),
        (
            "micro-batch not dividing the batch",
            with("batch_tokens = 128", "batch_tokens = 128\nmicro_batch_sequences = 3"),
            "train.micro_batch_sequences",
        ),
        (
            "micro-batch of 0",
            with("batch_tokens = 128", "batch_tokens = 128\nmicro_batch_sequences = 0"),
            "train.micro_batch_sequences",
        ),
        (
            "doubling points out of order",
            with("batch_tokens = 128", "batch_tokens = 128\nbatch_doubling_tokens = [1000, 500]"),
            "train.batch_doubling_tokens[1]",
        ),
        (
            "seq_len above the model's context",
            with("seq_len = 16", "seq_len = 128"),
            "data.seq_len",
        ),
        ("seq_len 0", with("seq_len = 16", "seq_len = 0"), "data.seq_len"),
        (
            "no sources",
            with(
                "sources = { en = \"prepared/en\", de = \"prepared/de\", code = \"prepared/code\" }",
                "sources = {}",
            ),
            "data.sources",
        ),
        ("empty stages", format!("stages = []\n{no_stages}"), "stages"),
        (
            "duplicate stage names",
            with("name = \"de\"", "name = \"en\""),
            "stages[1] (en).name",
        ),
        (
            "replay fraction of 1",
            with("fraction = 0.25", "fraction = 1.0"),
            "stages[1] (de).replay.fraction",
        ),
        (
            "replay fraction above 1",
            with("fraction = 0.25", "fraction = 1.5"),
            "stages[1] (de).replay.fraction",
        ),
        (
            "negative replay fraction",
            with("fraction = 0.25", "fraction = -0.1"),
            "stages[1] (de).replay.fraction",
        ),
        (
            "NaN replay fraction",
            with("fraction = 0.25", "fraction = nan"),
            "stages[1] (de).replay.fraction",
        ),
        (
            "replay in the first stage without sources",
            with("mixture = { en = 1.0 }", "mixture = { en = 1.0 }\nreplay = { fraction = 0.1 }"),
            "stages[0] (en).replay",
        ),
        (
            "seen-only replay of a source no earlier stage read",
            with(
                "fraction = 0.25",
                "fraction = 0.25, sources = [\"code\"], pool = \"seen\"",
            ),
            "stages[1] (de).replay.sources",
        ),
        (
            "replay weights not one per source",
            with("fraction = 0.25", "fraction = 0.25, sources = [\"en\"], weights = [1.0, 2.0]"),
            "stages[1] (de).replay.weights",
        ),
        (
            "replay weights whose sum overflows",
            with(
                "fraction = 0.25",
                "fraction = 0.25, sources = [\"en\", \"code\"], pool = \"whole\", weights = [1e308, 1e308]",
            ),
            "stages[1] (de).replay.weights",
        ),
        (
            "empty mixture",
            with("mixture = { de = 1.0 }", "mixture = {}"),
            "stages[1] (de).mixture",
        ),
        (
            "zero mixture weight",
            with("mixture = { de = 1.0 }", "mixture = { de = 1.0, code = 0.0 }"),
            "stages[1] (de).mixture.code",
        ),
        (
            "mixture weights whose sum overflows",
            with("mixture = { de = 1.0 }", "mixture = { de = 1e308, code = 1e308 }"),
            "stages[1] (de).mixture.code",
        ),
        (
            "mixture weight that is 0 as a fraction of the total",
            with("mixture = { de = 1.0 }", "mixture = { de = 2.0, code = 5e-324 }"),
            "stages[1] (de).mixture.code",
        ),
        (
            "zero tokens",
            with("tokens = 16_000\nmixture = { de", "tokens = 0\nmixture = { de"),
            "stages[1] (de).tokens",
        ),
        (
            "bad schedule",
            with(
                "warmup = 0.04 }\n\n[[stages]]",
                "warmup = 4.0 }\n\n[[stages]]",
            ),
            "stages[0] (en).schedule.warmup",
        ),
        (
            "negative shrink-and-perturb",
            with(
                "name = \"de\"\n",
                "name = \"de\"\nshrink_perturb = { lambda = -0.5, sigma = 0.01 }\n",
            ),
            "stages[1] (de).shrink_perturb",
        ),
        (
            "Reptile's beta above 1",
            with(
                "name = \"de\"\n",
                "name = \"de\"\nreptile = { inner_steps = 5, beta = 1.5 }\n",
            ),
            "stages[1] (de).reptile",
        ),
        (
            "a replay buffer over the whole old set",
            with(
                "fraction = 0.25 }",
                "fraction = 0.25, pool = \"whole\", buffer_sequences = 100 }",
            ),
            "stages[1] (de).replay.buffer_sequences",
        ),
        (
            "no pass over a subset",
            with("name = \"de\"\n", "name = \"de\"\nsubset_epochs = 0\n"),
            "stages[1] (de).subset_epochs",
        ),
        (
            "passes over a subset with a mixture change",
            with(
                "name = \"de\"\n",
                "name = \"de\"\nsubset_epochs = 2\nmixture_changes = [{ at_step = 2, mixture = { en = 1.0 } }]\n",
            ),
            "stages[1] (de).subset_epochs",
        ),
        (
            "an empty replay buffer",
            with("fraction = 0.25 }", "fraction = 0.25, buffer_sequences = 0 }"),
            "stages[1] (de).replay.buffer_sequences",
        ),
        (
            "Reptile every 0 steps",
            with(
                "name = \"de\"\n",
                "name = \"de\"\nreptile = { inner_steps = 0, beta = 0.5 }\n",
            ),
            "stages[1] (de).reptile",
        ),
        (
            "a stage's beta2 out of range",
            with(
                "name = \"de\"\n",
                "name = \"de\"\nadamw = { beta2 = 1.5 }\n",
            ),
            "stages[1] (de).adamw.beta2",
        ),
        (
            "beta1 = 1",
            format!("{BASE}\n[optimizer]\nbeta1 = 1.0\n"),
            "optimizer.beta1",
        ),
        (
            "negative beta2",
            format!("{BASE}\n[optimizer]\nbeta2 = -0.5\n"),
            "optimizer.beta2",
        ),
        (
            "eps = 0",
            format!("{BASE}\n[optimizer]\neps = 0.0\n"),
            "optimizer.eps",
        ),
        (
            "negative weight decay",
            format!("{BASE}\n[optimizer]\nweight_decay = -0.1\n"),
            "optimizer.weight_decay",
        ),
        (
            "negative clip",
            format!("{BASE}\n[optimizer]\nclip = -1.0\n"),
            "optimizer.clip",
        ),
        (
            "infinite clip",
            format!("{BASE}\n[optimizer]\nclip = inf\n"),
            "optimizer.clip",
        ),
        (
            "max_epochs = 0",
            with("seq_len = 16", "seq_len = 16\nmax_epochs = 0.0"),
            "data.max_epochs",
        ),
        (
            "lr_backoff above 1",
            format!("{BASE}\n[guard]\nlr_backoff = 2.0\n"),
            "guard.lr_backoff",
        ),
        (
            "eval batch of 0",
            with("[eval]\n", "[eval]\nbatch_sequences = 0\n"),
            "eval.batch_sequences",
        ),
    ];
    // Where the field alone does not say what is wrong, the reason must (rewarm-data only asserts these).
    let whys = [
        (
            "seen-only replay of a source no earlier stage read",
            "no earlier stage trained on `code`",
        ),
        ("mixture weights whose sum overflows", "total inf"),
    ];
    for (what, text, field) in cases {
        let e = plan(&text).expect_err(what);
        assert_eq!(e.field, field, "{what}: {e}");
        if let Some((_, why)) = whys.iter().find(|(w, _)| *w == what) {
            assert!(e.why.contains(why), "{what}: {e}");
        }
        assert_eq!(e.file, "p.toml", "{what}");
        assert!(!e.fix.trim().is_empty(), "{what}: no fix");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("p.toml: {field}: ")) && shown.contains("\nHINT: "),
            "{what}: {shown}"
        );
        assert_eq!(shown.matches("HINT:").count(), 1, "{what}: {shown}");
    }
}

#[test]
fn a_stage_adamw_table_replaces_the_fields_it_gives_in_that_stage_only() {
    let p = ok(&with(
        "name = \"de\"\n",
        "name = \"de\"\nadamw = { beta2 = 0.99, clip = 0.5 }\n",
    ));
    let run_wide = &p.config.optimizer;
    assert_eq!(p.stages[0].adamw, *run_wide);
    let de = &p.stages[1].adamw;
    assert_eq!((de.beta2, de.clip), (0.99, 0.5));
    assert_eq!(
        (de.beta1, de.eps, de.weight_decay),
        (run_wide.beta1, run_wide.eps, run_wide.weight_decay)
    );
    // Written only where given: plans without one keep their plan.json (and so their runs resume).
    assert!(!serde_json::to_string(&ok(BASE).config)
        .unwrap()
        .contains("adamw"));
}

#[test]
fn unknown_source_errors_name_the_source_and_list_the_known_ones() {
    let e = plan(&with("mixture = { de = 1.0 }", "mixture = { fr = 1.0 }")).expect_err("fr");
    assert!(
        e.why.contains("`fr`") && e.why.contains("code, de, en"),
        "{e}"
    );
}

#[test]
fn the_monitor_measures_an_evaluated_set_and_its_default_keeps_plan_json() {
    let chosen = ok(&format!("{BASE}\n[monitor]\nset = \"en\"\n"));
    assert_eq!(
        chosen.config.monitor.and_then(|m| m.set).as_deref(),
        Some("en")
    );
    let e = plan(
        &with(
            "every_steps = 10\n",
            "every_steps = 10\nsets = [\"de\", \"code\"]\n",
        )
        .replace("[checkpoint]", "[monitor]\nset = \"en\"\n\n[checkpoint]"),
    )
    .expect_err("en is not evaluated");
    assert_eq!(e.field, "monitor.set");
    assert!(e.why.contains("`en`") && e.why.contains("de, code"), "{e}");
    // Without `set` the monitor's serialized form is what it was before the option existed.
    let default = ok(&format!("{BASE}\n[monitor]\n"));
    assert!(!serde_json::to_string(&default.config.monitor)
        .expect("serializes")
        .contains("set"));
}

#[test]
fn replay_of_zero_is_no_replay_and_later_stages_replay_earlier_sources() {
    let p = ok(&with("fraction = 0.25", "fraction = 0.0"));
    assert_eq!(p.stages[1].replay, None);
    // Without `sources`, replay takes every source an earlier stage trained on.
    let p = ok(BASE);
    let r = p.stages[1].replay.as_ref().expect("replay");
    assert_eq!(r.sources, [source(&p, "en")]);
    assert_eq!(r.fraction, 0.25);
}

#[test]
fn first_stage_may_replay_named_sources_from_their_whole_split_with_weights() {
    let first = |replay: &str| {
        with(
            "mixture = { en = 1.0 }",
            &format!("mixture = {{ en = 1.0 }}\nreplay = {{ fraction = 0.1, sources = [\"code\"]{replay} }}"),
        )
    };
    let p = ok(&first(", pool = \"whole\", weights = [1.0]"));
    let ix = index(&p);
    let (_, code) = draws_of(&ix, 0, source(&p, "code"));
    within(code as f64, 100.0, 1.0);
    // Nothing was seen yet, so seen-only replay has nothing to draw ...
    let e = plan(&first("")).expect_err("seen pool");
    assert_eq!(e.field, "stages[0] (en).replay.sources", "{e}");
    // A single whole-split source needs no weight ...
    let p = ok(&first(", pool = \"whole\""));
    within(
        draws_of(&index(&p), 0, source(&p, "code")).1 as f64,
        100.0,
        1.0,
    );
    // ... but with several, default weights (sequences seen) have nothing to count for an unread one.
    let e = plan(&with(
        "fraction = 0.25 }",
        "fraction = 0.25, sources = [\"en\", \"code\"], pool = \"whole\" }",
    ))
    .expect_err("no weights");
    assert_eq!(e.field, "stages[1] (de).replay.weights", "{e}");
    let p = ok(&with(
        "fraction = 0.25 }",
        "fraction = 0.25, sources = [\"en\", \"code\"], pool = \"whole\", weights = [3.0, 1.0] }",
    ));
    let ix = index(&p);
    let en = draws_of(&ix, 1, source(&p, "en")).1 as f64;
    within(en, 0.75 * 250.0, 2.0);
}

// ---------------------------------------------------------------- the example

#[test]
fn the_two_stage_example_parses_and_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/two-stage.toml");
    let config = PlanConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let p = Plan::new(config, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.seq_len, 128);
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[0].segments[0].batch_sequences, 32);
    let r = p.stages[1]
        .replay
        .as_ref()
        .expect("the second stage replays");
    assert_eq!(r.fraction, 0.25);
    assert_eq!(r.sources, [source(&p, "en")]);
    // The re-warmed stage warms up over round(5% of its 30 steps) = 2 steps from 0, the first at
    // η_max/2 (warmup step n trains at η_max·(n + 1)/W); both stages hold at least their budget.
    assert_eq!(p.stages[1].steps, 30);
    assert_eq!(p.step(p.stages[1].first_step).lr, 2e-3 * 0.5);
    for st in &p.stages {
        assert!(st.sequences * 128 >= 120_000 && st.sequences * 128 < 120_000 + 4096);
    }
    assert!(p.base_dir.ends_with("examples"));
    assert!(p.sources[0].dir.ends_with("../prepared/de"));
}

// ---------------------------------------------------------------- docs/plan.md

/// The ```toml blocks of docs/plan.md between the headings `from` and `to`.
fn doc_blocks(from: &str, to: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan.md");
    let doc = std::fs::read_to_string(&path).expect("docs/plan.md");
    let start = doc
        .find(from)
        .unwrap_or_else(|| panic!("no `{from}` in docs/plan.md"));
    let end = doc[start..].find(to).map_or(doc.len(), |e| start + e);
    doc[start..end]
        .split("```toml\n")
        .skip(1)
        .map(|b| b[..b.find("```").expect("closed block")].to_string())
        .collect()
}

#[test]
fn the_documented_full_example_parses_and_validates() {
    let blocks = doc_blocks("## A full annotated example", "## Ambiguities");
    assert_eq!(blocks.len(), 1);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan.toml");
    let config = PlanConfig::from_toml(&blocks[0], &path).unwrap_or_else(|e| panic!("{e}"));
    let p = Plan::new(config, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.stages.len(), 3);
    assert_eq!(p.stages[1].replay.as_ref().map(|r| r.fraction), Some(0.25));
}

#[test]
fn every_documented_schedule_example_parses_and_validates() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct One {
        schedule: rewarm_plan::schedule::Schedule,
    }
    let blocks = doc_blocks("## Schedules", "## `init_from` versus resume");
    let mut kinds = Vec::new();
    for b in blocks {
        let one: One = toml::from_str(&b).unwrap_or_else(|e| panic!("{b}: {e}"));
        let kind = one.schedule.kind_name();
        if kind != "refined" {
            // A refined schedule validates once its gradient-norm file has been read.
            one.schedule
                .validate()
                .unwrap_or_else(|e| panic!("{b}: {e}"));
        }
        kinds.push(kind);
    }
    let mut want = [
        "anneal",
        "constant",
        "continue",
        "cosine",
        "infinite",
        "linear",
        "refined",
        "repeated_cosine",
        "wsd",
    ];
    kinds.sort_unstable();
    want.sort_unstable();
    assert_eq!(kinds, want);
}
