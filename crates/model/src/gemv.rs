//! Decoding's one-position products over several cores. Decoding one token multiplies every weight
//! matrix by a single vector; libtorch runs such a product (MKL's `sgemv`) on one core, so one prompt
//! decodes at one core's share of the memory bandwidth (BENCHMARKS.md, sampling). With
//! [`set_decode_threads`]`(n)`, n > 1, a one-row product on the CPU is split by output rows into n
//! parts computed on n threads at once (`mv` on each part's rows; the outputs agree with libtorch's
//! single product to rounding, a few 1e-6).
//! Off (1) by default: training and evaluation never have one row.

use std::sync::atomic::{AtomicUsize, Ordering};
use tch::{Device, Tensor};

static PARTS: AtomicUsize = AtomicUsize::new(1);

/// Splits one-row products on the CPU over `n` threads from now on (1: as libtorch runs them).
pub fn set_decode_threads(n: usize) {
    PARTS.store(n.max(1), Ordering::Relaxed);
}

/// x·Wᵀ + b for x (…, in), W (out, in); a single row on the CPU is split over the decode threads.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    let parts = PARTS.load(Ordering::Relaxed);
    let (in_dim, out_dim) = (w.size()[1], w.size()[0]);
    // An x that requires grad is training's: its product must stay in the autograd graph.
    if parts < 2 || x.device() != Device::Cpu || x.numel() as i64 != in_dim || x.requires_grad() {
        return x.linear(w, b);
    }
    let row = x.reshape([in_dim]);
    let y = Tensor::empty([out_dim], (x.kind(), Device::Cpu));
    let step = (out_dim + parts as i64 - 1) / parts as i64;
    let work: Vec<(Tensor, Tensor, Tensor)> = (0..out_dim)
        .step_by(step as usize)
        .map(|first| {
            let n = step.min(out_dim - first);
            (
                w.narrow(0, first, n),
                row.shallow_clone(),
                y.narrow(0, first, n),
            )
        })
        .collect();
    // The first part on this thread, the others on rayon's pool, whose threads outlive the call (a
    // thread per product would cost more than it saves). Each part writes its slice of y in place,
    // without autograd (its mode is per thread).
    let mut work = work.into_iter();
    let first = work.next().expect("at least one part");
    rayon::in_place_scope(|s| {
        for (rows, row, out) in work {
            s.spawn(move |_| {
                let _ = tch::no_grad(|| rows.mv_out(&out, &row));
            });
        }
        let (rows, row, out) = first;
        let _ = rows.mv_out(&out, &row);
    });
    let y = match b {
        Some(b) => y + b,
        None => y,
    };
    let mut shape = x.size();
    *shape.last_mut().expect("x has a last dimension") = out_dim;
    y.reshape(shape)
}

/// While held: one-position products split over the cores libtorch was using, and libtorch itself on
/// one thread (its idle threads would spin against the split's). Dropping it restores both. For decoding
/// one sequence on the CPU: 27 tokens/s instead of 22 for SmolLM2-135M in f32 on 2 cores (BENCHMARKS.md).
pub struct DecodeThreads {
    torch_threads: i32,
}

impl DecodeThreads {
    pub fn spread() -> Self {
        let torch_threads = tch::get_num_threads();
        set_decode_threads(torch_threads.max(1) as usize);
        tch::set_num_threads(1);
        DecodeThreads { torch_threads }
    }
}

impl Drop for DecodeThreads {
    fn drop(&mut self) {
        set_decode_threads(1);
        tch::set_num_threads(self.torch_threads);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn a_split_product_agrees_with_libtorchs_to_rounding() {
        tch::manual_seed(3);
        let w = Tensor::randn([1001, 96], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([1001], (Kind::Float, Device::Cpu));
        let x = Tensor::randn([1, 1, 96], (Kind::Float, Device::Cpu));
        let plain = x.linear(&w, Some(&b));
        for parts in [2, 3] {
            set_decode_threads(parts);
            let split = linear(&x, &w, Some(&b));
            set_decode_threads(1);
            assert_eq!(split.size(), [1, 1, 1001]);
            let diff = (&split - &plain).abs().max().double_value(&[]);
            assert!(diff <= 1e-5, "{parts} parts: off by {diff}");
        }
    }
}
