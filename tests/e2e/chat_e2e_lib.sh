# chat_e2e_lib: shared setup of the chat end-to-end tests (e2e_chat_*.sh source it; not a test itself).
# Builds a scratch NANOCHAT_BASE_DIR from the fixtures: the Python-written d2 base checkpoint and its tokenizer,
# the HF parquet splits where tasks/hf_data.h looks for them (SmolTalk train, MMLU test, ARC-Easy test) and a
# GSM8K-style train/test split as JSONL (tasks/task_data.h), a small word list for the spelling tasks and identity conversations.
set -euo pipefail
: "${NANOCHAT:?set NANOCHAT to the nanochat binary}"
: "${FIXTURES:?set FIXTURES to tests/fixtures}"
NANOCHAT=$(readlink -f "$NANOCHAT")
FIXTURES=$(readlink -f "$FIXTURES")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/e2e_chat.XXXXXX")
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
export NANOCHAT_BASE_DIR="$tmp/base"
export NANOCHAT_DOWNLOAD_BACKOFF=0.001
export HF_ENDPOINT=http://127.0.0.1:9   # offline: nothing listens there, downloads fail at once
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
B="$NANOCHAT_BASE_DIR"
mkdir -p "$B/tokenizer" "$B/base_checkpoints" "$tmp/work"
cp "$FIXTURES/python_basedir/tokenizer/tokenizer.pkl" "$FIXTURES/python_basedir/tokenizer/token_bytes.pt" "$B/tokenizer/"
cp -r "$FIXTURES/python_basedir/base_checkpoints/d2" "$B/base_checkpoints/d2"
chmod -R u+w "$B"
D="$B/hf_datasets"
mkdir -p "$D/HuggingFaceTB/smol-smoltalk/default/train" "$D/cais/mmlu/all/test" "$D/allenai/ai2_arc/ARC-Easy/test" \
  "$D/openai/gsm8k/main/train" "$D/openai/gsm8k/main/test"
cp "$FIXTURES/parquet/tasks/smoltalk_train.parquet" "$D/HuggingFaceTB/smol-smoltalk/default/train/0000.parquet"
cp "$FIXTURES/parquet/tasks/mmlu_test.parquet" "$D/cais/mmlu/all/test/0000.parquet"
cp "$FIXTURES/parquet/tasks/arc_easy_test.parquet" "$D/allenai/ai2_arc/ARC-Easy/test/0000.parquet"
cp "$FIXTURES/chat/gsm8k_train.jsonl" "$D/openai/gsm8k/main/train/train.jsonl"
cp "$FIXTURES/chat/gsm8k_test.jsonl" "$D/openai/gsm8k/main/test/test.jsonl"
mkdir -p "$D/openai/openai_humaneval/openai_humaneval/test"
cp "$FIXTURES/chat/humaneval_test.jsonl" "$D/openai/openai_humaneval/openai_humaneval/test/test.jsonl"
cp "$FIXTURES/words/words.txt" "$B/words_alpha.txt"
cp "$FIXTURES/chat/identity_conversations.jsonl" "$B/identity_conversations.jsonl"
chmod -R u+w "$B"
cd "$tmp/work"
fail() { echo "FAIL: $*" >&2; exit 1; }
has() { grep -qF -- "$1" "$2" || fail "$2 lacks: $1"; }
# The base checkpoint doubles as an "SFT" checkpoint for the tests that only need a chat-loadable model.
use_base_as_sft() {
  mkdir -p "$B/chatsft_checkpoints"
  cp -r "$B/base_checkpoints/d2" "$B/chatsft_checkpoints/d2"
}
