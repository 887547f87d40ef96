#!/usr/bin/env bash
# Continuous batching in chat_web, measured: C clients (default 8) each send R requests (default 8) at once to one
# CPU worker, OpenAI API, 64 new tokens each (temperature 1, top-k 50, a seed per request), against a depth-6
# model (head_dim 64, context 512; one training step on the fixture shards, since only speed matters here). The
# same load runs with --max-batch 1 (conversations one after another) and --max-batch 8 (decoded together), or
# the values in $MAX_BATCHES, and each prints completion tokens per second over all clients and the median and
# p90 request latency.
#   bash bench/chat_web_batching.sh [build/nanochat] [clients] [requests per client]
#   MAX_BATCHES="1 4 8 16" bash bench/chat_web_batching.sh build/nanochat 16
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export NANOCHAT=${1:-$here/../build/nanochat} FIXTURES=$here/../tests/fixtures
CLIENTS=${2:-8} REQUESTS=${3:-8}
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
source "$here/../tests/e2e/dist_e2e_lib.sh"
make_pretrain_base "$tmp"
"$NANOCHAT" base_train --depth 6 --head-dim 64 --max-seq-len 512 --device-batch-size 1 --total-batch-size 512 \
  --num-iterations 1 --eval-every -1 --core-metric-every -1 --sample-every -1 --device-type cpu > "$tmp/train.log" 2>&1
mkdir -p "$NANOCHAT_BASE_DIR/chatsft_checkpoints"
cp -r "$NANOCHAT_BASE_DIR/base_checkpoints/d6" "$NANOCHAT_BASE_DIR/chatsft_checkpoints/d6"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

for max_batch in ${MAX_BATCHES:-1 8}; do
  "$NANOCHAT" chat_web --device-type cpu --num-workers 1 --max-batch "$max_batch" --port "$port" \
    > "$tmp/server.log" 2>&1 &
  server=$!
  python3 - "$port" "$CLIENTS" "$REQUESTS" "$max_batch" <<'PY'
import json, statistics, sys, threading, time, urllib.request
port, clients, requests, max_batch = (int(a) for a in sys.argv[1:])
url = f"http://127.0.0.1:{port}"
for _ in range(600):  # until the model is loaded
    try:
        if json.load(urllib.request.urlopen(url + "/health", timeout=1)).get("ready"): break
    except OSError: pass
    time.sleep(0.1)
def ask(seed):
    body = {"messages": [{"role": "user", "content": f"Tell me something about the number {seed}."}],
            "max_tokens": 64, "temperature": 1.0, "top_k": 50, "seed": seed}
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t = time.perf_counter()
    usage = json.load(urllib.request.urlopen(req, timeout=600))["usage"]
    return usage["completion_tokens"], time.perf_counter() - t
ask(0)  # warm-up
tokens, latencies, lock = [], [], threading.Lock()
def client(c):
    for r in range(requests):
        n, dt = ask(1 + c * requests + r)
        with lock: tokens.append(n); latencies.append(dt)
t0 = time.perf_counter()
threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - t0
latencies.sort()
print(f"--max-batch {max_batch}: {clients} clients x {requests} requests, {sum(tokens)} tokens in {wall:.1f} s: "
      f"{sum(tokens) / wall:.1f} tok/s, latency p50 {statistics.median(latencies) * 1000:.0f} ms "
      f"p90 {latencies[int(0.9 * (len(latencies) - 1))] * 1000:.0f} ms")
PY
  kill "$server"; wait "$server" 2>/dev/null || true; server=
done
