#!/usr/bin/env bash
# Installs a CPU-only libtorch 2.11 (the version `tch = 0.24` binds) into a cache outside the clone and
# links it to `.libtorch` in the repository, which `.cargo/config.toml` points `LIBTORCH` at.
#
# PyPI has no CPU-only torch wheel for Linux x86_64, so we take the CUDA 13 wheel and keep only the CPU
# libraries: `libtorch_cpu.so` needs `libcudart.so.13` and `libcupti.so.13`, which two small NVIDIA wheels
# provide. Leaving out `libtorch_cuda.so` makes torch-sys link the CPU libraries only.
# Downloads ~550 MB once; later calls are instant. Set REWARM_CACHE to move the cache.
set -euo pipefail
TORCH_VERSION=2.11.0
CACHE=${REWARM_CACHE:-$HOME/.cache/rewarm}
DEST=$CACHE/libtorch-$TORCH_VERSION-cpu
REPO=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -f "$DEST/build-version" ]; then
  mkdir -p "$CACHE"
  work=$(mktemp -d "$CACHE/.setup.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "setup-libtorch: downloading torch==$TORCH_VERSION (CPU libraries only are kept) into $CACHE" >&2
  python3 -m pip download --quiet --no-deps -d "$work" \
    "torch==$TORCH_VERSION" nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
  python3 - "$work" <<'PY'
import glob, os, shutil, sys, zipfile
work = sys.argv[1]
out = os.path.join(work, "libtorch")
keep_libs = {"libc10.so", "libtorch.so", "libtorch_cpu.so", "libtorch_global_deps.so", "libgomp.so.1", "libshm.so"}
with zipfile.ZipFile(glob.glob(os.path.join(work, "torch-*.whl"))[0]) as z:
    for info in z.infolist():
        name = info.filename
        if name.startswith("torch/include/") or (name.startswith("torch/lib/") and os.path.basename(name) in keep_libs):
            z.extract(info, work)
os.rename(os.path.join(work, "torch"), out)
for wheel in glob.glob(os.path.join(work, "nvidia_*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if os.path.basename(info.filename) in ("libcudart.so.13", "libcupti.so.13"):
                with z.open(info) as src, open(os.path.join(out, "lib", os.path.basename(info.filename)), "wb") as dst:
                    shutil.copyfileobj(src, dst)
for lib in glob.glob(os.path.join(out, "lib", "*.so*")):
    os.chmod(lib, 0o755)
PY
  echo "$TORCH_VERSION" > "$work/libtorch/build-version"
  rm -rf "$DEST"
  mv "$work/libtorch" "$DEST"
fi
ln -sfn "$DEST" "$REPO/.libtorch"
echo "$DEST"
