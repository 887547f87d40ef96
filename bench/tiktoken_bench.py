"""tiktoken's (pip "tiktoken", its Rust core as a native extension) encode speed on the same corpus and the same
document chunking as bench_tokenizer.cpp, for bench/RESULTS.md. Nothing is downloaded: the ranks come from
tests/fixtures/tokenizer/cl100k_base.tiktoken.

    bash bench/make_tok_corpus.sh /tmp/tokbench/corpus.txt 12
    .venv/bin/python bench/tiktoken_bench.py /tmp/tokbench/corpus.txt [--repeats 5] [--pathological 1000000]

Encodings:
  cl100k_base  tiktoken's own cl100k_base (its pattern and specials, as tiktoken_ext.openai_public defines them),
               with the ranks read from the fixture file. bench_tokenizer.cpp encodes with these ranks too.
  nanochat32k  the tokenizer bench/make_cl100k_tokenizer.py builds: the first 32759 cl100k ranks, nanochat's split
               pattern (tests/fixtures/tokenizer/patterns.json), nanochat's 9 special tokens.
Modes: 1 thread (encode_ordinary per document) and all threads (encode_ordinary_batch(docs,
num_threads=os.cpu_count()), --threads to change). Each is run once to warm up, then --repeats times; printed are
the median wall time and the median process CPU time (all threads), as MB/s of corpus bytes (10^6 bytes), and
the token count. --pathological N also times one N-byte piece of one letter ("a" * N) and of one emoji
(U+1F600), each in a child process killed after --timeout seconds (tiktoken's merge scan is quadratic in a
piece's length).
"""
import argparse, base64, json, os, statistics, subprocess, sys, time

import tiktoken
import tiktoken.load
import tiktoken_ext.openai_public as openai_public

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "tokenizer")
CL100K_FILE = os.path.join(FIXTURES, "cl100k_base.tiktoken")
NANOCHAT_SPECIALS = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
                     "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]


def cl100k_base(path=CL100K_FILE):
    """tiktoken's cl100k_base constructor, its download replaced by the local rank file (hash still checked)."""
    real = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda url, expected_hash=None: tiktoken.load.load_tiktoken_bpe(path, expected_hash)
    try:
        return tiktoken.Encoding(**openai_public.cl100k_base())
    finally:
        openai_public.load_tiktoken_bpe = real


def nanochat32k(vocab=32768, path=CL100K_FILE):
    n_ranks = vocab - len(NANOCHAT_SPECIALS)
    ranks = {}
    with open(path) as f:
        for line in f:
            tok, rank = line.split()
            if int(rank) < n_ranks:
                ranks[base64.b64decode(tok)] = int(rank)
    pattern = json.load(open(os.path.join(FIXTURES, "patterns.json")))["nanochat"]
    return tiktoken.Encoding(name="nanochat32k", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens={s: n_ranks + i for i, s in enumerate(NANOCHAT_SPECIALS)})


def chunk(data: bytes):
    """Documents: cut at the first newline after every 4096 bytes (bench_tokenizer.cpp's rule)."""
    docs, start = [], 0
    while start < len(data):
        end = min(len(data), start + 4096)
        nl = data.find(b"\n", end)
        end = len(data) if nl < 0 else nl + 1
        docs.append(data[start:end].decode("utf-8"))
        start = end
    return docs


def timed(f, repeats):
    """Runs f once to warm up, then `repeats` times: (median wall s, median CPU s, f's result)."""
    out = f()
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = f()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    return statistics.median(walls), statistics.median(cpus), out


def one_piece(name, kind, nbytes):
    """Child process: encode one piece of nbytes; prints the seconds (wall, CPU) and tokens."""
    enc = cl100k_base() if name == "cl100k_base" else nanochat32k()
    text = "a" * nbytes if kind == "letter" else "\U0001F600" * (nbytes // 4)
    w0, c0 = time.perf_counter(), time.process_time()
    n = len(enc.encode_ordinary(text))
    print(json.dumps([time.perf_counter() - w0, time.process_time() - c0, n]))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--one-piece":
        return one_piece(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", help="the text corpus (bench/make_tok_corpus.sh)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for encode_ordinary_batch")
    ap.add_argument("--encodings", default="cl100k_base,nanochat32k")
    ap.add_argument("--pathological", type=int, default=0, metavar="BYTES",
                    help="also time one piece of BYTES bytes of one letter and of one emoji (0: skip)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds for each pathological case")
    args = ap.parse_args()

    data = open(args.corpus, "rb").read()
    docs = chunk(data)
    mb = len(data) / 1e6
    print(f"tiktoken {tiktoken.__version__} | corpus {args.corpus}: {len(data)} bytes, {len(docs)} documents | "
          f"{os.cpu_count()} CPUs | load average {' '.join(open('/proc/loadavg').read().split()[:3])} | "
          f"median of {args.repeats} after a warm-up")
    for name in args.encodings.split(","):
        enc = cl100k_base() if name == "cl100k_base" else nanochat32k() if name == "nanochat32k" else None
        if enc is None:
            sys.exit(f"unknown encoding {name} (known: cl100k_base, nanochat32k)")
        runs = [("1 thread, encode_ordinary per doc", lambda: sum(len(enc.encode_ordinary(d)) for d in docs)),
                (f"{args.threads} threads, encode_ordinary_batch",
                 lambda: sum(len(t) for t in enc.encode_ordinary_batch(docs, num_threads=args.threads)))]
        for label, f in runs:
            wall, cpu, tokens = timed(f, args.repeats)
            print(f"{name}, {label}: {mb:.2f} MB, wall {wall:.3f} s = {mb / wall:.2f} MB/s, "
                  f"cpu {cpu:.3f} s = {mb / cpu:.2f} MB/s ({tokens} tokens, {len(data) / tokens:.4f} bytes/token)")
        if args.pathological:
            for kind in ("letter", "emoji"):
                nbytes = args.pathological if kind == "letter" else args.pathological // 4 * 4
                what = f"{name}, one piece of {nbytes} bytes of {'one letter' if kind == 'letter' else 'one emoji'}"
                try:
                    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--one-piece", name, kind,
                                        str(nbytes)], capture_output=True, text=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    print(f"{what}: did not finish in {args.timeout:g} s")
                    continue
                if r.returncode != 0:
                    print(f"{what}: FAILED ({(r.stderr.strip().splitlines() or ['exit %d' % r.returncode])[-1]})")
                    continue
                wall, cpu, n = json.loads(r.stdout)
                print(f"{what}: wall {wall:.3f} s, cpu {cpu:.3f} s ({n} tokens)")


if __name__ == "__main__":
    main()
