#!/usr/bin/env bash
# runs/speedrun.sh: train a GPT-2 grade chat model from scratch on one node with 8 GPUs (8xH100: about 3 hours), the
# same stages, flags and outputs as nanochat's runs/speedrun.sh, with this program in place of the Python scripts
# and `nanochat launch` in place of torchrun.
#
#   bash runs/speedrun.sh
#   screen -L -Logfile runs/speedrun.log -S speedrun bash runs/speedrun.sh      # detached, with a log
#   WANDB_RUN=speedrun bash runs/speedrun.sh                                     # TensorBoard logs (see README)
#
# Needs a CUDA build of the program: point CMAKE_PREFIX_PATH at a CUDA libtorch before the setup step (see
# scripts/setup.sh), or build it yourself and set SKIP_SETUP=1. Other machines, as nanochat's forks do it:
# NPROC_PER_NODE (default 8; base_train keeps the total batch size and accumulates gradients on fewer GPUs),
# DEVICE_BATCH_SIZE (default 16; 8 for a single smaller GPU), DEPTH (default 24), e.g. on one GPU:
#   NPROC_PER_NODE=1 DEVICE_BATCH_SIZE=8 bash runs/speedrun.sh
# Differences from nanochat's script: the setup is scripts/setup.sh instead of uv; tok_eval's GPT-2/GPT-4 rank files
# are fetched into the base dir (nothing downloads them implicitly here); the identity conversations are our own
# (data/identity_conversations.jsonl) instead of nanochat's download.
set -euo pipefail
cd "$(dirname "$0")/.."

# Default intermediate artifacts directory is in ~/.cache/nanochat
export OMP_NUM_THREADS=1
export NANOCHAT_BASE_DIR="${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}"
mkdir -p "$NANOCHAT_BASE_DIR"
NANOCHAT="${NANOCHAT:-build/nanochat}"
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"
DEVICE_BATCH_SIZE="${DEVICE_BATCH_SIZE:-16}"
DEPTH="${DEPTH:-24}"
nanochat() { "$NANOCHAT" "$@"; }
launch() { "$NANOCHAT" launch --nproc-per-node "$NPROC_PER_NODE" -- "$@"; }

# -----------------------------------------------------------------------------
# Build (Debian packages + a Release build into build/); skip with SKIP_SETUP=1.
[ -n "${SKIP_SETUP:-}" ] || bash scripts/setup.sh

# Run name for the loggers; "dummy" disables the experiment tracker (metrics still go to logs/ as JSON lines).
WANDB_RUN="${WANDB_RUN:-dummy}"

# -----------------------------------------------------------------------------
# The report: reset clears <base_dir>/report and writes the header (git, hardware, software, start time).
nanochat report reset

# -----------------------------------------------------------------------------
# Tokenizer

# ~2B characters of pretraining text for the tokenizer: 8 ClimbMix shards of ~250M characters (~800MB on disk).
nanochat dataset -n 8
# Meanwhile, download the rest in the background: ~150 shards for GPT-2 grade pretraining, plus 20 for padding.
nanochat dataset -n 170 &
DATASET_DOWNLOAD_PID=$!
# Train the tokenizer: vocab 2**15 = 32768 on ~2B characters.
nanochat tok_train
# Evaluate it (compression ratios vs GPT-2 and GPT-4); tok_eval itself downloads nothing, so fetch tiktoken's
# rank files once (r50k_base holds GPT-2's ranks). Without them it still measures our tokenizer alone.
mkdir -p "$NANOCHAT_BASE_DIR/tiktoken"
for pair in gpt2:r50k_base cl100k_base:cl100k_base; do
  f="$NANOCHAT_BASE_DIR/tiktoken/${pair%%:*}.tiktoken"
  [ -s "$f" ] || curl -fsSL -o "$f" "https://openaipublic.blob.core.windows.net/encodings/${pair##*:}.tiktoken" || rm -f "$f"
done
nanochat tok_eval

# -----------------------------------------------------------------------------
# Base model (pretraining)
echo "Waiting for dataset download to complete..."
wait $DATASET_DOWNLOAD_PID

# d24 model, slightly undertrained to beat GPT-2: data:params ratio 8 instead of the compute-optimal 10.5.
launch base_train --depth=$DEPTH --target-param-data-ratio=8 --device-batch-size=$DEVICE_BATCH_SIZE --fp8 --run=$WANDB_RUN
# Evaluate it: CORE metric, bits per byte on train/val, samples.
launch base_eval --device-batch-size=$DEVICE_BATCH_SIZE

# -----------------------------------------------------------------------------
# SFT: conversation special tokens, tool use, multiple choice.

# Identity conversations give the model its personality (who it is, what it can do); chat_sft reads them from the
# base dir. Ours describe nanochat-cpp; nanochat's are at
# https://karpathy-public.s3.us-west-2.amazonaws.com/identity_conversations.jsonl if you prefer those.
cp data/identity_conversations.jsonl "$NANOCHAT_BASE_DIR/identity_conversations.jsonl"

# SFT, then evaluate the chat model.
launch chat_sft --device-batch-size=$DEVICE_BATCH_SIZE --run=$WANDB_RUN
launch chat_eval -i sft

# Chat with the model in the terminal (leave out -p to chat interactively):
# nanochat chat_cli -p "Why is the sky blue?"

# Or in the browser, ChatGPT style:
# nanochat chat_web

# -----------------------------------------------------------------------------
# The full report: all the sections put together into report.md (also copied to the current directory).
nanochat report generate
