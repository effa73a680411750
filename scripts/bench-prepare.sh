#!/usr/bin/env bash
# `rewarm prepare` on corpora bigger than memory: peak resident memory and throughput.
#
#   scripts/bench-prepare.sh NEW_BINARY [OLD_BINARY]
#   GB=2 LIMIT_MB=1024 SMALL_COPIES=5 scripts/bench-prepare.sh target/release/rewarm /tmp/rewarm-old
#
# Builds two JSONL files by repeating the shipped corpora's training files (data/corpora/*/train.jsonl,
# scripts/fetch-corpora.sh): a small one (SMALL_COPIES copies, ~39 MB each) and a big one (about GB
# gigabytes). Each binary prepares the small one with the GPT-2 tokenizer, alternating, ROUNDS times
# (throughput, no memory limit), then the big one inside a memory cgroup of LIMIT_MB (cgroup v1 or v2;
# needs root) under `/usr/bin/time -v` for the peak RSS. A binary that is killed at the limit is reported
# as such. Work files go to $WORK (default /tmp/bench-prepare, removed at the end). Run it on an otherwise
# idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."

NEW=${1:?usage: scripts/bench-prepare.sh NEW_BINARY [OLD_BINARY]}
OLD=${2:-}
GB=${GB:-2}
LIMIT_MB=${LIMIT_MB:-1024}
SMALL_COPIES=${SMALL_COPIES:-5}
ROUNDS=${ROUNDS:-2}
WORK=${WORK:-/tmp/bench-prepare}

mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
one="$WORK/one.jsonl"
cat data/corpora/*/train.jsonl >"$one"
one_bytes=$(stat -c %s "$one")
for _ in $(seq "$SMALL_COPIES"); do cat "$one"; done >"$WORK/small.jsonl"
copies=$(( (GB * 1000000000 + one_bytes - 1) / one_bytes ))
for _ in $(seq "$copies"); do cat "$one"; done >"$WORK/big.jsonl"
echo "corpora: small $(stat -c %s "$WORK/small.jsonl") bytes, big $(stat -c %s "$WORK/big.jsonl") bytes ($copies copies of data/corpora/*/train.jsonl)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"

# Runs a command inside a memory cgroup of LIMIT_MB.
in_cgroup() {
    local cg
    if [ -d /sys/fs/cgroup/memory ]; then
        cg=/sys/fs/cgroup/memory/rewarm-bench-prepare
        mkdir -p "$cg"
        echo $((LIMIT_MB << 20)) >"$cg/memory.limit_in_bytes"
    else
        cg=/sys/fs/cgroup/rewarm-bench-prepare
        mkdir -p "$cg"
        echo $((LIMIT_MB << 20)) >"$cg/memory.max"
    fi
    sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$cg" "$@"
}

# prepare BINARY INPUT LABEL [cgroup]: prints seconds, MB/s, peak RSS.
run() {
    local bin=$1 input=$2 label=$3 limit=${4:-}
    local out="$WORK/out" log="$WORK/time.log"
    rm -rf "$out"
    local cmd=(/usr/bin/time -v "$bin" prepare "$input" --out "$out" --split none)
    local status=0
    if [ -n "$limit" ]; then
        in_cgroup "${cmd[@]}" >"$WORK/prepare.log" 2>"$log" || status=$?
    else
        "${cmd[@]}" >"$WORK/prepare.log" 2>"$log" || status=$?
    fi
    local rss wall
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$log")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
    if [ "$status" -eq 0 ]; then
        echo "  $label: $(grep -E 'MB of text' "$WORK/prepare.log" | sed 's/^ *//'); peak RSS ${rss} MB; wall $wall"
    else
        echo "  $label: FAILED (exit $status$( [ -n "$limit" ] && echo ", ${LIMIT_MB} MB limit")) after $wall, peak RSS ${rss} MB: $(grep -v '^\s' "$log" | grep -vE 'Command (exited|terminated)' | tail -n 1)"
    fi
}

echo "throughput, small corpus, $ROUNDS rounds alternating:"
for r in $(seq "$ROUNDS"); do
    run "$NEW" "$WORK/small.jsonl" "new (round $r)"
    [ -z "$OLD" ] || run "$OLD" "$WORK/small.jsonl" "old (round $r)"
done
echo "big corpus inside a ${LIMIT_MB} MB memory cgroup:"
run "$NEW" "$WORK/big.jsonl" "new" limit
[ -z "$OLD" ] || run "$OLD" "$WORK/big.jsonl" "old" limit
