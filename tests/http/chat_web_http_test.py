#!/usr/bin/env python3
"""chat_web_http_test: the web chat server over real HTTP on 127.0.0.1, driven with the standard library (and prometheus_client for /metrics).

Two targets, one suite:
  mock  tests/mock_chat_server: the real server in front of a scripted byte-level mock model, so replies are known
        exactly (forced UTF-8 splits, echoes), a failure can be injected and loading can be slowed down.
  real  `nanochat chat_web` itself with the tiny Python-written d2 checkpoint of tests/fixtures/python_basedir
        (256-token context, 1033-token vocabulary, decodes in about a millisecond per token on one core).
Checks: bad inputs (TESTPLAN's table: right status, JSON "error", no crash), the server's guards (Host, Origin, log
lines, requests without a length, pipelining, unsupported OpenAI options, startup refusals:
chat_web_http_guards.py), SSE framing (one event per chunk, nanochat's JSON, {"done": true} last, UTF-8 never
split), determinism, max_tokens, the token budget, special-token text as plain text, the OpenAI API (stream and
not; mock only, byte for byte: stop strings, n choices, seeds, logprobs and POST /v1/completions), /v1/models, /health, /stats, /metrics, concurrent streams on 2 workers with a bounded queue (429s), client
disconnects (streaming, non-streaming, queued), 503 while loading, API keys, SIGTERM, a soak (RSS and open fds
before/after); mock only: the suite once with workers of one slot and once of four (--max-batch), continuous
batching (requests that run together on one worker, the queue and 429s counted in slots: chat_web_http_load.py), an
injected inference failure, read timeouts and slow clients; real only: the prefix cache on and off
(chat_web_http_prefix.py). Timings are printed; only generous bounds are asserted.

    python3 tests/http/chat_web_http_test.py mock <mock_chat_server>          (tests/http/e2e_chat_web_http.sh)
    python3 tests/http/chat_web_http_test.py real <nanochat> <fixtures dir>   (tests/http/e2e_chat_web_real.sh)
    python3 tests/http/chat_web_http_test.py soak <nanochat> <fixtures dir> N (bench/chat_web_soak.sh: the soak alone)
"""
import json
import re
import shutil
import socket
import sys
import threading
import time

from chat_web_http_lib import *  # noqa: F401,F403 - the command line, Server, Stream, check, soak
from chat_web_http_guards import guard_tests, startup_tests
from chat_web_http_load import batching_tests, burst, parallel_matrix
from chat_web_http_prefix import prefix_cache_tests


# ---------------------------------------------------------------------------------------------------------------
def bad_input_tests(srv):
    valid = {"role": "user", "content": "hi"}
    cases = [
        ("malformed JSON", b'{"messages": [', None, 400),
        ("empty body", b"", None, 400),
        ("Content-Type text/plain", json.dumps({"messages": [valid]}), {"Content-Type": "text/plain"}, 400),
        ("body is a list", [valid], None, 400),
        ("messages null", {"messages": None}, None, 400),
        ("messages string", {"messages": "hi"}, None, 400),
        ("messages [123]", {"messages": [123]}, None, 400),
        ("messages [{}]", {"messages": [{}]}, None, 400),
        ("role 123", {"messages": [{"role": 123}]}, None, 400),
        ("content 123", {"messages": [{"role": "user", "content": 123}]}, None, 400),
        ("valid then {}", {"messages": [valid, {}]}, None, 400),
        ("0 messages", {"messages": []}, None, 400),
        ("501 messages", {"messages": msgs(*["a"] * 501)}, None, 400),
        ("8001 code points", {"messages": msgs("a" * 8001)}, None, 400),
        ("32001 total", {"messages": msgs(*(["a" * 8000] * 4 + ["b"]))}, None, 400),
        ("role system", {"messages": [{"role": "system", "content": "x"}, valid]}, None, 400),
        ("role tool", {"messages": [{"role": "tool", "content": "x"}]}, None, 400),
        ("role empty", {"messages": [{"role": "", "content": "x"}]}, None, 400),
        ("role USER", {"messages": [{"role": "USER", "content": "x"}]}, None, 400),
        ("empty content", {"messages": [{"role": "user", "content": ""}]}, None, 400),
        ("temperature -0.01", {"messages": [valid], "temperature": -0.01}, None, 400),
        ("temperature 2.01", {"messages": [valid], "temperature": 2.01}, None, 400),
        ("temperature 'hot'", {"messages": [valid], "temperature": "hot"}, None, 400),
        ("temperature 1e309", b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e309}', None, 400),
        ("temperature NaN", b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', None, 400),
        ("top_k -1", {"messages": [valid], "top_k": -1}, None, 400),
        ("top_k 201", {"messages": [valid], "top_k": 201}, None, 400),
        ("top_k 3.5", {"messages": [valid], "top_k": 3.5}, None, 400),
        ("max_tokens 0", {"messages": [valid], "max_tokens": 0}, None, 400),
        ("max_tokens 4097", {"messages": [valid], "max_tokens": 4097}, None, 400),
        ("max_tokens -5", {"messages": [valid], "max_tokens": -5}, None, 400),
        ("token budget (400 x 80 emoji)", {"messages": msgs(*([LLAMA * 80] * 400))}, None, 400),
        ("invalid UTF-8", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', None, 400),
        ("lone surrogate", b'{"messages": [{"role": "user", "content": "\\ud800"}]}', None, 400),
        ("deep nesting", b"[" * 500000 + b"]" * 500000, None, 400),
        ("10 MiB body", b"x" * (10 << 20), None, 413),
    ]
    for name, body, headers, want in cases:
        def case(body=body, headers=headers, want=want):
            status, hdrs, data = srv.request("POST", "/chat/completions", body, headers)
            assert status == want, f"status {status}, want {want}: {data}"
            assert isinstance(data, dict) and "message" in data["error"], f"no JSON error: {data!r}"
        check(f"bad input: {name} -> {want}", case)

    def chunked_too_big():
        # 17 chunks of 64 KiB (over 1 MiB) and no final chunk: the server must answer 413 before the body ends.
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" % srv.port)
        for _ in range(17):
            sock.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            assert data, f"connection closed without an answer: {head!r}"
            head += data
        sock.close()
        assert head.startswith(b"HTTP/1.1 413"), head[:200]
        assert srv.health()["status"] == "ok"
    check("chunked body over 1 MiB -> 413 (read no further)", chunked_too_big)

    def chunked_ok():
        c = srv.conn()
        body = json.dumps({"messages": msgs("chunked"), "max_tokens": 2}).encode()
        c.request("POST", "/v1/chat/completions", body=iter([body[:10], body[10:]]),
                  headers={"Content-Type": "application/json"}, encode_chunked=True)
        r = c.getresponse()
        data = json.loads(r.read())
        c.close()
        assert r.status == 200 and data["usage"]["completion_tokens"] <= 2, (r.status, data)
    check("a small chunked body is read whole -> 200", chunked_ok)

    def ok(body, want_text=None, fits=True):
        """200 (mock: a context of 40000 tokens); with the real model's 256-token context a long request passes
        every character limit and is then refused for the token budget (fits=False)."""
        status, _, data = srv.request("POST", "/chat/completions", body, raw=True)
        if not fits and not MOCK:
            assert budget_error(status, json.loads(data)), f"status {status}: {data[:300]}"
            return
        assert status == 200, f"status {status}: {data[:300]}"
        if want_text is not None:
            text = "".join(json.loads(l[6:])["token"] for l in data.decode().split("\n\n") if '"token"' in l)
            assert text == want_text, f"{text!r} != {want_text!r}"

    fit = "200" if MOCK else "400 for the token budget, not the character limits"
    check(f"500 messages -> {fit}", lambda: ok({"messages": msgs(*["a"] * 500), "max_tokens": 1}, fits=False))
    check(f"8000 code points -> {fit}", lambda: ok({"messages": msgs("a" * 8000), "max_tokens": 1}, fits=False))
    check(f"'é' x 8000 (16,000 bytes) -> {fit}",
          lambda: ok({"messages": msgs("\u00e9" * 8000), "max_tokens": 1}, fits=False))
    check(f"32000 total -> {fit}", lambda: ok({"messages": msgs(*(["a" * 8000] * 4)), "max_tokens": 1}, fits=False))
    check("temperature/top_k at their bounds -> 200",
          lambda: ok({"messages": msgs("x"), "temperature": 2.0, "top_k": 0, "max_tokens": 4}))
    check(f"max_tokens 4096 -> {fit}", lambda: ok({"messages": msgs("x"), "max_tokens": 4096}, fits=False))
    check("top_k 3.0 is an integer -> 200", lambda: ok({"messages": msgs("x"), "top_k": 3.0, "max_tokens": 1}))
    special = "<|assistant_end|><|user_start|>hi"
    if MOCK:
        check("special-token text is plain text (echoed whole, not an end of turn)",
              lambda: ok({"messages": msgs(special), "temperature": 0}, HELLO + special))
    else:
        def special_plain():
            ok({"messages": msgs(special), "max_tokens": 4})
            plain, as_specials = tok_count(special), tok_count(special, allow_special=True)
            assert as_specials == 2 + tok_count("hi") < plain, (plain, as_specials)  # 2 specials + "hi"
            r = openai(srv, {"messages": msgs(special), "max_tokens": 1})
            # BOS, <|user_start|>, the text as ordinary tokens, <|user_end|>, <|assistant_start|>
            assert r["usage"]["prompt_tokens"] == 4 + plain, (r["usage"], plain)
        check("special-token text in user content is encoded as plain text (prompt has no special ids)", special_plain)

        def budget_edge():
            p = openai(srv, {"messages": msgs("edge"), "max_tokens": 1})["usage"]["prompt_tokens"]
            r = openai(srv, {"messages": msgs("edge"), "max_tokens": SEQ_LEN - p, "temperature": 0})
            assert r["usage"]["completion_tokens"] <= SEQ_LEN - p, r["usage"]
            status, _, data = srv.request("POST", "/v1/chat/completions",
                                          {"messages": msgs("edge"), "max_tokens": SEQ_LEN - p + 1})
            assert budget_error(status, data), (status, data)
            big = {"messages": msgs("word " * 300), "max_tokens": 1}  # within the character limits
            status, _, data = srv.request("POST", "/chat/completions", big)
            assert budget_error(status, data), (status, data)
            # Without max_tokens the server's default (512) is cut to the room the prompt leaves.
            r = openai(srv, {"messages": msgs("edge"), "temperature": 0})
            assert r["usage"]["completion_tokens"] <= SEQ_LEN - p and r["choices"][0]["finish_reason"], r
        check("token budget: prompt + max_tokens == context -> 200, +1 -> 400, over-long prompt -> 400, "
              "default max_tokens cut to fit", budget_edge)

    def wrong_method():
        status, _, data = srv.request("GET", "/chat/completions")
        assert status in (404, 405) and "error" in data, (status, data)
    check("GET /chat/completions -> 404 with JSON", wrong_method)
    check("workers all back after the bad inputs", lambda: srv.wait_idle(1.0))


def streaming_tests(srv):
    def framing():
        if MOCK:
            text, events = stream_text(srv, {"messages": msgs("Hi " + LLAMA), "temperature": 0})
        else:
            text, events = stream_text(srv, {"messages": msgs("Hi " + LLAMA), "temperature": 1.0, "top_k": 0,
                                             "max_tokens": 64})
        raw, last = events[-1]
        assert raw == b'data: {"done": true}\n\n', raw
        first = events[0][0]
        assert re.fullmatch(rb'data: \{"token": ".*", "gpu": [01]\}\n\n', first, re.S), first
        assert all(set(ev) == {"token", "gpu"} and ev["token"] for _, ev in events[:-1])
        if MOCK:
            assert text == HELLO + "Hi " + LLAMA, text
            assert not any("\ufffd" in ev["token"] for _, ev in events[:-1])
            assert any(ev["token"] == LLAMA for _, ev in events[:-1]), "the 4 byte tokens of the emoji form one event"
            assert any("\u4f60".encode() in raw for raw, _ in events), "UTF-8 kept, not \\u-escaped"
        else:
            assert 1 <= len(events) - 1 <= 64, len(events)
    check("SSE framing: one event per chunk, nanochat's JSON, done last, UTF-8 whole", framing)

    def headers():
        s = Stream(srv, {"messages": msgs("x"), "max_tokens": 2})
        assert "content-type: text/event-stream" in s.headers and s.chunked, s.headers
        list(s.events())
        s.close()
    check("SSE headers: text/event-stream, chunked", headers)

    def determinism():
        mt = {} if MOCK else {"max_tokens": 32}
        outs = {stream_text(srv, {"messages": msgs("same"), "temperature": 0, **mt})[0] for _ in range(4)}
        assert len(outs) == 1, outs
        seeded = {openai(srv, {"messages": msgs("same"), "temperature": 1.0, "seed": s, **mt})
                  ["choices"][0]["message"]["content"] for s in range(4)}
        assert len(seeded) == 4, seeded
    check("temperature 0 repeats exactly; temperature 1 with seeds 0-3 differ", determinism)

    def stream_equals_nonstream():
        body = {"messages": msgs("compare"), "temperature": 1.0, "seed": 7, "max_tokens": 8}
        full = openai(srv, body)["choices"][0]["message"]["content"]
        text, _ = stream_text(srv, dict(body, stream=True), "/v1/chat/completions")
        assert text == full, (text, full)
        if MOCK:
            assert text == HELLO[:6], text  # 8 byte tokens: "Hello " + half an emoji held back
    check("stream concatenation == non-stream output (seed 7, max_tokens 8)", stream_equals_nonstream)

    def max_tokens():
        for n in (1, 4, 16, 64):
            body = {"messages": msgs("forever"), "max_tokens": n, "temperature": 1.0, "top_k": 0, "seed": n}
            text, events = stream_text(srv, body)
            assert len(events) - 1 <= n, (n, len(events))  # one event per token at most, then done
            if MOCK:
                assert len(text.encode()) <= n, (n, len(text.encode()))
            u = openai(srv, body)
            c = u["usage"]["completion_tokens"]
            assert c <= n and (c == n) == (u["choices"][0]["finish_reason"] == "length"), u
            if MOCK:
                assert c == n and u["choices"][0]["finish_reason"] == "length", u
    check("max_tokens respected for 1, 4, 16, 64", max_tokens)

    if MOCK:
        return

    def long_greedy():
        r = openai(srv, long_body())
        assert r["choices"][0]["finish_reason"] == "length" and r["usage"]["completion_tokens"] == 240, r["usage"]
    check("the long request of the load tests runs to max_tokens (240)", long_greedy)

    def batched_equals_alone():
        # Continuous batching must not change a reply: 8 seeded requests (4 rows per worker) sent at once give the
        # texts they give one at a time.
        bodies = [{"messages": msgs(f"tell me about {i}"), "temperature": 0.9 if i % 2 else 0.0, "top_k": 20 * i,
                   "seed": i, "max_tokens": 24 + 8 * i} for i in range(8)]
        alone = [openai(srv, b)["choices"][0]["message"]["content"] for b in bodies]
        together = [None] * len(bodies)
        def run(i):
            together[i] = openai(srv, bodies[i])["choices"][0]["message"]["content"]
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert together == alone, (together, alone)
        assert len(set(alone)) > 1, alone
    check("8 seeded replies decoded together == the same decoded one at a time", batched_equals_alone)

    def utf8_whole():
        # The fixture vocabulary holds only three whole non-ASCII characters (’ ” é); any other one the model writes
        # is assembled from byte tokens, so reading it whole from one event (Stream.events decodes every event
        # strictly) shows the server held back its first bytes. Sample until a few such characters were seen.
        split, tokens, seed = [], 0, 0
        while len(split) < 3 and seed < 60:
            body = {"messages": msgs("ünïcödé 🦙"), "temperature": 1.0, "top_k": 0, "max_tokens": 200,
                    "seed": seed, "stream": True, "stream_options": {"include_usage": True}}
            text, events = stream_text(srv, body, "/v1/chat/completions")
            tokens += events[-2][1]["usage"]["completion_tokens"]
            for _, ev in events:
                p = piece(ev) or ""
                split += [c for c in p if ord(c) >= 0x80 and c not in "\u2019\u201d\u00e9\ufffd"]
            if seed < 3:  # the same seed without streaming gives the same text
                full = openai(srv, dict(body, stream=False))["choices"][0]["message"]["content"]
                assert full == text, (full, text)
            seed += 1
        print(f"     {tokens} sampled tokens (seeds 0-{seed - 1}): multi-token characters {''.join(split)!r}")
        assert split, "no multi-byte character was sampled; cannot check the hold-back"
    check("UTF-8 never split across SSE events (characters made of several byte tokens arrive whole)", utf8_whole)


def openai_tests(srv):
    def nonstream():
        r = openai(srv, {"model": "whatever", "temperature": 0, "max_tokens": 24 if not MOCK else None,
                         "messages": [{"role": "system", "content": "sys"},
                                      {"role": "user", "content": [{"type": "text", "text": "yo"}]}]})
        assert r["object"] == "chat.completion" and r["id"].startswith("chatcmpl-"), r
        assert r["model"] == ("nanochat-mock" if MOCK else "nanochat"), r
        choice = r["choices"][0]
        assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str), choice
        if MOCK:
            assert choice["message"]["content"] == HELLO + "sys\n\nyo", choice
            assert choice["finish_reason"] == "stop"
            prompt = 1 + 1 + len("sys\n\nyo") + 1 + 1  # bos, user_start, bytes, user_end, assistant_start
            completion = len((HELLO + "sys\n\nyo").encode())
        else:
            prompt = 1 + 1 + tok_count("sys\n\nyo") + 1 + 1
            completion = r["usage"]["completion_tokens"]
            assert 1 <= completion <= 24 and (completion == 24) == (choice["finish_reason"] == "length"), r
        assert r["usage"] == {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion}, r["usage"]
    check("OpenAI non-stream: message, finish_reason, usage counts, system merged", nonstream)

    def stream():
        mt = None if MOCK else 24
        text, events = stream_text(srv, {"messages": msgs("s"), "stream": True, "temperature": 0, "max_tokens": mt,
                                         "stream_options": {"include_usage": True}}, "/v1/chat/completions")
        assert events[-1][0] == b"data: [DONE]\n\n"
        assert events[0][1]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        chunks = [ev for _, ev in events[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert len({c["id"] for c in chunks}) == 1
        assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length") and chunks[-1]["choices"] == []
        usage = chunks[-1]["usage"]
        assert 0 < len(chunks) - 3 <= usage["completion_tokens"] <= (mt or 512), (len(chunks), usage)
        if MOCK:
            assert text == HELLO + "s"
        else:
            full = openai(srv, {"messages": msgs("s"), "temperature": 0, "max_tokens": 24})
            assert full["choices"][0]["message"]["content"] == text and full["usage"] == usage, (full, text, usage)
    check("OpenAI stream: role chunk, content chunks, finish_reason, usage, [DONE]", stream)

    def bad():
        for body, field in (({"messages": msgs("x"), "n": 9}, "'n'"), ({"messages": msgs("x"), "n": 0}, "'n'"),
                            ({"messages": msgs("x"), "stop": ["a", "b", "c", "d", "e"]}, "'stop'"),
                            ({"messages": msgs("x"), "stop": {"a": 1}}, "'stop'"),
                            ({"messages": msgs("x"), "logprobs": True, "top_logprobs": 21}, "'top_logprobs'"),
                            ({"messages": msgs("x"), "max_tokens": 4, "max_completion_tokens": 5},
                             "'max_completion_tokens'"),
                            ({"messages": msgs("x"), "stream": "yes"}, "'stream'"),
                            ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]},
                             "system")):
            status, _, data = srv.request("POST", "/v1/chat/completions", body)
            assert status == 400 and field in data["error"]["message"], (body, status, data)
        for body, field in (({"prompt": ["a", "b"]}, "'prompt'"), ({"prompt": "a", "logprobs": 6}, "'logprobs'"),
                            ({"prompt": "a", "echo": True}, "'echo'"), ({"prompt": "a", "n": 9}, "'n'")):
            status, _, data = srv.request("POST", "/v1/completions", body)
            assert status == 400 and field in data["error"]["message"], (body, status, data)
    check("OpenAI bad inputs -> 400 naming the field (n, stop, top_logprobs, max_completion_tokens, prompt, echo)", bad)

    if MOCK:
        mock_openai_option_tests(srv)

    def models():
        status, _, data = srv.request("GET", "/v1/models")
        assert status == 200 and data["object"] == "list", data
        assert data["data"][0]["id"] == ("nanochat-mock" if MOCK else "nanochat"), data
    check("GET /v1/models", models)


def mock_openai_option_tests(srv):
    """stop, n, seed, logprobs, max_completion_tokens and /v1/completions, byte for byte against the mock's script
    (tests/http/mock_chat_model.h): every byte is a token, and its log-probabilities are scripted."""
    import math

    def chat_stream(body):
        text, events = stream_text(srv, dict(body, stream=True), "/v1/chat/completions")
        return text, [ev for _, ev in events[:-1]]

    def stop():
        body = {"messages": msgs("x"), "temperature": 0, "stop": ["\u4f60", "never"]}
        r = openai(srv, body)
        assert r["choices"][0]["message"]["content"] == "Hello " + LLAMA + " ", r
        assert r["choices"][0]["finish_reason"] == "stop", r
        assert r["usage"]["completion_tokens"] == len(("Hello " + LLAMA + " \u4f60").encode()), r["usage"]
        text, chunks = chat_stream(body)
        assert text == "Hello " + LLAMA + " ", text
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]] == ["stop"]
        # A stop string the reply only begins: the held-back text goes out when it stops matching.
        body = {"messages": msgs("x"), "temperature": 0, "stop": "! You said: y"}
        assert openai(srv, body)["choices"][0]["message"]["content"] == HELLO + "x"
        text, chunks = chat_stream(body)
        assert text == HELLO + "x", text
        pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks]
        assert "! You said: x" in pieces, pieces  # held back from "!" on, then sent together
        r = srv.request("POST", "/v1/completions", {"prompt": "abc", "temperature": 0, "stop": "said"})[2]
        assert r["choices"][0]["text"] == "Hello " + LLAMA + " \u4f60\u597d! You ", r
    check("stop: reply ends before the stop string (split across byte tokens), streamed never past it; usage counts "
          "every token", stop)

    def n_choices():
        body = {"messages": msgs("n"), "temperature": 1.0, "seed": 5, "n": 3}
        r = openai(srv, body)
        alone = [openai(srv, dict(body, n=1, seed=5 + i))["choices"][0]["message"]["content"] for i in range(3)]
        assert [c["index"] for c in r["choices"]] == [0, 1, 2], r
        assert [c["message"]["content"] for c in r["choices"]] == alone, (r, alone)
        assert len(set(alone)) == 3, alone
        assert r["usage"]["completion_tokens"] == sum(len(a.encode()) for a in alone), r["usage"]
        _, chunks = chat_stream(body)
        texts, finishes = ["", "", ""], [[], [], []]
        for c in chunks:
            for ch in c["choices"]:
                texts[ch["index"]] += ch["delta"].get("content", "")
                if ch["finish_reason"]:
                    finishes[ch["index"]].append(ch["finish_reason"])
        assert texts == alone and finishes == [["stop"]] * 3, (texts, finishes)
        rc = srv.request("POST", "/v1/completions", {"prompt": "p", "temperature": 1.0, "seed": 5, "n": 2})[2]
        assert [c["text"] for c in rc["choices"]] == [HELLO + "p #" + a.split("#")[1] for a in alone[:2]], rc
    check("n=3: choice i == the reply to seed + i (non-stream and stream, one finish_reason each), completions too",
          n_choices)

    def seed_and_max_completion_tokens():
        body = {"messages": msgs("s"), "temperature": 1.0, "seed": 11}
        assert openai(srv, body) ["choices"][0]["message"]["content"] == \
            openai(srv, body)["choices"][0]["message"]["content"]
        r = openai(srv, {"messages": msgs("forever"), "max_completion_tokens": 5})
        assert r["usage"]["completion_tokens"] == 5 and r["choices"][0]["finish_reason"] == "length", r
        r = openai(srv, {"messages": msgs("forever"), "max_completion_tokens": 5, "max_tokens": 5})
        assert r["usage"]["completion_tokens"] == 5, r
    check("seed repeats a reply; max_completion_tokens is max_tokens", seed_and_max_completion_tokens)

    half, quarter = math.log(0.5), math.log(0.25)

    def logprobs():
        body = {"messages": msgs("x"), "temperature": 0, "logprobs": True, "top_logprobs": 2}
        r = openai(srv, body)
        choice = r["choices"][0]
        content = choice["logprobs"]["content"]
        text = choice["message"]["content"]
        assert len(content) == len(text.encode()) == r["usage"]["completion_tokens"], (len(content), text)
        assert b"".join(bytes(e["bytes"]) for e in content) == text.encode()
        e = content[0]
        assert e["token"] == "H" and e["bytes"] == [72] and abs(e["logprob"] - half) < 1e-6, e
        assert [t["token"] for t in e["top_logprobs"]] == ["H", "I"], e
        assert abs(e["top_logprobs"][1]["logprob"] - quarter) < 1e-6, e
        assert content[6]["bytes"] == [0xF0] and content[6]["token"] == "\ufffd", content[6]
        _, chunks = chat_stream(body)
        streamed = [e for c in chunks for ch in c["choices"] if ch.get("logprobs") for e in ch["logprobs"]["content"]]
        assert streamed == content, (streamed[:3], content[:3])
        assert "logprobs" not in openai(srv, {"messages": msgs("x")})["choices"][0] or \
            openai(srv, {"messages": msgs("x")})["choices"][0]["logprobs"] is None
        r = srv.request("POST", "/v1/completions", {"prompt": "ab", "temperature": 0, "logprobs": 1})[2]
        lp = r["choices"][0]["logprobs"]
        assert "".join(lp["tokens"][:6]) == "Hello " and lp["text_offset"][:11] == [0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 7]
        assert lp["top_logprobs"][0] == {"H": lp["token_logprobs"][0]} and abs(lp["token_logprobs"][0] - half) < 1e-6
        assert len(lp["tokens"]) == len(r["choices"][0]["text"].encode()), lp
    check("logprobs/top_logprobs: one entry per token with its bytes and scripted alternatives, streamed the same; "
          "completions' legacy logprobs with text_offset", logprobs)

    def completions():
        r = srv.request("POST", "/v1/completions", {"prompt": ["once"], "temperature": 0})[2]
        assert r["object"] == "text_completion" and r["id"].startswith("cmpl-"), r
        assert r["choices"][0]["text"] == HELLO + "once" and r["choices"][0]["finish_reason"] == "stop", r
        assert r["usage"]["prompt_tokens"] == 1 + 4, r["usage"]  # <|bos|> + 4 bytes, no chat template
        text, events = stream_text(srv, {"prompt": "once", "temperature": 0, "stream": True,
                                         "stream_options": {"include_usage": True}}, "/v1/completions")
        chunks = [ev for _, ev in events[:-1]]
        assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == HELLO + "once", chunks
        assert chunks[-1]["usage"]["completion_tokens"] == r["usage"]["completion_tokens"], chunks[-1]
        assert all(c["object"] == "text_completion" for c in chunks), chunks[0]
        r = srv.request("POST", "/v1/completions", {"prompt": "forever", "max_tokens": 3})[2]
        assert r["choices"][0]["finish_reason"] == "length" and r["usage"]["completion_tokens"] == 3, r
    check("POST /v1/completions: plain prompt, text_completion, stream and not", completions)


def endpoint_tests(srv):
    def health_stats():
        s = srv.stats()
        slots = [w["slots"] for w in s["workers"]]  # each worker's max_batch (the mock's is known: srv.max_batch)
        assert slots == [srv.max_batch or slots[0]] * 2, s
        h = srv.health()
        assert h == {"status": "ok", "ready": True, "num_gpus": 2, "available_workers": 2, "queued": 0,
                     "slots_total": sum(slots), "slots_free": sum(slots)}, h
        assert s["total_workers"] == 2 and s["busy_workers"] == 0 and s["available_workers"] == 2, s
        assert s["slots_total"] == s["slots_free"] == sum(slots), s
        dev = ["mock:0", "mock:1"] if MOCK else ["cpu", "cpu"]
        assert s["workers"] == [{"gpu_id": i, "device": dev[i], "slots": slots[i], "busy_slots": 0} for i in (0, 1)], s
        assert s["max_queue"] == 8 and s["queued"] == 0 and s["requests"]["failed"] == 0, s
    check("/health and /stats", health_stats)

    def ui():
        status, hdrs, body = srv.request("GET", "/", raw=True)
        assert status == 200 and hdrs["Content-Type"].startswith("text/html") and b"<title>NanoChat</title>" in body
        status, hdrs, body = srv.request("GET", "/logo.svg", raw=True)
        assert status == 200 and hdrs["Content-Type"] == "image/svg+xml" and body.startswith(b"<svg")
    check("GET / serves the embedded UI, /logo.svg its icon", ui)

    def cors():
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        status, hdrs, _ = srv.request("OPTIONS", "/chat/completions", headers={"Origin": "http://example.test",
                                                                               **preflight})
        assert status == 403 and "Access-Control-Allow-Origin" not in hdrs, (status, hdrs)
        status, hdrs, _ = srv.request("OPTIONS", "/chat/completions", headers={
            "Origin": f"http://127.0.0.1:{srv.port}", **preflight})
        assert status == 204 and hdrs["Access-Control-Allow-Headers"] == "content-type", (status, hdrs)
    check("CORS preflight: another origin -> 403, the server's own -> 204", cors)

    def bind():
        listening = set()
        for line in open("/proc/net/tcp").readlines()[1:] + open("/proc/net/tcp6").readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == srv.port:
                listening.add(local.split(":")[0])
        assert listening == {"0100007F"}, f"listening on {listening}, want only 127.0.0.1"
    check("binds 127.0.0.1 by default", bind)


def cancel_once(srv, start, what):
    """Starts a long request with start() -> socket, closes it mid-generation, and checks the server counted one
    cancellation and freed the worker. The tiny real model writes a whole reply in well under a second, so if
    it finished before the close arrived (counted as completed instead) the attempt is repeated, up to 5 times."""
    for attempt in range(5):
        before = srv.stats()["requests"]
        sock = start()
        sock.close()
        freed = srv.wait_idle(5.0)
        after = srv.stats()["requests"]
        if after["completed"] > before["completed"] and not MOCK:
            print(f"     {what}: the reply ended before the client left; trying again")
            continue
        assert after["cancelled"] - before["cancelled"] == 1, (before, after)
        return freed
    raise AssertionError(f"{what}: every attempt finished before the client could leave")


def load_tests(srv):
    parallel_matrix(srv, 2)
    burst(srv, workers=2, queue=8)

    def disconnect():
        def start():
            s = Stream(srv, long_body())
            events = s.events()
            for _ in range(3 if MOCK else 1):
                next(events)
            return s.sock
        freed = cancel_once(srv, start, "disconnect")
        s = srv.stats()
        assert s["busy_workers"] == 0 and s["available_workers"] == 2, s
        # Both workers serve again at once (two streams side by side: one of them is the worker just freed).
        t0 = time.time()
        pair = [Stream(srv, {"messages": msgs("next"), "temperature": 0, "max_tokens": 8}) for _ in range(2)]
        gpus = {next(p.events())[1]["gpu"] for p in pair}
        first = time.time() - t0
        for p in pair:
            list(p.events())
            p.close()
        print(f"     disconnect: worker back in {freed * 1000:.0f} ms; next first tokens in {first * 1000:.0f} ms")
        assert gpus == {0, 1}, gpus
        srv.wait_idle(2.0)
    check("client disconnect mid-stream stops generation and frees the worker, which serves the next request",
          disconnect)

    def disconnect_nonstream():
        def start():
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            payload = json.dumps(dict(long_body(), stream=False)).encode()
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % (srv.port, len(payload)) + payload)
            t0 = time.time()
            while srv.stats()["busy_workers"] == 0 and time.time() - t0 < 5:
                pass  # generating now
            return sock
        freed = cancel_once(srv, start, "non-stream disconnect")
        print(f"     non-stream disconnect: worker back in {freed * 1000:.0f} ms")
    check("client disconnect during a non-streaming OpenAI request stops generation and frees the worker",
          disconnect_nonstream)

    def disconnect_queued():
        # Every slot of both workers busy with long replies, one more request waits; its client leaves. The mock's
        # replies never end. The real model writes a 240-token reply in a few tens of ms, too short a window to be
        # sure the leaving request is still queued, so there `fillers` more long requests queue ahead of it: it
        # cannot start before they all have, and every one of them (and the held ones) runs to its end.
        fillers = 0 if MOCK else 5
        ran = lambda s: s["completed"] + s["cancelled"] + s["failed"]  # noqa: E731
        st0 = srv.stats()["requests"]
        hold = [Stream(srv, long_body(4000 if MOCK else None)) for _ in range(srv.health()["slots_total"])]
        for h in hold:
            next(h.events())
        ahead = [Stream(srv, long_body()) for _ in range(fillers)]
        q = Stream(srv, {"messages": msgs("queued"), "max_tokens": 5})  # headers come back while it waits
        queued = srv.health()["queued"]
        q.close()
        t0 = time.time()
        while srv.stats()["requests"]["dropped_from_queue"] == st0["dropped_from_queue"] and time.time() - t0 < 5:
            time.sleep(0.01)
        left = time.time() - t0
        for h in hold + ahead:
            if not MOCK:
                list(h.events())  # to the end: a stream closed early would count as cancelled, or dropped
            h.close()
        srv.wait_idle(10.0)
        st1 = srv.stats()["requests"]
        print(f"     queued request dropped {left * 1000:.0f} ms after its client left ({fillers} queued ahead)")
        assert 1 <= queued <= fillers + 1, queued
        assert st1["dropped_from_queue"] - st0["dropped_from_queue"] == 1, (queued, st0, st1)
        assert ran(st1) - ran(st0) == len(hold) + fillers, f"only the held and queued-ahead requests ran: {st0} {st1}"
    check("client leaving while queued: dropped from the queue, never runs", disconnect_queued)

    if not MOCK:
        def tokenize_while_decoding():
            # Prompts are tokenized on the connection threads with replica 0's tokenizer while both replicas
            # decode: the counts must match those of the same prompts sent one at a time.
            prompts = [" ".join(f"w{i}x{j}" for j in range(20 + i)) for i in range(6)]  # + 2 streams: no 429
            alone = [openai(srv, {"messages": msgs(p), "max_tokens": 1})["usage"]["prompt_tokens"] for p in prompts]
            busy = [Stream(srv, long_body()) for _ in range(2)]
            got, lock = {}, threading.Lock()

            def one(i):
                for _ in range(4):
                    r = openai(srv, {"messages": msgs(prompts[i]), "max_tokens": 2})["usage"]["prompt_tokens"]
                    with lock:
                        got.setdefault(i, []).append(r)
            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            for b in busy:
                b.close()
            srv.wait_idle(5.0)
            assert all(got[i] == [alone[i]] * 4 for i in range(len(prompts))), (alone, got)
        check("prompts tokenized while the replicas decode match the same prompts tokenized alone",
              tokenize_while_decoding)


def metrics_tests():
    """--metrics: GET /metrics parses with Prometheus' own text parser (prometheus_client), needs the API key, and its
    counters move as requests complete; without the flag there is no /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    key = {"Authorization": "Bearer m3tr1cs"}
    srv = Server("--num-workers", "1", "--metrics", "--api-key", "m3tr1cs")
    try:
        def scrape():
            status, hdrs, data = srv.request("GET", "/metrics", headers=key, raw=True)
            assert status == 200 and hdrs.get("Content-Type", "").startswith("text/plain"), (status, hdrs)
            samples = {}
            for fam in text_string_to_metric_families(data.decode()):
                for smp in fam.samples:
                    samples[(smp.name, tuple(sorted(smp.labels.items())))] = smp.value
            return samples

        def get(samples, name, **labels):
            return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)

        def parses_and_moves():
            status, _, _ = srv.request("GET", "/metrics")
            assert status == 401, status
            before = scrape()
            assert get(before, "nanochat_slots_total") >= 1, before
            for body in ({"messages": msgs("hi"), "max_tokens": 5, "temperature": 0},
                         {"messages": msgs("hello there"), "max_tokens": 7, "temperature": 0}):
                status, _, data = srv.request("POST", "/v1/chat/completions", body, key)
                assert status == 200, (status, data)
            status, _, _ = srv.request("POST", "/v1/chat/completions", {"messages": []}, key)
            assert status == 400, status
            after = scrape()
            path = "/v1/chat/completions"
            ok = lambda s, st: get(s, "nanochat_http_requests_total", path=path, status=st)  # noqa: E731
            assert ok(after, 200) - ok(before, 200) == 2, after
            assert ok(after, 400) - ok(before, 400) == 1, after
            assert get(after, "nanochat_generations_total") - get(before, "nanochat_generations_total") == 2
            gen = get(after, "nanochat_generated_tokens_total") - get(before, "nanochat_generated_tokens_total")
            assert 2 <= gen <= 12, gen
            assert get(after, "nanochat_prompt_tokens_total") > get(before, "nanochat_prompt_tokens_total")
            ttft = "nanochat_time_to_first_token_seconds"
            assert get(after, ttft + "_count") == get(before, ttft + "_count") + 2
            assert get(after, ttft + "_bucket", le="+Inf") == get(after, ttft + "_count")
            assert get(after, "nanochat_queue_depth") == 0 and get(after, "nanochat_slots_busy") == 0, after
        check("/metrics: Prometheus text behind the API key; counters move as requests complete", parses_and_moves)
    finally:
        srv.stop()
    plain = Server("--num-workers", "1")
    try:
        def absent():
            status = plain.request("GET", "/metrics")[0]
            assert status == 404, status
        check("/metrics is 404 without --metrics", absent)
    finally:
        plain.stop()


def aux_tests():
    """A second server, one worker: slow to load (the mock sleeps; the real model's meta file is a named pipe that
    the test writes only after checking the 503s), with an API key and a short read timeout; the mock also throws
    on its 3rd generation."""
    if MOCK:
        srv = Server("--num-workers", "1", "--api-key", "s3cret", "--mock-fail-on", "3,5", "--read-timeout", "2",
                     "--mock-load-ms", "1500", wait_ready=False)
    else:
        base, fifo, meta = make_base_dir("loading", fifo_meta=True)
        srv = Server("--num-workers", "1", "--api-key", "s3cret", "--read-timeout", "2", wait_ready=False,
                     base_dir=base)
    key = {"Authorization": "Bearer s3cret"}
    try:
        def loading():
            for _ in range(3):
                status, _, data = srv.request("POST", "/chat/completions", {"messages": msgs("x")}, key)
                assert status == 503 and data["error"]["type"] == "unavailable_error", (status, data)
                status, _, data = srv.request("POST", "/v1/chat/completions", {"messages": msgs("x")}, key)
                assert status == 503, (status, data)
                assert srv.health()["ready"] is False and srv.health()["available_workers"] == 0
        check("503 while the model loads; /health says not ready", loading)
        if not MOCK:
            with open(fifo, "wb") as f:  # blocks until the loader opens the pipe
                f.write(meta)
        deadline = time.time() + 20
        while not srv.health()["ready"] and time.time() < deadline:
            time.sleep(0.05)
        srv.auth = key

        def auth():
            assert srv.request("GET", "/health")[0] == 200, "health is public"
            assert srv.request("GET", "/")[0] == 200, "the page is public"
            for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                         {"Authorization": "Bearer s3cret2"}, {"Authorization": "Bearer "}):
                for path in ("/chat/completions", "/v1/chat/completions"):
                    status, _, data = srv.request("POST", path, {"messages": msgs("x")}, hdrs)
                    assert status == 401 and data["error"]["type"] == "authentication_error", (hdrs, status)
            assert srv.request("GET", "/stats")[0] == 401
            assert srv.request("GET", "/v1/models")[0] == 401
            assert srv.request("POST", "/chat/completions", {"messages": msgs("x"), "max_tokens": 4}, key,
                               raw=True)[0] == 200
            assert srv.request("GET", "/v1/models", headers=key)[0] == 200
        check("--api-key: 401 without or with a wrong key; /health and / stay public", auth)

        if MOCK:
            def failure():  # generate() calls: #1 was the auth check above, #2 here, #3 and #5 throw
                outs = [stream_text(srv, {"messages": msgs(f"r{i}")})[1] for i in range(3)]
                assert outs[0][-1][0] == b'data: {"done": true}\n\n'
                errs = [ev for _, ev in outs[1] if "error" in ev]
                assert errs and "injected failure" in errs[0]["error"], outs[1]
                assert outs[2][-1][0] == b'data: {"done": true}\n\n'
                status, _, data = srv.request("POST", "/v1/chat/completions", {"messages": msgs("x")}, key)
                assert status == 500 and "injected failure" in data["error"]["message"], (status, data)
                r = srv.request("POST", "/v1/chat/completions", {"messages": msgs("x")}, key)
                assert r[0] == 200, r
                assert srv.stats()["requests"]["failed"] == 2
                srv.wait_idle(1.0)
            check("an exception in generation: SSE error event or 500, server keeps serving, worker released", failure)

        check(f"soak: {SOAK_REQUESTS} sequential requests, RSS and fds stay put", lambda: soak(srv, SOAK_REQUESTS))

        if MOCK:
            def idle_timeout():
                s = socket.create_connection(("127.0.0.1", srv.port))
                s.settimeout(10)
                t0 = time.time()
                data = s.recv(100)
                s.close()
                print(f"     idle connection closed after {time.time() - t0:.1f} s (read timeout 2 s)")
                assert time.time() - t0 < 8 and not data.startswith(b"HTTP/1.1 200"), data
            check("an idle connection is closed at the read timeout", idle_timeout)

            def slowloris():
                socks, stop = [], threading.Event()
                for _ in range(100):
                    s = socket.create_connection(("127.0.0.1", srv.port))
                    socks.append(s)
                request = b"POST /chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % srv.port

                def drip():
                    for i in range(len(request)):
                        if stop.is_set():
                            return
                        for s in socks:
                            try:
                                s.send(request[i:i + 1])
                            except OSError:
                                pass
                        time.sleep(0.5)
                t = threading.Thread(target=drip)
                t.start()
                worst = 0
                for _ in range(10):
                    t0 = time.time()
                    assert srv.health()["status"] == "ok"
                    worst = max(worst, time.time() - t0)
                    time.sleep(0.2)
                stop.set()
                t.join()
                for s in socks:
                    s.close()
                print(f"     100 slow clients: slowest /health {worst * 1000:.0f} ms")
                assert worst < 5
            check("100 slow clients dripping headers: /health still answers", slowloris)
    finally:
        rc = srv.stop()
        check("SIGTERM stops the server cleanly", lambda: (_ for _ in ()).throw(AssertionError(rc)) if rc else None)


def main():
    t0 = time.time()
    if MODE == "soak":  # the benchmark: the soak alone, on one worker
        srv = Server("--num-workers", "1")
        try:
            check(f"soak: {SOAK_REQUESTS} sequential requests, RSS and fds stay put", lambda: soak(srv, SOAK_REQUESTS))
        finally:
            srv.stop()
    else:
        # The mock runs the suite twice: workers of one slot (one request at a time, each on its worker's thread) and
        # of four (continuous batching: the requests call the model from their own threads at once).
        for batch in (["--max-batch", "1"], ["--max-batch", "4"]) if MOCK else ([],):
            extra = ["--mock-delay-ms", "2", "--mock-sequence-len", "40000", *batch] if MOCK else []
            srv = Server("--num-workers", "2", "--max-queue", "8", *extra)
            if batch:
                print(f"--- 2 workers {' '.join(batch)}", flush=True)
            try:
                endpoint_tests(srv)
                guard_tests(srv)
                bad_input_tests(srv)
                streaming_tests(srv)
                openai_tests(srv)
                load_tests(srv)
                check("/health available_workers == num_workers at the end", lambda: srv.wait_idle(1.0))
                check("server still alive",
                      lambda: srv.proc.poll() is None or (_ for _ in ()).throw(AssertionError("died")))

                def sigterm_while_streaming():
                    s = Stream(srv, long_body())
                    next(s.events())
                    t0 = time.time()
                    rc = srv.stop()
                    print(f"     SIGTERM with a stream running: exit {rc} after {(time.time() - t0) * 1000:.0f} ms")
                    assert rc == 0, rc
                    s.close()
                check("SIGTERM while a reply streams: the server cancels it and exits 0", sigterm_while_streaming)
            finally:
                if srv.proc.poll() is None:
                    srv.stop()
        if MOCK:
            one = Server("--num-workers", "1", "--max-queue", "8", "--mock-delay-ms", "2", "--max-batch", "1")
            try:
                parallel_matrix(one, 1)
                burst(one, workers=1, queue=8)
            finally:
                one.stop()
            batching_tests()
        startup_tests()
        aux_tests()
        metrics_tests()
        if not MOCK:
            prefix_cache_tests()
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"({time.time() - t0:.1f} s)")
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
