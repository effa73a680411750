#!/usr/bin/env bash
# Training-step throughput on the CPU: `rewarm bench train` against the same model and step in PyTorch
# eager (scripts/bench_torch.py), same settings, one after the other, and PyTorch once more with the glibc
# malloc settings rewarm applies to itself; prints the ratios rewarm / PyTorch. About 7 minutes.
#
#   scripts/bench-cpu.sh                    # both settings of BENCHMARKS.md
#   PYTHON=/path/to/venv/bin/python scripts/bench-cpu.sh
#   THREADS=2 SMALL_STEPS=60 P70M_STEPS=12 scripts/bench-cpu.sh
#
# PYTHON picks the interpreter with torch (default: python3); without torch the PyTorch runs are skipped.
# Run it on an otherwise idle machine: a concurrent compile halves either number.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
SMALL_STEPS=${SMALL_STEPS:-60}
P70M_STEPS=${P70M_STEPS:-12}
WARMUP=${WARMUP:-3}
PYTHON=${PYTHON:-python3}

cargo build --release -p rewarm
REWARM=target/release/rewarm

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

# The tokens/s figure of a report (both tools print "  N tokens/s; step time …").
tokens_per_second() { awk '/ tokens\/s; step time/ { print $1; exit }'; }

summary=()
run() { # name preset seq_len batch steps
    local name=$1 preset=$2 t=$3 b=$4 steps=$5
    local args=(--preset "$preset" --seq-len "$t" --batch "$b" --steps "$steps" --warmup-steps "$WARMUP" --threads "$THREADS")
    echo
    echo "== $name: $preset, T=$t, B=$b, $THREADS threads, $steps timed steps =="
    echo "\$ $REWARM bench train ${args[*]}"
    local ours theirs tuned
    ours=$("$REWARM" bench train "${args[@]}" | tee /dev/stderr | tokens_per_second)
    if [ "$HAVE_TORCH" = 1 ]; then
        echo "\$ $PYTHON scripts/bench_torch.py ${args[*]}"
        theirs=$("$PYTHON" scripts/bench_torch.py "${args[@]}" | tee /dev/stderr | tokens_per_second)
        # rewarm keeps freed memory in the heap (crates/train/src/host_memory.rs); PyTorch gets the same
        # from glibc's environment variables, so the second PyTorch run shows what is left without it.
        echo "\$ MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 $PYTHON scripts/bench_torch.py ${args[*]}"
        tuned=$(MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 "$PYTHON" scripts/bench_torch.py "${args[@]}" |
            tee /dev/stderr | tokens_per_second)
        summary+=("$(awk -v n="$name" -v a="$ours" -v b="$theirs" -v c="$tuned" 'BEGIN {
            printf "%-22s rewarm %7.0f   PyTorch eager %7.0f (%.2fx)   PyTorch eager, same malloc settings %7.0f (%.2fx)",
                n, a, b, a / b, c, a / c }')")
    else
        summary+=("$(printf '%-22s rewarm %7.0f   (PyTorch skipped)' "$name" "$ours")")
    fi
}

run "small T=256 B=16" small 256 16 "$SMALL_STEPS" 2>&1
run "pythia-70m T=256 B=8" pythia-70m 256 8 "$P70M_STEPS" 2>&1

echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== tokens/s (ratio = rewarm / PyTorch) =="
printf '%s\n' "${summary[@]}"
