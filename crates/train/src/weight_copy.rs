//! A copy of the model's weights kept beside them on the device, by Hugging Face name: what the weights'
//! moving average ([`crate::ema`]) and Reptile's anchor ([`crate::reptile`]) are made of. It holds
//! shallow clones of the parameters (the same storage), so it always sees the weights as they are now.

use crate::error::TrainResult;
use rewarm_model::weights::{load_tensors_into, sorted_variables};
use std::path::Path;
use tch::{nn, Tensor};

pub struct WeightCopy {
    /// The parameters (shallow clones), in the order of `copy`.
    pub(crate) params: Vec<Tensor>,
    pub(crate) copy: Vec<(String, Tensor)>,
}

impl WeightCopy {
    /// A copy of `vs`'s parameters as they are now.
    pub fn new(vs: &nn::VarStore) -> Self {
        let vars = sorted_variables(vs);
        let copy = vars
            .iter()
            .map(|(n, p)| (n.clone(), p.detach().copy()))
            .collect();
        WeightCopy {
            params: vars.into_iter().map(|(_, p)| p).collect(),
            copy,
        }
    }

    /// Each (parameter, copy) pair, under `no_grad`.
    pub(crate) fn for_each(&mut self, mut f: impl FnMut(&mut Tensor, &mut Tensor)) {
        tch::no_grad(|| {
            for (p, (_, c)) in self.params.iter_mut().zip(&mut self.copy) {
                f(p, c);
            }
        });
    }

    /// The copy by name, for a checkpoint.
    pub fn tensors(&self) -> Vec<(String, &Tensor)> {
        self.copy.iter().map(|(n, t)| (n.clone(), t)).collect()
    }

    /// The copy a checkpoint saved in `file` (`what` names it in errors).
    pub fn load(&mut self, file: &Path, what: &str) -> TrainResult<()> {
        Ok(load_tensors_into(file, &self.copy, what)?)
    }
}
