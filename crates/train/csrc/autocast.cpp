// bf16 autocast. tch's `autocast` toggles CUDA autocast only, whose default dtype is fp16; mixed precision
// in rewarm means bf16 (no loss scaling needed), on CUDA and on the CPU alike, which takes
// `set_autocast_dtype`, not bound by tch.
#include <ATen/autocast_mode.h>

namespace {
at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
}  // namespace

// Enters a bf16 autocast region for `cuda` (1) or CPU (0) tensors in this thread. Returns the previous
// state for rewarm_autocast_exit: bit 0 enabled, the rest the previous dtype.
extern "C" long rewarm_autocast_enter(int cuda) {
  const auto device = device_type(cuda);
  const long previous = (static_cast<long>(at::autocast::get_autocast_dtype(device)) << 1) |
                        (at::autocast::is_autocast_enabled(device) ? 1 : 0);
  at::autocast::set_autocast_dtype(device, at::kBFloat16);
  at::autocast::set_autocast_enabled(device, true);
  at::autocast::increment_nesting();
  return previous;
}

// Leaves the region: restores the previous state; leaving the outermost region clears the cache of cast
// weights, as torch.autocast's exit does.
extern "C" void rewarm_autocast_exit(int cuda, long previous) {
  const auto device = device_type(cuda);
  at::autocast::set_autocast_enabled(device, (previous & 1) != 0);
  at::autocast::set_autocast_dtype(device, static_cast<at::ScalarType>(previous >> 1));
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

// A page-locked copy of a CPU tensor (tch's pin_memory passes a device, which libtorch 2.11 deprecates
// with a warning per call). Null on error.
extern "C" at::Tensor *rewarm_pin_memory(const at::Tensor *tensor) {
  try {
    return new at::Tensor(tensor->pin_memory());
  } catch (...) {
    return nullptr;
  }
}
