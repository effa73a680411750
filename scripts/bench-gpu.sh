#!/usr/bin/env bash
# GPU training speed: rewarm against PyTorch eager and torch.compile on the same model, batch and step, in
# one call on one device, and the ratios. Builds nothing: run it on the GPU machine with a rewarm binary
# built elsewhere (the default build links a CPU libtorch and loads the CUDA one at run time from
# LD_LIBRARY_PATH, which this script points at the local PyTorch's torch/lib).
#
#   scripts/bench-gpu.sh [--rewarm BIN] [--preset gpt2-124m] [--batch 16] [--seq-len 1024] [--steps 30]
#                        [--rounds 1] [--device cuda] [--precision auto|fp32|bf16] [--out DIR]
#
# Each measurement is its own process (so memory numbers are each one's own); with --rounds > 1 the three
# alternate and the medians are compared. Prints one table; the JSON of every run lands in --out.
# `--device cpu` runs the same comparison on the CPU (a smoke test of this script).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
REWARM=${REWARM:-$REPO/target/release/rewarm}
BENCH=
PRESET=gpt2-124m BATCH=16 SEQ=1024 STEPS=30 ROUNDS=1 DEVICE=cuda PRECISION=auto OUT=
PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case "$1" in
    --rewarm) REWARM=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --seq-len) SEQ=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --precision) PRECISION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "bench-gpu.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
# The benchmark is the `rewarm-bench` binary, by default the one beside the rewarm binary.
BENCH=${BENCH:-$(dirname "$REWARM")/rewarm-bench}
[ -x "$BENCH" ] || { echo "bench-gpu.sh: no rewarm-bench binary at $BENCH (pass --bench BIN or --rewarm BIN with rewarm-bench beside it)" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
TORCH_LIB=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if [ "$DEVICE" != cpu ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
"$PYTHON" -c 'import torch; print("pytorch", torch.__version__, "cuda", torch.version.cuda)'
echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ); $PRESET, B=$BATCH, T=$SEQ, $STEPS timed steps, $ROUNDS round(s); JSON in $OUT"

common=(--preset "$PRESET" --batch "$BATCH" --seq-len "$SEQ" --steps "$STEPS" --warmup-steps 5 --device "$DEVICE" --precision "$PRECISION" --json)
for round in $(seq 1 "$ROUNDS"); do
  # Rotate the order per round so that no contender always runs first (thermal state, page cache).
  order=(rewarm eager compile)
  for ((i = 0; i < (round - 1) % 3; i++)); do order=("${order[@]:1}" "${order[0]}"); done
  for who in "${order[@]}"; do
    case $who in
      rewarm) "$BENCH" train "${common[@]}" > "$OUT/rewarm.$round.json" ;;
      eager) "$PYTHON" "$REPO/scripts/bench_torch.py" "${common[@]}" > "$OUT/eager.$round.json" ;;
      compile) "$PYTHON" "$REPO/scripts/bench_torch.py" "${common[@]}" --compile > "$OUT/compile.$round.json" ;;
    esac
    echo "  round $round: $who done" >&2
  done
done

"$PYTHON" - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def runs(who):
    return [json.load(open(f"{out}/{who}.{r}.json")) for r in range(1, rounds + 1)]
rewarm, eager, compiled = runs("rewarm"), runs("eager"), runs("compile")
tps = lambda rs: statistics.median(r["tokens_per_second"] for r in rs)
mem = lambda rs: max((r.get("peak_memory_bytes") or 0) for r in rs) / 2**30
flops = rewarm[0]["flops_per_token"]
peak = rewarm[0].get("peak")
print(f"model {rewarm[0]['params'] / 1e6:.1f}M params, {flops / 1e6:.1f} MFLOP/token, precision {rewarm[0]['precision']}")
print(f"{'':<22}{'tokens/s':>12}{'MFU':>8}{'peak mem GiB':>14}{'rewarm ×':>10}")
for name, rs in [("rewarm", rewarm), ("pytorch eager", eager), ("pytorch torch.compile", compiled)]:
    mfu = f"{100 * tps(rs) * flops / peak['flops_per_second']:.1f}%" if peak else "n/a"
    print(f"{name:<22}{tps(rs):>12.0f}{mfu:>8}{mem(rs):>14.2f}{tps(rewarm) / tps(rs):>10.2f}")
if peak:
    print(f"MFU against {peak['source']}")
print(f"memory: device memory in use (total − free, CUDA context and cached blocks included); PyTorch's own "
      f"max allocated: eager {max(r['cuda_memory']['max_allocated'] for r in eager) / 2**30:.2f} GiB, "
      f"compile {max(r['cuda_memory']['max_allocated'] for r in compiled) / 2**30:.2f} GiB"
      if eager[0].get("cuda_memory") else "memory: process high-water marks (CPU)")
PY
