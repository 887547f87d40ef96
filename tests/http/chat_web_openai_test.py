#!/usr/bin/env python3
"""chat_web_openai_test: `nanochat chat_web` itself, on the tiny d2 fixture model (tests/fixtures/python_basedir, on
the CPU), driven with the official `openai` Python client (requirements.txt): /v1/chat/completions and
/v1/completions, streaming and not, stop, n, seed, logprobs/top_logprobs, max_completion_tokens, and the 400s the
client raises as openai.BadRequestError. Two servers: --max-batch 8 (the batch engine) and --max-batch 1 (the plain
engine), whose log-probabilities must agree.

    python3 tests/http/chat_web_openai_test.py real <nanochat> <fixtures dir>   (tests/http/e2e_chat_web_openai.sh)
"""
import math
import shutil
import sys
import time

from chat_web_http_lib import *  # noqa: F401,F403 - the command line, Server, check, tok_count

import openai  # after the lib, whose helper of the same name it replaces here

KEY = "test-key"
PROMPT = [{"role": "user", "content": "Tell me a story about a cat."}]


def client(srv):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{srv.port}/v1", api_key=KEY, max_retries=0, timeout=60)


def chat(c, **kw):
    extra = {"top_k": kw.pop("top_k")} if "top_k" in kw else None  # nanochat's own option, beside OpenAI's
    return c.chat.completions.create(model="nanochat", messages=kw.pop("messages", PROMPT), extra_body=extra, **kw)


def stream_choices(chunks):
    """Each choice's text, logprobs entries and finish_reasons from a stream of chunks; the usage chunk."""
    out, usage = {}, None
    for ch in chunks:
        if ch.usage:
            usage = ch.usage
        for c in ch.choices:
            o = out.setdefault(c.index, {"text": "", "logprobs": [], "finish": []})
            text = c.text if hasattr(c, "text") else (c.delta.content or "")
            o["text"] += text or ""
            lp = getattr(c, "logprobs", None)
            if lp is not None:
                o["logprobs"] += (lp.content or []) if hasattr(c, "delta") else [lp]
            if c.finish_reason:
                o["finish"].append(c.finish_reason)
    return out, usage


def chat_tests(srv, c):
    def nonstream_and_stream():
        r = chat(c, temperature=0, max_tokens=24)
        assert r.object == "chat.completion" and r.model == "nanochat" and len(r.choices) == 1, r
        text = r.choices[0].message.content
        assert r.choices[0].finish_reason in ("stop", "length") and r.usage.completion_tokens <= 24, r
        assert r.usage.prompt_tokens == 1 + 1 + tok_count(PROMPT[0]["content"]) + 1 + 1, r.usage
        got, usage = stream_choices(chat(c, temperature=0, max_tokens=24, stream=True,
                                         stream_options={"include_usage": True}))
        assert got[0]["text"] == text and got[0]["finish"] == [r.choices[0].finish_reason], (got, text)
        assert usage.completion_tokens == r.usage.completion_tokens, usage
    check("chat: non-stream and stream give the same greedy reply and usage", nonstream_and_stream)

    def seed():
        same = {chat(c, temperature=1.0, seed=3, max_tokens=32).choices[0].message.content for _ in range(2)}
        assert len(same) == 1, same
        streamed, _ = stream_choices(chat(c, temperature=1.0, seed=3, max_tokens=32, stream=True))
        assert streamed[0]["text"] in same, (streamed, same)
        differ = {chat(c, temperature=1.0, seed=s, max_tokens=32).choices[0].message.content for s in range(5)}
        assert len(differ) >= 4, differ  # five seeds of 32 sampled tokens: collisions would be a broken seed
    check("seed: the same seed repeats a reply at temperature 1 (stream and not); different seeds differ", seed)

    def stop():
        r = chat(c, temperature=0, max_tokens=40, logprobs=True)
        full, toks = r.choices[0].message.content, [e.token for e in r.choices[0].logprobs.content]
        # A stop string across a token boundary, from the middle of the reply: its first character ends one token,
        # the rest begins the next, so a stream must hold that character back.
        k = next(i for i in range(len(toks) // 2, len(toks) - 1)
                 if toks[i] and toks[i + 1] and "\ufffd" not in toks[i] + toks[i + 1])
        s = toks[k][-1] + toks[k + 1][:2]
        want = full[:full.index(s)]
        r = chat(c, temperature=0, max_tokens=40, stop=[s, "\u00a7never\u00a7"])
        assert r.choices[0].message.content == want and r.choices[0].finish_reason == "stop", (r, want)
        got, _ = stream_choices(chat(c, temperature=0, max_tokens=40, stop=s, stream=True))
        assert got[0]["text"] == want and got[0]["finish"] == ["stop"], (got, want)
        base = chat(c, temperature=0, max_tokens=40).usage.completion_tokens
        assert r.usage.completion_tokens < base, (r.usage, base)
    check("stop: the reply ends before the stop string, finish_reason stop, streamed the same", stop)

    def n():
        r = chat(c, temperature=1.0, seed=20, n=3, max_tokens=16)
        alone = [chat(c, temperature=1.0, seed=20 + i, max_tokens=16).choices[0].message.content for i in range(3)]
        assert [ch.index for ch in r.choices] == [0, 1, 2], r
        assert [ch.message.content for ch in r.choices] == alone, ([ch.message.content for ch in r.choices], alone)
        got, usage = stream_choices(chat(c, temperature=1.0, seed=20, n=3, max_tokens=16, stream=True,
                                         stream_options={"include_usage": True}))
        assert [got[i]["text"] for i in range(3)] == alone and all(len(got[i]["finish"]) == 1 for i in range(3)), got
        assert usage.completion_tokens == r.usage.completion_tokens, (usage, r.usage)
    check("n=3: choice i is the reply to seed + i, stream and not, each with its own finish_reason", n)

    def max_completion_tokens():
        r = chat(c, temperature=0, max_completion_tokens=5, messages=[{"role": "user", "content": "forever"}])
        assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length", r
    check("max_completion_tokens caps the reply", max_completion_tokens)


def logprob_tests(srv, c):
    """Returns the greedy reply's logprobs entries, to compare the two engines."""
    entries = []

    def logprobs():
        r = chat(c, temperature=0, max_tokens=24, logprobs=True, top_logprobs=3)
        content = r.choices[0].logprobs.content
        text = r.choices[0].message.content
        assert len(content) == r.usage.completion_tokens or r.choices[0].finish_reason == "stop", (content, r.usage)
        assert b"".join(bytes(e.bytes) for e in content).decode("utf-8", "replace").startswith(text), content
        for e in content:
            assert len(e.top_logprobs) == 3 and e.logprob <= 0, e
            tops = [t.logprob for t in e.top_logprobs]
            assert tops == sorted(tops, reverse=True) and sum(math.exp(t) for t in tops) <= 1 + 1e-4, e
            # greedy: the chosen token is the most likely one
            assert e.top_logprobs[0].bytes == e.bytes and abs(e.top_logprobs[0].logprob - e.logprob) < 1e-5, e
        got, _ = stream_choices(chat(c, temperature=0, max_tokens=24, logprobs=True, top_logprobs=3, stream=True))
        assert [(e.token, e.logprob) for e in got[0]["logprobs"]] == [(e.token, e.logprob) for e in content], got
        sampled = chat(c, temperature=1.0, seed=1, max_tokens=24, logprobs=True).choices[0].logprobs.content
        assert all(e.top_logprobs == [] and e.logprob <= 0 for e in sampled), sampled
        assert any(e.logprob < -1e-3 for e in sampled), sampled  # sampled at temperature 1: not all certain
        for e in chat(c, temperature=1.0, seed=2, max_tokens=24, logprobs=True, top_logprobs=5).choices[0].logprobs.content:
            for t in e.top_logprobs:  # the sampled token, when among the alternatives, has their log-probability
                if t.bytes == e.bytes:
                    assert abs(t.logprob - e.logprob) < 1e-5, e
        # The first token's distribution is the model's, whatever the request samples with (raw logits: before
        # temperature and top-k).
        first = [[(t.token, round(t.logprob, 4)) for t in chat(c, temperature=temp, top_k=k, seed=4, max_tokens=1,
                                                             logprobs=True, top_logprobs=5).choices[0].logprobs
                  .content[0].top_logprobs] for temp, k in ((0, 0), (0.5, 2), (1.5, 1), (2.0, 0))]
        assert all(f == first[0] for f in first), first
        assert chat(c, temperature=0, max_tokens=4).choices[0].logprobs is None
        entries.extend(content)
    check("logprobs/top_logprobs: per token, sorted alternatives, greedy picks the top one, streamed the same", logprobs)
    return entries


def completion_tests(srv, c):
    prompt = "Once upon a time"

    def plain():
        r = c.completions.create(model="nanochat", prompt=prompt, max_tokens=16, temperature=0)
        assert r.object == "text_completion" and len(r.choices) == 1 and isinstance(r.choices[0].text, str), r
        assert r.usage.prompt_tokens == 1 + tok_count(prompt), r.usage  # <|bos|> + the text, no chat template
        assert r.choices[0].finish_reason in ("stop", "length"), r
        got, _ = stream_choices(c.completions.create(model="nanochat", prompt=[prompt], max_tokens=16, temperature=0,
                                                     stream=True))
        assert got[0]["text"] == r.choices[0].text and got[0]["finish"] == [r.choices[0].finish_reason], got
    check("completions: plain prompt, text_completion, stream == non-stream", plain)

    def options():
        r = c.completions.create(model="nanochat", prompt=prompt, max_tokens=12, temperature=1.0, seed=9, n=2,
                                 logprobs=2)
        alone = [c.completions.create(model="nanochat", prompt=prompt, max_tokens=12, temperature=1.0,
                                      seed=9 + i).choices[0].text for i in range(2)]
        assert [ch.text for ch in r.choices] == alone, (r, alone)
        lp = r.choices[0].logprobs
        assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset), lp
        assert all(len(t) <= 2 for t in lp.top_logprobs) and lp.text_offset == sorted(lp.text_offset), lp
        assert "".join(lp.tokens).startswith(r.choices[0].text) or "\ufffd" in "".join(lp.tokens), lp
        full = r.choices[0].text
        if len(full) > 6:
            s = full[3:6]
            cut = c.completions.create(model="nanochat", prompt=prompt, max_tokens=12, temperature=1.0, seed=9,
                                       stop=s)
            assert cut.choices[0].text == full[:full.index(s)] and cut.choices[0].finish_reason == "stop", (cut, s)
    check("completions: n, seed, legacy logprobs, stop", options)


def bad_request_tests(c):
    cases = [
        ("n=9", lambda: chat(c, n=9), "'n'"),
        ("5 stop strings", lambda: chat(c, stop=["a", "b", "c", "d", "e"]), "'stop'"),
        ("top_logprobs 21", lambda: chat(c, logprobs=True, top_logprobs=21), "'top_logprobs'"),
        ("top_logprobs without logprobs", lambda: chat(c, top_logprobs=2), "'top_logprobs'"),
        ("max_tokens != max_completion_tokens", lambda: chat(c, max_tokens=5, max_completion_tokens=6),
         "'max_completion_tokens'"),
        ("tools", lambda: chat(c, tools=[{"type": "function", "function": {"name": "f"}}]), "'tools'"),
        ("completions logprobs 6", lambda: c.completions.create(model="m", prompt="a", logprobs=6), "'logprobs'"),
        ("completions echo", lambda: c.completions.create(model="m", prompt="a", echo=True), "'echo'"),
        ("completions two prompts", lambda: c.completions.create(model="m", prompt=["a", "b"]), "'prompt'"),
        ("completions suffix", lambda: c.completions.create(model="m", prompt="a", suffix="z"), "'suffix'"),
    ]
    for name, call, field in cases:
        def case(call=call, field=field):
            try:
                call()
            except openai.BadRequestError as e:
                assert e.status_code == 400 and field in e.message, (e.status_code, e.message)
                return
            raise AssertionError("no 400")
        check(f"openai.BadRequestError: {name}", case)


def main():
    t0 = time.time()
    entries = {}
    for batch in ("8", "1"):
        srv = Server("--num-workers", "1", "--max-batch", batch, "--api-key", KEY)
        print(f"--- chat_web --max-batch {batch}", flush=True)
        try:
            c = client(srv)
            chat_tests(srv, c)
            entries[batch] = logprob_tests(srv, c)
            completion_tests(srv, c)
            if batch == "8":
                bad_request_tests(c)
        finally:
            srv.stop()

    def engines_agree():
        a, b = entries["8"], entries["1"]
        assert a and len(a) == len(b), (len(a), len(b))
        for x, y in zip(a, b):
            assert x.token == y.token and abs(x.logprob - y.logprob) < 1e-3, (x, y)
            assert [t.token for t in x.top_logprobs] == [t.token for t in y.top_logprobs], (x, y)
    check("logprobs: the batch engine (--max-batch 8) and the plain engine (--max-batch 1) agree", engines_agree)
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"({time.time() - t0:.1f} s)")
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
