#!/usr/bin/env bash
# End-to-end: the real binary trains a 512-token tokenizer on fixture text (JSONL + a plain text file), the files it
# writes load in Python (tokenizer.pkl via pickle with a stand-in Encoding class, token_bytes.pt via torch.load, and
# the real tiktoken unpickles tokenizer.pkl and encodes as we do), tok_encode round-trips, tok_eval runs, and bad input gives one-line errors.
# env: NANOCHAT (binary), FIXTURES (tests/fixtures), SOURCE_DIR.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
work=$(mktemp -d "${TMPDIR:-/tmp}/e2e_tokenizer.XXXXXX")
trap 'rm -rf "$work"' EXIT
export NANOCHAT_BASE_DIR="$work/base"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${NANOCHAT_PYTHON:-python3}  # .venv's python (ctest sets it); torch reads what we write
"$PY" -c 'import torch' || { echo "error: $PY cannot import torch (bash scripts/setup.sh installs it into .venv)"; exit 1; }

printf 'A plain text document, one per file.\nIt has two lines and the number 12345.\n' > "$work/doc.txt"
"$NANOCHAT" tok_train --input "$FIXTURES"/parquet/pretrain/shard_00000.expected.jsonl \
  "$FIXTURES"/parquet/pretrain/shard_00001.expected.jsonl "$work/doc.txt" --vocab-size 512 > "$work/train.log"
grep -q "^Training time: " "$work/train.log" || fail "no training time printed"
tokdir="$NANOCHAT_BASE_DIR/tokenizer"
[ -s "$tokdir/tokenizer.pkl" ] || fail "tokenizer.pkl missing"
[ -s "$tokdir/token_bytes.pt" ] || fail "token_bytes.pt missing"

# --output-dir and --max-chars: a smaller run elsewhere stops early and still writes both files.
"$NANOCHAT" tok_train --input "$FIXTURES"/parquet/pretrain/shard_00000.expected.jsonl --vocab-size 300 \
  --max-chars 5000 --doc-cap 100 --output-dir "$work/small" > "$work/small.log"
[ -s "$work/small/tokenizer.pkl" ] && [ -s "$work/small/token_bytes.pt" ] || fail "--output-dir not honoured"
docs=$(sed -n 's/^Training on \([0-9]*\) documents.*/\1/p' "$work/small.log")
[ "$docs" -ge 1 ] && [ "$docs" -le 60 ] || fail "--max-chars 5000 --doc-cap 100 should stop within 51 docs, got $docs"

/usr/bin/python3 "$(dirname "$0")/tokenizer_pkl_check.py" "$tokdir/tokenizer.pkl" "$work/small/tokenizer.pkl"
"$PY" - "$tokdir/token_bytes.pt" <<'PY'
import sys, torch
t = torch.load(sys.argv[1], weights_only=True)
assert t.dtype == torch.int32 and t.shape == (512,), (t.dtype, t.shape)
assert (t[:128] == 1).all() and (t[128:256] == 3).all()  # a lone byte >= 0x80 decodes to U+FFFD: 3 bytes
assert (t[503:] == 0).all() and (t[256:503] >= 1).all()
print("token_bytes.pt ok:", t.shape[0], "entries")
PY
# The real tiktoken unpickles our tokenizer.pkl (as nanochat's get_tokenizer does) and encodes as we do.
text="Hello world 12345, tokenizers!"
ours=$("$NANOCHAT" tok_encode --text "$text" | sed 's/.*"ids":\(\[[^]]*\]\).*/\1/')
"$PY" - "$tokdir/tokenizer.pkl" "$text" "$ours" <<'PY'
import json, pickle, sys
enc = pickle.load(open(sys.argv[1], "rb"))
assert type(enc).__module__ == "tiktoken.core", type(enc)
ids = enc.encode_ordinary(sys.argv[2])
assert ids == json.loads(sys.argv[3]), (ids, sys.argv[3])
print("tiktoken reads tokenizer.pkl:", ids)
PY

# tok_encode: ids for text, specials only when allowed, decode back.
out=$("$NANOCHAT" tok_encode --text "Hello <|bos|> world 12345" --prepend "<|bos|>" --append 511)
ids=$(echo "$out" | sed 's/.*"ids":\(\[[^]]*\]\).*/\1/')
echo "$ids" | grep -q '^\[503,' || fail "prepend missing: $out"
echo "$ids" | grep -q ',511\]$' || fail "append missing: $out"
n503=$(echo "$ids" | tr -d '[] ' | tr ',' '\n' | grep -c '^503$' || true)
[ "$n503" = 1 ] || fail "ordinary encoding produced a special token: $out"
text=$(echo "$ids" | "$NANOCHAT" tok_encode --decode)
[ "$text" = '{"text":"<|bos|>Hello <|bos|> world 12345<|output_end|>"}' ] || fail "decode gave $text"
"$NANOCHAT" tok_encode --allow-special --text "<|bos|>hi" | grep -q '"ids":\[503,' || fail "--allow-special"
printf '{"text":"one"}\n{"text":"two two"}\n' | "$NANOCHAT" tok_encode --jsonl > "$work/batch.jsonl"
[ "$(wc -l < "$work/batch.jsonl")" = 2 ] || fail "--jsonl should print one line per input"

# Default input: the train split of the pretraining shards in the base dir (fixture shards 0-1; 2 is val).
mkdir -p "$work/shards/base_data_climbmix"
cp "$FIXTURES"/parquet/pretrain/shard_0000{0,1,2}.parquet "$work/shards/base_data_climbmix/"
NANOCHAT_BASE_DIR="$work/shards" "$NANOCHAT" tok_train --vocab-size 300 > "$work/shards.log"
grep -q "^Training on 600 documents" "$work/shards.log" || fail "default input should be the 2 train shards: $(cat "$work/shards.log")"
[ -s "$work/shards/tokenizer/tokenizer.pkl" ] || fail "default output dir not used"
NANOCHAT_BASE_DIR="$work/shards" "$NANOCHAT" tok_eval --gpt2 "$FIXTURES/tokenizer_pkl/tokenizer.pkl.ranks.tiktoken" \
  --gpt4 "$FIXTURES/tokenizer/cl100k_base.tiktoken" > "$work/eval_shards.log"
grep -q "^| fwe-train |" "$work/eval_shards.log" && grep -q "^| fwe-val |" "$work/eval_shards.log" || fail "no fwe rows"

# tok_eval: the small fixture rank file stands in for GPT-2 (nothing is downloaded), cl100k for GPT-4.
"$NANOCHAT" tok_eval --gpt2 "$FIXTURES/tokenizer_pkl/tokenizer.pkl.ranks.tiktoken" \
  --gpt4 "$FIXTURES/tokenizer/cl100k_base.tiktoken" > "$work/eval.log"
grep -q "Comparison with GPT-4" "$work/eval.log" || fail "tok_eval printed no GPT-4 table"
grep -q "^| science |" "$work/eval.log" || fail "tok_eval printed no markdown rows"

# Report sections, as nanochat's: tok_train's flags and token statistics (of the last run: vocab 300), tok_eval's tables.
sec="$NANOCHAT_BASE_DIR/report/tokenizer-training.md"
[ -s "$sec" ] || fail "tok_train wrote no report section"
grep -q "^## Tokenizer training$" "$sec" && grep -q "^- vocab_size: 300$" "$sec" && grep -q "^- num_special_tokens: 9$" "$sec" \
  && grep -q "^- token_bytes_mean: [0-9]*\.[0-9]\{4\}$" "$sec" && grep -q "^- train_time: " "$sec" \
  || fail "tokenizer-training.md: $(cat "$sec")"
sec="$NANOCHAT_BASE_DIR/report/tokenizer-evaluation.md"
grep -q "^### Comparison with GPT-2$" "$sec" && grep -q "^### Comparison with GPT-4$" "$sec" \
  && grep -q "^| science | " "$sec" || fail "tokenizer-evaluation.md: $(cat "$sec")"

# Without rank files the comparisons are skipped with a note and our own ratios are still measured and reported.
"$NANOCHAT" tok_eval > "$work/eval_none.log"
grep -q "note: skipping the comparison with GPT-2" "$work/eval_none.log" || fail "no skip note: $(cat "$work/eval_none.log")"
grep -q "^### Our tokenizer$" "$sec" && grep -q "^| news | " "$sec" && grep -q "^Not compared: GPT-4" "$sec" \
  || fail "tokenizer-evaluation.md without baselines: $(cat "$sec")"
"$NANOCHAT" tok_eval --gpt4 "$FIXTURES/tokenizer/cl100k_base.tiktoken" > "$work/eval_gpt4.log"
grep -q "Comparison with GPT-4" "$work/eval_gpt4.log" && ! grep -q "Comparison with GPT-2" "$work/eval_gpt4.log" \
  || fail "tok_eval with only --gpt4: $(cat "$work/eval_gpt4.log")"

# Bad input: one line "error: ..." and exit 1, never a crash.
expect_error() {
  local want="$1"; shift
  set +e; "$NANOCHAT" "$@" > "$work/err.out" 2> "$work/err.txt"; rc=$?; set -e
  [ "$rc" = 1 ] || fail "$* exited $rc, expected 1"
  [ "$(wc -l < "$work/err.txt")" = 1 ] && grep -q "^error: .*$want" "$work/err.txt" || fail "$*: $(cat "$work/err.txt")"
}
expect_error "no such file" tok_train --input "$work/missing.txt"
expect_error "too small" tok_train --input "$work/doc.txt" --vocab-size 100
printf '{"text": 1}\n' > "$work/bad.jsonl"
expect_error "string field" tok_train --input "$work/bad.jsonl"
expect_error "no such file" tok_eval --gpt2 "$work/missing.tiktoken"
expect_error "not a special token" tok_encode --text hi --prepend "<|nope|>"
expect_error "not in the vocabulary" tok_encode --decode --text "[99999]"
printf 'garbage' > "$work/tokenizer.pkl"
expect_error "tokenizer.pkl" tok_encode --tokenizer-dir "$work" --text hi
echo "e2e_tokenizer: ok"
