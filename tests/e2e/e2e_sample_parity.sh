#!/usr/bin/env bash
# `nanochat sample` on a checkpoint written by Python nanochat (tests/fixtures/python_basedir): for each prompt of
# expected_engine.json, greedy KV-cache generation of 24 tokens must reproduce the reference ids exactly and the
# last-position logits of the prompt must match within 1e-4. Also: missing checkpoints and tokenizers are one-line
# errors naming the path and the command that makes them.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$FIXTURES/python_basedir" "$tmp/base"
export NANOCHAT_BASE_DIR="$tmp/base" OMP_NUM_THREADS=2
python3 - "$FIXTURES/python_basedir/expected_engine.json" > "$tmp/prompts.txt" <<'PY'
import json, sys
for p in json.load(open(sys.argv[1]))["prompts"]:
    print(p["text"])
PY
i=0
while IFS= read -r prompt; do
  "$NANOCHAT" sample -i base -p "$prompt" --temperature 0 --max-tokens 24 --json --logits 16 > "$tmp/out$i.txt"
  tail -n 1 "$tmp/out$i.txt" > "$tmp/out$i.json"
  i=$((i + 1))
done < "$tmp/prompts.txt"
python3 - "$FIXTURES/python_basedir/expected_engine.json" "$tmp" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))["prompts"]
for i, c in enumerate(cases):
    got = json.load(open(f"{sys.argv[2]}/out{i}.json"))
    assert got["ids"] == c["greedy_kv_cache_24"], (c["text"], got["ids"], c["greedy_kv_cache_24"])
    assert got["ids"][: len(c["ids"])] == c["ids"], (c["text"], "prompt ids differ")
    diff = max(abs(a - b) for a, b in zip(got["last_logits"], c["last_logits_first16"]))
    assert len(got["last_logits"]) == 16 and diff <= 1e-4, (c["text"], diff)
    print(f"ok {c['text']!r}: {len(got['ids'])} ids, max logit diff {diff:.2e}")
PY
# plain text output is the decoded sequence, BOS included
"$NANOCHAT" sample -i base -p "The capital of France is" --max-tokens 4 | tail -n 1 | grep -q '^<|bos|>The capital of France is'
# clear errors: no checkpoints of a source, a missing step, a missing tag, no tokenizer
expect_error() {  # expect_error <pattern> <args...>
  local pat=$1
  shift
  if "$NANOCHAT" "$@" > "$tmp/err.out" 2> "$tmp/err.txt"; then echo "expected failure: $*"; exit 1; fi
  [ "$(wc -l < "$tmp/err.txt")" -eq 1 ] || { cat "$tmp/err.txt"; echo "not one line: $*"; exit 1; }
  grep -q -- "$pat" "$tmp/err.txt" || { cat "$tmp/err.txt"; echo "missing '$pat': $*"; exit 1; }
}
expect_error "chatsft_checkpoints.*nanochat chat_sft" sample -i sft -p hi
expect_error "step 7" sample -i base -s 7 -p hi
expect_error "d9.*nanochat base_train" sample -i base -g d9 -p hi
rm "$tmp/base/tokenizer/tokenizer.pkl"
expect_error "tokenizer.pkl.*nanochat tok_train" sample -i base -p hi
echo "sample parity ok"
