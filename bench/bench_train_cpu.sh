#!/usr/bin/env bash
# CPU training throughput of base_train, read from its own step lines (tok/sec, bf16_mfu).
#   bash bench/bench_train_cpu.sh [build/nanochat]
# Model: depth 4 and 6, head_dim 64, window L, sequence 512, device batch 4 (2048 tokens per step, no gradient
# accumulation), vocabulary 32768 (the first 32759 cl100k ranks + 9 specials, bench/make_cl100k_tokenizer.py),
# data: the fixture parquet shards. fp32, and bf16 (NANOCHAT_DTYPE=bfloat16) when the CPU has avx512_bf16 or AMX.
# Prints the median tok/sec and MFU over steps 2..N-1 (step 0 and 1 warm up). MFU needs a peak: set
# NANOCHAT_PEAK_FLOPS (flop/s) for the dtype, e.g. cores × GHz × 32 for fp32 FMA on AVX-512 (2 × 256-bit pipes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NANOCHAT=${1:-$here/../build/nanochat}
STEPS=${STEPS:-8}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NANOCHAT_BASE_DIR="$tmp/base" NANOCHAT_LOGGER=none
mkdir -p "$tmp/base/base_data_climbmix"
cp "$here"/../tests/fixtures/parquet/pretrain/*.parquet "$tmp/base/base_data_climbmix/"
/usr/bin/python3 "$here/make_cl100k_tokenizer.py" "$tmp/base/tokenizer" 32768 > /dev/null
dtypes="float32"
grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo && dtypes="float32 bfloat16"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), threads: ${OMP_NUM_THREADS:-all cores}"
for dtype in $dtypes; do
  for depth in 4 6; do
    NANOCHAT_DTYPE=$dtype "$NANOCHAT" base_train --depth=$depth --head-dim=64 --window-pattern=L --max-seq-len=512 \
      --device-batch-size=4 --total-batch-size=2048 --num-iterations=$STEPS --eval-every=-1 --core-metric-every=-1 \
      --sample-every=-1 --model-tag=bench > "$tmp/log.txt"
    /usr/bin/python3 - "$tmp/log.txt" "$dtype" "$depth" <<'PY'
import re, statistics, sys
log, dtype, depth = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
rows = re.findall(r"^step (\d+)/\d+ .*\| dt: ([0-9.]+)ms \| tok/sec: ([0-9,]+) \| bf16_mfu: ([0-9.]+)", log, re.M)
rows = [r for r in rows if int(r[0]) >= 2]
tok = statistics.median(int(r[2].replace(",", "")) for r in rows)
mfu = statistics.median(float(r[3]) for r in rows)
dt = statistics.median(float(r[1]) for r in rows)
params = re.search(r"^total +: ([0-9,]+)$", log, re.M).group(1)
flops = re.search(r"^Estimated FLOPs per token: (\S+)$", log, re.M).group(1)
print(f"depth {depth} {dtype:8s} params {params:>11s} flops/tok {flops}: median dt {dt:8.1f} ms | tok/sec {tok:6,.0f} | bf16_mfu {mfu:.2f}")
PY
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
