#!/usr/bin/env bash
# The GPU measurements of benchmarks/train_speed/train_speed.md, as one script for a lent GPU machine:
#   bash benchmarks/train_speed/gpu_check.sh OUTDIR
# Uses the machine's own torch/timm (no install): PYTHONPATH points at this checkout.
set -u
OUT=${1:-${OUT:-/tmp/edgekd-gpu}}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, timm, onnx, onnxruntime; print('torch', torch.__version__, 'timm', timm.__version__, 'onnx', onnx.__version__, 'ort', onnxruntime.__version__)"
echo "== spectral cost"
python3 benchmarks/train_speed/spectral_cost.py --device cuda --n 100 > "$OUT/spectral_cost.json"; cat "$OUT/spectral_cost.json"
echo "== train speed"
python3 benchmarks/train_speed/train_speed.py --device cuda --modes off,graph --json "$OUT/train_speed.json"
echo "== end-to-end distill on CUDA (graph), 2 epochs of 128 scenes at 256x320"
python3 -m edgekd distill --profile jetson --task depth --teacher random --spectral 2 --epochs 2 --train-size 128 --val-size 32 \
  --batch-size 32 --workers 8 --compile graph --out "$OUT/run-graph" --quiet
python3 -m edgekd distill --profile jetson --task depth --teacher random --epochs 1 --train-size 64 --val-size 32 \
  --batch-size 32 --workers 8 --out "$OUT/run-eager" --quiet
cat "$OUT"/run-*/metrics.jsonl
rm -f "$OUT"/run-*/*.pt
} 2>&1 | tee "$OUT/log.txt"
