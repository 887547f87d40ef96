#!/usr/bin/env bash
# make_tok_corpus.sh OUT [MB]: an English-like text corpus for the tokenizer benchmarks, built only from files
# every Debian machine has (licenses, vim's manual, package changelogs), in sorted order so it is reproducible.
# Default 12 MB. bench_tokenizer, tiktoken_bench.py, hf_train_bench.py and rustbpe_compare.py read it.
set -euo pipefail
out=${1:?usage: make_tok_corpus.sh OUT [MB]}
mb=${2:-12}
limit=$((mb * 1000 * 1000))
{
  cat /usr/share/common-licenses/* 2>/dev/null || true
  ls /usr/share/vim/vim*/doc/*.txt 2>/dev/null | sort | xargs cat 2>/dev/null || true
  find /usr/share/doc -name 'changelog*.gz' 2>/dev/null | sort | xargs zcat -f 2>/dev/null || true
} | head -c "$limit" | iconv -f utf-8 -t utf-8 -c > "$out"
echo "$out: $(wc -c < "$out") bytes"
