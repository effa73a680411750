#!/usr/bin/env bash
# The test suite: sets up libtorch (cached outside the clone, once) and runs every test on CPU.
# GPU tests are opt-in (REWARM_GPU_TESTS=1) and skip without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-libtorch.sh >/dev/null
cargo test --release --workspace "$@"
