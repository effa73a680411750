//! Extending a run: resuming a run folder under a plan that appends stages (and the sources they need) to
//! the plan it was trained with. The steps already run must be the same steps, so everything else must be
//! unchanged: [`check`] compares the two `plan.json` texts field by field and names the first difference.
//!
//! What may differ: `plan.stages` may gain stages after the old ones, and `plan.data.sources` may gain
//! sources; the old stages and sources stay exactly as they were. Each step's batch, learning rate and
//! data draws depend only on its own stage and the ones before it (streams are named by source and
//! stage), so the old steps are the same steps under the longer plan.

use serde_json::Value;

/// How a longer plan extends the one a run was trained with.
#[derive(Clone, Debug, PartialEq)]
pub struct Extension {
    /// Stages of the run's plan (the first ones of the new plan).
    pub stages_then: usize,
    /// Sources of the run's plan, by name, sorted (a subset of the new plan's).
    pub sources_then: Vec<String>,
}

/// Whether the plan `now` (plan.json text) extends `then`, the plan a run was trained with: `Ok` with what
/// it appends, else the first field that differs, with both values and the fix.
pub fn check(then: &str, now: &str) -> Result<Extension, String> {
    let parse = |text: &str| serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
    let (mut then, mut now) = (parse(then)?, parse(now)?);
    let stages = |v: &mut Value| take_array(&mut v["plan"]["stages"]);
    let (stages_then, stages_now) = (stages(&mut then), stages(&mut now));
    let sources = |v: &mut Value| take_object(&mut v["plan"]["data"]["sources"]);
    let (sources_then, sources_now) = (sources(&mut then), sources(&mut now));
    if stages_now.len() < stages_then.len() {
        return Err(format!(
            "plan.stages: the run has {} stages, this plan {}\nHINT: a run is extended by appending stages after its own; train a shorter plan into a new --run folder",
            stages_then.len(),
            stages_now.len()
        ));
    }
    for (i, (a, b)) in stages_then.iter().zip(&stages_now).enumerate() {
        let name = a["name"].as_str().unwrap_or("?");
        difference(a, b, &format!("plan.stages[{i}] ({name})")).map_or(Ok(()), Err)?;
    }
    for (name, path) in &sources_then {
        let at = format!("plan.data.sources.{name}");
        match sources_now.get(name) {
            Some(p) => difference(path, p, &at).map_or(Ok(()), Err)?,
            None => return Err(format!("{at}: the run trained on it and this plan drops it\nHINT: keep every source of the run in data.sources")),
        }
    }
    difference(&then, &now, "").map_or(Ok(()), Err)?;
    Ok(Extension {
        stages_then: stages_then.len(),
        sources_then: sources_then.keys().cloned().collect(),
    })
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
            "{at}: {} in the run, {} in this plan\nHINT: a run continues only under the plan it was trained with, or one that appends stages (and their sources) to it; restore the field, or train into a new --run folder (`init_from` takes its weights)",
            a, b
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(stages: &[(&str, f64)], sources: &[&str], layers: u64) -> String {
        let stages: Vec<Value> = stages
            .iter()
            .map(|(name, lr)| json!({ "name": name, "schedule": { "kind": "constant", "max_lr": lr } }))
            .collect();
        let sources: serde_json::Map<String, Value> = sources
            .iter()
            .map(|s| (s.to_string(), json!(format!("prepared/{s}"))))
            .collect();
        let plan = json!({
            "model": { "num_layers": layers },
            "plan": { "seed": 1, "data": { "sources": sources, "max_epochs": 4.0 }, "stages": stages }
        });
        serde_json::to_string_pretty(&plan).unwrap()
    }

    #[test]
    fn the_same_plan_and_appended_stages_and_sources_extend() {
        let then = plan(&[("pre", 1e-3)], &["en"], 2);
        let same = check(&then, &then).unwrap();
        assert_eq!(
            (same.stages_then, same.sources_then),
            (1, vec!["en".to_owned()])
        );
        let now = plan(&[("pre", 1e-3), ("cpt", 5e-4)], &["de", "en"], 2);
        let ext = check(&then, &now).unwrap();
        assert_eq!(
            (ext.stages_then, ext.sources_then),
            (1, vec!["en".to_owned()])
        );
    }

    #[test]
    fn any_other_change_names_the_first_field_that_differs() {
        let then = plan(&[("pre", 1e-3), ("cpt", 5e-4)], &["de", "en"], 2);
        for (now, want) in [
            (
                plan(&[("pre", 1e-3), ("cpt", 6e-4)], &["de", "en"], 2),
                "plan.stages[1] (cpt).schedule.max_lr: 0.0005 in the run, 0.0006 in this plan",
            ),
            (
                plan(&[("pre", 1e-3), ("cpt", 5e-4)], &["de", "en"], 3),
                "model.num_layers: 2 in the run, 3",
            ),
            (
                plan(&[("pre", 1e-3)], &["de", "en"], 2),
                "plan.stages: the run has 2 stages, this plan 1",
            ),
            (
                plan(&[("pre", 1e-3), ("cpt", 5e-4)], &["en"], 2),
                "plan.data.sources.de: the run trained on it",
            ),
            (
                plan(&[("pre", 1e-3), ("cpt", 5e-4)], &["de", "en"], 2).replace("4.0", "8.0"),
                "plan.data.max_epochs: 4.0 in the run, 8.0",
            ),
        ] {
            let err = check(&then, &now).unwrap_err();
            assert!(
                err.contains(want) && err.contains("HINT"),
                "want `{want}`, got: {err}"
            );
        }
    }
}
