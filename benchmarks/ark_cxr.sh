#!/usr/bin/env bash
# Ark vs single-dataset supervised vs stage 1 (the init both start from) on a target Ark never saw labels for:
# PneumoniaMNIST, the CXR bundle's own task.
#   1. stage 1 on the CIFAR-10 subset (500 images, 3 epochs: a small stand-in for BiT weights);
#   2. Ark on BreastMNIST (binary, 546) + mini-MIAS abnormality classes (multi-label, 70) from stage 1;
#   3. the same overlay with BreastMNIST only and c = 0: plain supervised training on one source (same init);
#   4. the ordinary evaluate stage: full fine-tuning of every init on 1% of PneumoniaMNIST's labels x 3 seeds
#      (the same labelled subset per seed for every init), selection on its validation split, scored on its test
#      split; paired bootstrap CIs against stage 1 (evaluate/) and against Ark (evaluate_vs_ark/).
#   REMEDIS=1 adds the REMEDIS init (stage 2 SimCLR on unlabelled PneumoniaMNIST, 1 epoch) to the sweep.
# The whole chain runs under the shared heavy-CPU lock in slices of under 10 minutes; every step resumes from
# disk (finished stages and sweep runs are skipped, interrupted ones continue from their last epoch).
# Usage: bash benchmarks/ark_cxr.sh [output_dir]. CPU: one torch thread (the 2 cores are shared).
set -euo pipefail
OUT=${1:-runs/ark_cxr}
LOCK=${HEAVY_LOCK:-/tmp/heavy.lock}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ARK_EPOCHS=${ARK_EPOCHS:-6}
COMMON=(--output_dir "$OUT" --log_every 0 --resume true)
stage() { python -m monai_remedis run "$@"; }

steps() {
  [ -f "$OUT/pretrain/backbone.pt" ] || stage cxr pretrain "${COMMON[@]}" --limit 500 --pretrain_epochs 3
  [ -f "$OUT/ark/backbone.pt" ] || stage cxr pretrain --overlay ark.yaml "${COMMON[@]}" --ark_epochs "$ARK_EPOCHS"
  [ -f "$OUT/breast_only/backbone.pt" ] || stage cxr pretrain --overlay ark.yaml "${COMMON[@]}" \
    --ark_epochs "$ARK_EPOCHS" --ark_datasets '$[@ark_breast]' --ark_consistency 0.0 --ark_dir "$OUT/breast_only"
  local inits="'ark': '$OUT/ark/backbone.pt', 'breast_supervised': '$OUT/breast_only/backbone.pt', \
'baseline': '$OUT/pretrain/backbone.pt'"
  if [ "${REMEDIS:-0}" = 1 ]; then
    [ -f "$OUT/ssl/backbone.pt" ] || stage cxr ssl "${COMMON[@]}" --ssl_epochs 1
    inits="$inits, 'remedis': '$OUT/ssl/backbone.pt'"
  fi
  local sweep=(--sweep_inits "{$inits}" --sweep_fractions '[0.01]' --sweep_seeds '[0, 1, 2]'
    --evaluate#classifier '$None' --max_epochs 3 --min_steps 30 --sweep_options#val_evaluations 4)
  [ -f "$OUT/evaluate/metrics.json" ] || stage cxr evaluate "${COMMON[@]}" "${sweep[@]}"
  # the same runs (read back, not retrained), compared against Ark instead of stage 1
  mkdir -p "$OUT/evaluate_vs_ark" && ln -sfn "$(realpath "$OUT/evaluate/sweep")" "$OUT/evaluate_vs_ark/sweep"
  [ -f "$OUT/evaluate_vs_ark/metrics.json" ] || stage cxr evaluate "${COMMON[@]}" "${sweep[@]}" \
    --evaluate_dir "$OUT/evaluate_vs_ark" --evaluate#baseline_init ark
}

if [ "${1:-}" = --slice ]; then
  OUT=$2
  COMMON=(--output_dir "$OUT" --log_every 0 --resume true)
  steps
  exit 0
fi
for slice in 1 2 3 4 5 6; do
  echo "slice $slice waits for the lock at $(date -u +%T)"
  flock "$LOCK" timeout 590 bash "$0" --slice "$OUT" && break
done
