#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ in turn, each for SECONDS (default 600 = 10 minutes), one at a time
# in one process (no -jobs, no -workers) at low priority, with the limits that turn unbounded allocation and
# hangs into failures: -rss_limit_mb=2048 (malloc_limit_mb follows it), -timeout=10 s per input.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 60 gguf safetensors
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Builds with debug assertions and
# overflow checks (-a) and AddressSanitizer (cargo-fuzz's default) into $CARGO_TARGET_DIR (default
# ~/.cache/rewarm/fuzz-target, apart from the main build). Seeds: fuzz/seeds/TARGET (checked in); the
# growing corpus: fuzz/corpus/TARGET; crashes: fuzz/artifacts/TARGET; logs: $FUZZ_LOGS (/tmp/fuzz-logs).
# Exits non-zero if any target found a crash, panic, out-of-memory or timeout. See fuzz/README.md.
set -euo pipefail

seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(shard manifest corpus tokenizer_json plan_toml state_json metrics_jsonl gguf safetensors safetensors_index hf_config)

root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rewarm/fuzz-target}
logs=${FUZZ_LOGS:-/tmp/fuzz-logs}
mkdir -p "$logs"
cd "$root/fuzz"

max_len() {
    case $1 in
        gguf | tokenizer_json) echo 16384 ;;
        corpus) echo 32768 ;; # past the 8 KiB the reader sniffs before streaming
        *) echo 8192 ;;
    esac
}

for t in "${targets[@]}"; do
    nice -n 15 cargo +nightly fuzz build -a -O "$t"
done

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$logs/$t.log"
    echo "== $t: ${seconds}s, log $log"
    if nice -n 15 cargo +nightly fuzz run -a -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$t")" \
        -print_final_stats=1 >"$log" 2>&1; then
        echo "   ok: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') executions, $(grep -E '^stat::peak_rss_mb' "$log" | awk '{print $2}') MB peak RSS"
    else
        echo "   FAILED: see $log and fuzz/artifacts/$t/"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 5 | sed 's/^/   /'
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}"
    exit 1
fi
echo "all targets ran ${seconds}s without a failure"
