#!/usr/bin/env bash
# runs/miniseries.sh: a series of base models of growing depth (d12 ... d26), each trained compute-optimally, one
# CSV row per model: nanochat's runs/miniseries.sh with this program (`nanochat launch` in place of torchrun).
#
#   bash runs/miniseries.sh [series_name]          # e.g. jan11; default: today's date in that form
#   SKIP_SETUP=1 NPROC_PER_NODE=4 bash runs/miniseries.sh
#
# Results: $NANOCHAT_BASE_DIR/<series>_miniseries_results/results.csv (depth, model_dim, num_params,
# num_scaling_params, num_iterations, tokens_trained, param_data_ratio, val_bpb, core_score, train_time_sec) and
# each run's log beside it. Unlike nanochat's script, whose log patterns no longer match its trainer's output, the
# numbers are read from what base_train prints: the parameter table ("total", "transformer_matrices", "lm_head"),
# the model config (n_embd), "Total number of training tokens", "Tokens : Scaling params ratio", the iteration count,
# the last "Validation bpb" and "CORE metric".
set -euo pipefail
cd "$(dirname "$0")/.."

export OMP_NUM_THREADS=1
export NANOCHAT_BASE_DIR="${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}"
mkdir -p "$NANOCHAT_BASE_DIR"
NANOCHAT="${NANOCHAT:-build/nanochat}"

# Setup (skip with SKIP_SETUP=1): build, 1000 shards of pretraining data, the tokenizer.
if [ -z "${SKIP_SETUP:-}" ]; then
    bash scripts/setup.sh
    "$NANOCHAT" dataset -n 1000
    "$NANOCHAT" tok_train --max-chars=2000000000 --vocab-size=32768
fi

# Series name: from the argument, the environment, or today's date (e.g. jan11)
SERIES_NAME="${1:-${SERIES_NAME:-$(date +%b%d | tr '[:upper:]' '[:lower:]')}}"
# Depths to train (the "miniseries")
DEPTHS=(12 14 16 18 20 22 24 26)
# Hardware
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"
# Logging
WANDB_RUN="${WANDB_RUN:-${SERIES_NAME}_miniseries}"

RESULTS_DIR="$NANOCHAT_BASE_DIR/${SERIES_NAME}_miniseries_results"
mkdir -p "$RESULTS_DIR"
RESULTS_FILE="$RESULTS_DIR/results.csv"

# CSV header only if the file does not exist yet
if [ ! -f "$RESULTS_FILE" ]; then
    echo "depth,model_dim,num_params,num_scaling_params,num_iterations,tokens_trained,param_data_ratio,val_bpb,core_score,train_time_sec" > "$RESULTS_FILE"
fi

log() {
    echo "[$(date '+%Y-%m-%d %H:%M:%S')] $1"
}

# The number on the last line of $2 that starts with (or contains) the pattern $1, thousands separators removed.
last_number() {
    grep -E "$1" "$2" | tail -1 | sed 's/.*: *//' | tr -d ',' | awk '{print $1}'
}

log "=============================================="
log "${SERIES_NAME} Miniseries Training"
log "=============================================="

for d in "${DEPTHS[@]}"; do
    log "Training d=$d..."

    TAG="${SERIES_NAME}_miniseries_d${d}"
    START_TIME=$(date +%s)

    # Smaller --device-batch-size at larger depths to avoid running out of memory
    if [ $d -ge 28 ]; then
        DEVICE_BATCH_SIZE_ARG="--device-batch-size=8"
    elif [ $d -ge 20 ]; then
        DEVICE_BATCH_SIZE_ARG="--device-batch-size=16"
    else
        DEVICE_BATCH_SIZE_ARG="--device-batch-size=32"
    fi

    "$NANOCHAT" launch --nproc-per-node "$NPROC_PER_NODE" -- base_train \
        --depth=$d \
        --run="${WANDB_RUN}_d${d}" \
        --model-tag="${TAG}" \
        --core-metric-every=999999 \
        --core-metric-max-per-task=-1 \
        --sample-every=-1 \
        --save-every=-1 \
        $DEVICE_BATCH_SIZE_ARG \
        2>&1 | tee "$RESULTS_DIR/${TAG}_train.log"

    END_TIME=$(date +%s)
    TRAIN_TIME=$((END_TIME - START_TIME))

    # Stats from the log
    LOG_FILE="$RESULTS_DIR/${TAG}_train.log"
    NUM_PARAMS=$(last_number "^total " "$LOG_FILE")
    PARAMS_MATRICES=$(last_number "^transformer_matrices " "$LOG_FILE")
    PARAMS_LM=$(last_number "^lm_head " "$LOG_FILE")
    NUM_SCALING_PARAMS=$(( ${PARAMS_MATRICES:-0} + ${PARAMS_LM:-0} ))
    NUM_ITERS=$(last_number "Calculated number of iterations|Using user-provided number of iterations" "$LOG_FILE")
    TOKENS_TRAINED=$(last_number "^Total number of training tokens:" "$LOG_FILE")
    PARAM_DATA_RATIO=$(last_number "^Tokens : Scaling params ratio:" "$LOG_FILE")
    MODEL_DIM=$(grep -E '"n_embd":' "$LOG_FILE" | tail -1 | tr -dc '0-9')
    VAL_BPB=$(grep "Validation bpb:" "$LOG_FILE" | tail -1 | grep -oE '[0-9.]+$' || true)
    CORE_SCORE=$(grep "CORE metric:" "$LOG_FILE" | tail -1 | awk '{print $NF}' || true)

    if [ -z "$CORE_SCORE" ]; then
        CORE_SCORE="0.0"
    fi

    log "  d=$d: params=$NUM_PARAMS, scaling=$NUM_SCALING_PARAMS, ratio=$PARAM_DATA_RATIO, bpb=$VAL_BPB, CORE=$CORE_SCORE, time=${TRAIN_TIME}s"

    # Append to the CSV
    echo "$d,$MODEL_DIM,$NUM_PARAMS,$NUM_SCALING_PARAMS,$NUM_ITERS,$TOKENS_TRAINED,$PARAM_DATA_RATIO,$VAL_BPB,$CORE_SCORE,$TRAIN_TIME" >> "$RESULTS_FILE"
done

log "=============================================="
log "${SERIES_NAME} Miniseries Complete!"
log "=============================================="
log "Results saved to: $RESULTS_FILE"
echo ""
echo "Results:"
column -t -s',' "$RESULTS_FILE"
