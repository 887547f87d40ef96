#!/usr/bin/env bash
# e2e_chat_web_openai: `nanochat chat_web` itself with the tiny fixture model on the CPU, driven with the official
# `openai` Python client: chat and completions, streaming and not, stop, n, seed, logprobs/top_logprobs,
# max_completion_tokens and the 400s (openai.BadRequestError). See tests/http/chat_web_openai_test.py. Needs .venv's
# python ($NANOCHAT_PYTHON) with requirements.txt's openai; skips (77) without it.
set -euo pipefail
: "${NANOCHAT:?set NANOCHAT to the nanochat binary}" "${FIXTURES:?set FIXTURES to tests/fixtures}"
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=${NANOCHAT_PYTHON:-$SOURCE_DIR/.venv/bin/python}
if ! "$PY" -c "import openai" 2>/dev/null; then
  echo "skipped: the openai package is not installed in $PY (pip install -r requirements.txt)"
  exit 77
fi
exec "$PY" "$SOURCE_DIR/tests/http/chat_web_openai_test.py" real "$NANOCHAT" "$FIXTURES"
