//! Mixed precision: matmuls and attention in bf16 under libtorch's autocast, everything else (parameters,
//! gradients, AdamW's moments, the loss's log-softmax) in f32. bf16 has f32's exponent range, so no loss
//! scaling is needed. Through csrc/autocast.cpp, since tch's own `autocast` sets fp16.

use tch::Device;

use std::ffi::{c_int, c_long};

extern "C" {
    fn rewarm_autocast_enter(cuda: c_int) -> c_long;
    fn rewarm_autocast_exit(cuda: c_int, previous: c_long);
}

/// Runs `f` (forward passes; the backward pass follows the dtypes they recorded) with bf16 autocast for
/// `device` when `enabled`, else plainly.
pub fn bf16<T>(enabled: bool, device: Device, f: impl FnOnce() -> T) -> T {
    if !enabled {
        return f();
    }
    let cuda = matches!(device, Device::Cuda(_)) as c_int;
    struct Exit(c_int, c_long);
    impl Drop for Exit {
        fn drop(&mut self) {
            // SAFETY: restores thread-local autocast state; no pointers.
            unsafe { rewarm_autocast_exit(self.0, self.1) };
        }
    }
    // SAFETY: as above.
    let _exit = Exit(cuda, unsafe { rewarm_autocast_enter(cuda) });
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn matmuls_run_in_bf16_inside_and_f32_outside() {
        let a = Tensor::randn([8, 8], (Kind::Float, Device::Cpu));
        let inside = bf16(true, Device::Cpu, || a.matmul(&a));
        assert_eq!(inside.kind(), Kind::BFloat16);
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        assert_eq!(
            bf16(false, Device::Cpu, || a.matmul(&a)).kind(),
            Kind::Float
        );
        // Nested regions leave autocast on until the outermost one ends.
        let (inner, after_inner) = bf16(true, Device::Cpu, || {
            let inner = bf16(true, Device::Cpu, || a.matmul(&a));
            (inner, a.matmul(&a))
        });
        assert_eq!(inner.kind(), Kind::BFloat16);
        assert_eq!(after_inner.kind(), Kind::BFloat16);
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        // Close to the f32 product, to bf16's 8 bits of mantissa.
        let diff = (inside.to_kind(Kind::Float) - a.matmul(&a)).abs().max();
        let scale = a.matmul(&a).abs().max();
        assert!(diff.double_value(&[]) <= 0.02 * scale.double_value(&[]));
    }
}
