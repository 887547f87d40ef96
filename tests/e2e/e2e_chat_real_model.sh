#!/usr/bin/env bash
# End-to-end: the real model behind chat_cli, chat_web and infer_bench. Uses the Python-written d2 checkpoint of
# tests/fixtures/python_basedir, copied into a temp base dir as both a base and an SFT model.
# Checks: chat_cli answers one prompt and handles quit/clear; chat_web serves nanochat's SSE API and the OpenAI API
# with the real engine (greedy replies are deterministic and equal across both APIs and stream/non-stream);
# infer_bench prints its table; bad flags fail with one line.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export NANOCHAT_BASE_DIR=$work/base
mkdir -p "$NANOCHAT_BASE_DIR"
cp -r "$FIXTURES/python_basedir/tokenizer" "$FIXTURES/python_basedir/base_checkpoints" "$NANOCHAT_BASE_DIR/"
chmod -R u+w "$NANOCHAT_BASE_DIR"
mkdir -p "$NANOCHAT_BASE_DIR/chatsft_checkpoints"
cp -r "$NANOCHAT_BASE_DIR/base_checkpoints/d2" "$NANOCHAT_BASE_DIR/chatsft_checkpoints/d2"

fail() { echo "FAIL: $*" >&2; exit 1; }

# --- chat_cli -----------------------------------------------------------------------------------------------------
out=$("$NANOCHAT" chat_cli -i base -p "Hello there" -t 0 --device-type cpu 2>&1) || fail "chat_cli -p exited non-zero: $out"
grep -q "NanoChat Interactive Mode" <<<"$out" || fail "chat_cli banner missing"
grep -q "Assistant: " <<<"$out" || fail "chat_cli printed no reply"
out=$(printf 'hi\nclear\n\nexit\n' | "$NANOCHAT" chat_cli -i sft -t 0 --device-type cpu 2>&1) || fail "interactive chat_cli failed: $out"
grep -q "Conversation cleared." <<<"$out" || fail "clear not handled"
grep -q "Goodbye!" <<<"$out" || fail "exit not handled"
if "$NANOCHAT" chat_cli -i nosuch >/dev/null 2>"$work/err"; then fail "bad -i accepted"; fi
[ "$(wc -l <"$work/err")" -le 2 ] || fail "bad flag error is not short: $(cat "$work/err")"

# A model that answers <|assistant_end|> at once: every block's output projection zeroed and the embeddings all e0,
# so the head sees the same direction whatever the input, and only the end marker's lm_head row points along it.
# chat_cli must end the reply there without printing the marker as text.
if [ -x "${NANOCHAT_PYTHON:-}" ]; then
  mkdir -p "$work/ends/base_checkpoints" && cp -r "$FIXTURES/python_basedir/tokenizer" "$work/ends/"
  cp -r "$FIXTURES/python_basedir/base_checkpoints/d2" "$work/ends/base_checkpoints/"
  "$NANOCHAT_PYTHON" - "$work/ends/base_checkpoints/d2/model_000003.pt" <<'PY'
import sys, torch
path = sys.argv[1]
sd = torch.load(path, map_location="cpu")
for k, v in sd.items():
    if k.endswith("c_proj.weight"):
        v.zero_()
sd["transformer.wte.weight"].zero_()[:, 0] = 1.0
sd["x0_lambdas"].zero_(); sd["resid_lambdas"].fill_(1.0); sd["backout_lambda"].zero_(); sd["smear_lambda"].zero_()
head = sd["lm_head.weight"].zero_()
head[1028, 0] = 10.0  # <|assistant_end|>: 1024 + 4
torch.save(sd, path)
PY
  out=$(NANOCHAT_BASE_DIR="$work/ends" "$NANOCHAT" chat_cli -i base -p "Hello there" -t 0 --device-type cpu 2>/dev/null) ||
    fail "chat_cli -p on the ending model exited non-zero: $out"
  grep -q "Assistant: " <<<"$out" || fail "chat_cli printed no reply: $out"
  if grep -q "assistant_end" <<<"$out"; then fail "chat_cli printed the end marker as text: $out"; fi
fi

# --- chat_web -----------------------------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NANOCHAT" chat_web --port "$port" --device-type cpu >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  grep -q "Server ready" "$work/server.log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || fail "chat_web died: $(cat "$work/server.log")"
  sleep 0.1
done
grep -q "Server ready" "$work/server.log" || fail "chat_web never became ready: $(cat "$work/server.log")"

python3 - "$port" <<'EOF'
import json, sys, urllib.request
port = int(sys.argv[1])
base = f"http://127.0.0.1:{port}"

def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read().decode()

msgs = [{"role": "user", "content": "The capital of France is"}]
# nanochat's streaming API, greedy, twice: identical text, framed as data: {...}\n\n with a final done event.
texts = []
for _ in range(2):
    status, body = post("/chat/completions", {"messages": msgs, "temperature": 0.0, "max_tokens": 12})
    assert status == 200, status
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), body[:200]
    parsed = [json.loads(e[6:]) for e in events]
    assert parsed[-1] == {"done": True}, parsed[-1]
    texts.append("".join(p.get("token", "") for p in parsed[:-1]))
assert texts[0] == texts[1] and texts[0], texts

# OpenAI API, non-stream and stream: same greedy text, usage counts present.
status, body = post("/v1/chat/completions", {"messages": msgs, "temperature": 0.0, "max_tokens": 12})
j = json.loads(body)
assert j["choices"][0]["message"]["content"] == texts[0], (j, texts[0])
assert j["usage"]["completion_tokens"] >= 1 and j["usage"]["prompt_tokens"] > 1, j["usage"]
status, body = post("/v1/chat/completions", {"messages": msgs, "temperature": 0.0, "max_tokens": 12, "stream": True})
events = [e[6:] for e in body.split("\n\n") if e]
assert events[-1] == "[DONE]", events[-1]
streamed = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
assert streamed == texts[0], (streamed, texts[0])

# A prompt longer than the model's context (256 tokens) is a 400, not a crash.
try:
    post("/chat/completions", {"messages": [{"role": "user", "content": "word " * 400}], "max_tokens": 8})
    raise AssertionError("over-long prompt accepted")
except urllib.error.HTTPError as e:
    assert e.code == 400, e.code
with urllib.request.urlopen(base + "/health", timeout=10) as r:
    h = json.loads(r.read())
    assert h["ready"] is True and h["available_workers"] == 1, h
print("chat_web OK:", repr(texts[0]))
EOF
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

# --- infer_bench --------------------------------------------------------------------------------------------------
out=$("$NANOCHAT" infer_bench -i base --batch-sizes 1,2 --prompt-len 16 --max-tokens 8 --repeats 1 --warmup 0 --device-type cpu 2>&1) \
  || fail "infer_bench failed: $out"
grep -qE '^ +2 \| ' <<<"$out" || fail "infer_bench table missing: $out"
out=$("$NANOCHAT" infer_bench --depth 2 --batch-sizes 1 --prompt-len 8 --max-tokens 4 --repeats 1 --warmup 0 --json --device-type cpu 2>&1) \
  || fail "infer_bench --depth failed: $out"
tail -1 <<<"$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["results"][0]["tokens_per_s"] > 0, j'
if "$NANOCHAT" infer_bench --batch-sizes 1,x >/dev/null 2>"$work/err"; then fail "bad --batch-sizes accepted"; fi
grep -q "batch-sizes" "$work/err" || fail "bad --batch-sizes error does not name the flag"
echo "e2e_chat_real_model: all checks passed"
