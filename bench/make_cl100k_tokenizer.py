"""Write a nanochat tokenizer directory (tokenizer.pkl + token_bytes.pt) whose vocabulary is the first
VOCAB-9 ranks of cl100k (tests/fixtures/tokenizer/cl100k_base.tiktoken) plus nanochat's 9 special tokens, so
training benchmarks can run at nanochat's real vocabulary size (32768) without training a tokenizer first.

    /usr/bin/python3 bench/make_cl100k_tokenizer.py $NANOCHAT_BASE_DIR/tokenizer [32768]

A prefix of a BPE rank table is itself a valid BPE (merges are applied in rank order). The pickle has the layout
nanochat writes (a tiktoken.core.Encoding with its state dict); tiktoken itself is not needed. Requires torch.
"""
import base64, json, os, pickle, sys, types

import torch

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "tests", "fixtures", "tokenizer")
out_dir = sys.argv[1]
vocab = int(sys.argv[2]) if len(sys.argv) > 2 else 32768
specials = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
            "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]
n_ranks = vocab - len(specials)
ranks = {}
with open(os.path.join(fixtures, "cl100k_base.tiktoken")) as f:
    for line in f:
        tok, rank = line.split()
        if int(rank) < n_ranks:
            ranks[base64.b64decode(tok)] = int(rank)
assert len(ranks) == n_ranks
pattern = json.load(open(os.path.join(fixtures, "patterns.json")))["nanochat"]

# A stand-in for tiktoken.core.Encoding: pickling it emits the same opcodes (class by module path, NEWOBJ, BUILD
# with the state dict) as nanochat's pickle.dump of a real Encoding.
module = types.ModuleType("tiktoken.core")
class Encoding:
    pass
Encoding.__module__ = "tiktoken.core"
module.Encoding = Encoding
sys.modules.setdefault("tiktoken", types.ModuleType("tiktoken"))
sys.modules["tiktoken.core"] = module
enc = Encoding()
enc.__dict__.update({"name": "rustbpe", "pat_str": pattern, "mergeable_ranks": ranks,
                     "special_tokens": {s: n_ranks + i for i, s in enumerate(specials)}})
os.makedirs(out_dir, exist_ok=True)
with open(os.path.join(out_dir, "tokenizer.pkl"), "wb") as f:
    pickle.dump(enc, f)
lengths = [0] * vocab
for b, r in ranks.items():
    lengths[r] = len(b.decode("utf-8", errors="replace").encode("utf-8"))
with open(os.path.join(out_dir, "token_bytes.pt"), "wb") as f:
    torch.save(torch.tensor(lengths, dtype=torch.int32), f)
print(f"wrote {out_dir}: {vocab} tokens")
