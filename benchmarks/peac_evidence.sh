#!/usr/bin/env bash
# PEAC vs SimCLR vs the supervised baseline on PneumoniaMNIST (cxr bundle, bit_resnet18, 28 px), CPU-sized.
# Two holds of the shared heavy-work lock, each under 10 minutes: (train) stage 1 and the two SSL runs, (eval) the
# evaluate stage's sweeps. Finished stages and sweep runs are reused when the script runs again.
#   bash benchmarks/peac_evidence.sh [output_dir]        (default runs/peac_evidence; PHASES="train eval")
set -uo pipefail
OUT=${1:-runs/peac_evidence}
LOCK=${LOCK:-/tmp/heavy.lock}
PHASES=${PHASES:-train eval}
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-10}
SSL_EPOCHS=${SSL_EPOCHS:-5}
INITS="{'peac': '$OUT/ssl_peac/backbone.pt', 'simclr': '$OUT/ssl_simclr/backbone.pt', 'baseline': '$OUT/pretrain/backbone.pt'}"
CXR="python -m monai_remedis run cxr"
COMMON="--output_dir $OUT --log_every 0"
EVAL="--finetune_checkpoint '\$None' --sweep_inits \"$INITS\" --sweep_seeds [0,1,2]"

if [[ " $PHASES " == *" train "* && ! -f $OUT/ssl_peac/backbone.pt ]]; then
  flock "$LOCK" timeout 590 bash -c "
    [ -f $OUT/pretrain/backbone.pt ] || $CXR pretrain $COMMON --pretrain_epochs $PRETRAIN_EPOCHS
    [ -f $OUT/ssl_simclr/backbone.pt ] || $CXR ssl $COMMON --strategy simclr --ssl_dir $OUT/ssl_simclr --ssl_epochs $SSL_EPOCHS
    [ -f $OUT/ssl_peac/backbone.pt ] || $CXR ssl $COMMON --strategy peac --ssl_dir $OUT/ssl_peac --ssl_epochs $SSL_EPOCHS
  "
fi
# Full fine-tuning (the paper's protocol) at 10% and 100% of the labels, then the linear probe; 3 seeds, paired CIs.
if [[ " $PHASES " == *" eval "* && -f $OUT/ssl_peac/backbone.pt && ! -f $OUT/eval_probe/paired.csv ]]; then
  flock "$LOCK" timeout 590 bash -c "
    [ -f $OUT/eval_finetune/paired.csv ] || $CXR evaluate $COMMON --evaluate_dir $OUT/eval_finetune $EVAL \
      --sweep_fractions [0.1,1.0]
    [ -f $OUT/eval_finetune/paired.csv ] && [ ! -f $OUT/eval_probe/paired.csv ] && $CXR evaluate $COMMON \
      --evaluate_dir $OUT/eval_probe $EVAL --sweep_mode linear_probe --sweep_fractions [0.01,0.1,1.0]
  "
fi
