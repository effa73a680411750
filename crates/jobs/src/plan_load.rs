//! Plans from files: validated, with the mixture their sources' manifests and the `init_from` run's
//! consumption record give (no shard opened), and the per-step view `rewarm plan` prints and draws.

use anyhow::{Context, Result};
use rewarm_data::{Manifest, MixtureIndex};
use rewarm_plan::mixture::{mixture_plan, source_fingerprint};
use rewarm_plan::summary::PlanSummary;
use rewarm_plan::{Plan, PlanConfig};
use std::path::Path;

/// Loads and validates a plan file (its model included).
pub fn load_plan(path: &Path) -> Result<Plan> {
    Ok(Plan::new(PlanConfig::load(path)?, path)?)
}

/// The mixture index of a plan from its sources' manifests (no shards opened). Errors name the plan file
/// and the source's key as well as the folder.
pub fn mixture_index(plan: &Plan, file: &Path) -> Result<MixtureIndex> {
    let manifests = plan
        .sources
        .iter()
        .map(|s| {
            Manifest::load(&s.dir)
                .with_context(|| format!("{}: data.sources.{}", file.display(), s.name))
        })
        .collect::<Result<Vec<Manifest>>>()?;
    let counts: Vec<u64> = manifests
        .iter()
        .map(|m| rewarm_data::source::sequences_in(m.train.tokens, plan.seq_len))
        .collect();
    let fingerprints: Vec<String> = manifests.iter().map(source_fingerprint).collect();
    let mixture = mixture_plan(plan, &fingerprints, &counts)
        .with_context(|| format!("{}: init_from", file.display()))?;
    Ok(MixtureIndex::new(mixture)?)
}

/// What `rewarm plan` shows before any compute: stages, tokens, FLOPs and cost.
pub fn summary(plan: &Plan, file: &Path) -> Result<PlanSummary> {
    let index = mixture_index(plan, file)?;
    let flops = plan.model.flops_per_token(plan.seq_len) as f64;
    Ok(PlanSummary::new(plan, &index, flops))
}

/// One step of a plan as `rewarm plan --format csv` lists it and `--plot` draws it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedStep {
    pub step: u64,
    pub stage: String,
    pub local_step: u64,
    pub lr: f64,
    pub batch_sequences: u64,
    pub tokens_before: u64,
    pub replay_fraction: f64,
}

/// Every step of the plan, in order.
pub fn steps(plan: &Plan) -> impl Iterator<Item = PlannedStep> + '_ {
    (0..plan.total_steps).map(|step| {
        let s = plan.step(step);
        let st = &plan.stages[s.stage];
        PlannedStep {
            step,
            stage: st.name.clone(),
            local_step: s.local_step,
            lr: s.lr,
            batch_sequences: s.batch_sequences,
            tokens_before: s.tokens_before,
            replay_fraction: st.replay.as_ref().map_or(0.0, |r| r.fraction),
        }
    })
}

/// The stage boundaries (first step, name) for figures.
pub fn boundaries(plan: &Plan) -> Vec<(u64, String)> {
    plan.stages
        .iter()
        .map(|s| (s.first_step, s.name.clone()))
        .collect()
}

/// Every step of the plan as CSV (`rewarm plan --format csv`).
pub fn write_csv(plan: &Plan, out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "step,stage,local_step,lr,batch_sequences,tokens_before,replay_fraction"
    )?;
    for s in steps(plan) {
        writeln!(
            out,
            "{},{},{},{:e},{},{},{}",
            s.step,
            s.stage,
            s.local_step,
            s.lr,
            s.batch_sequences,
            s.tokens_before,
            s.replay_fraction
        )?;
    }
    out.flush()
}

/// The LR (and replay fraction) over the run as a figure: SVG, or PNG when `path` ends in .png.
pub fn plot(plan: &Plan, path: &Path) -> Result<()> {
    let points: Vec<(u64, f64, f64)> = steps(plan)
        .map(|s| (s.step, s.lr, s.replay_fraction))
        .collect();
    rewarm_report::plot::lr_plot(path, &points, &boundaries(plan))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_lists_every_step_with_its_lr_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[model]\npreset = \"tiny\"\n[data]\nsources = { a = \"a\", b = \"b\" }\nseq_len = 16\n\
             [train]\nbatch_tokens = 32\n[[stages]]\nname = \"s0\"\ntokens = 64\nmixture = { a = 1.0 }\n\
             schedule = { kind = \"constant\", lr = 1e-3 }\n[[stages]]\nname = \"s1\"\ntokens = 64\n\
             mixture = { b = 1.0 }\nreplay = { fraction = 0.5 }\nschedule = { kind = \"constant\", lr = 2e-3 }\n",
        )
        .unwrap();
        let plan = load_plan(&path).unwrap();
        let mut out = Vec::new();
        write_csv(&plan, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 4);
        assert_eq!(lines[1], "0,s0,0,1e-3,2,0,0");
        assert_eq!(lines[4], "3,s1,1,2e-3,2,96,0.5");
        assert_eq!(
            boundaries(&plan),
            [(0, "s0".to_owned()), (2, "s1".to_owned())]
        );
    }
}
