"""rustbpe (the Rust BPE trainer that the Python nanochat trains its tokenizer with) against our `nanochat tok_train`:
training time of each, and whether the two learn the very same merges.

    python bench/rustbpe_compare.py train --vocab-size 4096 --out rust.tiktoken INPUT...
    python bench/rustbpe_compare.py compare rust.tiktoken $NANOCHAT_BASE_DIR/tokenizer/tokenizer.pkl
    python bench/rustbpe_compare.py both --nanochat build/nanochat --vocab-size 4096 INPUT...

train:   trains rustbpe on the INPUT files with nanochat's split pattern, read into documents exactly as tok_train
         reads its --input files (*.jsonl: one document per line, field "text"; any other file: one document, its
         bytes decoded as UTF-8 with U+FFFD for invalid bytes), each cropped to --doc-cap characters, stopping after
         the document that takes the total past --max-chars. --vocab-size counts nanochat's 9 special tokens, as
         tok_train's does, so rustbpe learns vocab_size - 9 - 256 merges. Writes the mergeable ranks as a .tiktoken
         file (one "<base64 token bytes> <rank>" line per rank, in rank order) and prints the training time.
compare: A and B are each a tokenizer.pkl (ours or nanochat's; read with a stand-in for tiktoken's Encoding, so
         tiktoken is not needed) or a .tiktoken ranks file. Prints whether the ranks are identical and, if not, the
         first rank where they differ. Exit status 0 when identical, 1 when not.
both:    runs `NANOCHAT tok_train --input INPUT... --vocab-size N --output-dir TMP` (NANOCHAT_BASE_DIR set to a
         temporary directory, so the report it writes goes there) and the rustbpe training above, then compares.
         --keep DIR keeps ours (DIR/tokenizer.pkl), rustbpe's (DIR/rustbpe.tiktoken) and tok_train's log.

Training times: rustbpe's is the wall time of train_from_iterator, which includes reading the inputs (the iterator
is lazy); ours is the "Training time" tok_train prints, which also includes reading its inputs, plus the wall time
of the whole tok_train process (loading the program, saving files) for reference.
Requires: rustbpe (pip; bash scripts/setup.sh puts it in .venv) for train and both.
"""
import argparse, base64, json, os, pickle, re, shutil, subprocess, sys, tempfile, time

# nanochat's split pattern (tests/fixtures/tokenizer/patterns.json "nanochat"; GPT-4's with \p{N}{1,2}).
SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
NUM_SPECIAL_TOKENS = 9


def iter_documents(paths, doc_cap, max_chars):
    """Documents as tok_train reads --input files, cropped and capped the same way."""
    nchars = 0
    for path in paths:
        if path.endswith(".parquet"):
            sys.exit(f"{path}: parquet inputs are not supported here (give .jsonl or text files)")
        if path.endswith(".jsonl"):
            with open(path, "rb") as f:
                raw_docs = (json.loads(line)["text"] for line in f if line not in (b"\n", b"\r\n", b"\r", b""))
                for doc in raw_docs:
                    doc = doc[:doc_cap]
                    nchars += len(doc)
                    yield doc
                    if nchars > max_chars:
                        return
        else:
            with open(path, "rb") as f:
                doc = f.read().decode("utf-8", errors="replace")[:doc_cap]
            nchars += len(doc)
            yield doc
            if nchars > max_chars:
                return


def train_rustbpe(inputs, vocab_size, doc_cap, max_chars):
    """Returns (ranks as a list of token bytes in rank order, training seconds, documents, characters)."""
    import rustbpe
    if vocab_size - NUM_SPECIAL_TOKENS < 256:
        sys.exit(f"--vocab-size {vocab_size} is too small (at least {256 + NUM_SPECIAL_TOKENS})")
    stats = {"docs": 0, "chars": 0}

    def counted():
        for doc in iter_documents(inputs, doc_cap, max_chars):
            stats["docs"] += 1
            stats["chars"] += len(doc)
            yield doc

    tok = rustbpe.Tokenizer()
    t0 = time.perf_counter()
    tok.train_from_iterator(counted(), vocab_size - NUM_SPECIAL_TOKENS, pattern=SPLIT_PATTERN)
    secs = time.perf_counter() - t0
    if tok.get_pattern() != SPLIT_PATTERN:
        sys.exit("rustbpe reports a different pattern than the one it was given")
    ranks = {bytes(k): v for k, v in tok.get_mergeable_ranks()}
    return ranks_to_list(ranks, "rustbpe"), secs, stats["docs"], stats["chars"]


def ranks_to_list(ranks, what):
    """{bytes: rank} with ranks 0..n-1 -> [bytes] indexed by rank."""
    out = [None] * len(ranks)
    for b, r in ranks.items():
        if not 0 <= r < len(out) or out[r] is not None:
            sys.exit(f"{what}: ranks are not a permutation of 0..{len(out) - 1} (rank {r})")
        out[r] = b
    return out


def write_tiktoken(path, tokens):
    with open(path, "w") as f:
        for r, b in enumerate(tokens):
            f.write(f"{base64.b64encode(b).decode()} {r}\n")


class _Encoding:
    """Stand-in for tiktoken.core.Encoding: unpickling gives its state dict (name, pat_str, mergeable_ranks, ...)."""
    def __setstate__(self, state):
        self.state = state


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("tiktoken.core", "Encoding"):
            return _Encoding
        return super().find_class(module, name)


def load_ranks(path):
    """Token bytes in rank order from a tokenizer.pkl or a .tiktoken file (also accepts the tokenizer directory)."""
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.pkl")
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":  # a pickle (protocol >= 2)
        with open(path, "rb") as f:
            obj = _Unpickler(f).load()
        state = obj.state if isinstance(obj, _Encoding) else getattr(obj, "__dict__", {})
        ranks = state.get("mergeable_ranks") or state.get("_mergeable_ranks")
        if ranks is None:
            sys.exit(f"{path}: a pickle without mergeable ranks")
        return ranks_to_list(ranks, path)
    ranks = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    return ranks_to_list(ranks, path)


def show(b):
    return repr(b)[1:] if len(b) <= 40 else repr(b[:40])[1:] + "..."


def compare(a_path, b_path, a_name=None, b_name=None):
    """Prints the comparison; returns True when the ranks are identical."""
    a, b = load_ranks(a_path), load_ranks(b_path)
    a_name, b_name = a_name or a_path, b_name or b_path
    first = next((r for r in range(min(len(a), len(b))) if a[r] != b[r]), None)
    if first is None and len(a) == len(b):
        print(f"merges identical: {len(a)} ranks ({len(a) - 256} merges) in {a_name} and {b_name}")
        return True
    if first is None:
        print(f"merges differ: {a_name} has {len(a)} ranks, {b_name} has {len(b)}; the first "
              f"{min(len(a), len(b))} are identical")
        return False
    same_set = len(set(a) & set(b))
    print(f"merges differ: first differing rank {first} (merge {first - 256}): {a_name} {show(a[first])}, "
          f"{b_name} {show(b[first])}; {len(a)} vs {len(b)} ranks, {same_set} token byte strings in common")
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)

    def training_args(p):
        p.add_argument("inputs", nargs="+", help="*.jsonl (field \"text\") or text files (one document each)")
        p.add_argument("--vocab-size", type=int, required=True, help="including nanochat's 9 special tokens")
        p.add_argument("--doc-cap", type=int, default=10_000, help="maximum characters per document (tok_train's default)")
        p.add_argument("--max-chars", type=int, default=2_000_000_000, help="stop after this many characters")

    p = sub.add_parser("train", help="train rustbpe and write its ranks")
    training_args(p)
    p.add_argument("--out", required=True, help="the .tiktoken file to write")
    p = sub.add_parser("compare", help="compare two tokenizer.pkl / .tiktoken files")
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("both", help="train ours (nanochat tok_train) and rustbpe, then compare")
    training_args(p)
    p.add_argument("--nanochat", required=True, help="the nanochat binary")
    p.add_argument("--keep", help="a directory to keep both results and tok_train's log in")
    args = ap.parse_args()

    if args.mode == "compare":
        sys.exit(0 if compare(args.a, args.b) else 1)

    if args.mode == "train":
        tokens, secs, docs, chars = train_rustbpe(args.inputs, args.vocab_size, args.doc_cap, args.max_chars)
        write_tiktoken(args.out, tokens)
        print(f"rustbpe: {docs} documents, {chars} characters, vocab {args.vocab_size} "
              f"({len(tokens)} ranks + {NUM_SPECIAL_TOKENS} specials), training time {secs:.2f}s; wrote {args.out}")
        return

    tmp = tempfile.mkdtemp(prefix="rustbpe_compare.")
    try:
        out_dir = args.keep or os.path.join(tmp, "out")
        os.makedirs(out_dir, exist_ok=True)
        cmd = [args.nanochat, "tok_train", "--input", *args.inputs, "--vocab-size", str(args.vocab_size),
               "--doc-cap", str(args.doc_cap), "--max-chars", str(args.max_chars), "--output-dir", out_dir]
        env = dict(os.environ, NANOCHAT_BASE_DIR=os.path.join(tmp, "base"))
        t0 = time.perf_counter()
        run = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ours_wall = time.perf_counter() - t0
        with open(os.path.join(out_dir, "tok_train.log"), "w") as f:
            f.write(run.stdout)
        if run.returncode != 0:
            sys.stdout.write(run.stdout[-3000:])
            sys.exit(f"tok_train failed (exit {run.returncode}): {' '.join(cmd)}")
        m = re.search(r"^Training time: ([0-9.]+)s", run.stdout, re.M)
        m_docs = re.search(r"^Training on (\d+) documents, (\d+) characters", run.stdout, re.M)
        ours = float(m.group(1)) if m else float("nan")
        print(f"ours (nanochat tok_train): {m_docs.group(1) if m_docs else '?'} documents, "
              f"{m_docs.group(2) if m_docs else '?'} characters, training time {ours:.2f}s "
              f"(whole process {ours_wall:.2f}s wall)")
        tokens, secs, docs, chars = train_rustbpe(args.inputs, args.vocab_size, args.doc_cap, args.max_chars)
        rust_path = os.path.join(out_dir, "rustbpe.tiktoken")
        write_tiktoken(rust_path, tokens)
        print(f"rustbpe: {docs} documents, {chars} characters, training time {secs:.2f}s")
        if m_docs and (int(m_docs.group(1)), int(m_docs.group(2))) != (docs, chars):
            print("warning: the two read different documents (see the counts above)")
        same = compare(os.path.join(out_dir, "tokenizer.pkl"), rust_path, "ours", "rustbpe")
        sys.exit(0 if same else 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
