#!/usr/bin/env bash
# The GPU check, in one call on the GPU machine (no Rust, no internet there; nothing is built). 2 min 15 s
# on one H200 (2026-12-04, BENCHMARKS.md), most of it torch.compile's compilation:
#   1. the binary reaches CUDA (loads the machine's PyTorch libtorch) and trains a few bf16 steps;
#   2. scripts/bench-gpu.sh: rewarm vs PyTorch eager vs torch.compile on GPT-2-small (B=16, T=1024), then
#      both steps part by part (--breakdown) and rewarm in f32;
#   3. continual pre-training on the GPU: `rewarm quickstart --device cuda` (pretrain on English, continue
#      on German with re-warm + re-decay, with and without replay, and the union retrain), printing the
#      forgetting/adaptation table.
# Everything it prints goes into BENCHMARKS.md with device and date.
#
# On the build machine (dist/ is git-ignored; stripped, the binaries are ~12 MiB each, within the device
# tool's 64 MiB carry limit):
#   cargo build --release -p rewarm -p rewarm-bench && mkdir -p dist &&
#   strip -o dist/rewarm "$CARGO_TARGET_DIR/release/rewarm" &&
#   strip -o dist/rewarm-bench "$CARGO_TARGET_DIR/release/rewarm-bench"
# With the device tool:   run command="scripts/device-check.sh --rewarm dist/rewarm --gpu-tests dist/gpu-tests --out \$OUT"
# carry=["dist"]. Each section has its own time limit and a failing one does not stop the others; the
# script exits non-zero if any failed. What comes back: $OUT/device-check.log (everything printed) and
# $OUT/results.tar.gz (the benchmark's JSON, the quickstart's run folders without checkpoints, its report).
#
# The opt-in GPU tests need no Rust on the device either: build their binary here
# (`cargo test --release -p rewarm-train --test gpu --no-run` prints its path), strip it into dist/ too
# (94 MiB unstripped), and pass it with --gpu-tests.
#
#   scripts/device-check.sh [--rewarm BIN] [--gpu-tests BIN] [--out DIR] [--skip-bench] [--skip-cpt]
#                           [--only-tests]
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
REWARM=${REWARM:-$REPO/target/release/rewarm}
OUT=${OUT:-$(mktemp -d)}
BENCH=1 CPT=1 GPU_TESTS=
PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case "$1" in
    --rewarm) REWARM=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --gpu-tests) GPU_TESTS=$2; shift 2 ;;
    --skip-bench) BENCH=0; shift ;;
    --skip-cpt) CPT=0; shift ;;
    --only-tests) BENCH=0; CPT=0; shift ;;
    *) echo "device-check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
REWARM=$(cd "$(dirname "$REWARM")" && pwd)/$(basename "$REWARM")
BENCH_BIN=$(dirname "$REWARM")/rewarm-bench
mkdir -p "$OUT"
WORK=$(mktemp -d)
exec > >(tee "$OUT/device-check.log") 2>&1
TORCH_LIB=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
FAILED=()
# section NAME SECONDS COMMAND…: runs one check under its own time limit and records a failure.
section() {
  local name=$1 limit=$2; shift 2
  echo; echo "== $name ($(date -u +%H:%M:%S), limit ${limit}s)"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  echo "-- $name: exit $rc after $((SECONDS - t0)) s"
  [ "$rc" = 0 ] || FAILED+=("$name (exit $rc)")
}

echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" -c 'import torch; print("pytorch", torch.__version__, "cuda", torch.version.cuda)'
date -u +%Y-%m-%dT%H:%M:%SZ

section "1. rewarm reaches CUDA" 60 \
  "$BENCH_BIN" train --preset small --device cuda --batch 8 --seq-len 256 --steps 5 --warmup-steps 2
[ -n "$GPU_TESTS" ] && section "1b. opt-in GPU tests" 150 \
  env REWARM_GPU_TESTS=1 "$GPU_TESTS" --test-threads 1
if [ "$BENCH" = 1 ]; then
  section "2. speed: GPT-2-small shape, B=16, T=1024, bf16" 200 \
    "$REPO/scripts/bench-gpu.sh" --rewarm "$REWARM" --preset gpt2-124m --batch 16 --seq-len 1024 --steps 30 \
    --out "$WORK/bench"
fi
if [ "$BENCH" = 1 ]; then
  parts=(--preset gpt2-124m --device cuda --batch 16 --seq-len 1024 --steps 20 --warmup-steps 5 --breakdown)
  section "2c. where a step's time goes: rewarm" 60 "$BENCH_BIN" train "${parts[@]}"
  section "2c. where a step's time goes: PyTorch eager" 60 env PYTHONUNBUFFERED=1 "$PYTHON" "$REPO/scripts/bench_torch.py" "${parts[@]}"
fi
if [ "$CPT" = 1 ]; then
  section "3. continual pre-training on the GPU (rewarm quickstart --device cuda)" 240 \
    "$REWARM" quickstart --device cuda --out "$WORK/quickstart"
  head -80 "$WORK/quickstart/report/report.md" 2>/dev/null
fi
if [ "$BENCH" = 1 ]; then
  section "2b. rewarm in f32 (what bf16 autocast buys)" 60 \
    "$BENCH_BIN" train --preset gpt2-124m --device cuda --batch 16 --seq-len 1024 --steps 10 --precision fp32
fi
# Everything but checkpoints and token shards comes back in one archive.
tar -C "$WORK" --exclude=ckpt --exclude='*.tok' -czf "$OUT/results.tar.gz" . 2>/dev/null
echo; echo "== done ($(date -u +%H:%M:%S)); failed: ${FAILED[*]:-none}"
[ ${#FAILED[@]} = 0 ]
