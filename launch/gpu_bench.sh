#!/usr/bin/env bash
# The chapter-3 GPU benchmark (ResNet-50, bf16 compute, batch 256, synthetic data: images/s and MFU, next to
# PyTorch) on a lent accelerator machine whose image already has jax[cuda], flax, optax, orbax, chex and torch
# but no registry access (see the device tool's KINDS.md). Two steps:
#   launch/gpu_bench.sh prepare      # HERE (registry access): wheels jaxdl needs that the image lacks -> .gpu_wheels/
#   launch/gpu_bench.sh run OUTDIR   # THERE, carrying .gpu_wheels: installs them, runs the bench, writes OUTDIR/*.json
# Not yet run on a GPU by this project (no device was lent so far).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  prepare)
    grep -qx '/.gpu_wheels/' .git/info/exclude 2>/dev/null || echo '/.gpu_wheels/' >> .git/info/exclude
    # pure-Python or manylinux wheels for the device image's python (3.12, x86-64); no dependencies of theirs
    # beyond what the image holds
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
      --platform manylinux_2_28_x86_64 -d .gpu_wheels ml_collections grain array_record dm-tree more-itertools
    ls .gpu_wheels ;;
  run)
    out=${2:?usage: $0 run OUTDIR}
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --target /tmp/jaxdl_extra .gpu_wheels/*.whl
    export PYTHONPATH="$PWD:/tmp/jaxdl_extra${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    python3 -c 'import jax; print(jax.devices())'
    python3 -m jaxdl bench resnet50 --repeats 5 --steps 10 --warmup 3 --out "$out/bench_resnet50.json"
    python3 -m jaxdl bench cnn --repeats 5 --out "$out/bench_cnn.json" ;;
  *)
    echo "usage: $0 prepare | run OUTDIR" >&2
    exit 2 ;;
esac
