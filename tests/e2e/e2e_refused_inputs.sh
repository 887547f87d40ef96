#!/usr/bin/env bash
# Damaged files and senseless flags are refused up front with one line, never a hang or a silent wrong answer:
# a meta whose sizes do not match its tensors (n_layer 1000000, 2.5), a .pt with flipped bytes (CRC-32), a
# token_bytes.pt of the wrong shape, length or sign, a tokenizer.pkl missing a byte or with a pattern that matches
# nothing, non-finite or overflowing numbers, a batch or model too big for the machine, a fresh base_train over
# another run's checkpoints (and --overwrite replacing them), a run whose loss turns non-finite (stops unsaved).
# Every case runs even after one fails; the test then fails with the list of the cases that did ("FAILED: ...").
# Run: ctest --test-dir build -R e2e_refused_inputs, or NANOCHAT=build/nanochat FIXTURES=tests/fixtures bash <this>.
# env: NANOCHAT (binary), FIXTURES (tests/fixtures).
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=2 NANOCHAT_LOGGER=none
# pretraining shards from the fixture documents, made once
mkdir -p "$tmp/data"
cp -r "$FIXTURES/python_basedir/tokenizer" "$tmp/data/"
cat "$FIXTURES"/parquet/pretrain/*.expected.jsonl > "$tmp/docs.jsonl"
NANOCHAT_BASE_DIR="$tmp/data" "$NANOCHAT" dataset --from-text "$tmp/docs.jsonl" > /dev/null
fresh() {  # a clean copy of the Python-written base dir, with the shards
  rm -rf "$tmp/base"
  cp -r "$FIXTURES/python_basedir" "$tmp/base"
  for d in "$tmp"/data/base_data*; do cp -r "$d" "$tmp/base/"; done
  export NANOCHAT_BASE_DIR="$tmp/base"
}
ck="$tmp/base/base_checkpoints/d2"
failures=()
failed() { failures+=("$1"); echo "FAIL: $1"; }
# refused <regex> <args...>: fails within 10 s, with exactly one line on stderr, matching the regex
refused() {
  local pat=$1 rc=0
  shift
  timeout 10 "$NANOCHAT" "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
  if [ $rc = 0 ] || [ $rc = 124 ]; then
    failed "expected a quick refusal matching '$pat' (rc=$rc): nanochat $*"; tail -n 5 "$tmp/out" "$tmp/err"; return
  fi
  if [ "$(wc -l < "$tmp/err")" != 1 ] || ! grep -qE -e "$pat" "$tmp/err"; then
    failed "nanochat $*: wanted one line matching '$pat'"; echo "got:"; head -5 "$tmp/err"; return
  fi
  echo "ok: nanochat $* -> $(cut -c1-150 "$tmp/err")"
}
edit_meta() {  # edit_meta <python expression on m>
  python3 - "$ck/meta_000003.json" "$1" <<'PY'
import json, sys
p, expr = sys.argv[1], sys.argv[2]
m = json.load(open(p))
exec(expr)
json.dump(m, open(p, "w"), indent=2)
PY
}
SAMPLE=(sample -i base -p "hi" --max-tokens 2)
TRAIN=(base_train --depth 2 --max-seq-len 256 --device-batch-size 2 --total-batch-size 512 --num-iterations 2
       --eval-every -1 --core-metric-every -1 --sample-every -1 --model-tag t)

# --- meta against the checkpoint's tensors ---
fresh; edit_meta 'm["model_config"]["n_layer"] = 1000000'
refused "n_layer=1000000.*does not match .*model_000003.pt \(2 blocks" "${SAMPLE[@]}"
refused "does not match" base_eval --eval bpb --split-tokens 1024
fresh; edit_meta 'm["model_config"]["n_layer"] = 2.5'
refused "n_layer is 2.5; it must be a whole number" "${SAMPLE[@]}"
fresh; edit_meta 'm["model_config"]["n_embd"] = 10**9'
refused "does not match" "${SAMPLE[@]}"

# --- bytes flipped inside a tensor: the zip's CRC-32 ---
fresh
python3 - "$ck/model_000003.pt" <<'PY'
import sys, zipfile
p = sys.argv[1]
z = zipfile.ZipFile(p)
info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
raw = bytearray(open(p, "rb").read())
# the record's data starts after its local header (30 bytes + name + extra)
off = info.header_offset
name_len = int.from_bytes(raw[off + 26:off + 28], "little"); extra_len = int.from_bytes(raw[off + 28:off + 30], "little")
start = off + 30 + name_len + extra_len + info.file_size // 2
for i in range(64):
    raw[start + i] ^= 0x5A
open(p, "wb").write(raw)
PY
refused "model_000003.pt is corrupted: record data/[0-9]+ fails its CRC-32 check" "${SAMPLE[@]}"
refused "fails its CRC-32 check" base_train --depth 2 --resume-from-step 3 --num-iterations 4 --eval-every -1 \
  --core-metric-every -1 --sample-every -1 --device-batch-size 2 --max-seq-len 256 --total-batch-size 512

# --- token_bytes.pt ---
if PY=${NANOCHAT_PYTHON:-}; [ -n "$PY" ] && "$PY" -c 'import torch' 2> /dev/null; then
  for kind in short float2d negative zeros; do
    fresh
    "$PY" - "$tmp/base/tokenizer/token_bytes.pt" "$kind" <<'PY'
import sys, torch
p, kind = sys.argv[1], sys.argv[2]
t = torch.load(p, weights_only=True)
t = {"short": t[:-5], "float2d": t.float().view(1, -1), "negative": -t, "zeros": torch.zeros_like(t)}[kind]
torch.save(t, p)
PY
    case $kind in
      short) pat="has 1028 entries but the tokenizer has 1033 tokens" ;;
      float2d) pat="holds a 2-D Float tensor" ;;
      negative) pat="holds negative byte counts" ;;
      zeros) pat="is all zeros" ;;
    esac
    refused "token_bytes.pt $pat" "${TRAIN[@]}"
  done
else
  echo "skipping the token_bytes.pt cases: no Python with torch (NANOCHAT_PYTHON)"
fi

# --- tokenizer.pkl: every byte a token, a pattern that covers text ---
for kind in nobyte empty xstar; do
  fresh
  python3 - "$tmp/base/tokenizer/tokenizer.pkl" "$kind" <<'PY'
import pickle, sys, types
class Encoding:
    def __getstate__(self): return self.state
    def __setstate__(self, state): self.state = state
Encoding.__module__, Encoding.__qualname__ = "tiktoken.core", "Encoding"
core = types.ModuleType("tiktoken.core"); core.Encoding = Encoding
pkg = types.ModuleType("tiktoken"); pkg.core = core
sys.modules["tiktoken"], sys.modules["tiktoken.core"] = pkg, core
p, kind = sys.argv[1], sys.argv[2]
enc = pickle.load(open(p, "rb"))
if kind == "nobyte": del enc.state["mergeable_ranks"][b"\xe9"]
else: enc.state["pat_str"] = "" if kind == "empty" else "x*"
pickle.dump(enc, open(p, "wb"))
PY
  case $kind in
    nobyte) pat="tokenizer.pkl has no token for the byte 0xe9" ;;
    *) pat="tokenizer.pkl: its split pattern .* covers 0 of [0-9]+ bytes of a probe text" ;;
  esac
  refused "$pat" "${SAMPLE[@]}"
done

# --- flags that make no sense ---
fresh
refused "--matrix-lr: 'nan' is not a finite number" "${TRAIN[@]}" --matrix-lr nan
refused "--warmdown-ratio: 'nan' is not a finite number" "${TRAIN[@]}" --warmdown-ratio nan
refused "--final-lr-frac: 'inf' is not a finite number" "${TRAIN[@]}" --final-lr-frac inf
refused "--depth: '99999999999999999999' is not a whole number" "${TRAIN[@]}" --depth 99999999999999999999
refused "--depth: '2.5' is not a whole number" "${TRAIN[@]}" --depth 2.5
refused "needs at least [0-9.]+ GiB to build .* this machine has" "${TRAIN[@]}" --depth 1000000000
refused "needs at least [0-9.]+ GiB per training step" "${TRAIN[@]}" --device-batch-size 1000000 --total-batch-size 256000000
refused "--total-batch-size=500 must be a multiple of" "${TRAIN[@]}" --total-batch-size 500
refused "--seed: '-1' is not a whole number >= 0" sample -i base --seed -1
refused "--step" sample -i base -s -5
refused "--temperature: 'inf' is not a finite number" sample -i base --temperature inf

# --- a fresh run over another run's checkpoints ---
fresh
refused "base_checkpoints/d2 already holds the checkpoints of another run \(steps 3..3\).*--overwrite" \
  base_train --depth 2 --aspect-ratio 32 --head-dim 32 --max-seq-len 256 --device-batch-size 2 --total-batch-size 512 \
  --num-iterations 2 --eval-every -1 --core-metric-every -1 --sample-every -1
if ! "$NANOCHAT" base_train --depth 2 --aspect-ratio 32 --head-dim 32 --max-seq-len 256 --device-batch-size 2 \
  --total-batch-size 512 --num-iterations 2 --eval-every -1 --core-metric-every -1 --sample-every -1 --overwrite \
  > "$tmp/over.log" 2>&1; then
  failed "base_train --overwrite did not run: $(tail -1 "$tmp/over.log")"
elif ! grep -q "^Removing the 1 checkpoints of the earlier run in .*d2 (--overwrite)" "$tmp/over.log" \
  || [ -e "$ck/model_000003.pt" ] || [ -e "$ck/meta_000003.json" ] || [ ! -e "$ck/meta_000002.json" ] \
  || ! grep -q '"n_embd": 64' "$ck/meta_000002.json"; then
  failed "base_train --overwrite did not replace the earlier run: $(ls "$ck")"
else
  echo "ok: --overwrite replaced the earlier run"
fi

# --- a loss that turns non-finite stops the run before it saves ---
fresh
rc=0
"$NANOCHAT" "${TRAIN[@]}" --num-iterations 6 --matrix-lr 1e30 --embedding-lr 1e30 --unembedding-lr 1e30 \
  --scalar-lr 1e30 --warmup-steps 0 > "$tmp/nan.log" 2> "$tmp/nan.err" || rc=$?
if [ $rc = 0 ]; then
  failed "a run with learning rates of 1e30 finished: $(tail -1 "$tmp/nan.log")"
elif ! grep -qE "^error: step [0-9]+: the training loss is (nan|inf|-nan|-inf); stopping without saving" \
  "$tmp/nan.err"; then
  failed "a run with learning rates of 1e30 did not stop at a non-finite loss: $(tail -1 "$tmp/nan.err")"
elif [ -e "$tmp/base/base_checkpoints/t" ] && [ -n "$(ls "$tmp/base/base_checkpoints/t")" ]; then
  failed "a run whose loss turned non-finite saved: $(ls "$tmp/base/base_checkpoints/t")"
else
  echo "ok: $(cat "$tmp/nan.err")"
fi

if [ ${#failures[@]} != 0 ]; then
  echo "FAILED: ${#failures[@]} case(s):"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
echo "e2e_refused_inputs: ok"
