//! `[ema]`: an exponential moving average of the weights, kept on the device beside them and written with
//! every checkpoint (`ema.safetensors`, the weights' names). After each step
//! `ema ← decay·ema + (1 − decay)·θ`; it starts as the run's starting weights. `rewarm merge` turns it
//! into a model folder.

use crate::error::TrainResult;
use rewarm_model::weights::{load_tensors_into, sorted_variables};
use std::path::Path;
use tch::{nn, Tensor};

pub struct Ema {
    decay: f64,
    /// The parameters (shallow clones: the same storage) and their averages, by name.
    params: Vec<Tensor>,
    average: Vec<(String, Tensor)>,
}

impl Ema {
    /// An average of `vs`'s parameters that starts at their values now.
    pub fn new(decay: f64, vs: &nn::VarStore) -> Self {
        let vars = sorted_variables(vs);
        let average = vars
            .iter()
            .map(|(n, p)| (n.clone(), p.detach().copy()))
            .collect();
        Ema {
            decay,
            params: vars.into_iter().map(|(_, p)| p).collect(),
            average,
        }
    }

    /// One step of the average, after the optimizer's.
    pub fn update(&mut self) {
        tch::no_grad(|| {
            for (p, (_, a)) in self.params.iter().zip(&mut self.average) {
                let _ = a.lerp_(p, 1.0 - self.decay);
            }
        });
    }

    /// The averages by name, for a checkpoint.
    pub fn tensors(&self) -> Vec<(String, &Tensor)> {
        self.average.iter().map(|(n, t)| (n.clone(), t)).collect()
    }

    /// The averages a checkpoint saved.
    pub fn load(&mut self, file: &Path) -> TrainResult<()> {
        Ok(load_tensors_into(
            file,
            &self.average,
            "the weights' moving average",
        )?)
    }
}
