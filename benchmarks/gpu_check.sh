#!/usr/bin/env bash
# One command for a GPU machine (see ../shared/device/README.md for how to run it there): the CUDA tests, the
# per-mode step benchmark, and the precision recipe on generated CIFAR-shaped data. Under 5 minutes on one GPU.
# Writes its log (and the recipe's report) under $OUT when set, else under runs/gpu_check.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu_check}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
say() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

say "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi not found"
"$PY" -c "import torch; print('torch', torch.__version__, '| cuda', torch.version.cuda, '| cudnn', torch.backends.cudnn.version())"

say "CUDA tests"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_precision.py 2>&1 | tail -25

say "benchmarks/gpu_step.py (trainlab epoch vs bare loop per mode, batch 128 and 512)"
timeout 300 "$PY" benchmarks/gpu_step.py --epochs 3 --samples 12800 2>&1

say "recipe:cifar10_precision on generated CIFAR-shaped data (10k train / 2k test, 2 epochs)"
timeout 300 "$PY" -m trainlab run recipe:cifar10_precision --smoke --quiet --out "$OUT/cifar10_precision" \
  --set data.train_size=10000 --set data.test_size=2000 --set data.batch_size=128 --set train.epochs=2 \
  --set measure.infer_limit=256 --set measure.latency_repeats=50 --set measure.throughput_batch=256 \
  --set measure.throughput_time_s=0.2 2>&1 | tail -5
"$PY" - "$OUT/cifar10_precision" <<'PYEND'
import csv, sys
from pathlib import Path
rows = list(csv.DictReader((Path(sys.argv[1]) / "results.csv").open()))
keys = ["variant", "status", "epoch_time_mean_s", "compile_time_s", "peak_mem_mb", "mfu", "peak_precision",
        "gpu_busy_share", "test_acc", "precision_effective"]
print(" | ".join(keys))
for r in rows:
    print(" | ".join(str(r.get(k, "")) for k in keys))
PYEND
say "done"
