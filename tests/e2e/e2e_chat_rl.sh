#!/usr/bin/env bash
# e2e_chat_rl: `nanochat chat_rl` for a few steps on a GSM8K-style fixture (24 train / 8 test questions), starting
# from the d2 fixture checkpoint loaded as the SFT model: rollouts with the calculator tool, rewards, the policy
# gradient update, pass@k evaluation, checkpoints in chatrl_checkpoints and the "Chat RL" report section; the RL
# checkpoint then loads in chat_eval.
#   NANOCHAT=build/nanochat FIXTURES=tests/fixtures bash tests/e2e/e2e_chat_rl.sh
source "$(dirname "$0")/chat_e2e_lib.sh"
use_base_as_sft

if "$NANOCHAT" chat_rl --num-samples 3 --device-batch-size 2 2>"$tmp/err"; then fail "indivisible samples accepted"; fi
has "must be a multiple of --device-batch-size" "$tmp/err"

# 24 questions / 8 per step = 3 steps; pass@k at step 0 and 2; checkpoints at step 2 (save-every) and the last step.
"$NANOCHAT" chat_rl --device-type cpu --examples-per-step 8 --num-samples 4 --device-batch-size 2 --max-new-tokens 16 \
  --eval-every 2 --eval-examples 4 --save-every 2 --init-lr-frac 1.0 >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "chat_rl failed"; }
tail -20 "$tmp/out"
has "Calculated number of steps: 3" "$tmp/out"
has "Step 0 | Pass@1: " "$tmp/out"
has ", Pass@2: " "$tmp/out"
has "Step 2 | Pass@1: " "$tmp/out"
[ "$(grep -c '| Average reward: [0-9.]* | Average sequence length' "$tmp/out")" -eq 3 ] || fail "expected 3 RL steps"
[ "$(grep -c '| Pass [01] | loss: ' "$tmp/out")" -eq 48 ] || fail "expected 2 passes x 8 questions x 3 steps"
if grep -q "loss: -\?nan" "$tmp/out"; then fail "NaN loss"; fi
ck="$B/chatrl_checkpoints/d2"
[ -s "$ck/model_000002.pt" ] && [ -s "$ck/meta_000002.json" ] || fail "no RL checkpoint at step 2"
[ ! -e "$ck/optim_000002_rank0.pt" ] || fail "RL saves no optimizer state"
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); assert list(m)==['model_config'] and m['model_config']['n_layer']==2, m" "$ck/meta_000002.json"
has "Saved model checkpoint to $ck" "$tmp/out"
has "## Chat RL" "$B/report/chat-rl.md"
has "examples_per_step: 8" "$B/report/chat-rl.md"
"$NANOCHAT" chat_eval -i rl -a GSM8K -x 2 -m 8 >"$tmp/eval" 2>&1 || { cat "$tmp/eval"; fail "chat_eval -i rl failed"; }
grep -q "^Final: [0-9]*/2 (" "$tmp/eval" || fail "RL model evaluation incomplete"
echo "e2e_chat_rl: OK"
