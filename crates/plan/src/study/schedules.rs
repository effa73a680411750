//! The studies of one pretraining schedule on D0 from scratch: WSD, cosine and linear decay at a fixed
//! length (F1, F2, F4), cooldowns of one trunk at several lengths (F3), and the schedule refined from a
//! linear run's gradient norms (F5). Their full-length cosine run is D0's pretraining plan and their
//! linear run is `wsd`'s, so `--reuse` links them in.

use super::{cosine, d0_plan, run, Recipe, SweepRun};
use toml::Value;

/// The fractions of D0's pretraining at which the F3 trunk is cooled down (1 is the `wsd` study's run).
const ENVELOPE_FRACTIONS: [f64; 3] = [0.25, 0.5, 1.0];

impl Recipe<'_> {
    /// A run on D0 from scratch for D0's pretraining tokens with `schedule`, labelled by it.
    pub(super) fn on_d0(&self, label: &str, schedule: &str) -> SweepRun {
        let plan = d0_plan(
            self.sources,
            self.s,
            self.seed,
            self.s.pretrain_tokens,
            schedule,
        );
        run(label, &[("schedule", Value::String(label.into()))], plan)
    }

    /// Linear decay to 0 after the warmup (Defazio et al.; F4).
    fn linear(&self) -> String {
        let (max, warmup) = (self.s.max_lr, self.s.warmup);
        format!("{{ kind = \"linear\", max_lr = {max:e}, warmup = {warmup} }}")
    }

    /// Defazio et al. / F5: on D0 from scratch, the schedule refined from the gradient norms of the `wsd`
    /// study's linear-decay run (`pretrained` is that run's folder; smoothing 0.1, ℓ1 weights for Adam,
    /// no warmup of its own), beside that run and the cosine (D0's plan), both linked in by `--reuse`.
    pub(super) fn refined_runs(&self) -> Vec<SweepRun> {
        let max = self.s.max_lr;
        let norms = self.pretrained.join("metrics.jsonl").display().to_string();
        let refined = format!(
            "{{ kind = \"refined\", max_lr = {max:e}, smoothing = 0.1, grad_norms = {norms:?} }}"
        );
        vec![
            self.on_d0("cosine", &cosine(max, self.s.warmup)),
            self.on_d0("linear", &self.linear()),
            self.on_d0("refined", &refined),
        ]
    }

    /// Hägele et al. / MiniCPM / Defazio et al. / F1, F2, F4: one pretraining stage at fixed N.
    pub(super) fn wsd_runs(&self) -> Vec<SweepRun> {
        let max = self.s.max_lr;
        let one = |label: &str, schedule: String| self.on_d0(label, &schedule);
        let mut runs = vec![
            one("cosine", cosine(max, self.s.warmup)),
            one("linear", self.linear()),
        ];
        for (frac, shape) in [
            (0.025, "one_minus_sqrt"),
            (0.1, "one_minus_sqrt"),
            (0.2, "one_minus_sqrt"),
            (0.2, "linear"),
        ] {
            runs.push(one(
                &format!("wsd-{shape}-{frac}"),
                format!("{{ kind = \"wsd\", max_lr = {max:e}, warmup = {}, decay_fraction = {frac}, shape = \"{shape}\" }}", self.s.warmup),
            ));
        }
        runs
    }

    /// Hägele et al. Fig. 4 / F3: on D0 from scratch, WSD with a 20% (1−sqrt) cooldown and cosine to
    /// η_max/10 at 25%, 50% and 100% of D0's tokens. The warmup is the same number of steps at every
    /// length, so the WSD runs share their constant phase step for step: they are cooldowns taken from
    /// one trunk at three points. The full-length runs are the `wsd` study's (and D0's).
    pub(super) fn envelope_runs(&self) -> Vec<SweepRun> {
        let s = self.s;
        let steps = s.pretrain_tokens / s.batch_tokens;
        let max = s.max_lr;
        let wsd = format!("{{ kind = \"wsd\", max_lr = {max:e}, warmup = {}, decay_fraction = 0.2, shape = \"one_minus_sqrt\" }}", s.warmup);
        let mut runs = Vec::new();
        for (kind, schedule) in [("cosine", cosine(max, s.warmup)), ("wsd-0.2", wsd)] {
            for f in ENVELOPE_FRACTIONS {
                let tokens = if f == 1.0 {
                    s.pretrain_tokens
                } else {
                    ((steps as f64 * f) as u64).max(1) * s.batch_tokens
                };
                let params = [
                    ("schedule", Value::String(kind.into())),
                    ("d0_fraction", Value::Float(f)),
                ];
                let plan = d0_plan(self.sources, s, self.seed, tokens, &schedule);
                runs.push(run(&format!("{kind}@{f}"), &params, plan));
            }
        }
        runs
    }
}
