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
    average: WeightCopy,
}

impl Ema {
    /// An average of `vs`'s parameters that starts at their values now.
    pub fn new(decay: f64, vs: &nn::VarStore) -> Self {
        Ema {
            decay,
            average: WeightCopy::new(vs),
        }
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
