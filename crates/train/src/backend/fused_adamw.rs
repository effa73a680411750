//! libtorch's fused AdamW kernel (`at::_fused_adamw_`, what `torch.optim.AdamW(fused=True)` runs),
//! through csrc/fused_adamw.cpp: tch does not bind it.

use std::ffi::{c_char, c_int, CStr};
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    /// csrc/fused_adamw.cpp: `at::_fused_adamw_` over n tensors; 0 on success, else 1 and a message.
    fn rewarm_fused_adamw(
        params: *const *const C_tensor,
        grads: *const *const C_tensor,
        exp_avgs: *const *const C_tensor,
        exp_avg_sqs: *const *const C_tensor,
        steps: *const *const C_tensor,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        grad_scale: *const C_tensor,
        found_inf: *const C_tensor,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
}

/// Parameters updated in one call, with their gradients and moments (equal lengths; f32, contiguous).
pub struct FusedGroup<'a> {
    pub params: Vec<&'a Tensor>,
    pub grads: Vec<&'a Tensor>,
    pub exp_avgs: Vec<&'a Tensor>,
    pub exp_avg_sqs: Vec<&'a Tensor>,
}

/// The update's hyperparameters.
pub struct Hyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
}

/// One AdamW update of `group` in place. `step` is the 0-d step count after this update; the kernel
/// divides the gradients by `grad_scale` (if given) and leaves everything unchanged where `found_inf`
/// (if given) holds 1.
pub fn fused_adamw(
    group: &FusedGroup,
    step: &Tensor,
    hyper: &Hyper,
    grad_scale: Option<&Tensor>,
    found_inf: Option<&Tensor>,
) {
    let n = group.params.len();
    assert!(
        [&group.grads, &group.exp_avgs, &group.exp_avg_sqs]
            .iter()
            .all(|v| v.len() == n),
        "a fused AdamW group holds one gradient and two moments per parameter"
    );
    let ptrs = |v: &[&Tensor]| -> Vec<*const C_tensor> { v.iter().map(|t| t.as_ptr()).collect() };
    let (params, grads) = (ptrs(&group.params), ptrs(&group.grads));
    let (exp_avgs, exp_avg_sqs) = (ptrs(&group.exp_avgs), ptrs(&group.exp_avg_sqs));
    let steps = vec![step.as_ptr(); n];
    let optional = |t: Option<&Tensor>| t.map_or(std::ptr::null(), |t| t.as_ptr());
    let mut error = [0 as c_char; 1024];
    // SAFETY: every pointer is a live tch tensor (an `at::Tensor *`) borrowed for the duration of the call;
    // the arrays hold `n` entries and `error` has `error.len()` bytes.
    let rc = unsafe {
        rewarm_fused_adamw(
            params.as_ptr(),
            grads.as_ptr(),
            exp_avgs.as_ptr(),
            exp_avg_sqs.as_ptr(),
            steps.as_ptr(),
            n,
            hyper.lr,
            hyper.beta1,
            hyper.beta2,
            hyper.weight_decay,
            hyper.eps,
            optional(grad_scale),
            optional(found_inf),
            error.as_mut_ptr(),
            error.len(),
        )
    };
    if rc != 0 {
        // The caller checked dtypes and layout, so this is a libtorch bug, not a data error.
        // SAFETY: the shim wrote a NUL-terminated message into `error`.
        let message = unsafe { CStr::from_ptr(error.as_ptr()) };
        panic!(
            "libtorch's fused AdamW failed: {}",
            message.to_string_lossy()
        );
    }
}
