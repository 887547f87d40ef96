"""python_engine_bench.py: Python nanochat's Engine, batch-1 greedy decoding on a randomly initialized model, timed
as `nanochat infer_bench` times ours (tokens per second over the whole generate call, prefill included), for the
side-by-side rows in bench/RESULTS.md. It imports nanochat from a checkout; it copies nothing of it.

    .venv/bin/python bench/make_cl100k_tokenizer.py /tmp/tok 32768
    .venv/bin/python bench/python_engine_bench.py /tmp/nanochat-ref /tmp/tok --depth 6 [--repeats 5]
    build/nanochat infer_bench --depth 6 --head-dim 64 --batch-sizes 1 --prompt-len 64 --max-tokens 64 --repeats 5 \\
        --device-type cpu                                                    # ours, the same model shape
    .venv/bin/python bench/python_engine_bench.py /tmp/nanochat-ref /tmp/tok --depth 6 --max-seq-len 2048 \\
        --prompt-len 1088 --max-tokens 1   # the TTFT of a chat's second turn, which Python prefills whole

The model: n_embd = depth*64 (rounded up to head_dim 64), heads = n_embd/64, no GQA, window pattern L, context 512
(--max-seq-len), vocabulary 32768, fp32 on the CPU: infer_bench's --depth model. Also prints the median time to the
first token (the prefill).
"""
import argparse, random, statistics, sys, time

p = argparse.ArgumentParser()
p.add_argument("nanochat_dir")
p.add_argument("tokenizer_dir")
p.add_argument("--depth", type=int, default=6)
p.add_argument("--prompt-len", type=int, default=64)
p.add_argument("--max-tokens", type=int, default=64)
p.add_argument("--max-seq-len", type=int, default=512)
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--warmup", type=int, default=1)
args = p.parse_args()
sys.path.insert(0, args.nanochat_dir)

import torch  # noqa: E402
from nanochat.engine import Engine  # noqa: E402
from nanochat.gpt import GPT, GPTConfig  # noqa: E402
from nanochat.tokenizer import RustBPETokenizer  # noqa: E402

head_dim = 64
n_embd = (args.depth * 64 + head_dim - 1) // head_dim * head_dim
config = GPTConfig(sequence_len=args.max_seq_len, vocab_size=32768, n_layer=args.depth, n_head=n_embd // head_dim,
                   n_kv_head=n_embd // head_dim, n_embd=n_embd, window_pattern="L")
torch.manual_seed(42)
with torch.device("meta"):
    model = GPT(config)
model.to_empty(device="cpu")
model.init_weights()
model.eval()
tokenizer = RustBPETokenizer.from_directory(args.tokenizer_dir)
engine = Engine(model, tokenizer)
rng = random.Random(0)
prompt = [tokenizer.get_bos_token_id()] + [rng.randrange(0, 32000) for _ in range(args.prompt_len - 1)]

rates, ttfts = [], []
for i in range(args.warmup + args.repeats):
    t0 = time.perf_counter()
    n, first = 0, None
    for _column, _masks in engine.generate(prompt, num_samples=1, max_tokens=args.max_tokens, temperature=0.0):
        n += 1
        first = first or time.perf_counter()
    dt = time.perf_counter() - t0
    if i >= args.warmup:
        rates.append(n / dt)
        ttfts.append((first - t0) * 1000)
print(f"python engine d{args.depth} (n_embd {n_embd}) batch 1: median {statistics.median(rates):.1f} tok/s "
      f"over {args.repeats} runs ({', '.join(f'{r:.1f}' for r in rates)}); torch {torch.__version__}, "
      f"{torch.get_num_threads()} threads; prompt {args.prompt_len} tokens, TTFT median "
      f"{statistics.median(ttfts):.1f} ms")
