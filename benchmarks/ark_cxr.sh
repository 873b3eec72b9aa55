#!/usr/bin/env bash
# Ark vs single-dataset supervised vs the REMEDIS init vs stage 1 on a target Ark never saw labels for:
# PneumoniaMNIST, the CXR bundle's own task (issue 16). Shares its output folder with
# benchmarks/ssl_methods_cxr.sh, whose stage 1 and SimCLR backbone (the REMEDIS init) it reuses:
#   1. stage 1 on the CIFAR-10 subset and SimCLR on PneumoniaMNIST (skipped when ssl_methods_cxr.sh made them);
#   2. Ark from the bundle by name (overlay ark.yaml): BreastMNIST (binary, 546) + mini-MIAS abnormality classes
#      (multi-label), from stage 1;
#   3. the same overlay with BreastMNIST only and c = 0: plain supervised training on one source (same init, recipe);
#   4. the evaluate stage on PneumoniaMNIST by FULL fine-tuning, inits ark, breast_supervised, simclr (= REMEDIS:
#      stage 1 + SimCLR) and baseline (stage 1), in the fine-tune sweep folder of ssl_methods_cxr.sh with its
#      settings, so the simclr and baseline runs (same labelled subsets and seeds) are reused; paired bootstrap CIs
#      against Ark, kept in <sweep>/vs_ark/.
# Every step resumes from disk. One torch thread; LOCK=/tmp/heavy.lock takes the shared lock around the script.
#   bash benchmarks/ark_cxr.sh [output_dir]        (default runs/peac_evidence)
set -euo pipefail
OUT=${1:-runs/peac_evidence}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ -n "${LOCK:-}" ] && [ -z "${_ARK_LOCKED:-}" ]; then
  exec env _ARK_LOCKED=1 flock "$LOCK" bash "$0" "$@"
fi
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-4}   # as ssl_methods_cxr.sh
SSL_EPOCHS=${SSL_EPOCHS:-2}
ARK_EPOCHS=${ARK_EPOCHS:-5}
TARGET_LIMIT=${TARGET_LIMIT:-}   # the fine-tune sweep settings of ssl_methods_cxr.sh
FRACTIONS=${FRACTIONS:-[0.1]}
MIN_STEPS=${MIN_STEPS:-20}
COMMON=(--output_dir "$OUT" --log_every 0 --resume true --backbone bit_resnet18 --ssl_learning_rate 0.001)  # as in the reported runs
cxr() { python -m monai_remedis run cxr "$@"; }

[ -f "$OUT/pretrain/backbone.pt" ] || cxr pretrain "${COMMON[@]}" --pretrain_epochs "$PRETRAIN_EPOCHS"
[ -f "$OUT/ssl_simclr/backbone.pt" ] || cxr ssl "${COMMON[@]}" --strategy simclr --ssl_dir "$OUT/ssl_simclr" \
  --ssl_epochs "$SSL_EPOCHS"
[ -f "$OUT/ark/backbone.pt" ] || cxr pretrain --overlay ark.yaml "${COMMON[@]}" --ark_epochs "$ARK_EPOCHS"
[ -f "$OUT/breast_only/backbone.pt" ] || cxr pretrain --overlay ark.yaml "${COMMON[@]}" --ark_epochs "$ARK_EPOCHS" \
  --ark_datasets '$[@ark_breast]' --ark_consistency 0.0 --ark_dir "$OUT/breast_only"
DIR=$OUT/eval_finetune
if [ ! -f "$DIR/vs_ark/paired.csv" ]; then
  cxr evaluate "${COMMON[@]}" --evaluate_dir "$DIR" --finetune_checkpoint '$None' \
    ${TARGET_LIMIT:+--limit "$TARGET_LIMIT"} \
    --sweep_inits "{'ark': '$OUT/ark/backbone.pt', 'breast_supervised': '$OUT/breast_only/backbone.pt', \
'simclr': '$OUT/ssl_simclr/backbone.pt', 'baseline': '$OUT/pretrain/backbone.pt'}" \
    --sweep_fractions "$FRACTIONS" --sweep_seeds '[0,1,2]' --min_steps "$MIN_STEPS" --sweep#baseline_init ark
  mkdir -p "$DIR/vs_ark"
  cp "$DIR"/{report.md,paired.csv,sweep_summary.csv,sweep.csv} "$DIR/vs_ark/"
fi
