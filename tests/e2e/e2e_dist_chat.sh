#!/usr/bin/env bash
# The chat stage on 2 processes (nanochat launch, Gloo on CPU), from the Python-written d2 base checkpoint:
#  1. chat_eval: problems strided over ranks, counts summed -> the same scores as 1 process (categorical and greedy
#     generative);
#  2. chat_sft: validation bpb at step 0 within 2% of 1 process (same model; ranks take alternate conversations),
#     the loss falls, ChatCORE runs on both ranks, every rank writes its optimizer file and the run ends together;
#  3. chat_rl: questions split over ranks, mean reward averaged, rank 0 saves.
source "$(dirname "$0")/chat_e2e_lib.sh"
export OMP_NUM_THREADS=1 NANOCHAT_LOGGER=none NANOCHAT_DIST_TIMEOUT=120
use_base_as_sft

# 1. chat_eval
"$NANOCHAT" chat_eval -i sft -a "ARC-Easy|MMLU" -b 4 --device-type cpu > "$tmp/cat1" 2>&1 || { cat "$tmp/cat1"; fail "chat_eval failed"; }
"$NANOCHAT" launch --nproc-per-node 2 -- chat_eval -i sft -a "ARC-Easy|MMLU" -b 4 --device-type cpu > "$tmp/cat2" 2>"$tmp/cat2.err" \
  || { cat "$tmp/cat2" "$tmp/cat2.err"; fail "2-rank chat_eval failed"; }
grep "^Final:" "$tmp/cat2"
[ "$(grep -c '^Final: [0-9]*/30 (' "$tmp/cat2")" -eq 2 ] || fail "2 ranks did not score all 30 problems of each task"
diff <(grep -E "^Final:|accuracy" "$tmp/cat1") <(grep -E "^Final:|accuracy" "$tmp/cat2") || fail "categorical scores differ"
"$NANOCHAT" chat_eval -i sft -a "SpellingBee" -x 5 -m 16 > "$tmp/gen1" 2>&1 || fail "generative chat_eval failed"
"$NANOCHAT" launch --nproc-per-node 2 -- chat_eval -i sft -a "SpellingBee" -x 5 -m 16 > "$tmp/gen2" 2>"$tmp/gen2.err" \
  || { cat "$tmp/gen2" "$tmp/gen2.err"; fail "2-rank generative chat_eval failed"; }
grep -q '^Final: [0-9]*/5 (' "$tmp/gen2" || fail "2 ranks did not score 5 problems"
diff <(grep "^Final:" "$tmp/gen1") <(grep "^Final:" "$tmp/gen2") || fail "generative scores differ"
rm -rf "$B/chatsft_checkpoints" "$B/report"

# 2. chat_sft
mix="SmolTalk,MMLU:test,ARC-Easy:test,SpellingBee:200,SimpleSpelling:200,CustomJSON*2"
S=(--device-type cpu --mixture "$mix" --val-mixture "SmolTalk:train,ARC-Easy:test" --max-seq-len 256
   --device-batch-size 2 --total-batch-size 1024 --num-iterations 11 --eval-every 10 --eval-tokens 8192
   --chatcore-every 10 --chatcore-tasks "ARC-Easy" --chatcore-max-cat 8 --matrix-lr 0.04 --init-lr-frac 1.0)
"$NANOCHAT" chat_sft "${S[@]}" --model-tag d2 > "$tmp/sft1" 2>&1 || { cat "$tmp/sft1"; fail "chat_sft failed"; }
rm -rf "$B/chatsft_checkpoints"
"$NANOCHAT" launch --nproc-per-node 2 -- chat_sft "${S[@]}" > "$tmp/sft2" 2>"$tmp/sft2.err" \
  || { cat "$tmp/sft2" "$tmp/sft2.err"; fail "2-rank chat_sft failed"; }
cat "$tmp/sft2"
has "Distributed world size: 2" "$tmp/sft2"
grep -q "Total batch size 1024 => gradient accumulation steps: 1" "$tmp/sft2" || fail "accumulation steps with 2 ranks"
has "Step 00010 | ChatCORE: " "$tmp/sft2"
v1=$(grep "^Step 00000 | Validation bpb" "$tmp/sft1" | awk '{print $NF}')
v2=$(grep "^Step 00000 | Validation bpb" "$tmp/sft2" | awk '{print $NF}')
echo "step 0 val bpb: 1 process $v1, 2 processes $v2"
awk -v a="$v1" -v b="$v2" 'BEGIN { d = (a > b ? a - b : b - a) / a; exit !(d < 0.02) }' || fail "val bpb differs: $v1 vs $v2"
first=$(grep "^step 00001 " "$tmp/sft2" | sed 's/.*| loss: \([0-9.]*\) .*/\1/')
last=$(grep "^step 00010 " "$tmp/sft2" | sed 's/.*| loss: \([0-9.]*\) .*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "loss did not fall: $first -> $last"
ck=$(ls -d "$B"/chatsft_checkpoints/*)
for f in optim_000010_rank0.pt optim_000010_rank1.pt model_000010.pt meta_000010.json; do
  [ -s "$ck/$f" ] || fail "missing $ck/$f"
done
grep -q "^step " "$tmp/sft2.err" && fail "rank 1 printed training lines"

# 3. chat_rl
"$NANOCHAT" launch --nproc-per-node 2 -- chat_rl --device-type cpu --examples-per-step 8 --num-samples 4 \
  --device-batch-size 2 --max-new-tokens 16 --eval-every 2 --eval-examples 4 --save-every 2 --init-lr-frac 1.0 \
  > "$tmp/rl" 2>"$tmp/rl.err" || { cat "$tmp/rl" "$tmp/rl.err"; fail "2-rank chat_rl failed"; }
tail -5 "$tmp/rl"
has "Calculated number of steps: 3" "$tmp/rl"
grep -q "^Step 2/3 | Average reward: [0-9.]* | Average sequence length: " "$tmp/rl" || fail "no averaged reward line"
grep -q "^Step 2 | Pass@1: " "$tmp/rl" || fail "no pass@k at step 2"
ls "$B"/chatrl_checkpoints/*/model_000002.pt > /dev/null || fail "no RL checkpoint"
echo "e2e_dist_chat: OK"
