#!/usr/bin/env bash
# The depth claims at the paper's recipe on one GPU, several runs packed on it (issue 24).
#
#   bash benchmarks/claims/claims_gpu.sh WORK           # GPU: sized for about 8 minutes of an H200 (an estimate, see below)
#   TOY=1 bash benchmarks/claims/claims_gpu.sh WORK     # CPU, toy size (64x64, 2 scenes, 1 step, 1 seed): the plumbing only
#
# Recipe: the jetson profile (256x320, batch 16, 25 epochs, lr 1e-3, MobileNetV2 from ImageNet), 795 training /
# 654 validation synthetic scenes written once to WORK/scenes, FitNets at auto strength (gradient ratio 0.3;
# spectral 0.1, regime C's held-out choice), seeds 0..SEEDS-1.  Cells, in this order within each seed:
# none, random ViT-B/32 inverted, spectral r=2 (fro), the same-task depth teacher traditional and inverted,
# random traditional.  The same-task teacher (MobileNetV2 trained on 1590 scenes, the students' 795 and 795 more,
# batch 32, 25 epochs) is trained first, in one of the JOBS slots, while the teacher-free cells run.
#
# Packing: JOBS (8) processes share the GPU; a step of this student is launch-bound (30-36 ms eager on an
# H100 for ~60 GFLOP: benchmarks/train_speed/train_speed.md), so several processes fill the GPU's idle time.
# Wall-clock guard: no run is launched once fewer than RUN_EST_S seconds are left of BUDGET_S (counted from
# the script's start); runs in flight finish.  ESTIMATE, not measured (no GPU was lent while this was written):
# 1225 steps x ~36 ms (H100, eager, student + teacher) = ~45 s alone, about twice that with 8 processes sharing
# the GPU, plus start-up and the final validation: RUN_EST_S = 120 s; 30 runs / 8 slots ~ 4 waves ~ 8 minutes.
# Each finished run appends a line (cell, seed, d1, seconds, commit, command) to WORK/grid/progress.jsonl:
# set RUN_EST_S from those seconds on a rerun.
#
# Resumable: finished runs are skipped, interrupted ones resumed from last.pt; run the same command again.
# Results: WORK/grid (edgekd compare's layout: edgekd report WORK/grid), verdicts in WORK/verdicts/verdicts.md
# (benchmarks/claims/claims_c_verdicts.py: claims 1-4 with intervals, claim 5 on P and on P - P0).
set -eu
WORK=${1:?usage: bash benchmarks/claims/claims_gpu.sh WORK}
HERE=$(cd "$(dirname "$0")" && pwd)
T0=$(date +%s)
export PYTHONUNBUFFERED=1
if [ -n "${TOY:-}" ]; then
  JOBS=${JOBS:-2}; SEEDS=${SEEDS:-1}; BUDGET_S=${BUDGET_S:-900}; RUN_EST_S=${RUN_EST_S:-1}; DEV=cpu
  SIZE="64 64"; NTEACH=2; NVAL=2; TOYFLAG=--toy
  TEACHER_ARGS=(--image-size 64 64 --train-size 2 --val-size 2 --batch-size 2 --epochs 1 --max-steps 1 --workers 0)
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  JOBS=${JOBS:-8}; SEEDS=${SEEDS:-5}; BUDGET_S=${BUDGET_S:-480}; RUN_EST_S=${RUN_EST_S:-120}; DEV=${DEV:-cuda}
  SIZE="256 320"; NTEACH=1590; NVAL=654; TOYFLAG=
  TEACHER_ARGS=(--train-size 1590 --val-size 654 --batch-size 32 --epochs 25 --workers 1 --set train.eval_every=0)
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # 16 cores for 8 processes
fi
GRID="$WORK/grid"; TEACHER="$WORK/teacher-depth"
mkdir -p "$WORK/logs"
left() { echo $(( T0 + BUDGET_S - $(date +%s) )); }

# 1. The scenes, once: every run reads them from disk instead of rendering them again.
if [ ! -f "$WORK/scenes/.done" ]; then
  python -m edgekd data synth --out "$WORK/scenes" --n $NTEACH --val-n $NVAL --image-size $SIZE --overwrite > "$WORK/logs/scenes.log"
  touch "$WORK/scenes/.done"
fi
# 2. The plan (cells, seeds, the resolved config) in edgekd compare's layout.
python "$HERE/claims_gpu_run.py" plan "$GRID" --data "$WORK/scenes" --teacher-ckpt "$TEACHER/best.pt" --seeds $SEEDS --device $DEV $TOYFLAG

# 3. The same-task teacher, in the background (it holds one slot).
TPID=
if [ ! -f "$TEACHER/summary.json" ]; then
  resume=(); [ -f "$TEACHER/last.pt" ] && resume=(--resume) || resume=(--overwrite)
  python -m edgekd distill --profile jetson --task depth --student mobilenetv2_100 --student-weights imagenet --teacher none \
    --data "$WORK/scenes" --device $DEV "${TEACHER_ARGS[@]}" --quiet --out "$TEACHER" "${resume[@]}" > "$WORK/logs/teacher.log" 2>&1 &
  TPID=$!
fi
teacher_ready() { [ -f "$TEACHER/summary.json" ]; }

launch() {  # cell seed: wait for a free slot, then start the run in the background (unless the budget is spent)
  if [ "$(left)" -lt "$RUN_EST_S" ]; then
    echo "budget: $(left) s left < RUN_EST_S=$RUN_EST_S: not launching $1 seed $2" | tee -a "$WORK/logs/skipped.log"
    return 1
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  echo "$(( $(date +%s) - T0 )) s: $1 seed $2"
  python "$HERE/claims_gpu_run.py" run "$GRID" "$1" "$2" > "$WORK/logs/$1-seed$2.log" 2>&1 &
}

# 4. The runs, seed-major (a grid cut short has every cell at its first seeds); the teacher's cells wait for it.
deferred=()
stop=
while read -r cell seed; do
  if [ -n "$stop" ]; then break; fi
  if [[ $cell == teacher-depth-* ]] && ! teacher_ready; then deferred+=("$cell $seed"); continue; fi
  if teacher_ready && [ ${#deferred[@]} -gt 0 ]; then  # the teacher finished: its cells first
    for d in "${deferred[@]}"; do launch $d || { stop=1; break; }; done
    deferred=()
  fi
  [ -n "$stop" ] || launch "$cell" "$seed" || stop=1
done < <(python "$HERE/claims_gpu_run.py" todo "$GRID" $SEEDS)
if [ -z "$stop" ] && [ ${#deferred[@]} -gt 0 ]; then
  [ -n "$TPID" ] && { wait "$TPID" || true; }
  if teacher_ready; then
    for d in "${deferred[@]}"; do launch $d || break; done
  else
    echo "the same-task teacher did not finish (see $WORK/logs/teacher.log): its cells were not run" | tee -a "$WORK/logs/skipped.log"
  fi
fi
wait

# 5. The verdicts of what finished.
echo "$(( $(date +%s) - T0 )) s: all launched runs finished; $(wc -l < "$GRID/progress.jsonl" 2>/dev/null || echo 0) in progress.jsonl"
python "$HERE/claims_c_verdicts.py" "$GRID" --out "$WORK/verdicts"
