#!/usr/bin/env bash
# runs/runcpu.sh: the whole pipeline on a CPU, from nothing to a small model you can chat with, in well under half
# an hour on 2 cores, with or without a network (nanochat's runs/runcpu.sh, made to work offline).
#
#   bash scripts/setup.sh && bash runs/runcpu.sh
#   NANOCHAT_RUNCPU_SMOKE=1 bash runs/runcpu.sh      # everything tiny (a couple of minutes): checks the plumbing
#
# Stages: report reset, pretraining data, tokenizer (train + eval), base model (train + eval), SFT, chat eval, one
# question to the chat model, report.md. Each stage prints "[k/N] ..." with the time so far and an estimate of the
# time left; base_train and chat_sft print their own ETA on every step.
#
# Pretraining data, in order of preference (NANOCHAT_RUNCPU_DATA=auto, the default):
#   1. ClimbMix shards already in $NANOCHAT_BASE_DIR/base_data_climbmix (nanochat's data);
#   2. a quick ClimbMix download (one train shard + the validation shard, given up after
#      NANOCHAT_RUNCPU_DOWNLOAD_TIMEOUT seconds, default 120);
#   3. otherwise, offline: the Python 3.11 documentation sources that Debian's python3.11-doc installs
#      (/usr/share/doc/python3.11/html/_sources, ~12 MB of reStructuredText), or NANOCHAT_RUNCPU_TEXT=PATH..., cut into
#      paragraph-aligned documents by `nanochat dataset --from-text` into $NANOCHAT_BASE_DIR/base_data_text (kept
#      apart from ClimbMix shards through NANOCHAT_DATA_DIR, since both are named shard_XXXXX.parquet).
#   NANOCHAT_RUNCPU_DATA=climbmix requires ClimbMix (fails if it cannot be had); =text always uses the local text.
# SFT runs on what needs no network: SpellingBee and SimpleSpelling (word list: words_alpha.txt when it can be
# downloaded, else Debian's wamerican) and the identity conversations shipped in data/identity_conversations.jsonl.
# chat_eval runs SpellingBee. CORE needs nanochat's eval bundle, so base_eval computes it only when
# $NANOCHAT_BASE_DIR/eval_bundle is already there.
#
# Environment: NANOCHAT_BASE_DIR (default ~/.cache/nanochat), NANOCHAT (the program, default build/nanochat of this
# checkout), NANOCHAT_DTYPE (default: bfloat16 when the CPU has bf16 instructions, avx512_bf16 or amx_bf16, which
# trains about twice as fast; float32 otherwise), WANDB_RUN (run name for the loggers, default dummy).
# Not covered: GPUs (runs/speedrun.sh), RL (chat_rl needs GSM8K from the network), the web UI (run
# `nanochat chat_web` afterwards).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NANOCHAT="${NANOCHAT:-$REPO/build/nanochat}"
if [ ! -x "$NANOCHAT" ]; then
  echo "runcpu: $NANOCHAT not found; build it first with: bash scripts/setup.sh" >&2
  exit 1
fi
export NANOCHAT_BASE_DIR="${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}"
mkdir -p "$NANOCHAT_BASE_DIR"
WANDB_RUN="${WANDB_RUN:-dummy}"
SMOKE="${NANOCHAT_RUNCPU_SMOKE:-0}"
DATA_MODE="${NANOCHAT_RUNCPU_DATA:-auto}"
TEXT_SOURCES="${NANOCHAT_RUNCPU_TEXT:-/usr/share/doc/python3.11/html/_sources}"
DOWNLOAD_TIMEOUT="${NANOCHAT_RUNCPU_DOWNLOAD_TIMEOUT:-120}"
IDENTITY="$REPO/data/identity_conversations.jsonl"
case "$DATA_MODE" in auto|climbmix|text) ;; *) echo "runcpu: NANOCHAT_RUNCPU_DATA must be auto, climbmix or text, got '$DATA_MODE'" >&2; exit 1 ;; esac
[ -s "$IDENTITY" ] || { echo "runcpu: $IDENTITY is missing (it ships with the source tree)" >&2; exit 1; }

# bf16 matmuls only pay off where the CPU has bf16 instructions; elsewhere they are emulated and slower than fp32.
if [ -z "${NANOCHAT_DTYPE:-}" ]; then
  if grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo 2>/dev/null; then export NANOCHAT_DTYPE=bfloat16; else export NANOCHAT_DTYPE=float32; fi
fi

# Sizes. Full: a depth-4 model (11.5M parameters, vocab 8192, context 512) pretrained on 2M tokens (about one epoch
# of the documentation), then 150 SFT steps on a mixture where the identity conversations (x10) weigh about half as
# much as the spelling tasks. chat_sft stops after one epoch of its mixture, as nanochat's does, so the mixture is
# sized to last longer than the steps asked for. Smoke: depth 2 on a slice of the text, a few steps per stage.
if [ "$SMOKE" = 1 ]; then
  VOCAB=2048; TOK_MAX_CHARS=2000000; DEPTH=2; SEQ=256; DEVICE_BATCH=4; TOTAL_BATCH=1024
  BASE_ITERS=12; BASE_EVAL_EVERY=6; EVAL_TOKENS=4096; SPLIT_TOKENS=4096
  SFT_ITERS=14; SFT_SPELL=400; SFT_IDENTITY_REPEAT=1; SFT_VAL=40; CHAT_EVAL_PROBLEMS=4; CHAT_EVAL_TOKENS=48
  CHAT_TOKENS_NOTE="(smoke mode: the model is far too small to make sense)"
else
  VOCAB=8192; TOK_MAX_CHARS=50000000; DEPTH=4; SEQ=512; DEVICE_BATCH=8; TOTAL_BATCH=4096
  BASE_ITERS=500; BASE_EVAL_EVERY=100; EVAL_TOKENS=65536; SPLIT_TOKENS=65536
  SFT_ITERS=150; SFT_SPELL=2500; SFT_IDENTITY_REPEAT=10; SFT_VAL=200; CHAT_EVAL_PROBLEMS=48; CHAT_EVAL_TOKENS=256
  CHAT_TOKENS_NOTE=""
fi
TAG="d$DEPTH"

# Progress: each stage has an expected share of the run (seconds on an idle 2-core machine with bf16; fp32 trains
# about 2.5x slower). Until base_train has run, the time left is that expectation; afterwards the remaining shares
# are scaled by the pace of the stages since base_train started (the data stage's download attempt says nothing
# about the speed of training).
STAGES=(report_reset data tok_train tok_eval base_train base_eval chat_sft chat_eval chat_cli report)
if [ "$SMOKE" = 1 ]; then WEIGHTS=(1 2 1 1 4 2 4 2 1 1); else WEIGHTS=(1 5 5 3 380 10 110 30 5 1); fi
if [ "$NANOCHAT_DTYPE" != bfloat16 ]; then WEIGHTS[4]=$((WEIGHTS[4] * 5 / 2)); WEIGHTS[6]=$((WEIGHTS[6] * 5 / 2)); fi
N=${#STAGES[@]}
PACE_FROM=4  # index of base_train
T0=$(date +%s)
T_PACE=""
STAGE_INDEX=0
fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
stage() {  # stage NAME "what it does"
  local name="$1" what="$2" i=0 paced_w=0 left_w=0 now eta
  while [ "${STAGES[$i]}" != "$name" ]; do i=$((i + 1)); done
  for ((k = 0; k < N; k++)); do
    if [ $k -ge $i ]; then left_w=$((left_w + WEIGHTS[k])); elif [ $k -ge $PACE_FROM ]; then paced_w=$((paced_w + WEIGHTS[k])); fi
  done
  now=$(date +%s)
  [ $i = $PACE_FROM ] && T_PACE=$now
  if [ $paced_w -gt 0 ]; then eta="about $(fmt_time $(((now - T_PACE) * left_w / paced_w))) left"
  else eta="about $(fmt_time $left_w) left on an idle 2-core machine"; fi
  STAGE_INDEX=$((i + 1))
  echo
  echo "==== [$STAGE_INDEX/$N] $name: $what | elapsed $(fmt_time $((now - T0))) | $eta ===="
}
trap 'rc=$?; [ $rc = 0 ] || echo "runcpu: stage [$STAGE_INDEX/$N] ${STAGES[$((STAGE_INDEX > 0 ? STAGE_INDEX - 1 : 0))]} failed (exit $rc) after $(fmt_time $(($(date +%s) - T0)))" >&2' EXIT

nanochat() { "$NANOCHAT" "$@"; }
count_shards() { ls "$1"/*.parquet 2>/dev/null | wc -l; }

echo "runcpu: base dir $NANOCHAT_BASE_DIR | program $NANOCHAT | dtype $NANOCHAT_DTYPE | $(nproc) cores | load average $(cut -d' ' -f1-3 /proc/loadavg)$([ "$SMOKE" = 1 ] && echo ' | SMOKE mode')"

# -----------------------------------------------------------------------------
stage report_reset "start the report (header.md: git, hardware, software)"
nanochat report reset --source-dir "$REPO"

# -----------------------------------------------------------------------------
stage data "pretraining data ($DATA_MODE)"
CLIMBMIX_DIR="$NANOCHAT_BASE_DIR/base_data_climbmix"
TEXT_DIR="$NANOCHAT_BASE_DIR/base_data_text"
DATA_SOURCE=""
if [ "$DATA_MODE" != text ] && [ "$(count_shards "$CLIMBMIX_DIR")" -ge 2 ]; then
  DATA_SOURCE=climbmix
  echo "Using the $(count_shards "$CLIMBMIX_DIR") ClimbMix shards already in $CLIMBMIX_DIR"
elif [ "$DATA_MODE" != text ]; then
  echo "Trying to download ClimbMix (1 train shard + the validation shard, giving up after ${DOWNLOAD_TIMEOUT}s)..."
  if NANOCHAT_DOWNLOAD_BACKOFF=0.25 timeout "$DOWNLOAD_TIMEOUT" "$NANOCHAT" dataset -n 1 -w 2 \
      && [ "$(count_shards "$CLIMBMIX_DIR")" -ge 2 ]; then
    DATA_SOURCE=climbmix
  else
    echo "ClimbMix could not be downloaded (no network, or too slow for this quick run)."
    [ "$DATA_MODE" = climbmix ] && { echo "runcpu: NANOCHAT_RUNCPU_DATA=climbmix but no shards could be had" >&2; exit 1; }
  fi
fi
if [ -z "$DATA_SOURCE" ]; then
  DATA_SOURCE=text
  export NANOCHAT_DATA_DIR="$TEXT_DIR"
  # The smoke run takes one small part of the default corpus.
  sources=($TEXT_SOURCES)
  if [ "$SMOKE" = 1 ] && [ -d "${sources[0]}/tutorial" ]; then sources=("${sources[0]}/tutorial"); fi
  for s in "${sources[@]}"; do
    if [ ! -e "$s" ]; then
      echo "runcpu: no pretraining data: ClimbMix is not available and $s does not exist." >&2
      echo "        Install Debian's python3.11-doc (bash scripts/setup.sh does) or set NANOCHAT_RUNCPU_TEXT to your own text files." >&2
      exit 1
    fi
  done
  if [ "$(count_shards "$TEXT_DIR")" -ge 2 ] && [ -f "$TEXT_DIR/SOURCES" ] && [ "$(cat "$TEXT_DIR/SOURCES")" = "${sources[*]}" ]; then
    echo "Using the $(count_shards "$TEXT_DIR") shards already built from ${sources[*]} in $TEXT_DIR"
  else
    rm -rf "$TEXT_DIR"
    # Pieces of ~1500 bytes (~400 tokens, cut at blank lines) fill 512-token rows; ~10 shards, the last for validation.
    bytes=$(du -sbc "${sources[@]}" | tail -1 | cut -f1)
    nanochat dataset --from-text "${sources[@]}" --doc-chars 1500 --shard-chars $((bytes / 10 + 1)) | tail -3
    echo "${sources[*]}" > "$TEXT_DIR/SOURCES"
  fi
fi
echo "Pretraining data: $DATA_SOURCE ($(count_shards "${NANOCHAT_DATA_DIR:-$CLIMBMIX_DIR}") shards in ${NANOCHAT_DATA_DIR:-$CLIMBMIX_DIR}, the last one is the validation split)"

# -----------------------------------------------------------------------------
stage tok_train "BPE tokenizer, vocab $VOCAB"
nanochat tok_train --vocab-size=$VOCAB --max-chars=$TOK_MAX_CHARS

stage tok_eval "compression of our tokenizer vs GPT-2/GPT-4 (where their rank files are available)"
# tok_eval downloads nothing; GPT-4's ranks ship with the tests, GPT-2's are used when put in the base dir.
GPT4_ARGS=()
if [ ! -f "$NANOCHAT_BASE_DIR/tiktoken/cl100k_base.tiktoken" ] && [ -f "$REPO/tests/fixtures/tokenizer/cl100k_base.tiktoken" ]; then
  GPT4_ARGS=(--gpt4 "$REPO/tests/fixtures/tokenizer/cl100k_base.tiktoken")
fi
nanochat tok_eval "${GPT4_ARGS[@]}" | sed -n '/^Markdown tables/,$p'

# -----------------------------------------------------------------------------
stage base_train "pretrain a depth-$DEPTH model for $BASE_ITERS steps of $TOTAL_BATCH tokens ($NANOCHAT_DTYPE)"
nanochat base_train \
  --depth=$DEPTH \
  --head-dim=64 \
  --window-pattern=L \
  --max-seq-len=$SEQ \
  --device-batch-size=$DEVICE_BATCH \
  --total-batch-size=$TOTAL_BATCH \
  --eval-every=$BASE_EVAL_EVERY \
  --eval-tokens=$EVAL_TOKENS \
  --core-metric-every=-1 \
  --sample-every=-1 \
  --save-every=-1 \
  --num-iterations=$BASE_ITERS \
  --model-tag=$TAG \
  --run=$WANDB_RUN

BASE_EVALS=bpb,sample
[ -d "$NANOCHAT_BASE_DIR/eval_bundle" ] && BASE_EVALS=core,bpb,sample
stage base_eval "evaluate the base model ($BASE_EVALS)"
nanochat base_eval --eval=$BASE_EVALS --model-tag=$TAG --device-batch-size=$DEVICE_BATCH --split-tokens=$SPLIT_TOKENS --max-per-task=16

# -----------------------------------------------------------------------------
MIXTURE="SpellingBee:$SFT_SPELL,SimpleSpelling:$SFT_SPELL,CustomJSON:$IDENTITY*$SFT_IDENTITY_REPEAT"
stage chat_sft "supervised fine-tuning for $SFT_ITERS steps on $MIXTURE"
nanochat chat_sft \
  --model-tag=$TAG \
  --mixture="$MIXTURE" \
  --val-mixture="SpellingBee:$SFT_VAL,SimpleSpelling:$SFT_VAL" \
  --num-iterations=$SFT_ITERS \
  --eval-every=$((SFT_ITERS / 2)) \
  --eval-tokens=$EVAL_TOKENS \
  --chatcore-every=-1 \
  --run=$WANDB_RUN

stage chat_eval "SpellingBee, $CHAT_EVAL_PROBLEMS problems"
nanochat chat_eval -i sft -g $TAG -a SpellingBee -x $CHAT_EVAL_PROBLEMS -m $CHAT_EVAL_TOKENS

PROMPT="Hi! Who are you?"
stage chat_cli "one question to the chat model $CHAT_TOKENS_NOTE"
echo "User: $PROMPT"
ANSWER_FILE="$NANOCHAT_BASE_DIR/report/chat_answer.txt"
nanochat chat_cli -i sft -g $TAG -p "$PROMPT" | tee "$ANSWER_FILE"

# -----------------------------------------------------------------------------
stage report "report.md"
nanochat report generate
echo
echo "runcpu: done in $(fmt_time $(($(date +%s) - T0))) (load average now $(cut -d' ' -f1-3 /proc/loadavg))."
echo "Talk to the model: $NANOCHAT chat_cli   or   $NANOCHAT chat_web"
echo "Report: $NANOCHAT_BASE_DIR/report/report.md"
