// bf16 autocast. tch's `autocast` toggles CUDA autocast only, whose default dtype is fp16; mixed precision
// in rewarm means bf16 (no loss scaling needed), on CUDA and on the CPU alike, which takes
// `set_autocast_dtype`, not bound by tch.
#include <ATen/autocast_mode.h>

// Turns bf16 autocast for `cuda` (1) or CPU (0) tensors on or off in this thread. Leaving the outermost
// region clears the cache of casted weights, as torch.autocast's exit does. Returns the previous state.
extern "C" int rewarm_autocast_bf16(int cuda, int enabled) {
  const auto device = cuda ? at::kCUDA : at::kCPU;
  const bool was = at::autocast::is_autocast_enabled(device);
  if (enabled) {
    at::autocast::set_autocast_dtype(device, at::kBFloat16);
    at::autocast::set_autocast_enabled(device, true);
    at::autocast::increment_nesting();
  } else {
    at::autocast::set_autocast_enabled(device, false);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  }
  return was ? 1 : 0;
}
