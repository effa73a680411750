// One call into libtorch's fused AdamW kernel (`at::_fused_adamw_`, what `torch.optim.AdamW(fused=True)`
// runs): one pass over each parameter instead of a dozen tensor ops. tch has no binding for it (ops that take
// tensor lists and return nothing are not generated), so rewarm calls it through this function. tch's tensor
// handles are `at::Tensor *` (torch-sys's libtch/torch_api.h: `typedef torch::Tensor *tensor`).
#include <ATen/core/Tensor.h>
#include <ATen/ops/_fused_adamw.h>
#include <c10/core/GradMode.h>

#include <cstring>
#include <exception>
#include <optional>
#include <vector>

namespace {
std::vector<at::Tensor> list(at::Tensor *const *tensors, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(*tensors[i]);
  return out;
}
}  // namespace

// Updates params, exp_avgs and exp_avg_sqs in place (grads too when grad_scale is given: they are divided by
// it). `steps` holds the step count (f32, 1 at the first step) once per tensor, on the params' device;
// `grad_scale` (f32 scalar on that device, may be null) divides the gradients, which is how clipping enters;
// `found_inf` (f32 scalar, may be null) skips the whole update when it is 1, which is how a non-finite step
// is left out without the host reading anything back. Returns 0, or 1 with the exception's message in
// `error`.
extern "C" int rewarm_fused_adamw(at::Tensor *const *params, at::Tensor *const *grads,
                                  at::Tensor *const *exp_avgs, at::Tensor *const *exp_avg_sqs,
                                  at::Tensor *const *steps, size_t n, double lr, double beta1,
                                  double beta2, double weight_decay, double eps,
                                  const at::Tensor *grad_scale, const at::Tensor *found_inf,
                                  char *error, size_t error_len) {
  try {
    c10::NoGradGuard no_grad;
    std::optional<at::Tensor> scale, inf;
    if (grad_scale != nullptr) scale = *grad_scale;
    if (found_inf != nullptr) inf = *found_inf;
    at::_fused_adamw_(list(params, n), list(grads, n), list(exp_avgs, n), list(exp_avg_sqs, n), {},
                      list(steps, n), lr, beta1, beta2, weight_decay, eps, /*amsgrad=*/false,
                      /*maximize=*/false, scale, inf);
    return 0;
  } catch (const std::exception &e) {
    if (error_len > 0) {
      std::strncpy(error, e.what(), error_len - 1);
      error[error_len - 1] = '\0';
    }
    return 1;
  }
}
