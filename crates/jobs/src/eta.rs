//! How long a sweep or study has left: the steps still to train over the speed of the steps trained so far
//! in this process (wall clock, so evaluations, checkpoints and runs trained side by side all count).
//! Runs of one sweep share a model and batch, so a step costs about the same in each.

use std::time::{Duration, Instant};

/// Steps left and trained since this process started on them.
pub struct StepsClock {
    started: Instant,
    total: u64,
    trained: u64,
}

impl StepsClock {
    /// A clock over `steps` still to train.
    pub fn new(steps: u64) -> Self {
        StepsClock {
            started: Instant::now(),
            total: steps,
            trained: 0,
        }
    }

    /// `steps` more were trained (a run finished).
    pub fn trained(&mut self, steps: u64) {
        self.trained = (self.trained + steps).min(self.total);
    }

    /// `steps` will not be trained here after all (a run failed, or another process held it).
    pub fn dropped(&mut self, steps: u64) {
        self.total = self.total.saturating_sub(steps).max(self.trained);
    }

    /// The time left, `elapsed` after the start; `None` until some step was trained.
    pub fn left_after(&self, elapsed: Duration) -> Option<Duration> {
        if self.trained == 0 {
            return None;
        }
        let per_step = elapsed.as_secs_f64() / self.trained as f64;
        Some(Duration::from_secs_f64(
            per_step * (self.total - self.trained) as f64,
        ))
    }

    /// "; 250 of 1000 steps trained in 12m, about 36m left" (empty before any step was trained).
    pub fn summary(&self) -> String {
        self.summary_after(self.started.elapsed())
    }

    pub(crate) fn summary_after(&self, elapsed: Duration) -> String {
        let Some(left) = self.left_after(elapsed) else {
            return String::new();
        };
        format!(
            "; {} of {} steps trained in {}, about {} left",
            self.trained,
            self.total,
            short(elapsed),
            short(left)
        )
    }
}

/// "45s", "12m", "3h 05m".
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_the_steps_left_at_the_speed_so_far() {
        let mut clock = StepsClock::new(1000);
        assert_eq!(clock.left_after(Duration::from_secs(30)), None);
        assert_eq!(clock.summary_after(Duration::from_secs(30)), "");
        // 250 steps in 10 minutes: 2.4 s a step, 750 left → 30 minutes.
        clock.trained(250);
        let ten = Duration::from_secs(600);
        assert_eq!(clock.left_after(ten), Some(Duration::from_secs(1800)));
        assert_eq!(
            clock.summary_after(ten),
            "; 250 of 1000 steps trained in 10m, about 30m left"
        );
        // A run of 250 steps failed: 500 left → 20 minutes.
        clock.dropped(250);
        assert_eq!(clock.left_after(ten), Some(Duration::from_secs(1200)));
        clock.trained(500);
        assert_eq!(clock.left_after(ten), Some(Duration::ZERO));
    }

    #[test]
    fn short_durations() {
        assert_eq!(short(Duration::from_secs(45)), "45s");
        assert_eq!(short(Duration::from_secs(12 * 60 + 59)), "12m");
        assert_eq!(short(Duration::from_secs(3 * 3600 + 5 * 60)), "3h 05m");
    }
}
