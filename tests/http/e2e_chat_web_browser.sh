#!/usr/bin/env bash
# e2e_chat_web_browser: the chat UI in headless Chromium against the real web server (with the test-only mock
# model): send, stream, regenerate, edit, controls, shortcuts, stop. Screenshots land in $TMPDIR/nanochat-ui-shots.
# Needs chromium (apt) and the Python playwright package (tests/http/browser/chat_web_test.py drives Debian's chromium
# with it; no playwright browser download). scripts/setup.sh installs both, playwright into the project venv.
# $NANOCHAT_PYTHON picks the interpreter (default $SOURCE_DIR/.venv/bin/python). Skips (exit 77) only when chromium
# is missing or that python cannot import playwright.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MOCK_CHAT_SERVER=${MOCK_CHAT_SERVER:-$SOURCE_DIR/build/tests/mock_chat_server}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
PYTHON=${NANOCHAT_PYTHON:-$SOURCE_DIR/.venv/bin/python}
if [ ! -x "$CHROMIUM" ]; then echo "SKIP: chromium is not installed at $CHROMIUM (run bash scripts/setup.sh)"; exit 77; fi
if ! "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "SKIP: $PYTHON cannot import playwright (run bash scripts/setup.sh)"; exit 77
fi

work=$(mktemp -d)
shots=${TMPDIR:-/tmp}/nanochat-ui-shots
mkdir -p "$shots"
"$MOCK_CHAT_SERVER" --port 0 --num-gpus 2 --mock-delay-ms 15 > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  port=$(sed -n 's/^Server ready at http:\/\/localhost:\([0-9]*\).*/\1/p' "$work/server.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/server.log"; echo "server did not start"; exit 1; }
CHROMIUM=$CHROMIUM "$PYTHON" "$SOURCE_DIR/tests/http/browser/chat_web_test.py" "http://127.0.0.1:$port" "$shots"
echo "screenshots: $shots"
