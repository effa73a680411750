//! Readers of what a run folder and its plans hold: plan and sweep TOML, state.json, metrics.jsonl.

use crate::names;
use rewarm_data::MixtureIndex;
use rewarm_plan::summary::PlanSummary;
use rewarm_plan::{sweep, Plan, PlanConfig};
use rewarm_runfolder::{metrics_log, TrainState};
use std::path::Path;

const EXAMPLE_BASE: &str = include_str!("../../../examples/two-stage.toml");
const BASE_MARK: &str = "\n#@base\n";

/// Validates `config` as `rewarm train` does and queries steps across the whole plan.
fn exercise_plan(config: PlanConfig, file: &Path) {
    let Ok(plan) = Plan::new(config, file) else {
        return;
    };
    let total = plan.total_steps;
    assert!(total > 0, "a valid plan has steps");
    let _ = plan.total_tokens();
    // The data side of the plan: which source feeds each row (as `rewarm plan` and `train` compute it),
    // for sources big enough to pass the epoch cap and small enough to hit it.
    for size in [1u64 << 40, 1_000] {
        let Ok(index) = MixtureIndex::new(plan.mixture_plan(&vec![size; plan.sources.len()]))
        else {
            continue;
        };
        let _ = PlanSummary::new(&plan, &index, 1e6).to_text();
        for (s, (_, phase)) in plan.phases().enumerate() {
            for i in [0, phase.sequences / 2, phase.sequences - 1] {
                let _ = index.draw(s, i);
            }
            let _ = index.stage_draws(s);
        }
    }
    let mut probes = vec![0, 1, total / 3, total / 2, total - 1, total];
    for st in &plan.stages {
        probes.extend([
            st.first_step,
            st.first_step + st.steps - 1,
            st.first_step + st.steps,
        ]);
    }
    for &s in &probes {
        let _ = plan.eval_due(s.min(total));
        let _ = plan.checkpoint_due(s);
        if s < total {
            let info = plan.step(s);
            assert!(info.stage < plan.stages.len());
            assert!(info.batch_sequences > 0);
            let _ = plan.micro_batch_sequences(info.batch_sequences);
        }
    }
}

/// Plan and sweep TOML (`rewarm_plan`): refused with an error naming the file and key, or a plan whose
/// every step (stage, batch, LR, data position) can be computed. The same text is also read as a sweep
/// file over the example two-stage plan, or over its own base plan when it holds a line `#@base` (sweep
/// above, base below).
pub fn plan_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let plan_file = Path::new("fuzz/plan.toml");
    if let Ok(config) = PlanConfig::from_toml(&text, plan_file) {
        exercise_plan(config, plan_file);
    }

    let (sweep_text, base_text) = match text.split_once(BASE_MARK) {
        Some((s, b)) => (s, b),
        None => (&*text, EXAMPLE_BASE),
    };
    let sweep_file = Path::new("fuzz/sweep.toml");
    let Ok(config) = sweep::parse(sweep_text, sweep_file) else {
        return;
    };
    let base_file = Path::new("fuzz/base.toml");
    let Ok(runs) = sweep::expand_with_base(&config, sweep_file, base_file, base_text) else {
        return;
    };
    for run in runs.iter().take(8) {
        let text = toml::to_string(&run.plan).expect("an expanded plan serializes");
        let config =
            PlanConfig::from_toml(&text, base_file).expect("expand checked the plan parses");
        exercise_plan(config, base_file);
    }
}

/// A checkpoint's `state.json` (`TrainState::parse`, what resume loads): refused with an error naming the
/// file, or a state that is written and read back the same.
pub fn state_json(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("fuzz/state.json");
    let state = match TrainState::parse(path, &text) {
        Ok(state) => state,
        Err(e) => return names(e, "fuzz/state.json"),
    };
    let back = TrainState::parse(path, &state.to_json()).expect("a written state parses");
    // Not compared: lr_scale, which serde_json may read back an ulp apart.
    assert_eq!(
        (back.step, back.optimizer_step, back.rollbacks),
        (state.step, state.optimizer_step, state.rollbacks)
    );
    assert_eq!(back.tokens_by_source, state.tokens_by_source);
    assert_eq!(back.data_fingerprint, state.data_fingerprint);
}

/// `metrics.jsonl` (`metrics_log::parse`, what `rewarm report` and resume read): refused with an error
/// naming the file, or records each with its step; a file of whole lines cut short anywhere (a crash in
/// the middle of a write, even inside a UTF-8 character) reads as a prefix of the same records.
pub fn metrics_jsonl(data: &[u8]) {
    let path = Path::new("fuzz/metrics.jsonl");
    let records = match metrics_log::parse(path, data) {
        Ok(records) => records,
        Err(e) => return names(e, "fuzz/metrics.jsonl"),
    };
    let _: Vec<Option<u64>> = records.iter().map(|r| r.step()).collect();
    // Cuts are checked on files of whole lines, as a write that completed leaves them. (A last line
    // without its newline that is not a record, `{…}garbage`, is dropped whole, while a cut inside it
    // may leave a record, `{…}`: the prefix rule holds for what a crash can leave, not for any bytes.)
    let (Some(&first), Some(b'\n')) = (data.first(), data.last()) else {
        return;
    };
    for cut in [data.len() - 1, first as usize * data.len() / 256] {
        let torn = metrics_log::parse(path, &data[..cut]).expect("a torn file reads");
        assert_eq!(torn[..], records[..torn.len()], "cut at byte {cut}");
    }
}
