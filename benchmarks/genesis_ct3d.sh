#!/usr/bin/env bash
# Models Genesis vs SimCLR vs scratch on AdrenalMNIST3D (ct3d bundle, resnet10_3d, 28^3 volumes), CPU-sized: the 3D
# evidence of issue 14. ct3d's stage 1 only imports published 3D weights (none here), so both SSL runs start from the
# same random init (seed 0) and the reference is scratch (random init, no SSL).
#   1. SimCLR and Models Genesis on AdrenalMNIST3D's training volumes (labels unused), SSL_EPOCHS each;
#   2. the evaluate stage's sweep by FULL fine-tuning: inits genesis, simclr, scratch; label fractions x 3 seeds, the
#      same labelled subset per seed for every init; selection on validation (98), scored on test (298); paired
#      bootstrap CIs against scratch (<sweep>/vs_scratch/) and against simclr (<sweep>/vs_simclr/).
# CPU sizing (2 shared cores): volumes resized 28^3 -> 20^3 (IMAGE_SIZE, 36% of the voxels), SSL for
# SSL_EPOCHS on all 1188 training volumes, the sweep at 10% (119) and 100% (1188) of the labelled volumes with at
# least MIN_STEPS optimiser steps (the base min_steps is 60) and SWEEP_EPOCHS epochs.
# Resumable: finished steps and sweep runs are reused. One torch thread; LOCK=/tmp/heavy.lock takes the shared lock.
#   bash benchmarks/genesis_ct3d.sh [output_dir]        (default runs/genesis_ct3d)
set -euo pipefail
OUT=${1:-runs/genesis_ct3d}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ -n "${LOCK:-}" ] && [ -z "${_GENESIS_LOCKED:-}" ]; then
  exec env _GENESIS_LOCKED=1 flock "$LOCK" bash "$0" "$@"
fi
IMAGE_SIZE=${IMAGE_SIZE:-[20,20,20]}
SSL_EPOCHS=${SSL_EPOCHS:-2}
FRACTIONS=${FRACTIONS:-[0.1,1.0]}
SWEEP_EPOCHS=${SWEEP_EPOCHS:-3}
MIN_STEPS=${MIN_STEPS:-20}
COMMON=(--output_dir "$OUT" --log_every 0 --resume true --image_size "$IMAGE_SIZE")
ct3d() { python -m monai_remedis run ct3d "$@"; }
INITS="{'genesis': '$OUT/ssl_genesis/backbone.pt', 'simclr': '$OUT/ssl_simclr/backbone.pt', 'scratch': None}"

for s in simclr genesis; do
  [ -f "$OUT/ssl_$s/backbone.pt" ] || ct3d ssl "${COMMON[@]}" --strategy "$s" --ssl_dir "$OUT/ssl_$s" \
    --ssl_epochs "$SSL_EPOCHS"
done
DIR=$OUT/eval_finetune
for ref in scratch simclr; do
  [ -f "$DIR/vs_$ref/paired.csv" ] && continue
  ct3d evaluate "${COMMON[@]}" --evaluate_dir "$DIR" --finetune_checkpoint '$None' --sweep_inits "$INITS" \
    --sweep_fractions "$FRACTIONS" --sweep_seeds '[0,1,2]' --sweep_epochs "$SWEEP_EPOCHS" --min_steps "$MIN_STEPS" \
    --sweep#baseline_init "$ref"
  mkdir -p "$DIR/vs_$ref"
  cp "$DIR"/{report.md,paired.csv,sweep_summary.csv,sweep.csv} "$DIR/vs_$ref/"
done
