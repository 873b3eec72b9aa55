#!/usr/bin/env bash
# PEAC vs SimCLR vs the supervised baseline on PneumoniaMNIST (cxr bundle, bit_resnet18, 28 px), CPU-sized.
# Each step takes the shared heavy-work lock and stays under 10 minutes; finished sweep runs are reused on a rerun.
#   bash benchmarks/peac_evidence.sh [output_dir]        (default runs/peac_evidence)
set -euo pipefail
OUT=${1:-runs/peac_evidence}
LOCK=${LOCK:-/tmp/heavy.lock}
SSL_EPOCHS=${SSL_EPOCHS:-6}
run() { flock "$LOCK" timeout 590 python -m monai_remedis run cxr "$@" --output_dir "$OUT" --log_every 0; }
INITS="{'peac': '$OUT/ssl_peac/backbone.pt', 'simclr': '$OUT/ssl_simclr/backbone.pt', 'baseline': '$OUT/pretrain/backbone.pt'}"

[ -f "$OUT/pretrain/backbone.pt" ] || run pretrain
[ -f "$OUT/ssl_simclr/backbone.pt" ] || run ssl --strategy simclr --ssl_dir "$OUT/ssl_simclr" --ssl_epochs "$SSL_EPOCHS"
[ -f "$OUT/ssl_peac/backbone.pt" ] || run ssl --strategy peac --ssl_dir "$OUT/ssl_peac" --ssl_epochs "$SSL_EPOCHS"
# Full fine-tuning sweep (the paper's protocol), then the linear probe on frozen features; 3 seeds, paired CIs.
for attempt in 1 2 3; do
  [ -f "$OUT/eval_finetune/paired.csv" ] && break
  run evaluate --evaluate_dir "$OUT/eval_finetune" --finetune_checkpoint '$None' --sweep_inits "$INITS" \
    --sweep_fractions '[0.1, 1.0]' --sweep_seeds '[0, 1, 2]' || true
done
[ -f "$OUT/eval_probe/paired.csv" ] || run evaluate --evaluate_dir "$OUT/eval_probe" --finetune_checkpoint '$None' \
  --sweep_inits "$INITS" --sweep_mode linear_probe --sweep_fractions '[0.01, 0.1, 1.0]' --sweep_seeds '[0, 1, 2]'
