#!/usr/bin/env bash
# The commands that need no tensors work without libtorch: builds `rewarm` with --no-default-features (in
# its own target folder beside the main one, so that the two feature sets do not rebuild each other),
# checks that the binary links no libtorch, then prepares the vendored English sample, validates a plan on
# it (`rewarm plan`, in every format) and checks a training command is refused with an explanation.
# scripts/test.sh runs it after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}/tch-free"
RUSTFLAGS="-D warnings" cargo build --release --quiet -p rewarm --no-default-features --target-dir "$target"
bin="$target/release/rewarm"
if ldd "$bin" | grep -E 'libtorch|libc10'; then
  echo "check-tch-free.sh: $bin links libtorch (above); a crate reached by --no-default-features pulls in tch" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { env -u LIBTORCH LD_LIBRARY_PATH= "$bin" "$@"; }
run prepare data/sample/en --out "$tmp/en" --tokenizer gpt2 --split hash:0.05 >/dev/null 2>&1
run inspect "$tmp/en" >/dev/null
cat > "$tmp/plan.toml" <<'TOML'
seed = 1
[model]
preset = "pythia-70m"
max_seq_len = 256
[data]
sources = { en = "en" }
[train]
batch_tokens = 8192
[[stages]]
name = "pretrain"
tokens = 300_000
mixture = { en = 1.0 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.02 }
TOML
run plan "$tmp/plan.toml" | grep -q "pretrain"
run plan "$tmp/plan.toml" --format json >/dev/null
run plan "$tmp/plan.toml" --format csv >/dev/null
run plan "$tmp/plan.toml" --plot "$tmp/lr.svg" >/dev/null 2>&1
test -s "$tmp/lr.svg"
if run train "$tmp/plan.toml" --run "$tmp/run" >"$tmp/out" 2>&1; then
  echo "check-tch-free.sh: train ran in a build without libtorch" >&2
  exit 1
fi
grep -q "without libtorch" "$tmp/out" || { cat "$tmp/out" >&2; exit 1; }
echo "check-tch-free.sh: rewarm without libtorch prepares data and validates plans ($bin)"
