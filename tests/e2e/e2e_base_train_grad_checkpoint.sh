#!/usr/bin/env bash
# base_train --grad-checkpoint on CPU: the same tiny run with and without it (same seed, same data) prints the same
# losses step by step and the same validation bpb, says that it recomputes, and records the flag in the checkpoint's
# user_config. On the CPU (fp32, one process) the recomputed blocks give the same values, so the losses agree to the
# printed digits up to float summation order.
# env: NANOCHAT (binary), FIXTURES (tests/fixtures), NANOCHAT_PYTHON.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
PY=${NANOCHAT_PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=2 NANOCHAT_LOGGER=none
cp -r "$FIXTURES/python_basedir" "$tmp/base"
rm -rf "$tmp/base/base_checkpoints"
mkdir -p "$tmp/base/base_data_climbmix"
cp "$FIXTURES"/parquet/pretrain/*.parquet "$tmp/base/base_data_climbmix/"
export NANOCHAT_BASE_DIR="$tmp/base"
RUN=(--depth 2 --aspect-ratio 32 --head-dim 32 --max-seq-len 128 --device-batch-size 4 --total-batch-size 1024
     --num-iterations 12 --warmup-steps 2 --eval-every 12 --eval-tokens 2048 --core-metric-every -1 --sample-every -1)
"$NANOCHAT" base_train "${RUN[@]}" --model-tag plain > "$tmp/plain.log"
"$NANOCHAT" base_train "${RUN[@]}" --model-tag ckpt --grad-checkpoint > "$tmp/ckpt.log"
grep -q "^Gradient checkpointing: each block is recomputed in backward$" "$tmp/ckpt.log"
! grep -q "Gradient checkpointing" "$tmp/plain.log"
$PY - "$tmp/plain.log" "$tmp/ckpt.log" "$tmp/base/base_checkpoints" <<'PYEOF'
import json, re, sys
plain, ckpt = (open(p).read() for p in sys.argv[1:3])
loss = lambda log: [float(x) for x in re.findall(r"^step \d+/00012 .*?\| loss: ([0-9.]+) \|", log, re.M)]
bpb = lambda log: [float(x) for x in re.findall(r"Validation bpb: ([0-9.]+)$", log, re.M)]
a, b = loss(plain), loss(ckpt)
assert len(a) == len(b) == 12, (len(a), len(b))
gap = max(abs(x - y) for x, y in zip(a, b))
assert gap <= 1e-4, (a, b)
assert len(bpb(plain)) == 2 and all(abs(x - y) <= 1e-4 for x, y in zip(bpb(plain), bpb(ckpt))), (bpb(plain), bpb(ckpt))
assert json.load(open(sys.argv[3] + "/ckpt/meta_000012.json"))["user_config"]["grad_checkpoint"] is True
assert json.load(open(sys.argv[3] + "/plain/meta_000012.json"))["user_config"]["grad_checkpoint"] is False
print(f"12 steps: largest loss gap {gap:.2e}; val bpb {bpb(plain)[-1]:.6f} vs {bpb(ckpt)[-1]:.6f}")
PYEOF
