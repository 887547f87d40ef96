#!/usr/bin/env bash
# e2e_chat_sft: `nanochat chat_sft` on the fixture mixture (SmolTalk, MMLU, ARC-Easy, SpellingBee, SimpleSpelling,
# identity conversations), warm-started from the Python-written d2 base checkpoint with its optimizer state.
#   NANOCHAT=build/nanochat FIXTURES=tests/fixtures bash tests/e2e/e2e_chat_sft.sh
# Checks: settings inherited from the base meta, val bpb and ChatCORE during training, the training loss falls,
# the checkpoint (model, optimizer, meta keys of the meta_data of scripts/chat_sft.py's save_checkpoint with user_config before inheritance), the "SFT"
# report section, the logger's metrics, and one-line errors for a missing dataset and bad flags.
source "$(dirname "$0")/chat_e2e_lib.sh"
PY=${NANOCHAT_PYTHON:-python3}  # .venv's python (ctest sets it); torch reads what we write
"$PY" -c 'import torch' || { echo "error: $PY cannot import torch (bash scripts/setup.sh installs it into .venv)"; exit 1; }

# --- bad input: one line each
if "$NANOCHAT" chat_sft --mixture "NoSuchTask" 2>"$tmp/err"; then fail "unknown task accepted"; fi
has "unknown task 'NoSuchTask'" "$tmp/err"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "error is not one line: $(cat "$tmp/err")"
# The default mixture needs GSM8K/MMLU train files that are not here (no network): one line naming the file.
if "$NANOCHAT" chat_sft --num-iterations 1 2>"$tmp/err" >"$tmp/out"; then fail "default mixture ran without its data"; fi
grep -q "^error: cannot download .*put its parquet files in .*hf_datasets/" "$tmp/err" || fail "unclear missing-data error: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "missing-data error is not one line: $(cat "$tmp/err")"

# --- every target masked: with a 16-token context no conversation fits, so every row is BOS padding. Such
# batches must not turn the weights into NaN (they are skipped), and val bpb with no scored byte is inf.
"$NANOCHAT" chat_sft --mixture "SmolTalk" --val-mixture "SmolTalk:train" --max-seq-len 16 --total-batch-size 32 \
  --num-iterations 3 --eval-tokens 32 --chatcore-every -1 >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "all-masked run failed"; }
grep -q "^step 00002 .*| loss: 0.000000 " "$tmp/out" || fail "all-masked steps: $(grep '^step' "$tmp/out")"
has "Step 00002 | Validation bpb: inf" "$tmp/out"
# Python's torch.load reads our checkpoint: all finite
"$PY" -c "import torch,sys; sd=torch.load(sys.argv[1], weights_only=True); assert all(bool(torch.isfinite(t).all()) for t in sd.values())" \
  "$B/chatsft_checkpoints/d2/model_000002.pt" || fail "non-finite weights after all-masked batches"
rm -rf "$B/chatsft_checkpoints" "$B/report" "$B/logs"

# --- training
mix="SmolTalk,MMLU:test,ARC-Easy:test,SpellingBee:200,SimpleSpelling:200,CustomJSON*2"
"$NANOCHAT" chat_sft --device-type cpu --mixture "$mix" --val-mixture "SmolTalk:train,ARC-Easy:test" \
  --max-seq-len 384 --total-batch-size 768 --num-iterations 21 --eval-every 10 --eval-tokens 1536 \
  --chatcore-every 20 --chatcore-tasks "ARC-Easy|MMLU|SpellingBee|GSM8K" --chatcore-max-cat 8 --chatcore-max-sample 2 \
  --matrix-lr 0.04 --init-lr-frac 1.0 >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/out" "$tmp/err"; fail "chat_sft failed"; }
cat "$tmp/out"
has "Inherited device_batch_size=2 from pretrained checkpoint" "$tmp/out"
has "NOTE: --max_seq_len value 384 differs from pretrained value 256" "$tmp/out"
has "Loaded optimizer state from pretrained checkpoint" "$tmp/out"
has "Step 00000 | Validation bpb:" "$tmp/out"
has "Step 00020 | Validation bpb:" "$tmp/out"
has "  SpellingBee: " "$tmp/out"
has "Step 00020 | ChatCORE: " "$tmp/out"
n=$(grep -c "^step [0-9]\{5\} " "$tmp/out")
[ "$n" -eq 20 ] || fail "expected 20 training steps (21 batches, the first prefetched), got $n"
if grep -qi "nan" <(grep "^step " "$tmp/out"); then fail "NaN in the training log"; fi
first=$(grep "^step 00001 " "$tmp/out" | sed 's/.*| loss: \([0-9.]*\) .*/\1/')
last=$(grep "^step 00020 " "$tmp/out" | sed 's/.*| loss: \([0-9.]*\) .*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' || fail "loss did not fall: $first -> $last"
echo "loss $first -> $last"
v0=$(grep "^Step 00000 | Validation bpb" "$tmp/out" | awk '{print $NF}')
v1=$(grep "^Step 00020 | Validation bpb" "$tmp/out" | awk '{print $NF}')
awk -v a="$v0" -v b="$v1" 'BEGIN { exit !(b < a) }' || fail "val bpb did not fall: $v0 -> $v1"

ck="$B/chatsft_checkpoints/d2"
for f in model_000020.pt optim_000020_rank0.pt meta_000020.json; do [ -s "$ck/$f" ] || fail "missing $ck/$f"; done
python3 - "$ck/meta_000020.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert list(m) == ["step", "val_bpb", "model_config", "user_config"], list(m)
assert m["step"] == 20 and isinstance(m["val_bpb"], float)
assert m["model_config"]["sequence_len"] == 384 and m["model_config"]["n_layer"] == 2, m["model_config"]
u = m["user_config"]
assert u["device_batch_size"] is None and u["embedding_lr"] is None and u["max_seq_len"] == 384, u
assert u["num_iterations"] == 21 and u["init_lr_frac"] == 1.0, u
PY
has "## SFT" "$B/report/sft.md"
has "Minimum validation bpb" "$B/report/sft.md"
has "Number of iterations: 20" "$B/report/sft.md"
ls "$B"/logs/nanochat-sft/dummy/metrics.jsonl >/dev/null || fail "no metrics.jsonl"
grep -q '"val/bpb"' "$B"/logs/nanochat-sft/dummy/metrics.jsonl || fail "val/bpb not logged"
grep -q '"train/loss"' "$B"/logs/nanochat-sft/dummy/metrics.jsonl || fail "train/loss not logged"

# --- the SFT checkpoint is a chat model: chat_eval loads it
"$NANOCHAT" chat_eval -i sft -a ARC-Easy -x 6 -b 3 >"$tmp/out2" 2>&1 || { cat "$tmp/out2"; fail "chat_eval on the SFT model failed"; }
has "Final: " "$tmp/out2"
echo "e2e_chat_sft: OK"
