#!/usr/bin/env bash
# runs/runcpu.sh end to end in smoke mode (NANOCHAT_RUNCPU_SMOKE=1: a depth-2 model, a few steps per stage) on the
# offline corpus (the Python documentation from Debian's python3.11-doc), against a fresh base dir. Checks: every
# stage ran and announced itself with the pipeline's progress, the shards were built from the text (apart from
# ClimbMix's directory), the training steps show an ETA, the report has the sections of every stage, and the chat
# model answered the question. Then once more on ClimbMix shards already in the base dir (the fixture shards): they
# are used, nothing is downloaded. Skipped (77) when python3.11-doc is not installed.
# env: NANOCHAT (binary), SOURCE_DIR, FIXTURES (tests/fixtures).
set -euo pipefail
: "${NANOCHAT:?}" "${SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ ! -d /usr/share/doc/python3.11/html/_sources ]; then
  echo "skipped: /usr/share/doc/python3.11/html/_sources is missing (install python3.11-doc: bash scripts/setup.sh)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/e2e_runcpu.XXXXXX")
trap 'rm -rf "$work"' EXIT
base="$work/base"
mkdir -p "$work/cwd"
cd "$work/cwd"  # report generate copies report.md into the current directory

if ! NANOCHAT="$NANOCHAT" NANOCHAT_BASE_DIR="$base" NANOCHAT_RUNCPU_SMOKE=1 NANOCHAT_RUNCPU_DATA=text \
    bash "$SOURCE_DIR/runs/runcpu.sh" > "$work/log" 2>&1; then
  tail -40 "$work/log"
  fail "runs/runcpu.sh failed"
fi

# Every stage, in order, with the pipeline's progress.
stages=$(sed -n 's/^==== \[\([0-9]*\/[0-9]*\)\] \([a-z_]*\): .*| elapsed [0-9]*m[0-9]*s | about .* left.*/\1 \2/p' "$work/log" | tr '\n' ' ')
want="1/10 report_reset 2/10 data 3/10 tok_train 4/10 tok_eval 5/10 base_train 6/10 base_eval 7/10 chat_sft 8/10 chat_eval 9/10 chat_cli 10/10 report "
[ "$stages" = "$want" ] || fail "stage lines: '$stages'"
grep -q "SMOKE mode" "$work/log" || fail "smoke mode not announced"

# Data: shards built from the text into their own directory, the last one the validation split.
n=$(ls "$base/base_data_text"/*.parquet 2>/dev/null | wc -l)
[ "$n" -ge 2 ] || fail "expected >= 2 text shards, got $n"
[ ! -d "$base/base_data_climbmix" ] || fail "the text shards must not go into base_data_climbmix"
grep -q "^Pretraining data: text" "$work/log" || fail "no data summary"

# Training steps show an ETA (base_train and chat_sft); the models were saved.
grep -q "^step 0001[01]/00012 .*| eta: " "$work/log" || fail "base_train steps show no ETA"
grep -q "^step [0-9]* ([0-9.]*%) .*| eta: " "$work/log" || fail "chat_sft steps show no ETA"
ls "$base"/base_checkpoints/d2/model_*.pt > /dev/null 2>&1 || fail "no base checkpoint"
ls "$base"/chatsft_checkpoints/d2/model_*.pt > /dev/null 2>&1 || fail "no SFT checkpoint"

# The report: in the base dir and copied to the current directory, with every stage's section.
report="$base/report/report.md"
[ -s "$report" ] || fail "no $report"
cmp -s "$report" "$work/cwd/report.md" || fail "report.md was not copied to the current directory"
for section in "# nanochat training report" "## Tokenizer training" "## Tokenizer evaluation" "## Base model training" \
    "## Base model evaluation" "## SFT" "## Chat evaluation sft" "## Summary"; do
  grep -q "^$section" "$report" || fail "report.md has no '$section'"
done
grep -q "SpellingBee" "$report" || fail "report.md has no SpellingBee result"
grep -q "^Total wall clock time: [0-9]*h[0-9]*m" "$report" || fail "report.md has no wall clock time"
tail -1 "$work/log" | grep -q "^Report: $report$" || fail "the last line should name report.md: $(tail -1 "$work/log")"

# The chat model's answer (a tiny model's answer: only that there is one).
answer="$base/report/chat_answer.txt"
[ -s "$answer" ] || fail "no chat answer"
reply=$(sed -n '/^Assistant: /,$p' "$answer" | sed -e '1s/^Assistant: //' -e 's/<|assistant_end|>//g')
[ -n "$(echo "$reply" | tr -d '[:space:]')" ] || fail "empty answer: $(cat "$answer")"
first=$(grep -o 'done in [0-9]*m[0-9]*s' "$work/log")

# With ClimbMix shards already in the base dir (here the fixture shards), the default data mode uses them and
# downloads nothing.
if [ -n "${FIXTURES:-}" ] && [ -f "$FIXTURES/parquet/pretrain/shard_00002.parquet" ]; then
  base2="$work/base2"
  mkdir -p "$base2/base_data_climbmix"
  cp "$FIXTURES"/parquet/pretrain/shard_0000{0,1,2}.parquet "$base2/base_data_climbmix/"
  if ! NANOCHAT="$NANOCHAT" NANOCHAT_BASE_DIR="$base2" NANOCHAT_RUNCPU_SMOKE=1 \
      bash "$SOURCE_DIR/runs/runcpu.sh" > "$work/log2" 2>&1; then
    tail -40 "$work/log2"
    fail "runs/runcpu.sh on existing ClimbMix shards failed"
  fi
  grep -q "^Using the 3 ClimbMix shards already in $base2/base_data_climbmix" "$work/log2" || fail "existing shards not used"
  grep -q "^Pretraining data: climbmix" "$work/log2" || fail "no climbmix data summary"
  ! grep -q "Trying to download" "$work/log2" || fail "tried to download although shards were there"
  [ ! -d "$base2/base_data_text" ] || fail "built text shards although ClimbMix shards were there"
  [ -s "$base2/report/report.md" ] || fail "no report.md on the ClimbMix path"
fi
echo "e2e_runcpu_smoke: ok ($first)"
