# Loads tokenizer.pkl files with Python's own pickle, using a stand-in for tiktoken.core.Encoding (tiktoken is
# not needed): checks the state has tiktoken's four fields, that pickling the loaded object again gives the very
# same bytes, and optionally prints the state as JSON (bytes keys as hex) for comparison.
#   python3 tokenizer_pkl_check.py [--dump-json] FILE...
import io, json, pickle, sys, types

class Encoding:
    def __getstate__(self):
        return self.state
    def __setstate__(self, state):
        self.state = state

Encoding.__module__ = "tiktoken.core"
Encoding.__qualname__ = "Encoding"
core = types.ModuleType("tiktoken.core")
core.Encoding = Encoding
pkg = types.ModuleType("tiktoken")
pkg.core = core
sys.modules["tiktoken"] = pkg
sys.modules["tiktoken.core"] = core

dump = "--dump-json" in sys.argv
for path in [a for a in sys.argv[1:] if not a.startswith("--")]:
    raw = open(path, "rb").read()
    enc = pickle.loads(raw)
    st = enc.state
    assert isinstance(st, dict) and list(st) == ["name", "pat_str", "mergeable_ranks", "special_tokens"], list(st)
    assert all(isinstance(k, bytes) and isinstance(v, int) for k, v in st["mergeable_ranks"].items())
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in st["special_tokens"].items())
    out = io.BytesIO()
    pickle.dump(enc, out)
    if out.getvalue() != raw:
        a, b = out.getvalue(), raw
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        sys.exit(f"{path}: Python re-pickles to different bytes (first difference at byte {i}; {len(a)} vs {len(b)} bytes)")
    if dump:
        print(json.dumps({"name": st["name"], "pat_str": st["pat_str"],
                          "mergeable_ranks": [[k.hex(), v] for k, v in st["mergeable_ranks"].items()],
                          "special_tokens": list(st["special_tokens"].items())}))
    else:
        print(f"{path}: ok ({len(st['mergeable_ranks'])} ranks, {len(st['special_tokens'])} specials)")
