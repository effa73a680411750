//! Progress on standard error: bars on a terminal, plain lines otherwise (logs keep them); quiet for
//! data-parallel ranks other than 0.

use indicatif::{ProgressBar, ProgressStyle};
#[cfg(feature = "torch")]
pub use train_progress::TrainProgress;

/// A byte-counting bar for `prepare`; it clears itself when dropped.
pub struct BytesBar(ProgressBar);

impl BytesBar {
    pub fn new(label: &str) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        BytesBar(bar)
    }
}

impl BytesBar {
    /// `done` of `total` bytes (for work that counts bytes itself, e.g. `import`).
    pub fn set(&self, done: u64, total: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
    }
}

impl Drop for BytesBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl rewarm_data::prepare::Progress for BytesBar {
    fn start(&self, total_bytes: u64) {
        self.0.set_length(total_bytes);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

/// A bar counting items (questions scored, …) toward a known total; it clears itself when dropped.
pub struct CountBar(ProgressBar);

impl CountBar {
    pub fn new(label: &str, total: u64) -> Self {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        CountBar(bar)
    }

    pub fn inc(&self) {
        self.0.inc(1);
    }
}

impl Drop for CountBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A training run's progress (needs libtorch's training loop).
#[cfg(feature = "torch")]
mod train_progress {
    use indicatif::{ProgressBar, ProgressStyle};
    use rewarm_plan::Plan;
    use rewarm_train::{Observer, StepRecord};
    use std::time::Instant;

    /// A training run's bar: steps, loss, LR and speed, with evaluations and notes printed above it.
    pub struct TrainProgress {
        bar: ProgressBar,
        pub started: Instant,
        /// Data-parallel ranks other than 0 print nothing (rank 0 speaks for the group).
        quiet: bool,
    }

    impl TrainProgress {
        pub fn new(total_steps: u64, quiet: bool) -> Self {
            let bar = ProgressBar::new(total_steps);
            bar.set_style(
                ProgressStyle::with_template(
                    "[{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta} {msg}",
                )
                .expect("valid template"),
            );
            if quiet {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            TrainProgress {
                bar,
                started: Instant::now(),
                quiet,
            }
        }

        pub fn finish(&self) {
            self.bar.finish_and_clear();
        }

        /// Lines above the bar; plain stderr lines when the bar is hidden (not a terminal), so logs keep them.
        fn line(&self, text: String) {
            if self.quiet {
                return;
            }
            if self.bar.is_hidden() {
                eprintln!("{text}");
            } else {
                self.bar.println(text);
            }
        }
    }

    impl Observer for TrainProgress {
        fn started(&self, plan: &Plan, resumed_from: Option<u64>) {
            self.bar.set_length(plan.total_steps);
            if let Some(step) = resumed_from {
                self.bar.set_position(step);
                self.line(format!("resumed from the checkpoint at step {step}"));
            }
        }
        fn step(&self, r: &StepRecord) {
            self.bar.set_position(r.step);
            // Loss and speed arrive at read-back steps (log, eval and checkpoint points).
            let (Some(loss), Some(grad_norm), Some(speed)) =
                (r.loss, r.grad_norm, r.tokens_per_second)
            else {
                return;
            };
            if self.bar.is_hidden() && !self.quiet && r.step % 10 == 0 {
                eprintln!(
                    "step {:>6} {} loss {loss:.4} lr {:.2e} grad norm {grad_norm:.3} {speed:.0} tok/s",
                    r.step, r.stage, r.lr
                );
            }
            self.bar.set_message(format!(
                "{} loss {loss:.4} lr {:.2e} {speed:.0} tok/s",
                r.stage, r.lr
            ));
        }
        fn eval(&self, step: u64, set: &str, loss: f64) {
            self.line(format!("step {step:>6} eval {set:<12} loss {loss:.4}"));
        }
        fn note(&self, message: &str) {
            self.line(message.to_owned());
        }
    }
}

/// The quickstart's steps as lines on standard output, and a bar per language prepared.
pub struct QuickstartLines;

impl crate::quickstart::QuickstartProgress for QuickstartLines {
    fn stage(&self, text: &str) {
        println!("{text}");
    }
    fn preparing(&self, lang: &str) -> Box<dyn rewarm_data::prepare::Progress> {
        Box::new(BytesBar::new(lang))
    }
}
