#!/usr/bin/env bash
# The GPU window as ONE call (issue 31): the CUDA tests, the gpu-quick study from a clean directory, DDP/FSDP
# on NCCL with two or more GPUs; every number to $OUT/gpu_check.json, written part by part. It stops by
# itself before 9 minutes (--deadline, default 500 s) and leaves what it measured if cut short.
#   on the device machine, from the repository root:  bash benchmarks/gpu_check.sh
# The device image's python3 holds torch, numpy, scipy, pandas, pyarrow, matplotlib, tokenizers and
# threadpoolctl (docs/dev-log.md, session 25): no install, the source on PYTHONPATH.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-.}"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.csv" 2>&1 || true
timeout 540 "$PY" benchmarks/gpu_check.py --out "$OUT/gpu_check.json" --deadline "${DEADLINE:-500}" "$@"
echo "gpu_check exit $?"
