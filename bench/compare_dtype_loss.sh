#!/usr/bin/env bash
# Does bf16 training on the CPU follow the fp32 loss curve? Trains the same model twice from the same seed on the
# same data, once per compute dtype, and prints both runs' validation bpb and smoothed train loss side by side.
# fp32 is the computation that matches Python nanochat (tests/fixtures parity); bf16 is the faster one on CPUs
# with avx512_bf16/AMX (bench/bench_train_cpu.sh).
#   bash bench/compare_dtype_loss.sh [build/nanochat]        # depth 6, seq 512, batch 4, 200 steps (~15 min, 2 cores)
#   DEPTH=4 STEPS=100 bash bench/compare_dtype_loss.sh
# Data: the Python 3.11 documentation (Debian's python3.11-doc), cut into ~1500-byte documents as runs/runcpu.sh
# does; tokenizer: the first 32759 cl100k ranks + 9 specials (bench/make_cl100k_tokenizer.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NANOCHAT=${1:-$here/../build/nanochat}
DEPTH=${DEPTH:-6}
STEPS=${STEPS:-200}
EVAL_EVERY=${EVAL_EVERY:-50}
DOCS=${DOCS:-/usr/share/doc/python3.11/html/_sources}
[ -d "$DOCS" ] || { echo "compare_dtype_loss: $DOCS is missing; install python3.11-doc or set DOCS" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NANOCHAT_BASE_DIR="$tmp/base" NANOCHAT_LOGGER=none NANOCHAT_DATA_DIR="$tmp/base/base_data_text"
mkdir -p "$tmp/base"
bytes=$(du -sb "$DOCS" | cut -f1)
"$NANOCHAT" dataset --from-text "$DOCS" --doc-chars 1500 --shard-chars $((bytes / 10 + 1)) > /dev/null
/usr/bin/python3 "$here/make_cl100k_tokenizer.py" "$tmp/base/tokenizer" 32768 > /dev/null
for dtype in float32 bfloat16; do
  NANOCHAT_DTYPE=$dtype "$NANOCHAT" base_train --depth=$DEPTH --head-dim=64 --window-pattern=L --max-seq-len=512 \
    --device-batch-size=4 --total-batch-size=2048 --num-iterations=$STEPS --eval-every=$EVAL_EVERY \
    --eval-tokens=32768 --core-metric-every=-1 --sample-every=-1 --model-tag=cmp_$dtype > "$tmp/$dtype.log"
done
/usr/bin/python3 - "$tmp/float32.log" "$tmp/bfloat16.log" <<'PY'
import re, sys
def parse(path):
    log = open(path).read()
    bpb = {int(s): float(v) for s, v in re.findall(r"^Step (\d+) \| Validation bpb: ([0-9.]+)", log, re.M)}
    loss = {int(s): float(v) for s, v in re.findall(r"^step (\d+)/\d+ .*?\| loss: ([0-9.]+)", log, re.M)}
    tok = [int(t.replace(",", "")) for t in re.findall(r"\| tok/sec: ([0-9,]+)", log)][2:]
    return bpb, loss, sorted(tok)[len(tok) // 2] if tok else 0
(b32, l32, t32), (b16, l16, t16) = parse(sys.argv[1]), parse(sys.argv[2])
print(f"median tok/sec: fp32 {t32:,}  bf16 {t16:,}")
print(f"{'step':>6} {'val bpb fp32':>13} {'val bpb bf16':>13} {'diff %':>8}")
for s in sorted(b32):
    if s in b16: print(f"{s:>6} {b32[s]:>13.6f} {b16[s]:>13.6f} {100 * (b16[s] - b32[s]) / b32[s]:>+8.2f}")
print(f"{'step':>6} {'loss fp32':>13} {'loss bf16':>13} {'diff %':>8}")
for s in sorted(l32):
    if s in l16 and (s % 25 == 0 or s == max(l32)):
        print(f"{s:>6} {l32[s]:>13.6f} {l16[s]:>13.6f} {100 * (l16[s] - l32[s]) / l32[s]:>+8.2f}")
PY
