#!/usr/bin/env bash
# e2e_chat_web_browser: the chat UI in headless Chromium against the real web server (with the test-only mock
# model): send, stream, regenerate, edit, controls, shortcuts, stop. Screenshots land in $TMPDIR/nanochat-ui-shots.
# Needs chromium (apt) and node with tests/browser's npm packages (scripts/setup.sh installs both; this script runs
# `npm ci` itself if they are missing). Skips (exit 77) only when chromium or node is not installed at all.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
MOCK_CHAT_SERVER=${MOCK_CHAT_SERVER:-$SOURCE_DIR/build/tests/mock_chat_server}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then echo "SKIP: chromium is not installed (apt-get install chromium, or bash scripts/setup.sh)"; exit 77; fi
if ! command -v node >/dev/null; then echo "SKIP: node is not installed (apt-get install nodejs npm, or bash scripts/setup.sh)"; exit 77; fi
cd "$SOURCE_DIR/tests/browser"
if [ ! -d node_modules/playwright-core ]; then npm ci --no-audit --no-fund; fi

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
CHROMIUM=$CHROMIUM node chat_web.test.mjs "http://127.0.0.1:$port" "$shots"
echo "screenshots: $shots"
