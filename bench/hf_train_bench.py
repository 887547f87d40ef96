"""HuggingFace tokenizers' BPE trainer (pip "tokenizers", Rust native) on the same corpus as bench_tokenizer.cpp, set
up like nanochat's HuggingFaceTokenizer.train: nanochat's split regex (Split, isolated), then ByteLevel without its
own regex, a BPE model with byte_fallback, ByteLevel decoder. The trainer is BpeTrainer(vocab_size=30000,
min_frequency=0) by default, which is what the model's default trainer (tokenizer.train(files) with no trainer)
gives, and the vocabulary bench_tokenizer trains ours at; --vocab-size changes it, --nanochat adds nanochat's
initial alphabet (the 256 ByteLevel characters) and its 9 special tokens as HuggingFaceTokenizer.train does.
The corpus file is read line by line by the trainer (tokenizer.train([file])). Prints the training time (wall, and
process CPU time of all threads) and the bytes/token of the result on the corpus, encoded line by line.

    .venv/bin/python bench/hf_train_bench.py /tmp/tokbench/corpus.txt [--vocab-size 30000] [--nanochat]
"""
import argparse, os, re, time

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
SPECIALS = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
            "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--vocab-size", type=int, default=30000)
    ap.add_argument("--nanochat", action="store_true",
                    help="initial alphabet and special tokens as nanochat's HuggingFaceTokenizer.train")
    args = ap.parse_args()

    tok = Tokenizer(BPE(byte_fallback=True, unk_token=None, fuse_unk=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = None
    extra = dict(initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=SPECIALS) if args.nanochat else {}
    trainer = BpeTrainer(vocab_size=args.vocab_size, min_frequency=0, show_progress=False, **extra)

    w0, c0 = time.perf_counter(), time.process_time()
    tok.train([args.corpus], trainer)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0

    with open(args.corpus, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # line by line, newlines kept (as the trainer reads the file)
    tokens = 0
    for i in range(0, len(lines), 2000):
        tokens += sum(len(e.ids) for e in tok.encode_batch(lines[i:i + 2000], add_special_tokens=False))
    nbytes = len(text.encode("utf-8"))
    print(f"HF tokenizers {tokenizers.__version__} BPE train ({'nanochat trainer' if args.nanochat else 'default trainer'}, "
          f"{os.cpu_count()} CPUs, load average {' '.join(open('/proc/loadavg').read().split()[:3])}): "
          f"wall {wall:.2f} s, cpu {cpu:.2f} s (all threads), vocab {tok.get_vocab_size()}, "
          f"{tokens} tokens, {nbytes / tokens:.4f} bytes/token")


if __name__ == "__main__":
    main()
