#!/usr/bin/env bash
# e2e_chat_web_http: the web chat server over real HTTP on 127.0.0.1 in front of the test-only mock model, whose
# replies are scripted: exact texts, characters forced across byte tokens, an injected inference failure, slow
# loading, a client leaving while queued, workers serving several requests at once (--max-batch), read timeouts and
# slow clients, a 1,000-request soak, and the server's guards (Host, Origin, log lines, pipelining, 411, --host '').
# See tests/http/chat_web_http_test.py; e2e_chat_web_real.sh runs the same suite against `nanochat chat_web` itself.
# Needs .venv's python ($NANOCHAT_PYTHON; the standard library and prometheus_client).
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MOCK_CHAT_SERVER=${MOCK_CHAT_SERVER:-$SOURCE_DIR/build/tests/mock_chat_server}
exec "${NANOCHAT_PYTHON:-$SOURCE_DIR/.venv/bin/python}" "$SOURCE_DIR/tests/http/chat_web_http_test.py" mock "$MOCK_CHAT_SERVER"
