// Data parallelism through torch.distributed's own C++ engine (c10d): a TCPStore for the rendezvous and a
// Gloo process group for the collectives (CPU tensors). tch has no bindings for c10d, so rewarm reaches it
// through these C functions. The store is also how the CUDA path exchanges its NCCL id (src/dist.rs).
// Errors come back as 1 and a message in `error`, never as an exception crossing into Rust.
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace {
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> gloo;
};

int fail(const char *message, char *error, size_t error_len) {
  if (error_len > 0) {
    std::strncpy(error, message, error_len - 1);
    error[error_len - 1] = '\0';
  }
  return 1;
}

// Runs `f`, turning any exception into 1 and a message in `error`: none may cross into Rust.
template <typename F>
int guarded(F f, char *error, size_t error_len) {
  try {
    f();
    return 0;
  } catch (const std::exception &e) {
    return fail(e.what(), error, error_len);
  } catch (...) {
    return fail("unknown C++ exception", error, error_len);
  }
}
}  // namespace

// Joins the group of `world` processes whose rank 0 serves the store on host:port (rank 0 starts the
// server itself). Blocks until all have joined or `timeout_ms` passes. `*out` receives the group.
extern "C" int rewarm_dist_init(const char *host, int port, int rank, int world, long timeout_ms,
                                void **out, char *error, size_t error_len) {
  return guarded(
      [&] {
        auto timeout = std::chrono::milliseconds(timeout_ms);
        c10d::TCPStoreOptions options;
        options.port = static_cast<std::uint16_t>(port);
        options.isServer = rank == 0;
        options.numWorkers = world;
        options.waitWorkers = true;
        options.timeout = timeout;
        auto group = std::make_unique<Group>();
        group->store = c10::make_intrusive<c10d::TCPStore>(host, options);
        auto gloo_options = c10d::ProcessGroupGloo::Options::create_default(timeout);
        group->gloo =
            c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, rank, world, gloo_options);
        *out = group.release();
      },
      error, error_len);
}

extern "C" void rewarm_dist_free(void *group) { delete static_cast<Group *>(group); }

// Sums `tensor` (a CPU tensor) over all processes, in place; every process gets the same bits.
extern "C" int rewarm_dist_allreduce_sum(void *group, at::Tensor *tensor, char *error,
                                         size_t error_len) {
  return guarded(
      [&] {
        std::vector<at::Tensor> tensors{*tensor};
        c10d::AllreduceOptions options;
        options.reduceOp = c10d::ReduceOp::SUM;
        static_cast<Group *>(group)->gloo->allreduce(tensors, options)->wait();
      },
      error, error_len);
}

// Sets `key` in the group's store (rank 0 publishing the NCCL id).
extern "C" int rewarm_dist_store_set(void *group, const char *key, const uint8_t *value, size_t len,
                                     char *error, size_t error_len) {
  return guarded(
      [&] {
        static_cast<Group *>(group)->store->set(key, std::vector<uint8_t>(value, value + len));
      },
      error, error_len);
}

// Waits for `key` in the group's store and copies its value (exactly `len` bytes) into `value`.
extern "C" int rewarm_dist_store_get(void *group, const char *key, uint8_t *value, size_t len,
                                     char *error, size_t error_len) {
  return guarded(
      [&] {
        auto got = static_cast<Group *>(group)->store->get(key);
        if (got.size() != len) {
          throw std::runtime_error("store key " + std::string(key) + ": expected " +
                                   std::to_string(len) + " bytes, got " + std::to_string(got.size()));
        }
        std::memcpy(value, got.data(), len);
      },
      error, error_len);
}
