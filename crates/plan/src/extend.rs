//! Continuing a run under another plan: resuming a run folder (or a copy of one of its checkpoints: a
//! branch) under a plan that leaves every step already run as it was. [`check`] compares the checkpoint's
//! `plan.json` with the new plan field by field and names the first difference that would change a step
//! already run.
//!
//! What may differ: the stages after the checkpoint's step (appended, removed, changed), the stage that
//! holds it may stop there or later (`stop_after_steps`), and sources may be added. Each step's batch,
//! learning rate and data draws depend only on its own stage and the ones before it (random streams are
//! named by source and stage), so the steps already run are the same steps under the new plan. The
//! sources' folders may have moved: their data is checked by its fingerprint, not by the path. Paths are
//! not compared at all (a branch's plan names them absolutely): `init_from` is read at a fresh start
//! only, and a tokenizer named in `data.tokenizer` is checked against the sources when they are opened.
//! Batch doublings above the tokens the run had seen may be added or moved (`rewarm probe batch`).
//! `[monitor]`, `[eval] tasks`, when evaluations happen (`every_steps`, `dense_*`, `final_*`),
//! `train.log_every_steps` and `[checkpoint]` may change: they only measure or save. `train.activation_checkpointing`
//! may be switched: it changes memory, not what a step computes (the gradients agree up to rounding, so
//! the continued run is not bit-identical to one that kept the setting).

use crate::{plan_file, Plan};
use serde_json::Value;

/// The `[eval]` keys that only say when to evaluate.
const CADENCE: [&str; 5] = [
    "every_steps",
    "dense_steps",
    "dense_every_steps",
    "final_steps",
    "final_every_steps",
];

/// How a plan continues the one a checkpoint was written under.
#[derive(Clone, Debug, PartialEq)]
pub struct Extension {
    /// Sources of the run's plan, by name, sorted (a subset of the new plan's).
    pub sources_then: Vec<String>,
    /// The first stage whose settings differ from the run's plan (`None`: the same stages).
    pub changed_from: Option<usize>,
}

/// Whether `plan` continues `then` (the plan.json text of a checkpoint at `step`): `Ok` with what it
/// changes, else the first field that differs in what decided steps `1..=step`, with both values and the
/// fix.
pub fn check(then: &str, plan: &Plan, step: u64) -> Result<Extension, String> {
    let now = plan_file(plan).to_json();
    let parse = |text: &str| serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
    let (mut then, mut now) = (parse(then)?, parse(&now)?);
    let stages = |v: &mut Value| take_array(&mut v["plan"]["stages"]);
    let (mut stages_then, mut stages_now) = (stages(&mut then), stages(&mut now));
    let changed_from = (0..stages_then.len().max(stages_now.len()))
        .find(|&i| stages_then.get(i) != stages_now.get(i));
    let sources = |v: &mut Value| take_object(&mut v["plan"]["data"]["sources"]);
    let (sources_then, sources_now) = (sources(&mut then), sources(&mut now));
    for v in [&mut then, &mut now] {
        v["plan"]["init_from"].take();
        v["plan"]["data"]["tokenizer"].take();
        // Measuring the representation or scoring tasks changes no step; recomputing blocks only memory.
        v["plan"]["monitor"].take();
        v["plan"]["eval"]["tasks"].take();
        // When evaluations, training records and checkpoints are written changes no step either.
        for key in CADENCE {
            v["plan"]["eval"][key].take();
        }
        v["plan"]["train"]["log_every_steps"].take();
        v["plan"]["checkpoint"].take();
        v["plan"]["train"]["activation_checkpointing"].take();
    }
    for name in sources_then.keys() {
        if !sources_now.contains_key(name) {
            return Err(format!("plan.data.sources.{name}: the run trained on it and this plan drops it\nHINT: keep every source of the run in data.sources"));
        }
    }
    same_doublings_through(&mut then, &mut now, plan, step)?;
    difference(&then, &now, "").map_or(Ok(()), Err)?;
    if step > 0 {
        let holding = plan.stage_of(step - 1);
        let done = step - plan.stages[holding].first_step;
        same_stages_through(&mut stages_then, &mut stages_now, holding, done)?;
        same_schedule_after(&stages_then, &stages_now, holding)?;
    }
    Ok(Extension {
        sources_then: sources_then.keys().cloned().collect(),
        changed_from,
    })
}

/// The batch doublings that steps `1..=step` reached (thresholds up to the tokens seen before step
/// `step`) are the run's; the ones after may change (taken out of both plans once compared).
fn same_doublings_through(
    then: &mut Value,
    now: &mut Value,
    plan: &Plan,
    step: u64,
) -> Result<(), String> {
    let last_start = match step {
        0 => 0,
        s if s <= plan.total_steps => plan.step(s - 1).tokens_before,
        _ => u64::MAX, // the plan is shorter than the run: every threshold counts (and the stages differ)
    };
    let reached = |v: &mut Value| -> Vec<Value> {
        take_array(&mut v["plan"]["train"]["batch_doubling_tokens"])
            .into_iter()
            .filter(|t| step > 0 && t.as_u64().is_some_and(|t| t <= last_start))
            .collect()
    };
    let (a, b) = (reached(then), reached(now));
    if a != b {
        return Err(format!(
            "plan.train.batch_doubling_tokens: the run's steps up to {step} doubled the batch at {a:?}, this plan at {b:?}\nHINT: keep the thresholds up to {last_start} tokens as they were; later ones may change"
        ));
    }
    Ok(())
}

/// The stages before `holding` unchanged, and `holding` (which has run `done` steps) unchanged but for
/// where it stops, which must not be before `done` in the run's plan (else the run's later steps were
/// another stage's).
fn same_stages_through(
    then: &mut [Value],
    now: &mut [Value],
    holding: usize,
    done: u64,
) -> Result<(), String> {
    let Some(run) = then.get_mut(holding) else {
        return Err(format!(
            "plan.stages: the run has {} stages and this plan puts its last step in stage {}\nHINT: keep the stages the run trained, as they were",
            then.len(),
            holding + 1
        ));
    };
    let stop = |v: &mut Value| v.as_object_mut().and_then(|o| o.remove("stop_after_steps"));
    if let Some(Value::Number(n)) = stop(run) {
        if n.as_u64().is_some_and(|k| k < done) {
            let name = run["name"].as_str().unwrap_or("?").to_owned();
            return Err(format!(
                "plan.stages[{holding}] ({name}).stop_after_steps: {n} in the run, which went on to the next stage; this plan runs {done} or more steps of it\nHINT: keep the stages the run trained, as they were"
            ));
        }
    }
    stop(&mut now[holding]);
    for (i, (a, b)) in then.iter().zip(now.iter()).take(holding + 1).enumerate() {
        let name = a["name"].as_str().unwrap_or("?");
        difference(a, b, &format!("plan.stages[{i}] ({name})")).map_or(Ok(()), Err)?;
    }
    Ok(())
}

/// The stages after `holding` that continue its schedule (`kind = "continue"`) set how long that schedule
/// is, so they must stay as they were in the run's plan: adding, changing or removing one would change
/// the LR of steps already run.
fn same_schedule_after(then: &[Value], now: &[Value], holding: usize) -> Result<(), String> {
    let continues = |v: Option<&Value>| v.is_some_and(|s| s["schedule"]["kind"] == "continue");
    let mut i = holding + 1;
    while continues(then.get(i)) || continues(now.get(i)) {
        if then.get(i) != now.get(i) {
            let name = |v: &[Value]| {
                v.get(i)
                    .and_then(|s| s["name"].as_str())
                    .unwrap_or("none")
                    .to_owned()
            };
            return Err(format!(
                "plan.stages[{i}]: `{}` in the run, `{}` in this plan, and one of them continues the schedule of stage `{}`, which the run has trained: the change would move the learning rate of steps already run\nHINT: keep the stages that continue that schedule as they were, and give a new stage a schedule of its own",
                name(then),
                name(now),
                then[holding]["name"].as_str().unwrap_or("?")
            ));
        }
        i += 1;
    }
    Ok(())
}

fn take_array(v: &mut Value) -> Vec<Value> {
    match v.take() {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

fn take_object(v: &mut Value) -> serde_json::Map<String, Value> {
    match v.take() {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    }
}

/// The first leaf where `a` (the run's) and `b` (this plan's) differ, as an error naming its path.
fn difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    let join = |key: &str| match at {
        "" => key.to_owned(),
        _ => format!("{at}.{key}"),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            let null = Value::Null;
            keys.into_iter().find_map(|k| {
                difference(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), &join(k))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!(
            "{at}: {} in the run, {} in this plan\nHINT: a run continues only under a plan that leaves the steps it ran as they were (later stages may change, stages may be appended); restore the field, or train into a new --run folder (`init_from` takes its weights)",
            a, b
        )),
    }
}
