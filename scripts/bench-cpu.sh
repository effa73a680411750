#!/usr/bin/env bash
# Training-step throughput on the CPU: `rewarm-bench train` against the same model and step in PyTorch
# eager (scripts/bench_torch.py) at the same settings, and PyTorch once more with the glibc malloc
# settings rewarm applies to itself (crates/train/src/backend/host_memory.rs). The three runs alternate (in a
# rotating order) for ROUNDS short rounds and the medians are compared, so drifts of the machine's speed
# hit all three alike; each run prints how many cores it actually got. About 10 minutes.
#
#   scripts/bench-cpu.sh
#   PYTHON=/path/to/venv/bin/python ROUNDS=5 scripts/bench-cpu.sh
#   PRECISION=bf16 scripts/bench-cpu.sh      # both under bf16 autocast (fast on CPUs with AMX)
#
# PYTHON picks the interpreter with torch (default: python3); without torch the PyTorch runs are skipped.
# Full reports go to $OUT (default target/bench-cpu). Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
PRECISION=${PRECISION:-fp32}
ROUNDS=${ROUNDS:-5}
SMALL_STEPS=${SMALL_STEPS:-8}
P70M_STEPS=${P70M_STEPS:-5}
WARMUP=${WARMUP:-2}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-target/bench-cpu}
mkdir -p "$OUT"

cargo build --release -p rewarm-bench
REWARM=${CARGO_TARGET_DIR:-target}/release/rewarm-bench

if "$PYTHON" -c 'import torch' 2>/dev/null; then
    HAVE_TORCH=1
    echo "PyTorch: $("$PYTHON" -c 'import torch; print(torch.__version__)') ($PYTHON)"
else
    HAVE_TORCH=0
    echo "PyTorch: not found for PYTHON=$PYTHON: skipping the PyTorch runs" \
        "(HINT: PYTHON=/path/to/venv/bin/python with torch installed)"
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# From a report (both tools print "  N tokens/s; step time …" and "  CPU use …: X cores for K threads").
tokens_per_second() { awk '/ tokens\/s; step time/ { print $1; exit }' "$1"; }
cores() { awk '/CPU use during the timed steps/ { print $7; exit }' "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

summary=()
setting() { # name preset seq_len batch steps
    local name=$1 preset=$2 t=$3 b=$4 steps=$5
    local args=(--preset "$preset" --seq-len "$t" --batch "$b" --steps "$steps" --warmup-steps "$WARMUP" --threads "$THREADS" --precision "$PRECISION")
    local tag=$preset-T$t-B$b
    echo
    echo "== $name: $preset, T=$t, B=$b, $PRECISION, $THREADS threads, $WARMUP warm-up + $steps timed steps, $ROUNDS rounds =="
    echo "   rewarm:          $REWARM train ${args[*]}"
    if [ "$HAVE_TORCH" = 1 ]; then
        echo "   PyTorch:         $PYTHON scripts/bench_torch.py ${args[*]}"
        echo "   PyTorch+malloc:  MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 (same command)"
    fi
    local ours=() theirs=() tuned=() r f who order
    local -A got=()
    for r in $(seq 1 "$ROUNDS"); do
        # The order rotates from round to round so that none of the three always runs first.
        order=(rewarm pytorch pytorch-malloc)
        [ "$HAVE_TORCH" = 1 ] || order=(rewarm)
        for _ in $(seq 2 "$r"); do order=("${order[@]:1}" "${order[0]}"); done
        for who in "${order[@]}"; do
            f=$OUT/$tag-$who-$r.txt
            case $who in
                rewarm) "$REWARM" train "${args[@]}" >"$f" ;;
                pytorch) "$PYTHON" scripts/bench_torch.py "${args[@]}" >"$f" ;;
                pytorch-malloc) MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 \
                    "$PYTHON" scripts/bench_torch.py "${args[@]}" >"$f" ;;
            esac
            got[$who]="$(tokens_per_second "$f") ($(cores "$f") cores)"
        done
        ours+=("$(tokens_per_second "$OUT/$tag-rewarm-$r.txt")")
        if [ "$HAVE_TORCH" = 1 ]; then
            theirs+=("$(tokens_per_second "$OUT/$tag-pytorch-$r.txt")")
            tuned+=("$(tokens_per_second "$OUT/$tag-pytorch-malloc-$r.txt")")
            echo "   round $r (${order[*]}): rewarm ${got[rewarm]} | PyTorch ${got[pytorch]} | PyTorch+malloc ${got[pytorch-malloc]}"
        else
            echo "   round $r: rewarm ${got[rewarm]}"
        fi
    done
    echo "   last rewarm report ($OUT/$tag-rewarm-$ROUNDS.txt):"
    sed 's/^/   | /' "$OUT/$tag-rewarm-$ROUNDS.txt"
    local a b c
    a=$(median "${ours[@]}")
    if [ "$HAVE_TORCH" = 1 ]; then
        b=$(median "${theirs[@]}")
        c=$(median "${tuned[@]}")
        summary+=("$(awk -v n="$name" -v a="$a" -v b="$b" -v c="$c" 'BEGIN {
            printf "%-22s rewarm %6.0f   PyTorch eager %6.0f (%.2fx)   PyTorch eager + malloc settings %6.0f (%.2fx)",
                n, a, b, a / b, c, a / c }')")
    else
        summary+=("$(printf '%-22s rewarm %6.0f   (PyTorch skipped)' "$name" "$a")")
    fi
}

setting "small T=256 B=16" small 256 16 "$SMALL_STEPS"
setting "pythia-70m T=256 B=8" pythia-70m 256 8 "$P70M_STEPS"

echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== median tokens/s over $ROUNDS rounds (ratio = rewarm / PyTorch) =="
printf '%s\n' "${summary[@]}"
