#!/usr/bin/env bash
# Copies what a study measured out of its output folder into a folder to commit (studies/<name>/…):
# every run's records — plan.toml, plan.json, metrics.jsonl, baselines.json, environment.json — and the
# sweep's sweep.json, but no checkpoints, TensorBoard files or locks. The D0 pretraining runs' records go
# along (DEST/pretrain-seed<s>/), so the reader can check that D0 beat its bigram baseline.
#
#   scripts/keep-study-records.sh OUT DEST [PRETRAIN_DIR]     (PRETRAIN_DIR: the study's --pretrain-dir,
#                                                              default OUT)
#
# Copying into a DEST that already holds other seeds adds these runs beside them (sweep.json is taken from
# OUT). To train more seeds later on another machine, copy DEST/runs back to OUT/runs with the same data
# and output paths (run ids hash the plan, paths included) and call the study with --seed/--seeds covering
# all seeds: a run whose records reach its last step counts as done without its checkpoints, so only the
# new seeds train, and the report covers them all (docs/sweeps.md).
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
OUT=$1 DEST=$2 PRE=${3:-$1}
[[ -f $OUT/runs/sweep.json ]] || { echo "$OUT/runs/sweep.json: not a study's output folder (--out)" >&2; exit 1; }

# keep RUN TO: the record files of run folder RUN, copied into TO.
keep() {
    mkdir -p "$2"
    for f in plan.toml plan.json metrics.jsonl baselines.json environment.json; do
        if [[ -f $1/$f ]]; then cp "$1/$f" "$2/"; fi
    done
}

mkdir -p "$DEST/runs"
cp "$OUT/runs/sweep.json" "$DEST/runs/"
n=0
for run in "$OUT"/runs/*/; do
    [[ -f $run/metrics.jsonl ]] || continue
    keep "$run" "$DEST/runs/$(basename "$run")"
    n=$((n + 1))
done
for pre in "$PRE"/pretrain-seed*/; do
    if [[ -f $pre/metrics.jsonl ]]; then keep "$pre" "$DEST/$(basename "$pre")"; fi
done
echo "kept the records of $n runs in $DEST/runs (and D0's, if any, beside it)"
