#!/usr/bin/env bash
# The web server's soak: N sequential requests (default 1,000; max_tokens 32, greedy) to `nanochat chat_web` with
# the tiny d2 fixture model on the CPU, one worker. Prints RSS (VmRSS of /proc/PID/status) and open descriptors
# (/proc/PID/fd) after the first 30% (warm-up) and at the end, requests/s and latency percentiles, and fails if
# RSS grew by 25% or more or the descriptors moved by more than 10 after warm-up. ctest runs a 200-request soak
# (tests/http/e2e_chat_web_real.sh); this is the long one.
#   bash bench/chat_web_soak.sh [build/nanochat] [N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NANOCHAT=${1:-$here/../build/nanochat}
exec python3 "$here/../tests/http/chat_web_http_test.py" soak "$NANOCHAT" "$here/../tests/fixtures" "${2:-1000}"
