#!/usr/bin/env bash
# What `[ema]`, `[guard.spikes]`, `train.z_loss` and a stage's `reptile` cost per step on the CPU:
# examples/wsd-trunk.toml (the `small` model, 32×128-token batches) trained for STEPS steps plain and with
# each option, ROUNDS rounds alternating, reporting the mean tokens/s over the steps after the first 5
# (BENCHMARKS.md).
# Usage: [NAMES="plain reptile"] scripts/bench-guards.sh PREPARED_DIR [STEPS=40] [ROUNDS=3]
#   (PREPARED_DIR holds en/ and de/; NAMES picks options, default all)
set -euo pipefail
prepared=$(realpath "$1"); steps=${2:-40}; rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
rewarm=${REWARM:-${CARGO_TARGET_DIR:-$root/target}/release/rewarm}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/examples"; ln -s "$prepared" "$work/prepared"
base="$root/examples/wsd-trunk.toml"
declare -A extra=(
  [plain]=""
  [ema]=$'[ema]\ndecay = 0.999'
  [spikes]=$'[guard.spikes]\nwindow = 16'
  [z_loss]=""
  [reptile]=""
)
names=${NAMES:-plain ema spikes z_loss reptile}
for round in $(seq "$rounds"); do
  for name in $names; do
    plan="$work/examples/$name.toml"
    # Top-level tables go before [[stages]]; z_loss goes into [train], reptile into every stage.
    awk -v extra="${extra[$name]}" -v z="$name" '
      /^\[\[stages\]\]/ && !done { if (extra != "") print extra "\n"; done = 1 }
      { print }
      /^\[train\]/ && z == "z_loss" { print "z_loss = 1e-4" }
      /^\[\[stages\]\]/ && z == "reptile" { print "reptile = { inner_steps = 8, beta = 0.1 }" }' "$base" > "$plan"
    run="$work/runs/$name-$round"
    "$rewarm" train "$plan" --run "$run" --device cpu --stop-at-step "$steps" > /dev/null 2>&1
    python3 - "$run/metrics.jsonl" "$name" "$round" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tps = [r["tokens_per_second"] for r in rows if r.get("kind") == "train" and r["step"] > 5]
print(f"{sys.argv[2]:>7} round {sys.argv[3]}: {sum(tps) / len(tps):8.0f} tokens/s over {len(tps)} steps")
PY
  done
done
