#!/usr/bin/env bash
# e2e_chat_eval: `nanochat chat_eval` end to end on a tiny chat model (the d2 fixture checkpoint loaded as "sft"):
# categorical evaluation (ARC-Easy and MMLU fixtures, letter logits, batched), generative evaluation (a GSM8K-style
# fixture with the calculator tool, SpellingBee, HumanEval in the sandbox), batched generative decoding against one
# problem at a time, pass@n sampling, ChatCORE over all six, every short flag, the report section, and one-line
# errors for an unknown task, a missing dataset, a missing checkpoint and --batch-size 0.
#   NANOCHAT=build/nanochat FIXTURES=tests/fixtures bash tests/e2e/e2e_chat_eval.sh
source "$(dirname "$0")/chat_e2e_lib.sh"

# --- errors before any checkpoint exists
if "$NANOCHAT" chat_eval -i sft 2>"$tmp/err"; then fail "ran without a checkpoint"; fi
has "chatsft_checkpoints" "$tmp/err"
use_base_as_sft
if "$NANOCHAT" chat_eval -i sft -a "Trivia" 2>"$tmp/err"; then fail "unknown task accepted"; fi
has "unknown chat eval task 'Trivia'" "$tmp/err"
if "$NANOCHAT" chat_eval -i sft -a "ARC-Challenge" 2>"$tmp/err"; then fail "missing dataset accepted"; fi
grep -q "^error: cannot download allenai/ai2_arc ARC-Challenge/test .*hf_datasets/allenai/ai2_arc/ARC-Challenge/test" "$tmp/err" \
  || fail "unclear missing-dataset error: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "error is not one line"
if "$NANOCHAT" chat_eval 2>"$tmp/err"; then fail "missing -i accepted"; fi

# --- categorical: every problem of both fixtures, batch size 4 (the last batch is partial)
"$NANOCHAT" chat_eval -i sft -a "ARC-Easy|MMLU" -b 4 -g d2 -s 3 --device-type cpu >"$tmp/cat" 2>&1 || { cat "$tmp/cat"; fail "categorical eval failed"; }
cat "$tmp/cat"
grep -q "^Final: [0-9]*/30 (" "$tmp/cat" || fail "ARC-Easy did not score all 30 problems"
[ "$(grep -c '^Final: [0-9]*/30 (' "$tmp/cat")" -eq 2 ] || fail "expected two 30-problem tasks"
has "ARC-Easy accuracy: " "$tmp/cat"
has "MMLU accuracy: " "$tmp/cat"
# Batching must not change the answers: batch size 1 gives the same scores (padding is after the answer position).
"$NANOCHAT" chat_eval -i sft -a "ARC-Easy|MMLU" -b 1 >"$tmp/cat1" 2>&1 || fail "batch size 1 failed"
diff <(grep "accuracy:" "$tmp/cat") <(grep "accuracy:" "$tmp/cat1") || fail "scores depend on the batch size"
# -x caps the problems
"$NANOCHAT" chat_eval -i sft -a MMLU -x 7 -b 3 >"$tmp/cap" 2>&1 || fail "-x failed"
grep -q "^Final: [0-9]*/7 (" "$tmp/cap" || fail "-x 7 did not cap MMLU at 7 problems"

# --- generative: GSM8K-style fixture (8 problems) and SpellingBee, greedy then pass@2 with sampling
"$NANOCHAT" chat_eval -i sft -a "GSM8K|SpellingBee" -x 5 -m 24 >"$tmp/gen" 2>&1 || { cat "$tmp/gen"; fail "generative eval failed"; }
cat "$tmp/gen"
[ "$(grep -c '^Final: [0-9]*/5 (' "$tmp/gen")" -eq 2 ] || fail "expected 5 problems of each generative task"
has "GSM8K accuracy: " "$tmp/gen"
has "SpellingBee accuracy: " "$tmp/gen"
"$NANOCHAT" chat_eval -i sft -a GSM8K -n 2 -t 1.0 -k 20 -m 16 >"$tmp/gen2" 2>&1 || fail "pass@2 failed"
grep -q "^Final: [0-9]*/8 (" "$tmp/gen2" || fail "GSM8K fixture has 8 test problems"

has "- num_samples: 2" "$B/report/chat-evaluation-sft.md"
has "GSM8K: one problem at a time (2 samples per problem" "$tmp/gen2"

# --- batched generative decoding: the run above (default -b 8) decoded 4 problems at a time, which on the CPU in
# fp32 gives exactly the answers of one at a time (-b 1): the same running lines and scores
has "GSM8K: 4 problems decoded together (CPU fp32" "$tmp/gen"
has "SpellingBee: 4 problems decoded together (CPU fp32" "$tmp/gen"
"$NANOCHAT" chat_eval -i sft -a "GSM8K|SpellingBee" -x 5 -m 24 -b 1 >"$tmp/gen1" 2>&1 || fail "-b 1 failed"
has "GSM8K: one problem at a time (batch size 1)" "$tmp/gen1"
scores() { grep -a "Rank 0\|^Final\|^Generated\|accuracy:" "$1"; }
diff <(scores "$tmp/gen") <(scores "$tmp/gen1") || fail "batched generative answers differ from one at a time"
# longer answers, and -x 7 so that rows leave and join; --inexact-batch may batch past 4 rows
"$NANOCHAT" chat_eval -i sft -a SpellingBee -x 7 -m 96 -b 3 >"$tmp/b3" 2>&1 || fail "-b 3 failed"
"$NANOCHAT" chat_eval -i sft -a SpellingBee -x 7 -m 96 -b 1 >"$tmp/b1" 2>&1 || fail "-b 1 failed"
diff <(scores "$tmp/b3") <(scores "$tmp/b1") || fail "-b 3 and -b 1 differ"
"$NANOCHAT" chat_eval -i sft -a SpellingBee -x 7 -m 16 -b 6 --inexact-batch >"$tmp/b6" 2>&1 || fail "--inexact-batch failed"
has "SpellingBee: 6 problems decoded together (--inexact-batch" "$tmp/b6"
grep -q "^Final: [0-9]*/7 (" "$tmp/b6" || fail "--inexact-batch did not score 7 problems"
if "$NANOCHAT" chat_eval -i sft -a SpellingBee -b 0 >/dev/null 2>"$tmp/err"; then fail "--batch-size 0 accepted"; fi
has "batch size must be at least 1, got 0" "$tmp/err"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "--batch-size 0 error is not one line: $(cat "$tmp/err")"

# --- all six tasks (ARC-Challenge stands in with the ARC-Easy file; HumanEval runs its 2 fixture problems in the
# python3 sandbox): ChatCORE is computed and reported
mkdir -p "$B/hf_datasets/allenai/ai2_arc/ARC-Challenge/test"
cp "$FIXTURES/parquet/tasks/arc_easy_test.parquet" "$B/hf_datasets/allenai/ai2_arc/ARC-Challenge/test/0000.parquet"
"$NANOCHAT" chat_eval -i sft -x 3 -b 2 -m 16 >"$tmp/all" 2>&1 || { cat "$tmp/all"; fail "all-task eval failed"; }
grep -v "Rank 0" "$tmp/all"
has "HumanEval accuracy: " "$tmp/all"
grep -q "^Final: [0-9]/2 (" "$tmp/all" || fail "HumanEval fixture has 2 problems"
has "ChatCORE metric: " "$tmp/all"
r="$B/report/chat-evaluation-sft.md"
has "## Chat evaluation sft" "$r"
has "ChatCORE metric: " "$r"
has "HumanEval: " "$r"
echo "e2e_chat_eval: OK"
