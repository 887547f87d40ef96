#!/usr/bin/env python3
"""chat_web_http_prefix: the prefix cache over HTTP (real model only) — chats of several turns, two at once sharing a
system prompt, answered by a server with the cache and one without (--prefix-cache-mb 0) must get the same replies,
greedy and seeded; the cached server's /stats and /metrics count the hits and the prompt tokens they saved. Not a
test program itself; tests/http/chat_web_http_test.py runs it.
"""
import threading

from chat_web_http_lib import *  # noqa: F401,F403 - Server, check, openai


def prefix_cache_tests():
    from prometheus_client.parser import text_string_to_metric_families

    cached = Server("--num-workers", "1", "--metrics")
    plain = Server("--num-workers", "1", "--prefix-cache-mb", "0")
    try:
        def same_replies_and_counted():
            system = {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."}
            chats = [[system, {"role": "user", "content": "What is the capital of France?"}],
                     [system, {"role": "user", "content": "Name a large animal."}]]
            sampling = [{"temperature": 0}, {"temperature": 0.9, "top_k": 50, "seed": 7}]
            follow_ups = [["And of Spain?", "A smaller one?"], ["Why?", "Another?"]]
            for turn in range(3):
                got = {}

                def ask(srv, i):
                    body = {"messages": chats[i], "max_tokens": 24, **sampling[i]}
                    got[(srv.port, i)] = openai(srv, body)["choices"][0]["message"]["content"]

                threads = [threading.Thread(target=ask, args=(s, i)) for s in (cached, plain) for i in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                for i in range(2):
                    a, b = got[(cached.port, i)], got[(plain.port, i)]
                    assert a == b, f"turn {turn}, conversation {i}: {a!r} with the cache, {b!r} without"
                    if turn < 2:
                        chats[i] += [{"role": "assistant", "content": a or "."},
                                     {"role": "user", "content": follow_ups[turn][i]}]
            pc = cached.stats()["prefix_cache"]
            assert pc["lookups"] == 6 and pc["hits"] >= 4 and pc["tokens_saved"] > 40, pc
            assert pc["entries"] > 0 and 0 < pc["bytes"] <= pc["budget_bytes"] == 512 << 20, pc
            off = plain.stats()["prefix_cache"]
            assert off["lookups"] == 0 and off["hits"] == 0 and off["budget_bytes"] == 0, off
            status, _, text = cached.request("GET", "/metrics", raw=True)
            assert status == 200, status
            samples = {s.name: s.value for fam in text_string_to_metric_families(text.decode()) for s in fam.samples}
            assert samples["nanochat_prefix_cache_hits_total"] == pc["hits"], samples
            assert samples["nanochat_prefix_cache_tokens_saved_total"] == pc["tokens_saved"], samples
            assert samples["nanochat_prefix_cache_lookups_total"] == 6, samples
        check("prefix cache: 3 turns of 2 chats sharing a system prompt, greedy and seeded, the same replies with "
              "and without it; /stats and /metrics count its hits", same_replies_and_counted)
    finally:
        cached.stop()
        plain.stop()
