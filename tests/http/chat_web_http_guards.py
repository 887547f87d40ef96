#!/usr/bin/env python3
"""chat_web_http_guards: how the server guards itself, for tests/http/chat_web_http_test.py — Host and Origin checks
(DNS rebinding, other web pages), log lines that user text cannot forge, a POST without a length answered at once,
pipelined requests answered in order, OpenAI options the server does not act on refused by name, `--host ''`
refused at startup and (real only) `nanochat chat_web` on a broken checkpoint ending with its error every time.
Not a test program itself; chat_web_http_test.py runs these.
"""
import json
import os
import re
import socket
import subprocess
import time

from chat_web_http_lib import *  # noqa: F401,F403 - Server, Stream, check, msgs, MOCK, BIN, make_base_dir


def raw_exchange(srv, data, timeout=10):
    """Sends raw bytes on a new connection; returns everything the server sent until it closed or went quiet
    for `timeout` seconds."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    sock.sendall(data)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    sock.close()
    return out


def guard_tests(srv):
    host = f"127.0.0.1:{srv.port}"
    body = {"messages": msgs("hi"), "max_tokens": 4, "temperature": 0}

    def bad_host():
        for h in ("evil.example", f"evil.example:{srv.port}", f"localhost:{srv.port + 1}"):
            status, _, data = srv.request("POST", "/chat/completions", body, {"Host": h})
            assert status == 421 and "Host" in data["error"]["message"], (h, status, data)
        for h in (host, f"localhost:{srv.port}", f"[::1]:{srv.port}"):
            assert srv.request("GET", "/health", headers={"Host": h})[0] == 200, h
    check("Host must name this server (DNS rebinding): other names -> 421 with JSON", bad_host)

    def other_origin():
        status, hdrs, data = srv.request("POST", "/v1/chat/completions", body, {"Origin": "http://evil.example"})
        assert status == 403 and "--cors-origin" in data["error"]["message"], (status, data)
        assert "Access-Control-Allow-Origin" not in hdrs and "Access-Control-Allow-Credentials" not in hdrs, hdrs
        status, _, _ = srv.request("POST", "/v1/chat/completions", body, {"Origin": f"http://{host}"})
        assert status == 200, status
    check("another page's request -> 403 without CORS headers; the server's own page is served", other_origin)

    def log_injection():
        forged = "hi\n2099-01-01 00:00:00 - [ASSISTANT] (GPU 0): forged"
        status, _, _ = srv.request("POST", "/v1/chat/completions", {"messages": msgs(forged), "max_tokens": 60})
        assert status == 200, status
        time.sleep(0.2)
        log = open(srv.log.name, errors="replace").read()
        assert not re.search(r"^2099-01-01", log, re.M), "a forged log line:\n" + log[-2000:]
        assert "[USER]: hi\\n2099-01-01 00:00:00 - [ASSISTANT] (GPU 0): forged" in log, log[-2000:]
    check("a message with a newline and a fake timestamp stays on its own log line, escaped", log_injection)

    def no_length():
        t0 = time.time()
        out = raw_exchange(srv, b"POST /chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json"
                                b"\r\n\r\n" % host.encode(), timeout=5)
        took = time.time() - t0
        assert out.startswith(b"HTTP/1.1 411 "), out[:200]
        assert b"\r\nConnection: close\r\n" in out and took < 4, (took, out[:300])
    check("a POST without Content-Length -> 411 at once, connection closed", no_length)

    def pipelined():
        reqs = [b"GET /health HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode()]
        for i, path in enumerate(("/chat/completions", "/v1/chat/completions")):
            payload = json.dumps({"messages": msgs(f"pipe{i}"), "max_tokens": 6, "temperature": 0}).encode()
            reqs.append(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                        b"\r\n%s" % (path.encode(), host.encode(), len(payload), payload))
        reqs.append(b"GET /v1/models HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode())
        t0 = time.time()
        out = raw_exchange(srv, b"".join(reqs))
        heads = re.findall(rb"HTTP/1.1 (\d+) ", out)
        assert heads == [b"200"] * 4, (heads, out[:500])
        order = [out.find(s) for s in (b'"status":"ok"', b"event-stream", b"chat.completion", b'"object":"list"')]
        assert -1 not in order and order == sorted(order), (order, out[:800])
        print(f"     4 pipelined requests answered in {(time.time() - t0) * 1000:.0f} ms")
    check("4 pipelined requests on one connection: all answered, in order", pipelined)

    def unsupported_options():
        for key, value in (("top_logprobs", 3), ("tools", [{"type": "function", "function": {"name": "f"}}]),
                           ("response_format", {"type": "json_object"}), ("presence_penalty", 0.5),
                           ("logit_bias", {"1": 5}), ("top_p", 0.5)):
            status, _, data = srv.request("POST", "/v1/chat/completions", dict(body, **{key: value}))
            assert status == 400 and f"'{key}'" in data["error"]["message"], (key, status, data)
        status, _, _ = srv.request("POST", "/v1/chat/completions",
                                   dict(body, logprobs=False, presence_penalty=0, tools=[], top_p=1))
        assert status == 200, status
    check("OpenAI options the server does not act on -> 400 naming them; their defaults -> 200", unsupported_options)


def startup_tests():
    def empty_host():
        cmd = [BIN, "--host", "", "--port", "0"] if MOCK else [BIN, "chat_web", "--host", "", "--port", "0"]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        err = r.stderr.decode().strip()
        assert r.returncode == 2 and "--host" in err and len(err.splitlines()) == 1, (r.returncode, err)
    check("--host '' is refused with one line naming the flag", empty_host)

    if MOCK:
        return

    def broken_checkpoint():
        base = make_base_dir("broken")
        d2 = os.path.join(base, "chatsft_checkpoints", "d2")
        for f in os.listdir(d2):
            if f.startswith("meta_"):
                open(os.path.join(d2, f), "w").write("[]")
        env = dict(os.environ, NANOCHAT_BASE_DIR=base, OMP_NUM_THREADS="1")
        for i in range(5):
            try:
                r = subprocess.run([BIN, "chat_web", "--device-type", "cpu", "--port", "0"], env=env,
                                   capture_output=True, timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"try {i}: chat_web on a broken checkpoint did not exit")
            err = r.stderr.decode().strip()
            assert r.returncode == 1 and err.startswith("error: ") and len(err.splitlines()) == 1, (r.returncode, err)
    check("chat_web on a checkpoint whose meta is [] exits 1 with one error line, 5 times of 5", broken_checkpoint)
