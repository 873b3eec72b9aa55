#!/usr/bin/env bash
# SSL methods on PneumoniaMNIST (cxr bundle, bit_resnet18, 28 px), CPU-sized: the evidence of issues 14 (Genesis) and
# 15 (PEAC), and the stage 1 + SimCLR (REMEDIS) init that benchmarks/ark_cxr.sh reuses.
#   1. stage 1 on the CIFAR-10 subset (PRETRAIN_EPOCHS);
#   2. SimCLR, PEAC and Models Genesis from that backbone (SSL_EPOCHS each, bundle defaults otherwise);
#   3. the evaluate stage's sweep by FULL fine-tuning: inits peac, simclr, genesis, baseline (stage 1) and scratch
#      (random init), label fractions x 3 seeds, the same labelled subset per seed for every init, selection on the
#      validation split, scored on the test split; paired bootstrap CIs of the AUC difference against each of
#      baseline, scratch and simclr (one summary each, from the same runs);
#   4. the same with a linear probe on frozen features (all of PneumoniaMNIST, fractions 1%, 10%, 100%).
# Every step is skipped when its output exists, and sweep runs are reused (their fingerprints match), so the script
# continues where it stopped. One torch thread; LOCK=/tmp/heavy.lock takes the shared lock around the whole script.
#   bash benchmarks/ssl_methods_cxr.sh [output_dir]        (default runs/peac_evidence)
# The settings below are the ones the numbers in docs/peac.md and docs/genesis.md come from (2-core shared CPU):
# stage 1 for 4 epochs, each SSL method for 2 epochs (72 steps of 128), and the fine-tune sweep at ONE label
# fraction (10% = 472 labels) with at least 20 steps (the bundle's min_steps is 100) and 3 epochs (max_epochs).
# TARGET_LIMIT (empty: all) keeps that many PneumoniaMNIST items per split for the fine-tune sweep only.
set -euo pipefail
OUT=${1:-runs/peac_evidence}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ -n "${LOCK:-}" ] && [ -z "${_SSL_METHODS_LOCKED:-}" ]; then
  exec env _SSL_METHODS_LOCKED=1 flock "$LOCK" bash "$0" "$@"
fi
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-4}
SSL_EPOCHS=${SSL_EPOCHS:-2}
TARGET_LIMIT=${TARGET_LIMIT:-}
FRACTIONS=${FRACTIONS:-[0.1]}
MIN_STEPS=${MIN_STEPS:-20}
PROBE_FRACTIONS=${PROBE_FRACTIONS:-[0.01,0.1,1.0]}
COMMON=(--output_dir "$OUT" --log_every 0 --resume true --backbone bit_resnet18 --ssl_learning_rate 0.001)  # as in the reported runs
cxr() { python -m monai_remedis run cxr "$@"; }
INITS="{'peac': '$OUT/ssl_peac/backbone.pt', 'simclr': '$OUT/ssl_simclr/backbone.pt', \
'genesis': '$OUT/ssl_genesis/backbone.pt', 'baseline': '$OUT/pretrain/backbone.pt', 'scratch': None}"

# Run one sweep (evaluate stage), then summarise the same runs against each reference init; each summary is kept
# under <dir>/vs_<reference>/ (report.md, paired.csv, sweep_summary.csv, sweep.csv).
sweep() {
  local dir=$1; shift
  for ref in baseline scratch simclr; do
    [ -f "$dir/vs_$ref/paired.csv" ] && continue
    cxr evaluate "${COMMON[@]}" --evaluate_dir "$dir" --finetune_checkpoint '$None' --sweep_inits "$INITS" \
      --sweep_seeds '[0,1,2]' --sweep#baseline_init "$ref" "$@"
    mkdir -p "$dir/vs_$ref"
    cp "$dir"/{report.md,paired.csv,sweep_summary.csv,sweep.csv} "$dir/vs_$ref/"
  done
}

[ -f "$OUT/pretrain/backbone.pt" ] || cxr pretrain "${COMMON[@]}" --pretrain_epochs "$PRETRAIN_EPOCHS"
for s in simclr peac genesis; do
  [ -f "$OUT/ssl_$s/backbone.pt" ] || cxr ssl "${COMMON[@]}" --strategy "$s" --ssl_dir "$OUT/ssl_$s" \
    --ssl_epochs "$SSL_EPOCHS"
done
sweep "$OUT/eval_finetune" ${TARGET_LIMIT:+--limit "$TARGET_LIMIT"} --sweep_fractions "$FRACTIONS" \
  --min_steps "$MIN_STEPS"
sweep "$OUT/eval_probe" --sweep_mode linear_probe --sweep_fractions "$PROBE_FRACTIONS"
