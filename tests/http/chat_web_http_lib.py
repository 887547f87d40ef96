#!/usr/bin/env python3
"""chat_web_http_lib: what tests/http/chat_web_http_test.py drives the web chat server with (standard library only):
the command line (mock or real target), a scratch NANOCHAT_BASE_DIR from the fixtures, a server process on a free
port, raw streaming requests read event by event, and the soak. Not a test itself; see chat_web_http_test.py.
"""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else ""
if MODE not in ("mock", "real", "soak") or len(sys.argv) < (3 if MODE == "mock" else 4):
    sys.exit("usage: see tests/http/chat_web_http_test.py")
MOCK = MODE == "mock"
BIN = sys.argv[2]
FIXTURES = None if MOCK else sys.argv[3]
SOAK_REQUESTS = int(sys.argv[4]) if MODE == "soak" and len(sys.argv) > 4 else (1000 if MOCK else 200)
LLAMA = "\U0001F999"
HELLO = "Hello " + LLAMA + " \u4f60\u597d! You said: "
RESULTS = {"passed": 0, "failed": 0}
TMP = tempfile.mkdtemp(prefix="chat_web_http_")
SEQ_LEN = 256  # the real fixture model's context


def make_base_dir(name, fifo_meta=False):
    """A NANOCHAT_BASE_DIR with the fixture tokenizer and the d2 checkpoint as an SFT model (what chat_web loads).
    fifo_meta: the checkpoint's meta file is a named pipe, so loading blocks until the test writes it."""
    base = os.path.join(TMP, name)
    src = os.path.join(FIXTURES, "python_basedir")
    shutil.copytree(os.path.join(src, "tokenizer"), os.path.join(base, "tokenizer"))
    d2 = os.path.join(base, "chatsft_checkpoints", "d2")
    shutil.copytree(os.path.join(src, "base_checkpoints", "d2"), d2)
    for root, dirs, files in os.walk(base):
        for f in dirs + files:
            os.chmod(os.path.join(root, f), 0o755 if f in dirs else 0o644)
    if fifo_meta:
        meta = os.path.join(d2, "meta_000003.json")
        content = open(meta, "rb").read()
        os.unlink(meta)
        os.mkfifo(meta)
        return base, meta, content
    return base


REAL_BASE = None if MOCK else make_base_dir("base")


def tok_count(text, allow_special=False):
    """How many tokens the fixture tokenizer makes of text (nanochat tok_encode, independent of the server)."""
    cmd = [BIN, "tok_encode", "--text", text] + (["--allow-special"] if allow_special else [])
    out = subprocess.run(cmd, env=dict(os.environ, NANOCHAT_BASE_DIR=REAL_BASE), capture_output=True, check=True)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])["num_tokens"]


class Server:
    """A server process (mock_chat_server or nanochat chat_web) on a free port."""

    def __init__(self, *args, wait_ready=True, base_dir=None):
        self.log = tempfile.NamedTemporaryFile(prefix="chat_web_", suffix=".log", delete=False)
        self.failed_at_start = RESULTS["failed"]
        self.max_batch = int(args[args.index("--max-batch") + 1]) if "--max-batch" in args else None
        if MOCK:
            cmd, env = [BIN, "--port", "0", *args], None
        else:
            cmd = [BIN, "chat_web", "--device-type", "cpu", "--port", "0", *args]
            env = dict(os.environ, NANOCHAT_BASE_DIR=base_dir or REAL_BASE, OMP_NUM_THREADS="2")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.port = None
        deadline = time.time() + 20
        pattern = r"Server ready at http://localhost:(\d+)" if wait_ready else r"Listening on http://[^:]+:(\d+)"
        while time.time() < deadline and self.port is None:
            m = re.search(pattern, open(self.log.name).read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if self.port is None:
            rc = self.proc.poll()  # a negative code is the signal that ended it
            raise RuntimeError(f"server did not start (exit status {rc}, command {cmd}):\n" + open(self.log.name).read())

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("server did not stop on SIGTERM:\n" + self.log_tail())
        if RESULTS["failed"] > self.failed_at_start:  # something failed while it ran: show what it logged
            print(f"--- the last lines of the server's log ---\n{self.log_tail()}\n---", flush=True)
        os.unlink(self.log.name)
        return rc

    def log_tail(self, n=40):
        with open(self.log.name, errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=False):
        """Returns (status, headers, body bytes or parsed JSON)."""
        c = self.conn()
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        c.close()
        if not raw and r.getheader("Content-Type", "").startswith("application/json"):
            data = json.loads(data)
        return r.status, r.headers, data

    def health(self):
        return self.request("GET", "/health")[2]

    def stats(self):
        return self.request("GET", "/stats", headers=self.auth)[2]

    auth = {}

    def rss_kb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

    def threads(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("Threads:"):
                return int(line.split()[1])

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def wait_idle(self, timeout=5.0):
        """Waits until every worker is back in the pool; returns the seconds it took."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            h = self.health()
            if h["available_workers"] == h["num_gpus"] and h["queued"] == 0:
                return time.time() - t0
            time.sleep(0.01)
        raise AssertionError(f"workers not back in the pool after {timeout}s: {self.health()}")


def check(name, fn):
    try:
        fn()
        RESULTS["passed"] += 1
        print(f"ok   {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - report every failure and go on
        RESULTS["failed"] += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)


def msgs(*contents):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(contents)]


class Stream:
    """A raw HTTP/1.1 streaming request on its own socket, decoding the chunked body event by event.
    send=False connects only; call send() later (to fire many requests at nearly the same moment)."""

    def __init__(self, srv, body, path="/chat/completions", headers=None, send=True):
        self.sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        payload = json.dumps(body).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
                        f"Content-Type: application/json\r\n{extra}"
                        f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        self.buf = b""
        if send:
            self.send()
            self.read_head()

    def send(self):
        self.sock.sendall(self.request)

    def read_head(self):
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.headers = head.decode("latin-1").lower()
        self.chunked = "transfer-encoding: chunked" in self.headers

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _until(self, sep):
        while sep not in self.buf:
            self._fill()
        out, self.buf = self.buf.split(sep, 1)
        return out

    def chunk(self):
        """The next chunk's payload (b"" at the end of the body)."""
        size = int(self._until(b"\r\n"), 16)
        while len(self.buf) < size + 2:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size + 2:]
        return data

    def events(self):
        """Yields (raw chunk, parsed payload); checks every chunk is exactly one "data: ...\\n\\n" event."""
        while True:
            c = self.chunk()
            if not c:
                return
            assert c.startswith(b"data: ") and c.endswith(b"\n\n") and c.count(b"\n\n") == 1, f"bad event {c!r}"
            text = c[6:-2].decode("utf-8")  # strict: a split character would fail here
            yield c, (text if text == "[DONE]" else json.loads(text))

    def close(self):
        self.sock.close()


def piece(ev):
    """The text an event carries, in either API's format (None for other events)."""
    if isinstance(ev, dict) and "token" in ev:
        return ev["token"]
    if isinstance(ev, dict) and ev.get("choices") and "content" in ev["choices"][0].get("delta", {}):
        return ev["choices"][0]["delta"]["content"]
    return None


def stream_text(srv, body, path="/chat/completions"):
    s = Stream(srv, body, path, srv.auth)
    assert s.status == 200, s.status
    text, events = "", []
    for raw, ev in s.events():
        events.append((raw, ev))
        text += piece(ev) or ""
    s.close()
    return text, events


def openai(srv, body):
    """A non-streaming OpenAI request; returns the parsed answer (asserts 200)."""
    status, _, r = srv.request("POST", "/v1/chat/completions", body, srv.auth)
    assert status == 200, (status, r)
    return r


def long_body(max_tokens=None):
    """A request that generates for a while: the mock's endless "forever" reply, or greedy decoding of the real
    model (which, on this prompt, never ends its turn before the context is full: checked in streaming_tests)."""
    if MOCK:
        return {"messages": msgs("forever"), "max_tokens": max_tokens or 1000}
    return {"messages": msgs("forever"), "max_tokens": max_tokens or 240, "temperature": 0}


def budget_error(status, data):
    """A 400 for the token budget (the tiny real model's 256-token context), after every other check passed."""
    return status == 400 and "context" in data["error"]["message"]


def soak(srv, n):
    """n sequential requests; the first 30% warm up httplib's thread pool (each thread's stack and malloc arena,
    the tokenizer's per-thread scratch), after which memory and descriptors must stay flat."""
    srv.wait_idle()
    body = json.dumps({"messages": msgs("soak"), "max_tokens": 32, "temperature": 0})
    rss_start, warm = srv.rss_kb(), int(n * 0.3)
    lat, t_start = [], time.time()
    for i in range(n):
        if i == warm:
            time.sleep(0.1)
            rss0, fds0, thr0, t_warm = srv.rss_kb(), srv.open_fds(), srv.threads(), time.time()
        t0 = time.time()
        c = srv.conn()
        c.request("POST", "/chat/completions", body, {"Content-Type": "application/json", **srv.auth})
        r = c.getresponse()
        data = r.read()
        c.close()
        assert r.status == 200 and data.endswith(b'data: {"done": true}\n\n'), (i, r.status)
        lat.append(time.time() - t0)
    t_end = time.time()
    time.sleep(0.2)
    rss1, fds1, thr1 = srv.rss_kb(), srv.open_fds(), srv.threads()
    pct = lambda xs, q: sorted(xs)[max(0, int(len(xs) * q) - 1)]  # noqa: E731
    k = max(1, n // 10)
    print(f"     soak {n} x 32 tokens: RSS {rss_start} kB at start, {rss0} -> {rss1} kB over the last {n - warm} "
          f"({(rss1 - rss0) * 100 / rss0:+.1f}%), open fds {fds0} -> {fds1}, threads {thr0} -> {thr1}, "
          f"{n / (t_end - t_start):.1f} requests/s ({(n - warm) / (t_end - t_warm):.1f} after warm-up), "
          f"latency p50 {pct(lat, 0.5) * 1000:.1f} ms, p99 first/last {k}: {pct(lat[:k], 0.99) * 1000:.1f}/"
          f"{pct(lat[-k:], 0.99) * 1000:.1f} ms")
    assert rss1 < rss0 * 1.25, (rss0, rss1)
    assert abs(fds1 - fds0) <= 10, (fds0, fds1)
    srv.wait_idle(1.0)
