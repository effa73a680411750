//! The loss-spike guard (`guard.spikes`, OLMo-core's skip-step rule): a step whose loss or gradient norm
//! exceeds the mean of the last `window` steps' by more than `sigmas` standard deviations leaves the
//! weights and moments as they were. Decided on the device, like the non-finite check: nothing is read
//! back to decide. Every finite value enters the window, a spike's too, so that a lasting shift of the
//! loss is taken in after a few steps instead of being skipped for ever. The window starts empty at every
//! stage: a new stage's data is a new distribution, whose first steps' loss is many σ above the last
//! stage's (without the reset the first step on new data would be skipped as a spike: the engine test
//! `stability.rs` saw it).

use rewarm_plan::config::SpikeConfig;
use rewarm_runfolder::SpikeWindow;
use tch::{Device, Kind, Tensor};

pub struct SpikeGuard {
    sigmas: f64,
    window: i64,
    /// (2, window) f64 on the device: losses, gradient norms; slot `appended % window` is the next.
    values: Tensor,
    /// Values appended so far (the window is full once it reaches `window`).
    appended: u64,
}

impl SpikeGuard {
    /// A guard on `device` with the window a checkpoint saved (oldest first), or an empty one.
    pub fn new(config: &SpikeConfig, saved: Option<&SpikeWindow>, device: Device) -> Self {
        let window = config.window as i64;
        let mut guard = SpikeGuard {
            sigmas: config.sigmas,
            window,
            values: Tensor::zeros([2, window], (Kind::Double, device)),
            appended: 0,
        };
        if let Some(w) = saved {
            for (l, n) in w.losses.iter().zip(&w.grad_norms) {
                let v = Tensor::from_slice(&[*l, *n]).to_device(device);
                guard.push(&v.get(0), &v.get(1));
            }
        }
        guard
    }

    /// Empties the window (a stage begins).
    pub fn clear(&mut self) {
        let _ = self.values.zero_();
        self.appended = 0;
    }

    /// Whether this step's `loss` and `grad_norm` (0-d device tensors) are a spike, as a 0-d bool tensor
    /// (`None` while the window is not full); then takes them into the window.
    pub fn check_and_push(&mut self, loss: &Tensor, grad_norm: &Tensor) -> Option<Tensor> {
        let spike = (self.appended >= self.window as u64).then(|| {
            let v = self.column(loss, grad_norm);
            let limit = self.values.mean_dim(1, false, Kind::Double)
                + self.values.std_dim(1, true, false) * self.sigmas;
            v.gt_tensor(&limit).any()
        });
        self.push(loss, grad_norm);
        spike
    }

    /// Takes `loss` and `grad_norm` into the window, in place of its oldest pair; a non-finite pair
    /// repeats the newest one instead (such a step stops the run or rolls it back anyway, unless the
    /// guard's checks are between read-backs).
    fn push(&mut self, loss: &Tensor, grad_norm: &Tensor) {
        let v = self.column(loss, grad_norm);
        let w = self.window as u64;
        let slot = (self.appended % w) as i64;
        let newest = ((self.appended + w - 1) % w) as i64;
        let finite = v.isfinite().all();
        let v = v.where_self(&finite, &self.values.select(1, newest));
        self.values.select(1, slot).copy_(&v);
        self.appended += 1;
    }

    /// (loss, grad_norm) as a (2,) f64 tensor on the window's device.
    fn column(&self, loss: &Tensor, grad_norm: &Tensor) -> Tensor {
        let d = self.values.device();
        Tensor::stack(
            &[
                loss.to_kind(Kind::Double).to_device(d),
                grad_norm.to_kind(Kind::Double).to_device(d),
            ],
            0,
        )
    }

    /// The window, oldest first, for a checkpoint (one read-back).
    pub fn snapshot(&self) -> SpikeWindow {
        let n = self.appended.min(self.window as u64) as i64;
        let start = if self.appended < self.window as u64 {
            0
        } else {
            (self.appended % self.window as u64) as i64
        };
        let order: Vec<i64> = (0..n).map(|i| (start + i) % self.window).collect();
        let index = Tensor::from_slice(&order).to_device(self.values.device());
        let host = self.values.index_select(1, &index).to_device(Device::Cpu);
        let row = |r: i64| Vec::<f64>::try_from(host.get(r)).expect("f64 values");
        SpikeWindow {
            losses: row(0),
            grad_norms: row(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(v: f64) -> Tensor {
        Tensor::from(v)
    }

    fn guard(window: u64) -> SpikeGuard {
        let config = SpikeConfig {
            sigmas: 3.0,
            window,
        };
        SpikeGuard::new(&config, None, Device::Cpu)
    }

    fn is_spike(g: &mut SpikeGuard, loss: f64, norm: f64) -> Option<bool> {
        g.check_and_push(&scalar(loss), &scalar(norm))
            .map(|t| t.int64_value(&[]) != 0)
    }

    #[test]
    fn a_value_many_sigmas_above_a_full_window_is_a_spike_and_enters_the_window() {
        let mut g = guard(8);
        for i in 0..8 {
            // Losses 3.0 ± 0.1, norms 1.0 ± 0.1: nothing is judged before the window is full.
            assert_eq!(
                is_spike(
                    &mut g,
                    3.0 + 0.1 * (i % 2) as f64,
                    1.0 + 0.1 * (i % 3) as f64
                ),
                None
            );
        }
        assert_eq!(is_spike(&mut g, 3.05, 1.05), Some(false));
        assert_eq!(is_spike(&mut g, 9.0, 1.0), Some(true), "a loss spike");
        // The spike entered the window: σ grew, so the same loss is no longer one.
        assert_eq!(is_spike(&mut g, 9.0, 1.0), Some(false));
        let mut g = guard(8);
        for i in 0..8 {
            is_spike(
                &mut g,
                3.0 + 0.1 * (i % 2) as f64,
                1.0 + 0.1 * (i % 3) as f64,
            );
        }
        assert_eq!(
            is_spike(&mut g, 3.0, 50.0),
            Some(true),
            "a gradient-norm spike"
        );
        // Lower than usual is never a spike.
        assert_eq!(is_spike(&mut g, 0.1, 0.01), Some(false));
    }

    #[test]
    fn non_finite_values_stay_out_and_the_window_round_trips_through_a_checkpoint() {
        let mut g = guard(4);
        for (l, n) in [
            (1.0, 2.0),
            (f64::NAN, 1.0),
            (3.0, 4.0),
            (5.0, 6.0),
            (7.0, 8.0),
            (9.0, 10.0),
        ] {
            let _ = g.check_and_push(&scalar(l), &scalar(n));
        }
        let saved = g.snapshot();
        assert_eq!(
            saved.losses,
            [3.0, 5.0, 7.0, 9.0],
            "the newest four, oldest first"
        );
        assert_eq!(saved.grad_norms, [4.0, 6.0, 8.0, 10.0]);
        let mut g = guard(4);
        for (l, n) in [(1.0, 2.0), (f64::NAN, 1.0), (3.0, f64::INFINITY)] {
            let _ = g.check_and_push(&scalar(l), &scalar(n));
        }
        let seen = g.snapshot();
        assert_eq!(
            (seen.losses, seen.grad_norms),
            (vec![1.0; 3], vec![2.0; 3]),
            "repeats, no NaN"
        );
        let config = SpikeConfig {
            sigmas: 3.0,
            window: 4,
        };
        let again = SpikeGuard::new(&config, Some(&saved), Device::Cpu);
        assert_eq!(again.snapshot(), saved);
    }
}
