//! Plans: parsing rejects unknown keys, validation names the field and the fix, stage accounting
//! (spec §3 A2), the step function at stage boundaries and batch doublings, when evaluation and
//! checkpoints are due, the `rewarm plan` summary, and the shipped example.
//!
//! The base plan: sequences of 16 tokens, batches of 8 sequences (128 tokens), a model context of
//! 64, two stages of 16,000 tokens (1,000 sequences = 125 steps each), the second re-warmed with
//! 25% compute-equivalent replay of the first.

use rewarm_data::MixtureIndex;
use rewarm_plan::summary::PlanSummary;
use rewarm_plan::{Plan, PlanConfig, PlanError};
use std::path::{Path, PathBuf};

const SEQ: u64 = 16;
const BATCH: u64 = 8; // sequences
const BATCH_TOKENS: u64 = SEQ * BATCH;
const MAX_LR: f64 = 1e-3;
const MIN_LR: f64 = 1e-4;

const BASE: &str = r#"seed = 7

[model]
preset = "tiny"
max_seq_len = 64

[data]
sources = { en = "prepared/en", de = "prepared/de", code = "prepared/code" }
seq_len = 16

[train]
batch_tokens = 128

[eval]
every_steps = 10
dense_steps = 6
dense_every_steps = 3

[checkpoint]
every_steps = 7

[[stages]]
name = "en"
tokens = 16_000
mixture = { en = 1.0 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04 }

[[stages]]
name = "de"
tokens = 16_000
mixture = { de = 1.0 }
replay = { fraction = 0.25 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04 }
"#;

/// Made-up training-split sizes (sequences of 16 tokens) of code, de and en: the order of
/// `plan.sources`, which is sorted by name.
const SOURCE_SEQUENCES: [u64; 3] = [50_000, 40_000, 30_000];

fn file() -> &'static Path {
    Path::new("p.toml")
}

/// The base plan with `old` replaced by `new` (which must occur).
fn with(old: &str, new: &str) -> String {
    assert!(BASE.contains(old), "the base plan has no `{old}`");
    BASE.replacen(old, new, 1)
}

fn parse(text: &str) -> Result<PlanConfig, PlanError> {
    PlanConfig::from_toml(text, file())
}

fn plan(text: &str) -> Result<Plan, PlanError> {
    Plan::new(parse(text).expect("parses"), file())
}

fn ok(text: &str) -> Plan {
    plan(text).unwrap_or_else(|e| panic!("valid plan rejected: {e}"))
}

fn index(plan: &Plan) -> MixtureIndex {
    MixtureIndex::new(plan.mixture_plan(&SOURCE_SEQUENCES)).expect("mixture index")
}

fn source(plan: &Plan, name: &str) -> usize {
    plan.sources
        .iter()
        .position(|s| s.name == name)
        .expect("source")
}

/// Planned (new, replay) sequences of a stage from `source`.
fn draws_of(index: &MixtureIndex, stage: usize, source: usize) -> (u64, u64) {
    let mut out = (0, 0);
    for d in index.stage_draws(stage) {
        if d.source == source {
            if d.replay {
                out.1 += d.sequences;
            } else {
                out.0 += d.sequences;
            }
        }
    }
    out
}

/// (new, replay) tokens of a stage over all sources.
fn stage_tokens(index: &MixtureIndex, stage: usize) -> (u64, u64) {
    index
        .stage_draws(stage)
        .iter()
        .fold((0, 0), |(new, replay), d| {
            if d.replay {
                (new, replay + d.sequences * SEQ)
            } else {
                (new + d.sequences * SEQ, replay)
            }
        })
}

#[track_caller]
fn within(got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= tolerance,
        "got {got}, want {want} ± {tolerance}"
    );
}

#[track_caller]
fn rel_close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1e-300),
        "got {got:e}, want {want:e}"
    );
}

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

// ---------------------------------------------------------------- accounting (spec §3 A2)

#[test]
fn compute_equivalent_replay_keeps_stage_tokens_and_splits_them_by_rho() {
    for (rho, tokens) in [
        (0.25, 16_000u64),
        (0.05, 15_000),
        (0.5, 16_000),
        (0.01, 31_337),
    ] {
        let text = with("fraction = 0.25", &format!("fraction = {rho}")).replacen(
            "tokens = 16_000\nmixture = { de",
            &format!("tokens = {tokens}\nmixture = {{ de"),
            1,
        );
        let p = ok(&text);
        let ix = index(&p);
        let n = tokens as f64;
        let st = &p.stages[1];
        let planned = (st.sequences * SEQ) as f64;
        // The stage ends on a whole batch: at most one batch past its budget, never short.
        assert!(
            planned >= n && planned < n + BATCH_TOKENS as f64,
            "{rho}: {planned}"
        );
        let (new, replay) = stage_tokens(&ix, 1);
        assert_eq!(new + replay, st.sequences * SEQ);
        let b = BATCH_TOKENS as f64;
        within(new as f64, (1.0 - rho) * n, b);
        within(replay as f64, rho * n, b);
        // All new data is German, all replay English.
        let de = draws_of(&ix, 1, source(&p, "de"));
        let en = draws_of(&ix, 1, source(&p, "en"));
        assert_eq!((de.0 * SEQ, de.1, en.0, en.1 * SEQ), (new, 0, 0, replay));
    }
}

#[test]
fn compute_equivalent_replay_splits_every_batch_by_rho() {
    // A2: every batch of B holds round(ρB) ± 1 replayed sequences.
    let p = ok(BASE);
    let ix = index(&p);
    let replayed = |m: u64| -> u64 {
        ix.draws_in_first(1, m)
            .iter()
            .filter(|d| d.replay)
            .map(|d| d.sequences)
            .sum()
    };
    for step in 0..p.stages[1].steps {
        let first = step * BATCH;
        let in_batch = replayed(first + BATCH) - replayed(first);
        assert!((1..=3).contains(&in_batch), "step {step}: {in_batch}"); // round(0.25·8) = 2
    }
}

#[test]
fn additive_replay_adds_replay_on_top_of_the_new_data_budget() {
    for rho in [0.2, 0.25, 0.5] {
        let p = ok(&with(
            "fraction = 0.25",
            &format!("fraction = {rho}, mode = \"additive\""),
        ));
        let ix = index(&p);
        let n = 16_000.0;
        let (new, replay) = stage_tokens(&ix, 1);
        let b = BATCH_TOKENS as f64;
        within(new as f64, n, b);
        within((new + replay) as f64, n / (1.0 - rho), b);
        assert_eq!(new + replay, p.stages[1].sequences * SEQ);
        // The replay ratio of the batches is still ρ.
        within(
            replay as f64 / (new + replay) as f64,
            rho,
            1.0 / p.stages[1].sequences as f64,
        );
    }
}

#[test]
fn mixture_weights_are_token_fractions_of_the_new_data() {
    let p = ok(&with(
        "mixture = { de = 1.0 }",
        "mixture = { de = 3.0, code = 1.0 }",
    ));
    let ix = index(&p);
    let n = 16_000.0;
    let b = BATCH_TOKENS as f64;
    let de = draws_of(&ix, 1, source(&p, "de")).0 * SEQ;
    let code = draws_of(&ix, 1, source(&p, "code")).0 * SEQ;
    within(de as f64, 0.75 * 0.75 * n, b);
    within(code as f64, 0.25 * 0.75 * n, b);
    assert_eq!(p.stages[1].mixture.iter().map(|m| m.1).sum::<f64>(), 1.0);
}

#[test]
fn replay_of_several_sources_is_weighted_by_sequences_seen() {
    // Stage 0 reads en 3:1 code; stage 1 replays both, by default weighted 3:1 as well.
    let p = ok(&with(
        "mixture = { en = 1.0 }",
        "mixture = { en = 3.0, code = 1.0 }",
    ));
    let ix = index(&p);
    let en = draws_of(&ix, 1, source(&p, "en")).1 as f64;
    let code = draws_of(&ix, 1, source(&p, "code")).1 as f64;
    within(en + code, 0.25 * 1000.0, 1.0);
    within(en / (en + code), 0.75, 0.01);
}

#[test]
fn a_run_that_continues_another_may_replay_what_that_run_saw() {
    // With init_from, the seen pool of a source no stage of this plan trains on is what the checkpoint's
    // run consumed (checked when the data is opened); without it, the plan refuses.
    let seen = with(
        "fraction = 0.25",
        "fraction = 0.25, sources = [\"code\"], pool = \"seen\"",
    );
    assert!(plan(&seen).is_err());
    let continued = ok(&format!(
        "init_from = \"runs/base/ckpt/step_00000100\"\n{seen}"
    ));
    let r = continued.stages[1].replay.as_ref().unwrap();
    assert_eq!(r.sources, [source(&continued, "code")]);
}

#[test]
fn seen_replay_of_a_source_listed_but_never_drawn_passes_the_plan_and_fails_the_index() {
    // The plan checks that an earlier stage trained on a seen-replayed source, not how many sequences
    // it drew: at 1e-5 of 1,000 sequences `code` got none, so its seen pool is empty.
    let text = with(
        "mixture = { en = 1.0 }",
        "mixture = { en = 1.0, code = 1e-5 }",
    )
    .replacen(
        "fraction = 0.25 }",
        "fraction = 0.25, sources = [\"code\"] }",
        1,
    );
    let p = ok(&text);
    let e = MixtureIndex::new(p.mixture_plan(&SOURCE_SEQUENCES))
        .expect_err("an empty seen pool")
        .to_string();
    assert!(e.contains("`code`") && e.contains("drew none of it"), "{e}");
}

// ---------------------------------------------------------------- the step function

#[test]
fn steps_at_a_stage_boundary_restart_local_counters() {
    let p = ok(BASE);
    assert_eq!((p.stages[0].first_step, p.stages[0].steps), (0, 125));
    assert_eq!((p.stages[1].first_step, p.stages[1].steps), (125, 125));
    assert_eq!(p.stages[1].tokens_before, 16_000);
    let s = p.step(0);
    assert_eq!(
        (
            s.stage,
            s.local_step,
            s.first_sequence,
            s.tokens_before,
            s.batch_sequences
        ),
        (0, 0, 0, 0, BATCH)
    );
    let s = p.step(124);
    assert_eq!(
        (s.stage, s.local_step, s.first_sequence, s.tokens_before),
        (0, 124, 992, 992 * SEQ)
    );
    let s = p.step(125);
    assert_eq!(
        (s.stage, s.local_step, s.first_sequence, s.tokens_before),
        (1, 0, 0, 16_000)
    );
    let s = p.step(249);
    assert_eq!(
        (s.stage, s.local_step, s.first_sequence, s.tokens_before),
        (1, 124, 992, 16_000 + 992 * SEQ)
    );
    // tokens_before advances by one batch per step, across the boundary too.
    for t in 1..p.total_steps {
        let (a, b) = (p.step(t - 1), p.step(t));
        assert_eq!(
            b.tokens_before,
            a.tokens_before + a.batch_sequences * SEQ,
            "step {t}"
        );
    }
}

#[test]
fn a_stage_that_is_not_a_whole_number_of_batches_rounds_up_to_one() {
    // 15,000 tokens = 937.5 sequences → 938 → 118 batches of 8 (944 sequences).
    let p = ok(&with(
        "tokens = 16_000\nmixture = { en",
        "tokens = 15_000\nmixture = { en",
    ));
    assert_eq!((p.stages[0].steps, p.stages[0].sequences), (118, 944));
    assert_eq!(p.stages[1].first_step, 118);
    assert_eq!(p.stages[1].tokens_before, 944 * SEQ);
}

#[test]
fn rewarmed_stage_starts_at_its_schedule_start_and_the_first_ends_near_min_lr() {
    let p = ok(BASE);
    // Warmup from 0 (the default, Gupta/Ibrahim) over round(0.04·125) = 5 steps, Megatron's convention:
    // the first step of the re-warmed stage trains at max_lr/5 ...
    assert_eq!(p.step(125).lr, MAX_LR * (1.0 / 5.0));
    // ... and its fifth step is at max_lr, as is the first step after the warmup.
    assert_eq!(p.step(129).lr, MAX_LR);
    assert_eq!(p.step(130).lr, MAX_LR);
    // The last step of the first stage is one step short of the cosine's end: ≈ min_lr.
    let last = p.step(124).lr;
    assert!(last > MIN_LR && last < MIN_LR * 1.01, "{last:e}");
    assert_eq!(
        p.stages[0]
            .schedule
            .lr(p.stages[0].steps, p.stages[0].steps),
        MIN_LR
    );
    // Other warmup starts (spec §4.5), set on the second stage only.
    let (head, last) = BASE.rsplit_once("schedule = ").expect("a schedule");
    assert!(last.starts_with("{ kind = \"cosine\""));
    // The first of W = 5 warmup steps is a fifth of the way from the start to the peak.
    for (start, eta0) in [("min", MIN_LR), ("max_over_100", MAX_LR / 100.0)] {
        let p = ok(&format!(
            "{head}schedule = {{ kind = \"cosine\", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04, warmup_start = \"{start}\" }}\n"
        ));
        assert_eq!(p.step(125).lr, eta0 * (1.0 - 0.2) + MAX_LR * 0.2, "{start}");
        let from_zero = MAX_LR * (1.0 / 5.0);
        assert_eq!(
            p.step(0).lr,
            from_zero,
            "{start}: stage 0 keeps its own start"
        );
    }
}

#[test]
fn a_constant_second_stage_does_not_rewarm() {
    // Gupta et al.'s baseline: continue at a constant (low) LR.
    let (head, _) = BASE.rsplit_once("schedule = ").expect("a schedule");
    let p = ok(&format!(
        "{head}schedule = {{ kind = \"constant\", lr = 1e-4 }}\n"
    ));
    assert_eq!(p.step(125).lr, 1e-4);
    assert_eq!(p.step(249).lr, 1e-4);
}

#[test]
fn batch_doubling_changes_the_batch_at_the_threshold_and_scales_lr_by_sqrt2() {
    // 8 sequences (128 tokens) per step until 8,192 tokens = 64 steps, then 16.
    let p = ok(&with(
        "batch_tokens = 128",
        "batch_tokens = 128\nbatch_doubling_tokens = [8192]\nmicro_batch_sequences = 4",
    ));
    let s63 = p.step(63);
    let s64 = p.step(64);
    assert_eq!(
        (s63.batch_sequences, s63.tokens_before),
        (8, 63 * BATCH_TOKENS)
    );
    assert_eq!((s64.batch_sequences, s64.tokens_before), (16, 8192));
    assert_eq!(s64.first_sequence, 512);
    let s65 = p.step(65);
    assert_eq!((s65.first_sequence, s65.tokens_before), (528, 8192 + 256));
    // Stage 0: 512 sequences in 64 steps, then ⌈488/16⌉ = 31 steps of 16 → 95 steps, 1,008 sequences.
    let st = &p.stages[0];
    assert_eq!((st.steps, st.sequences), (95, 1008));
    assert_eq!(st.segments.len(), 2);
    assert_eq!(
        (
            st.segments[1].first_step,
            st.segments[1].batch_sequences,
            st.segments[1].first_sequence
        ),
        (64, 16, 512)
    );
    // LR: the schedule's value, × √2 once the batch has doubled.
    let sched = &st.schedule;
    rel_close(s63.lr, sched.lr(63, st.steps));
    rel_close(s64.lr, sched.lr(64, st.steps) * 2f64.sqrt());
    // The second stage starts with the doubled batch and keeps the √2.
    let s = p.step(95);
    assert_eq!((s.stage, s.local_step, s.batch_sequences), (1, 0, 16));
    assert_eq!(p.stages[1].segments.len(), 1);
    let st1 = &p.stages[1];
    assert_eq!(st1.steps, 63); // ⌈1000/16⌉
    rel_close(p.step(100).lr, st1.schedule.lr(5, st1.steps) * 2f64.sqrt());
    // The micro-batch divides both batch sizes.
    assert_eq!(p.micro_batch_sequences(8), 4);
    assert_eq!(p.micro_batch_sequences(16), 4);
}

#[test]
fn micro_batch_defaults_to_the_whole_batch() {
    let p = ok(BASE);
    assert_eq!(p.micro_batch_sequences(8), 8);
}

// ---------------------------------------------------------------- periodic actions

#[test]
fn eval_is_due_at_start_densely_after_boundaries_periodically_and_at_stage_ends() {
    // every_steps 10, dense_steps 6, dense_every_steps 3; stages end at 125 and 250.
    let p = ok(BASE);
    let due: Vec<u64> = (0..=p.total_steps).filter(|&t| p.eval_due(t)).collect();
    let mut want: Vec<u64> = vec![0];
    want.extend([3, 6]); // dense at the start of the first stage too
    want.extend((10..=120).step_by(10));
    want.push(125); // end of stage 0
    want.extend([128, 130, 131]); // dense 3 and 6 steps after the boundary, periodic 130
    want.extend((140..=240).step_by(10));
    want.push(250); // end of stage 1
    assert_eq!(due, want);
    assert!(
        !p.eval_due(126) && !p.eval_due(134),
        "dense stops after 6 steps"
    );
}

#[test]
fn final_evaluations_close_in_on_every_stage_end() {
    // final_steps 9, final_every_steps 4: 8, 4 and 0 steps before the ends at 125 and 250.
    let p = ok(&with(
        "every_steps = 10\ndense_steps = 6",
        "every_steps = 0\ndense_steps = 0\nfinal_steps = 9\nfinal_every_steps = 4",
    ));
    let due: Vec<u64> = (0..=p.total_steps).filter(|&t| p.eval_due(t)).collect();
    assert_eq!(due, [0, 117, 121, 125, 242, 246, 250]);
}

#[test]
fn eval_only_at_stage_ends_when_periodic_and_dense_are_off() {
    let p = ok(&with(
        "every_steps = 10\ndense_steps = 6",
        "every_steps = 0\ndense_steps = 0",
    ));
    let due: Vec<u64> = (0..=p.total_steps).filter(|&t| p.eval_due(t)).collect();
    assert_eq!(due, [0, 125, 250]);
}

#[test]
fn checkpoints_are_due_periodically_and_at_stage_ends() {
    let p = ok(BASE);
    for (t, want) in [
        (1, false),
        (7, true),
        (8, false),
        (14, true),
        (124, false),
        (125, true), // stage end, not a multiple of 7
        (126, true), // 18·7
        (127, false),
        (249, false),
        (250, true),
    ] {
        assert_eq!(p.checkpoint_due(t), want, "step {t}");
    }
    assert!(p.is_stage_end(125) && p.is_stage_end(250) && !p.is_stage_end(126));
    let p = ok(&with(
        "[checkpoint]\nevery_steps = 7",
        "[checkpoint]\nevery_steps = 0",
    ));
    let due: Vec<u64> = (1..=p.total_steps)
        .filter(|&t| p.checkpoint_due(t))
        .collect();
    assert_eq!(due, [125, 250]);
}

// ---------------------------------------------------------------- summary

#[test]
fn summary_totals_add_up() {
    let p = ok(BASE);
    let ix = index(&p);
    let s = PlanSummary::new(&p, &ix, 6.0e6);
    assert_eq!(s.total_steps, 250);
    assert_eq!(
        s.stages.iter().map(|st| st.tokens).sum::<u64>(),
        s.total_tokens
    );
    assert_eq!(s.total_tokens, p.total_tokens());
    for st in &s.stages {
        assert_eq!(
            st.sources.iter().map(|t| t.tokens).sum::<u64>(),
            st.tokens,
            "{}",
            st.name
        );
        rel_close(st.flops, st.tokens as f64 * 6.0e6);
    }
    rel_close(s.total_flops, s.total_tokens as f64 * 6.0e6);
    // The union reads every stage's whole budget (replay included, as Ibrahim et al.'s 600B union).
    let budgets: u64 = s.stages.iter().map(|st| st.tokens).sum();
    assert_eq!(s.union_tokens, budgets);
    // Stage 1: 25% of 16,000 tokens is English replay.
    let de = &s.stages[1];
    assert_eq!(de.replay_fraction, 0.25);
    assert_eq!(de.peak_lr, MAX_LR);
    assert_eq!(de.schedule, "cosine");
    assert_eq!(de.batch_tokens_start, BATCH_TOKENS);
    let replay: u64 = de
        .sources
        .iter()
        .filter(|t| t.replay)
        .map(|t| t.tokens)
        .sum();
    within(replay as f64, 4_000.0, BATCH_TOKENS as f64);
    rel_close(s.continual_cost_vs_union, de.tokens as f64 / budgets as f64);
    // Epochs are draws over the source's training split.
    let en = de.sources.iter().find(|t| t.replay).expect("replay line");
    rel_close(
        en.epochs,
        (en.tokens / SEQ) as f64 / SOURCE_SEQUENCES[2] as f64,
    );
    let text = s.to_text();
    assert!(
        text.contains(&format!("union retrain reads {} tokens", s.union_tokens)),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("de ")), "{text}");
}

#[test]
fn continual_cost_of_two_equal_stages_without_replay_is_half_the_union() {
    let p = ok(&with("replay = { fraction = 0.25 }\n", ""));
    let s = PlanSummary::new(&p, &index(&p), 1.0);
    assert_eq!(s.union_tokens, 32_000);
    assert_eq!(s.total_tokens, 32_000);
    within(s.continual_cost_vs_union, 0.5, 1e-12);
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
