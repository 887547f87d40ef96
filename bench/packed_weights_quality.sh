#!/usr/bin/env bash
# What packing a model's weights costs (nanochat/cpu/pack_weights.h, the inference commands' --dtype): for bfloat16
# and int8 against the float32 weights as trained, greedy-token agreement over each prompt's continuation and the
# change in bits per byte on the validation split.
#   bash bench/packed_weights_quality.sh BASE_DIR [TAG] [TOKENS]     # base model BASE_DIR/base_checkpoints/TAG
#   NANOCHAT_DATA_DIR=... bash bench/packed_weights_quality.sh tests/fixtures/python_basedir d2 248
# BASE_DIR is copied to a temporary directory (base_eval writes its report there). Agreement: the fraction of the
# TOKENS greedy positions (default 256) where the packed model's token equals float32's, and the tokens before the
# first difference, over 8 prompts (after a difference the two continue from different texts, so the fraction counts
# only what still happens to agree). bpb: base_eval --eval bpb over SPLIT_TOKENS (default 65536) tokens of the
# validation split. NANOCHAT (default build/nanochat) is the program.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NANOCHAT=${NANOCHAT:-$here/../build/nanochat}
src=${1:?usage: packed_weights_quality.sh BASE_DIR [TAG] [TOKENS]}
tag=${2:-}
tokens=${3:-256}
split_tokens=${SPLIT_TOKENS:-65536}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src" "$tmp/base"
export NANOCHAT_BASE_DIR="$tmp/base" NANOCHAT_LOGGER=none
tag_args=()
[ -n "$tag" ] && tag_args=(-g "$tag")
prompts=("The capital of France is" "The chemical symbol of gold is" "If yesterday was Friday, then tomorrow will be"
  "The opposite of hot is" "The planets of the solar system are:" "My favorite color is" "If 5*x + 3 = 13, then x is"
  "def fibonacci(n):")
run() {  # a command whose output is kept; its log is shown if it fails
  "$@" > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  cat "$tmp/out"
}
# Each prompt's continuation: TOKENS, or what the model's context leaves after the prompt.
ctx=$(python3 -c 'import json,sys,glob; print(json.load(open(sorted(glob.glob(sys.argv[1]))[-1]))["model_config"]["sequence_len"])' \
  "$NANOCHAT_BASE_DIR/base_checkpoints/${tag:-*}/meta_*.json")
budget=()
for i in "${!prompts[@]}"; do
  run "$NANOCHAT" sample -i base "${tag_args[@]}" -m 0 --json -p "${prompts[$i]}" | grep '^{' > "$tmp/prompt.$i.json"
  plen=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["ids"]))' "$tmp/prompt.$i.json")
  budget+=($((tokens < ctx - plen ? tokens : ctx - plen)))
done
for dtype in float32 bfloat16 int8; do
  for i in "${!prompts[@]}"; do
    run "$NANOCHAT" sample -i base "${tag_args[@]}" --dtype "$dtype" -t 0 -m "${budget[$i]}" --json -p "${prompts[$i]}" |
      grep '^{' > "$tmp/$dtype.$i.json"
  done
  run "$NANOCHAT" base_eval "${tag_args[@]}" --dtype "$dtype" --eval bpb --device-batch-size 4 \
    --split-tokens "$split_tokens" | grep -E "val bpb" > "$tmp/$dtype.bpb"
done
echo "model context $ctx; continuations of ${budget[*]} tokens; bpb over $split_tokens tokens"
python3 - "$tmp" "${#prompts[@]}" "$tokens" <<'PY'
import json, re, sys
tmp, n, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def ids(dtype, i):  # the continuation only (it may end early, at <|bos|>)
    prompt = json.loads(open(f"{tmp}/prompt.{i}.json").readline())["ids"]
    return json.loads(open(f"{tmp}/{dtype}.{i}.json").readline())["ids"][len(prompt):]
def bpb(dtype):
    m = re.search(r"val bpb:?\s*([0-9.]+)", open(f"{tmp}/{dtype}.bpb").read())
    return float(m.group(1)) if m else float("nan")
ref_bpb = bpb("float32")
print(f"| weights | tokens equal ({n} prompts x up to {tokens}) | tokens before the first difference (median, min) | val bpb | change |")
print("|---|---|---|---|---|")
for dtype in ["float32", "bfloat16", "int8"]:
    equal = total = 0
    firsts = []
    for i in range(n):
        a, b = ids("float32", i), ids(dtype, i)
        equal += sum(x == y for x, y in zip(a, b))
        total += max(len(a), len(b))  # a continuation that ended early differs at every position it lacks
        first = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        firsts.append(first)
    firsts.sort()
    v = bpb(dtype)
    print(f"| {dtype} | {100.0 * equal / total:.1f}% | {firsts[len(firsts) // 2]}, {firsts[0]} | {v:.6f} | {v - ref_bpb:+.6f} |")
PY
