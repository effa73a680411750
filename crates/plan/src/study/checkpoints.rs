//! The studies about where a continual run starts from: more of the same data (B4) and an earlier D0
//! checkpoint (B6). Each reuses `union`'s re-warmed shift to D1 (`--reuse`).

use super::{cosine, parse, run, stage, Recipe, SweepRun};
use toml::Value;

/// The fractions of D0's pretraining after which B6 starts the continual stage (1 is D0's final model).
const EARLIER_FRACTIONS: [f64; 2] = [0.25, 0.5];

impl Recipe<'_> {
    /// Gupta et al. Takeaway 3 / Ibrahim et al. §5 / B4: from D0's final checkpoint, more D0 with the
    /// re-warm and re-decay, and with the constant η_min (no re-warm); beside them the re-warmed shift to
    /// D1 at the same η_max (`union`'s `cpt-replay=0`), whose D0 rise the same-data rise is compared with.
    /// D0's training split was read 2.5 times in pretraining at `small`, so "more D0" is further passes
    /// over it, not fresh text as in the papers.
    pub(super) fn same_data_runs(&self) -> Vec<SweepRun> {
        let d0 = self.d0().to_owned();
        let lr = self.s.max_lr / 10.0;
        let on_d0 = |label: &str, schedule: String| {
            let params = [("data", Value::String("D0".into()))];
            run(label, &params, self.cpt_on(&d0, &schedule, ""))
        };
        vec![
            on_d0("d0-rewarm", cosine(self.s.max_lr, self.s.warmup)),
            on_d0(
                "d0-constant-min-lr",
                format!("{{ kind = \"constant\", lr = {lr:e} }}"),
            ),
            self.rewarm_run("shift-rewarm", 0.0),
        ]
    }

    /// Gupta et al. §4 / B6: the continual stage on D1 (re-warm, re-decay, no replay) started from D0's
    /// pretraining stopped at 25% and 50% of its steps — that very run, its cosine laid out over all of
    /// D0's tokens (`stop_after_steps`), so its LR there is the one D0 had — and from D0's final model
    /// (`union`'s `cpt-replay=0`). Each early run trains its share of D0 again: the shared D0 keeps only
    /// its last checkpoint.
    pub(super) fn earlier_checkpoint_runs(&self) -> Vec<SweepRun> {
        let (s, d0, d1) = (self.s, self.d0(), self.d1());
        let d0_steps = s.pretrain_tokens / s.batch_tokens;
        let mut runs: Vec<SweepRun> = EARLIER_FRACTIONS
            .iter()
            .map(|&f| {
                let stop = ((d0_steps as f64 * f) as u64).max(1);
                let sch = cosine(s.max_lr, s.warmup);
                let text = format!(
                    "{}{}{}",
                    super::header(self.seed, self.cpt_sources(), s, None),
                    stage(
                        &format!("pretrain-{d0}"),
                        s.pretrain_tokens,
                        d0,
                        &sch,
                        &format!("stop_after_steps = {stop}\n")
                    ),
                    stage(
                        &format!("cpt-{d1}"),
                        s.stage_tokens,
                        d1,
                        &sch,
                        "optimizer = \"reset\"\n"
                    )
                );
                let params = [("d0_fraction", Value::Float(f))];
                run(&format!("from-d0-{f}"), &params, parse(&text))
            })
            .collect();
        let mut last = self.rewarm_run("from-d0-1", 0.0);
        last.params.insert("d0_fraction".into(), Value::Float(1.0));
        runs.push(last);
        runs
    }
}
