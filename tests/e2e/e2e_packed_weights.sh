#!/usr/bin/env bash
# --dtype bfloat16|int8 (nanochat/cpu/pack_weights.h) through the commands that take it, on the Python-written d2
# checkpoint: each packs the model's 13 matrices and says so in one line; sample and infer_bench generate; base_eval's
# bits per byte stays within 0.01 of float32's (the rounding moves it by ~0.001 here); a dtype it does not know is
# refused with one line. Run: ctest --test-dir build -R e2e_packed_weights.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$FIXTURES/python_basedir" "$tmp/base"
export NANOCHAT_BASE_DIR="$tmp/base" OMP_NUM_THREADS=2 NANOCHAT_LOGGER=none
cat "$FIXTURES"/parquet/pretrain/*.expected.jsonl > "$tmp/docs.jsonl"
"$NANOCHAT" dataset --from-text "$tmp/docs.jsonl" > /dev/null
fail() { echo "FAIL: $*" >&2; exit 1; }

for dtype in bfloat16 int8; do
  "$NANOCHAT" sample -i base --dtype $dtype -p "The capital of France is" -t 0 -m 32 --json > "$tmp/$dtype.out"
  grep -q "^weights: 13 matrices packed as $dtype for decoding" "$tmp/$dtype.out" || {
    cat "$tmp/$dtype.out"
    fail "sample --dtype $dtype did not say what it packed"
  }
  python3 -c 'import json,sys; ids=json.loads(open(sys.argv[1]).read().splitlines()[-1])["ids"]; sys.exit(len(ids) < 8)' \
    "$tmp/$dtype.out" || fail "sample --dtype $dtype generated nothing"
  "$NANOCHAT" infer_bench -i base --dtype $dtype --batch-sizes 1,5 --prompt-len 16 --max-tokens 8 --repeats 1 \
    --device-type cpu --json > "$tmp/bench.$dtype" || fail "infer_bench --dtype $dtype failed"
  grep -q "\"weights\":\"$dtype\"" "$tmp/bench.$dtype" || fail "infer_bench --dtype $dtype does not report its weights"
done

bpb() { "$NANOCHAT" base_eval --dtype "$1" --eval bpb --device-batch-size 2 --split-tokens 2048 | sed -n 's/^val bpb: //p'; }
fp32=$(bpb float32)
int8=$(bpb int8)
python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(not abs(a - b) < 0.01)' "$fp32" "$int8" ||
  fail "int8 weights moved val bpb from $fp32 to $int8"
echo "val bpb: float32 $fp32, int8 $int8"

out=$("$NANOCHAT" sample -i base --dtype int4 2>&1 >/dev/null) && fail "--dtype int4 was accepted"
[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && grep -q -- "--dtype" <<<"$out" || fail "--dtype int4: expected one line, got: $out"
echo "e2e_packed_weights: ok"
