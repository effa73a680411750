#!/usr/bin/env bash
# Prepares the real corpora for the studies (studies/README.md): fetches them from their pinned packages if
# they are not there yet (scripts/fetch-corpora.sh), fits a byte-level BPE on D0 only — the English web mix,
# as Ibrahim et al. fit theirs on pre-training data — and prepares every corpus with it. With --both it also
# fits a tokenizer on English and German together and prepares with that one (the ablation of fitting on
# D0 only).
#
#   scripts/prepare-study-data.sh [--both] [--vocab N] [--with TOKENIZER.json NAME] [OUT]
#                                                     (default OUT: data/study, N: 4096)
#
# Writes OUT/tokenizer-en.json and OUT/en/{nlp-en,nlp-de,sotu-en,manpages-de}/ (prepared folders), and with
# --both OUT/tokenizer-en-de.json and OUT/en-de/…. --with prepares the corpora with a given tokenizer
# instead, into OUT/NAME/… (study smollm2: the tokenizer.json of the imported SmolLM2 folder, NAME
# smollm2). Re-running skips what exists.
set -euo pipefail
cd "$(dirname "$0")/.."
BOTH=0 VOCAB=4096 OUT=data/study WITH="" WITH_NAME=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --both) BOTH=1; shift ;;
        --with) WITH=$2; WITH_NAME=$3; shift 3 ;;
        --vocab) VOCAB=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) OUT=$1; shift ;;
    esac
done
REWARM=${REWARM:-${CARGO_TARGET_DIR:-target}/release/rewarm}
[[ -x "$REWARM" ]] || cargo build --release -p rewarm
CORPORA=data/corpora
if [[ ! -f $CORPORA/manpages-de/train.jsonl ]]; then
    scripts/fetch-corpora.sh --with-manpages "$CORPORA"
fi
mkdir -p "$OUT"

# prepare_all TOKENIZER DIR: every corpus prepared with TOKENIZER into DIR/<corpus>.
prepare_all() {
    for c in nlp-en nlp-de sotu-en manpages-de; do
        [[ -f $2/$c/manifest.json ]] && continue
        "$REWARM" prepare "$CORPORA/$c/train.jsonl" --val "$CORPORA/$c/validation.jsonl" \
            --tokenizer "$1" --out "$2/$c"
    done
}

if [[ -n $WITH ]]; then
    [[ -f $WITH ]] || { echo "--with $WITH: no such tokenizer file" >&2; exit 1; }
    prepare_all "$WITH" "$OUT/$WITH_NAME"
    echo "prepared under $OUT/$WITH_NAME"
    exit 0
fi
if [[ ! -f $OUT/tokenizer-en.json ]]; then
    "$REWARM" tokenizer train "$CORPORA/nlp-en/train.jsonl" --vocab-size "$VOCAB" --out "$OUT/tokenizer-en.json"
fi
prepare_all "$OUT/tokenizer-en.json" "$OUT/en"
if [[ $BOTH == 1 ]]; then
    if [[ ! -f $OUT/tokenizer-en-de.json ]]; then
        "$REWARM" tokenizer train "$CORPORA/nlp-en/train.jsonl" "$CORPORA/nlp-de/train.jsonl" \
            --vocab-size "$VOCAB" --out "$OUT/tokenizer-en-de.json"
    fi
    prepare_all "$OUT/tokenizer-en-de.json" "$OUT/en-de"
fi
echo "prepared under $OUT"
