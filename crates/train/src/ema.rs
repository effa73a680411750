//! `[ema]`: an exponential moving average of the weights, kept on the device beside them and written with
//! every checkpoint (`ema.safetensors`, the weights' names). After each step
//! `ema ← decay·ema + (1 − decay)·θ`; it starts as the run's starting weights. `rewarm merge` turns it
//! into a model folder.

use crate::error::TrainResult;
use crate::weight_copy::WeightCopy;
use std::path::Path;
use tch::{nn, Tensor};

pub struct Ema {
    decay: f64,
    /// `[ema] evaluate`: every evaluation also evaluates the average.
    pub evaluated: bool,
    average: WeightCopy,
}

impl Ema {
    /// An average of `vs`'s parameters that starts at their values now.
    pub fn new(decay: f64, evaluated: bool, vs: &nn::VarStore) -> Self {
        Ema {
            decay,
            evaluated,
            average: WeightCopy::new(vs),
        }
    }

    /// Exchanges the weights and the average, bit for bit: called twice around an evaluation of the
    /// average, it leaves both as they were.
    pub fn swap_with_weights(&mut self) {
        self.average.for_each(|p, a| {
            let weights = p.copy();
            p.copy_(a);
            a.copy_(&weights);
        });
    }

    /// One step of the average, after the optimizer's.
    pub fn update(&mut self) {
        let w = 1.0 - self.decay;
        self.average.for_each(|p, a| {
            let _ = a.lerp_(&*p, w);
        });
    }

    /// The averages by name, for a checkpoint.
    pub fn tensors(&self) -> Vec<(String, &Tensor)> {
        self.average.tensors()
    }

    /// The averages a checkpoint saved.
    pub fn load(&mut self, file: &Path) -> TrainResult<()> {
        self.average.load(file, "the weights' moving average")
    }
}
