#!/usr/bin/env bash
# python_nanochat.sh: CPU training throughput of Python nanochat and of ours, side by side, same models and data.
#   git clone https://github.com/karpathy/nanochat /tmp/nanochat-ref && git -C /tmp/nanochat-ref checkout 5019accc5bc7
#   bash bench/python_nanochat.sh /tmp/nanochat-ref [build/nanochat]
# Python nanochat runs unmodified on .venv's torch (scripts/setup.sh installs what it imports). Configurations as
# bench/bench_train_cpu.sh: depth 4 and 6, head_dim 64, window L, sequence 512, device batch 4 (2048 tokens a step),
# vocabulary 32768 (bench/make_cl100k_tokenizer.py), the fixture parquet shards; fp32, and bf16 where the CPU has
# avx512_bf16 or AMX. For each configuration Python runs first, then ours (alternating, so both see the same load).
# Prints the median tok/sec of each over the steps after warm-up (Python's first steps include torch.compile).
# Env: STEPS (default 16), WARMUP (steps left out of the median, default 6), DEPTHS (default "4 6").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ref=$(cd "${1:?usage: python_nanochat.sh <nanochat checkout> [build/nanochat]}" && pwd)
NANOCHAT=${2:-$here/../build/nanochat}
PY=${NANOCHAT_PYTHON:-$here/../.venv/bin/python}
STEPS=${STEPS:-16}
WARMUP=${WARMUP:-6}
DEPTHS=${DEPTHS:-4 6}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NANOCHAT_BASE_DIR="$tmp/base" NANOCHAT_LOGGER=none
mkdir -p "$tmp/base/base_data_climbmix"
cp "$here"/../tests/fixtures/parquet/pretrain/*.parquet "$tmp/base/base_data_climbmix/"
"$PY" "$here/make_cl100k_tokenizer.py" "$tmp/base/tokenizer" 32768 > /dev/null
dtypes="float32"
grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo && dtypes="float32 bfloat16"
median() {  # median tok/sec of a base_train log, steps WARMUP..N-1
  "$PY" - "$1" "$WARMUP" <<'PY'
import re, statistics, sys
rows = re.findall(r"^step (\d+)/\d+ .*\| tok/sec: ([0-9,]+)", open(sys.argv[1]).read(), re.M)
vals = [int(t.replace(",", "")) for s, t in rows if int(s) >= int(sys.argv[2])]
print(int(statistics.median(vals)) if vals else 0)
PY
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); torch $("$PY" -c 'import torch; print(torch.__version__)')"
printf "%-6s %-9s %12s %12s %7s\n" depth dtype python_tok/s ours_tok/s ratio
ARGS=(--head-dim=64 --window-pattern=L --max-seq-len=512 --device-batch-size=4 --total-batch-size=2048
      --num-iterations=$STEPS --eval-every=-1 --core-metric-every=-1 --sample-every=-1 --model-tag=bench)
for dtype in $dtypes; do
  for depth in $DEPTHS; do
    (cd "$ref" && NANOCHAT_DTYPE=$dtype "$PY" -m scripts.base_train --device-type=cpu --depth=$depth "${ARGS[@]}") \
      > "$tmp/py.log" 2>&1 || { tail -20 "$tmp/py.log"; exit 1; }
    NANOCHAT_DTYPE=$dtype "$NANOCHAT" base_train --device-type=cpu --depth=$depth "${ARGS[@]}" > "$tmp/ours.log" 2>&1 \
      || { tail -20 "$tmp/ours.log"; exit 1; }
    p=$(median "$tmp/py.log")
    o=$(median "$tmp/ours.log")
    printf "%-6s %-9s %12s %12s %7s\n" "$depth" "$dtype" "$p" "$o" "$(awk -v a="$o" -v b="$p" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }')"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
