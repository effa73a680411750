//! Testing aid: a non-finite (or huge) value injected at one step, to exercise the non-finite and spike
//! guards (hidden CLI option `--inject-non-finite SITE@STEP[=VALUE]`, docs/reliability.md). The loop calls the hook at two
//! points; without an injection both do nothing.

use crate::optim::AdamW;
use tch::Tensor;

/// Where and when a non-finite value is injected. It fires once per process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Injection {
    /// Steps are numbered as in metrics.jsonl: step N is the N-th optimizer step, logged with `"step": N`.
    pub step: u64,
    pub site: InjectSite,
    /// NaN, ±inf, or a finite value (at `batch`: a factor on the loss, a spike).
    pub value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectSite {
    /// The step's mean loss, after the backward pass (the gradients stay finite).
    Loss,
    /// One gradient element of the first parameter, before the norm is measured.
    Gradient,
    /// The first micro-batch: its loss is scaled by the value before the backward pass, so the loss and
    /// every gradient it reaches turn non-finite, as with a batch whose forward pass overflows. (Token ids
    /// cannot be NaN; a shard that no longer matches its manifest is refused when the data is opened.)
    Batch,
}

impl Injection {
    /// The loss of step `step` is NaN (`--inject-nan-at-step`).
    pub fn nan_loss(step: u64) -> Self {
        Injection {
            step,
            site: InjectSite::Loss,
            value: f64::NAN,
        }
    }
}

impl std::str::FromStr for Injection {
    type Err = String;
    /// `SITE@STEP[=VALUE]`: SITE is `loss`, `grad` or `batch`; VALUE is `nan` (default), `inf`, `-inf` or
    /// a number.
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || {
            format!("`{s}`: expected SITE@STEP[=nan|inf|-inf|NUMBER] with SITE loss, grad or batch")
        };
        let (site, rest) = s.split_once('@').ok_or_else(usage)?;
        let (step, value) = rest.split_once('=').unwrap_or((rest, "nan"));
        Ok(Injection {
            step: step.parse().map_err(|_| usage())?,
            site: match site {
                "loss" => InjectSite::Loss,
                "grad" => InjectSite::Gradient,
                "batch" => InjectSite::Batch,
                _ => return Err(usage()),
            },
            value: match value {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                v => v.parse().map_err(|_| usage())?,
            },
        })
    }
}

/// The hook the loop calls: fires the injection once, at its step.
#[derive(Debug, Default)]
pub(crate) struct Injector {
    pending: Option<Injection>,
}

impl Injector {
    pub fn new(injection: Option<Injection>) -> Self {
        Injector { pending: injection }
    }

    /// The injection of the step about to be `step`, consumed: it fires once per process.
    fn take(&mut self, step: u64, site: InjectSite) -> Option<f64> {
        let due = self.pending.filter(|i| i.step == step && i.site == site)?;
        self.pending = None;
        Some(due.value)
    }

    /// The factor of the first micro-batch's loss before the backward pass of step `step`.
    pub fn batch_factor(&mut self, step: u64) -> f64 {
        self.take(step, InjectSite::Batch).unwrap_or(1.0)
    }

    /// After the backward pass of step `step`: poisons the loss or a gradient (then measures the norm
    /// again) when the injection says so.
    pub fn after_backward(
        &mut self,
        step: u64,
        loss: &mut Tensor,
        grad_norm: &mut Tensor,
        opt: &AdamW,
    ) {
        if let Some(value) = self.take(step, InjectSite::Loss) {
            *loss = loss.full_like(value);
        }
        if let Some(value) = self.take(step, InjectSite::Gradient) {
            let grad = opt.slots[0].param.grad();
            tch::no_grad(|| {
                let _ = grad.view([-1]).narrow(0, 0, 1).fill_(value);
            });
            *grad_norm = opt.grad_norm();
        }
    }
}
