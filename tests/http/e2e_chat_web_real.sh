#!/usr/bin/env bash
# e2e_chat_web_real: `nanochat chat_web` itself over real HTTP on 127.0.0.1, with the tiny Python-written d2 model of
# tests/fixtures/python_basedir on the CPU (2 workers): TESTPLAN's bad-input table, nanochat's SSE and the OpenAI
# API, the token budget, special-token text, UTF-8 held back across byte tokens, 32 concurrent streams with 429s,
# client disconnects (streaming and not), 503 while loading, --api-key, SIGTERM, a 200-request soak, the server's
# guards, and a broken checkpoint (meta of []) ending chat_web with its one-line error every time.
# The same suite as e2e_chat_web_http.sh (tests/http/chat_web_http_test.py); the 1,000-request soak is
# bench/chat_web_soak.sh. Needs .venv's python ($NANOCHAT_PYTHON; the standard library and prometheus_client).
set -euo pipefail
: "${NANOCHAT:?set NANOCHAT to the nanochat binary}" "${FIXTURES:?set FIXTURES to tests/fixtures}"
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "${NANOCHAT_PYTHON:-$SOURCE_DIR/.venv/bin/python}" "$SOURCE_DIR/tests/http/chat_web_http_test.py" real "$NANOCHAT" "$FIXTURES"
