#!/usr/bin/env python3
"""chat_web_http_load: the load tests of tests/http/chat_web_http_test.py — llama.cpp's matrix of concurrent streams,
a burst of 32 streams against the bounded queue, and (mock only) continuous batching: workers of several slots
serving several requests at once. Not a test program itself; chat_web_http_test.py runs these.
"""
import threading
import time

from chat_web_http_lib import *  # noqa: F401,F403 - Server, Stream, check, msgs, piece, long_body, MOCK


def parallel_matrix(srv, workers):
    """llama.cpp's matrix: n concurrent streams all get 200, and min(workers, n) workers are busy meanwhile (a worker
    of several slots takes several; requests spread over the workers first) with min(slots, n) slots busy."""
    slots = srv.health()["slots_total"]
    for n in (1, 3, 4, 6):
        def case(n=n):
            streams = [Stream(srv, long_body(), headers=srv.auth) for _ in range(n)]
            assert all(s.status == 200 for s in streams), [s.status for s in streams]
            busy, t0 = None, time.time()
            while busy != (min(workers, n), min(slots, n)) and time.time() - t0 < 10:
                st = srv.stats()
                busy = (st["busy_workers"], st["slots_total"] - st["slots_free"])
            first = [next(s.events())[1] for s in streams[:min(slots, n)]]  # the running ones are streaming
            for s in streams:
                s.close()
            assert busy == (min(workers, n), min(slots, n)), busy
            assert all("token" in ev for ev in first), first
            srv.wait_idle(3.0)
        check(f"{n} concurrent streams on {workers} worker(s) of {slots // workers} slot(s): all 200, "
              f"{min(workers, n)} workers and {min(slots, n)} slots busy", case)


def burst(srv, workers, queue):
    """32 streams at once on a full pool: each is served or gets a prompt 429 (TGI's bounded queue)."""
    slots = srv.health()["slots_total"]

    def case():
        results, lock = [], threading.Lock()
        busy_seen = []
        max_tokens = 60 if MOCK else 240
        # Connect all 32 first, then send every request at once, so they really arrive together.
        streams = [Stream(srv, long_body(max_tokens), send=False) for _ in range(32)]
        t_sent = {}
        for s in streams:
            s.send()
            t_sent[s] = time.time()

        def one(s):
            try:
                s.read_head()
                if s.status == 200:
                    events = list(s.events())
                    pieces = [piece(ev) for _, ev in events[:-1]]
                    text = "".join(pieces)
                    fine = events[-1][0] == b'data: {"done": true}\n\n' and all(pieces) and len(pieces) <= max_tokens
                    if MOCK:
                        fine = fine and len(text.encode()) <= max_tokens
                    outcome = ("ok", fine)
                else:
                    outcome = (s.status, time.time() - t_sent[s])
                s.close()
            except Exception as e:  # noqa: BLE001
                outcome = ("error", repr(e))
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=one, args=(s,)) for s in streams]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            busy_seen.append(srv.stats()["busy_workers"])
        for t in threads:
            t.join(60)
        served = [r for r in results if r[0] == "ok"]
        rejected = [r for r in results if r[0] == 429]
        slowest_429 = max((r[1] for r in rejected), default=0)
        print(f"     32 streams on {workers} worker(s), {slots} slots, queue {queue}: {len(served)} served, "
              f"{len(rejected)} got 429 "
              f"(slowest 429 after {slowest_429 * 1000:.0f} ms), most busy_workers seen {max(busy_seen)}")
        assert len(served) + len(rejected) == 32, results
        assert len(served) >= slots + queue and rejected, results
        assert all(done for _, done in served), "every served stream ran to its end, then done"
        assert max(busy_seen) == workers, busy_seen
        assert slowest_429 < 5, "429 must come at once, not after waiting"
        srv.wait_idle(5.0)
    check(f"32 concurrent streams, {workers} worker(s) of {slots // workers} slot(s), max-queue {queue}: each served "
          "or a prompt 429", case)



def batching_tests():
    """One worker of 4 slots (--max-batch 4) and a queue of 1, on the mock at 5 ms a token: 4 requests run together,
    a 5th waits in the queue, a 6th gets 429, and a client leaving gives its slot to the one queued. (The mock
    throws if it is ever given more concurrent generate() calls than its max_batch, which would count as failed.)"""
    srv = Server("--num-workers", "1", "--max-batch", "4", "--max-queue", "1", "--mock-delay-ms", "5",
                 "--mock-sequence-len", "40000")
    print("--- 1 worker --max-batch 4 --max-queue 1", flush=True)
    try:
        def overlap():
            st0 = srv.stats()
            assert st0["slots_total"] == st0["slots_free"] == 4 and st0["workers"][0]["slots"] == 4, st0
            body = {"messages": msgs("forever"), "max_tokens": 800}  # about 4 s each
            runs = [Stream(srv, body) for _ in range(4)]
            events = [s.events() for s in runs]
            firsts = [next(e)[1] for e in events]  # every one has had its first token...
            st = srv.stats()  # ...and none has finished yet
            assert all("token" in f for f in firsts), firsts
            assert st["requests"]["completed"] == st0["requests"]["completed"], \
                f"a reply ended before the 4th one began: the requests did not run together {st}"
            assert st["slots_free"] == 0 and st["queued"] == 0 and st["busy_workers"] == 1, st
            assert st["workers"][0]["busy_slots"] == 4 and st["available_workers"] == 0, st
            fifth = Stream(srv, {"messages": msgs("fifth"), "temperature": 0})
            assert fifth.status == 200, fifth.status
            h = srv.health()
            assert h["queued"] == 1 and h["slots_free"] == 0 and h["slots_total"] == 4, h
            for first, e in zip(firsts, events):
                rest = list(e)
                assert rest[-1][0] == b'data: {"done": true}\n\n', rest[-1]
                text = first["token"] + "".join(piece(ev) for _, ev in rest[:-1])
                assert text.startswith(LLAMA + " llama " + LLAMA) and len(text.encode()) <= 800, text
            for s in runs:
                s.close()
            events5 = list(fifth.events())
            fifth.close()
            assert events5[-1][0] == b'data: {"done": true}\n\n', events5[-1]
            assert "".join(piece(ev) for _, ev in events5[:-1]) == HELLO + "fifth", events5
            srv.wait_idle(2.0)
            r0, r1 = st0["requests"], srv.stats()["requests"]
            assert r1["completed"] - r0["completed"] == 5 and r1["failed"] == r0["failed"], (r0, r1)
            assert r1["cancelled"] == r0["cancelled"] and r1["dropped_from_queue"] == r0["dropped_from_queue"], r1
        check("4 streams on one worker of 4 slots all start before any ends; a 5th waits in the queue, then runs",
              overlap)

        def full_then_429():
            r0 = srv.stats()["requests"]
            hold = []
            for i in range(4):  # each takes a free slot at once, so none counts against the queue of 1
                s = Stream(srv, {"messages": msgs("forever"), "max_tokens": 4000})
                assert s.status == 200, (i, s.status)
                hold.append(s)
                next(s.events())
            queued = Stream(srv, {"messages": msgs("queued"), "temperature": 0})
            assert queued.status == 200, queued.status
            h = srv.health()
            assert h["queued"] == 1 and h["slots_free"] == 0, h
            over = Stream(srv, {"messages": msgs("over")})
            over.close()
            assert over.status == 429, over.status
            # A client leaving mid-stream frees its slot: the queued request takes it and runs to its end.
            hold[1].close()
            evs = list(queued.events())
            queued.close()
            assert "".join(piece(ev) or "" for _, ev in evs) == HELLO + "queued" and "done" in evs[-1][1], evs
            st = srv.stats()
            assert st["requests"]["cancelled"] - r0["cancelled"] == 1, st
            assert st["slots_free"] == 1 and st["workers"][0]["busy_slots"] == 3 and st["queued"] == 0, st
            assert st["requests"]["rejected_busy"] - r0["rejected_busy"] == 1, st
            for s in hold:
                s.close()
            srv.wait_idle(2.0)
            r1 = srv.stats()["requests"]
            assert r1["cancelled"] - r0["cancelled"] == 4 and r1["completed"] - r0["completed"] == 1, (r0, r1)
            assert r1["dropped_from_queue"] == r0["dropped_from_queue"] and r1["failed"] == r0["failed"], (r0, r1)
        check("429 only once all 4 slots are busy and the queue of 1 is full; a client leaving mid-stream gives its "
              "slot to the queued request", full_then_429)
        burst(srv, workers=1, queue=1)
    finally:
        srv.stop()
