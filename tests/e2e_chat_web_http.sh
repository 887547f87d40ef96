#!/usr/bin/env bash
# e2e_chat_web_http: the web chat server over real HTTP on 127.0.0.1 (bad inputs, SSE, OpenAI API, load, faults,
# soak), against the test-only mock model. See tests/chat_web_http_test.py. Needs python3 (standard library only).
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
MOCK_CHAT_SERVER=${MOCK_CHAT_SERVER:-$SOURCE_DIR/build/tests/mock_chat_server}
exec python3 "$SOURCE_DIR/tests/chat_web_http_test.py" "$MOCK_CHAT_SERVER"
