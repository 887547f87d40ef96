#!/usr/bin/env bash
# runs/scaling_laws.sh: a grid of base models, FLOPs budget x depth, each trained to exactly its budget; for each
# budget the best depth traces the compute-optimal frontier. nanochat's runs/scaling_laws.sh with this program
# (`nanochat launch` in place of torchrun). Expects the shards and the tokenizer to be there already (see
# runs/speedrun.sh or runs/miniseries.sh).
#
#   bash runs/scaling_laws.sh
#   NPROC_PER_NODE=4 WANDB_RUN=myrun bash runs/scaling_laws.sh
#
# Results: $NANOCHAT_BASE_DIR/scaling_laws_results_<label>/results.csv (flops_budget, depth, model_dim, parameter
# counts by group, num_iterations, tokens_trained, val_bpb, core_score, train_time_sec) and each run's log beside
# it. Runs already in the CSV are skipped, so the script resumes where it stopped. Parameter counts come from
# base_train's padded table ("wte                     : 25,165,824"); unlike nanochat's script, which assumes a
# batch of 524,288 tokens and a width of 64 x depth, tokens_trained and model_dim are read from the log too.
set -euo pipefail
cd "$(dirname "$0")/.."

LABEL="jan26"

FLOPS_BUDGETS=(
    1e18
    2.15e18
    4.64e18
    1e19
)
DEPTHS=(8 10 12 14 16 18 20)

NPROC_PER_NODE="${NPROC_PER_NODE:-8}"
WANDB_RUN="${WANDB_RUN:-scaling_${LABEL}}"
EVAL_TOKENS=$((100 * 524288))  # ~100M tokens for the final eval (default is ~10M)

export OMP_NUM_THREADS=1
export NANOCHAT_BASE_DIR="${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}"
NANOCHAT="${NANOCHAT:-build/nanochat}"

RESULTS_DIR="$NANOCHAT_BASE_DIR/scaling_laws_results_${LABEL}"
mkdir -p "$RESULTS_DIR"
RESULTS_FILE="$RESULTS_DIR/results.csv"

# CSV header only if the file does not exist yet
if [ ! -f "$RESULTS_FILE" ]; then
    echo "flops_budget,depth,model_dim,params_wte,params_value_embeds,params_lm_head,params_transformer,params_scalars,params_total,num_iterations,tokens_trained,val_bpb,core_score,train_time_sec" > "$RESULTS_FILE"
fi

log() {
    echo "[$(date '+%Y-%m-%d %H:%M:%S')] $1"
}

# Has this (flops, depth) run already been recorded?
run_exists() {
    local flops=$1
    local depth=$2
    grep -q "^${flops},${depth}," "$RESULTS_FILE" 2>/dev/null
}

# The number after the ':' on the last line of $2 matching $1, thousands separators removed.
last_number() {
    grep -E "$1" "$2" | tail -1 | sed 's/.*: *//' | tr -d ',' | awk '{print $1}'
}

# =============================================================================
# Main loop
# =============================================================================

for flops in "${FLOPS_BUDGETS[@]}"; do
    log "=============================================="
    log "Compute budget: $flops FLOPs"
    log "=============================================="

    for d in "${DEPTHS[@]}"; do

        # Skip runs that are already done
        if run_exists "$flops" "$d"; then
            log "Skipping d=$d at $flops FLOPs (already in results)"
            continue
        fi

        log "Training d=$d at $flops FLOPs..."

        # Unique tag for this run
        TAG="scaling_${flops}_d${d}"

        START_TIME=$(date +%s)

        # Train with a fixed FLOPs budget: base_train derives the number of iterations from it.
        # CORE is evaluated once, at the end (999999 = only the final step).
        "$NANOCHAT" launch --nproc-per-node "$NPROC_PER_NODE" -- base_train \
            --depth=$d \
            --target-flops=$flops \
            --target-param-data-ratio=-1 \
            --run="${WANDB_RUN}_${TAG}" \
            --model-tag="${TAG}" \
            --eval-tokens=$EVAL_TOKENS \
            --core-metric-every=999999 \
            --core-metric-max-per-task=-1 \
            --sample-every=-1 \
            --save-every=-1 \
            2>&1 | tee "$RESULTS_DIR/${TAG}_train.log"

        END_TIME=$(date +%s)
        TRAIN_TIME=$((END_TIME - START_TIME))

        LOG_FILE="$RESULTS_DIR/${TAG}_train.log"

        # Parameter counts by group (for scaling laws with different conventions); the table is padded, e.g.
        # "wte                     : 25,165,824", so "^key " matches only its own line.
        PARAMS_WTE=$(last_number "^wte " "$LOG_FILE")
        PARAMS_VE=$(last_number "^value_embeds " "$LOG_FILE")
        PARAMS_LM=$(last_number "^lm_head " "$LOG_FILE")
        PARAMS_TRANSFORMER=$(last_number "^transformer_matrices " "$LOG_FILE")
        PARAMS_SCALARS=$(last_number "^scalars " "$LOG_FILE")
        PARAMS_TOTAL=$(last_number "^total " "$LOG_FILE")

        NUM_ITERS=$(last_number "Calculated number of iterations" "$LOG_FILE")
        TOKENS_TRAINED=$(last_number "^Total number of training tokens:" "$LOG_FILE")
        MODEL_DIM=$(grep -E '"n_embd":' "$LOG_FILE" | tail -1 | tr -dc '0-9')
        # Validation bpb of the final eval
        VAL_BPB=$(grep "Validation bpb:" "$LOG_FILE" | tail -1 | grep -oE '[0-9.]+$' || true)

        # CORE score of the final step
        CORE_SCORE=$(grep "CORE metric:" "$LOG_FILE" | tail -1 | awk '{print $NF}' || true)
        if [ -z "$CORE_SCORE" ]; then
            log "WARNING: Could not extract CORE score for d=$d"
            CORE_SCORE="0.0"
        fi

        log "  Params: $PARAMS_TOTAL (transformer: $PARAMS_TRANSFORMER), Iters: $NUM_ITERS, Val BPB: $VAL_BPB, CORE: $CORE_SCORE"

        # Append to the CSV
        echo "$flops,$d,$MODEL_DIM,$PARAMS_WTE,$PARAMS_VE,$PARAMS_LM,$PARAMS_TRANSFORMER,$PARAMS_SCALARS,$PARAMS_TOTAL,$NUM_ITERS,$TOKENS_TRAINED,$VAL_BPB,$CORE_SCORE,$TRAIN_TIME" >> "$RESULTS_FILE"
    done
done

log "=============================================="
log "Scaling Laws Sweep Complete"
log "=============================================="
log "Results saved to: $RESULTS_FILE"
echo ""
echo "Results:"
column -t -s',' "$RESULTS_FILE"
