#pragma once
// See ../README.md: declarations only (c10d's inline ProcessGroupGloo::setTimeout names this member).
#include <chrono>

#include "transport/device.h"
namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
