#!/usr/bin/env bash
# Reads a run's metrics the way other tools do and checks that they hold exactly metrics.jsonl's numbers:
#  - the TensorBoard event file, with TensorBoard's own reader (EventAccumulator): every train, eval,
#    rollback, representation and task value at its step, each step once;
#  - `rewarm export-metrics --format parquet` and `--format csv`, with pandas (pyarrow): the same frames.
# Python packages (tensorboard, pandas, pyarrow from PyPI) are installed once into
# ~/.cache/rewarm/metric-readers-venv.
#
#   scripts/check-metric-readers.sh RUN [RUN…]      # REWARM=path/to/rewarm (default: the release build)
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: scripts/check-metric-readers.sh RUN [RUN…] (run folders that rewarm train wrote)" >&2
  exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
rewarm="${REWARM:-${CARGO_TARGET_DIR:-$repo/target}/release/rewarm}"
if [ ! -x "$rewarm" ]; then
  echo "check-metric-readers: no rewarm binary at $rewarm; build it (cargo build --release -p rewarm) or" \
       "set REWARM" >&2
  exit 1
fi
venv="${REWARM_CACHE:-$HOME/.cache/rewarm}/metric-readers-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "tensorboard>=2.16,<3" "pandas>=2" "pyarrow>=15"
fi
tables="$(mktemp -d)"
trap 'rm -rf "$tables"' EXIT
for run in "$@"; do
  for format in csv parquet; do
    "$rewarm" export-metrics "$run" --out "$tables/$(basename "$run")" --format "$format" >/dev/null
  done
done
"$venv/bin/python" - "$tables" "$@" <<'PY'
import json, math, sys
from pathlib import Path
import pandas as pd
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

TRAIN = ["loss", "lr", "grad_norm", "tokens", "tokens_per_second", "replay_fraction", "spikes_skipped"]

def expected(run):
    want = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        kind, step = r["kind"], r["step"]
        if kind == "train":
            for k in TRAIN:
                want.setdefault(f"train/{k}", []).append((step, float(r.get(k, 0))))
            if r.get("grad_norm_l1") is not None:
                want.setdefault("train/grad_norm_l1", []).append((step, r["grad_norm_l1"]))
        elif kind == "eval":
            want.setdefault(f"eval/{r['set']}/loss", []).append((step, r["loss"]))
            if r.get("bits_per_byte") is not None:
                want.setdefault(f"eval/{r['set']}/bits_per_byte", []).append((step, r["bits_per_byte"]))
        elif kind == "rollback":
            want.setdefault("rollback/lr_scale", []).append((step, r["lr_scale"]))
        elif kind == "representation":
            for k in ["rank_me", "alpha_req", "dormant_fraction"]:
                want.setdefault(f"representation/{k}", []).append((step, r[k]))
            for i, layer in enumerate(r["layers"]):
                for k in ["weight_norm", "update_norm"]:
                    if layer.get(k) is not None:
                        want.setdefault(f"representation/layer{i}/{k}", []).append((step, layer[k]))
        elif kind == "task":
            for k in ["acc", "acc_norm"]:
                want.setdefault(f"task/{r['task']}/{k}", []).append((step, r[k]))
    return want

def same_tables(tables):
    """Problems between each table's Parquet and CSV forms as pandas reads them."""
    problems = []
    for name in ["train", "eval", "rollbacks", "representation", "tasks"]:
        p = pd.read_parquet(tables / f"{name}.parquet")
        c = pd.read_csv(tables / f"{name}.csv", keep_default_na=False, na_values=[""])
        try:
            pd.testing.assert_frame_equal(p, c, check_dtype=False)
        except AssertionError as e:
            problems.append(f"{name}.parquet differs from {name}.csv: {e}")
    return problems

failed = False
tables_root = Path(sys.argv[1])
for arg in sys.argv[2:]:
    run = Path(arg)
    if not (run / "tensorboard").is_dir():
        failed = True
        print(f"{run}: FAIL: no tensorboard/ folder (rewarm train writes it beside metrics.jsonl)")
        continue
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    want = expected(run)
    got = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    problems = []
    if set(got) != set(want):
        problems.append(f"tags differ: only in TensorBoard {sorted(set(got) - set(want))}, "
                        f"only in metrics.jsonl {sorted(set(want) - set(got))}")
    for tag, points in want.items():
        seen = got.get(tag, [])
        if [s for s, _ in seen] != [s for s, _ in points]:
            problems.append(f"{tag}: steps differ")
        elif any(not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-30) for (_, a), (_, b) in zip(seen, points)):
            problems.append(f"{tag}: values differ beyond f32 rounding")
    n = sum(len(v) for v in want.values())
    problems += same_tables(tables_root / run.name)
    if problems:
        failed = True
        print(f"{run}: FAIL: " + "; ".join(problems))
    else:
        print(f"{run}: OK: TensorBoard holds {len(want)} tags, {n} values as in metrics.jsonl; "
              f"pandas reads the Parquet tables as the CSV ones")
sys.exit(1 if failed else 0)
PY
