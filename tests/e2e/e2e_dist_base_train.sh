#!/usr/bin/env bash
# base_train on 2 processes (nanochat launch, Gloo on CPU) against 1 process with 2 accumulation steps:
#  1. same total batch: validation bpb within 1% at step 0 (same model, different row groups per rank) and within 3%
#     after 20 steps; every rank's optimizer holds the same state for the small replicated parameters, which only
#     happens when gradients are averaged across ranks;
#  2. torchrun (.venv's, from the torch wheel) starts the same 2 ranks with the same losses as nanochat launch;
#  3. a 2-rank checkpoint (optim_*_rank0.pt and _rank1.pt) resumes on 2 ranks;
#  4. resuming it on 1 rank fails with one line naming the world size.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
PY=${NANOCHAT_PYTHON:-python3}  # .venv's python (ctest sets it); torch reads what we write
"$PY" -c 'import torch' || { echo "error: $PY cannot import torch (bash scripts/setup.sh installs it into .venv)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 NANOCHAT_LOGGER=none NANOCHAT_DIST_TIMEOUT=120
source "$(dirname "$0")/dist_e2e_lib.sh"
make_pretrain_base "$tmp"
ARGS=("${TINY_MODEL_ARGS[@]}" --warmup-steps 2 --eval-every 20 --eval-tokens 65536 --core-metric-every -1 --sample-every -1)

"$NANOCHAT" base_train "${ARGS[@]}" --num-iterations 20 --model-tag one > "$tmp/one.log"
"$NANOCHAT" launch --nproc-per-node 2 -- base_train "${ARGS[@]}" --num-iterations 20 --save-every 10 --model-tag two \
  > "$tmp/two.log" 2> "$tmp/two.err"
grep -q "^Total batch size 512 => gradient accumulation steps: 2$" "$tmp/one.log"
grep -q "^Total batch size 512 => gradient accumulation steps: 1$" "$tmp/two.log"
grep -q "^Distributed world size: 2$" "$tmp/two.log"
[ "$(grep -c '^step 000[0-9][0-9]/00020' "$tmp/two.log")" = 20 ]
! grep -q "^step " "$tmp/two.err"   # rank 1 prints nothing but errors
$PY - "$tmp/one.log" "$tmp/two.log" <<'PYEOF'
import re, sys
def bpb(path):
    return {int(s): float(v) for s, v in re.findall(r"^Step (\d+) \| Validation bpb: ([0-9.]+)$", open(path).read(), re.M)}
a, b = bpb(sys.argv[1]), bpb(sys.argv[2])
assert sorted(a) == sorted(b) == [0, 20], (a, b)
for step, tol in ((0, 0.01), (20, 0.03)):
    rel = abs(a[step] - b[step]) / a[step]
    print(f"step {step}: 1 process {a[step]:.4f}, 2 processes {b[step]:.4f} (rel {rel:.4f}, allowed {tol})")
    assert rel < tol, (step, a[step], b[step])
assert b[20] < b[0] - 0.1 and a[20] < a[0] - 0.1, (a, b)
PYEOF
d="$tmp/base/base_checkpoints/two"
for s in 000010 000020; do
  test -f "$d/model_$s.pt"; test -f "$d/meta_$s.json"; test -f "$d/optim_${s}_rank0.pt"; test -f "$d/optim_${s}_rank1.pt"
done
test ! -e "$d/optim_000020_rank2.pt"
$PY - "$d" <<'PYEOF'
import sys, torch
d = sys.argv[1]
o0 = torch.load(d + "/optim_000020_rank0.pt", map_location="cpu", weights_only=True)
o1 = torch.load(d + "/optim_000020_rank1.pt", map_location="cpu", weights_only=True)
checked = 0
for i, s in o0["state"].items():
    if "exp_avg" not in s:  # Muon state is sharded across ranks
        continue
    for k, v in s.items():
        w = o1["state"][i][k]
        # Small AdamW parameters are replicated on every rank (also under ZeRO-2): equal only if grads were averaged.
        if torch.is_tensor(v) and v.numel() < 1024 and v.shape == w.shape:
            assert torch.equal(v, w), (i, k)
            checked += 1
assert checked > 0
print(f"ranks agree on {checked} replicated optimizer tensors")
PYEOF

# 2. torchrun --no-python starts our binary as its ranks: the same run, loss for loss, as nanochat launch's
"$(dirname "$PY")/torchrun" --standalone --nproc-per-node 2 --no-python "$NANOCHAT" base_train "${ARGS[@]}" \
  --num-iterations 20 --model-tag torchrun > "$tmp/torchrun.log" 2> "$tmp/torchrun.err" \
  || { cat "$tmp/torchrun.log" "$tmp/torchrun.err"; exit 1; }
grep -q "^Distributed world size: 2$" "$tmp/torchrun.log"
losses() { sed -n 's/^step \([0-9]*\)\/.*| loss: \([0-9.]*\) .*/\1 \2/p' "$1"; }
[ "$(losses "$tmp/torchrun.log" | wc -l)" = 20 ]
diff <(losses "$tmp/two.log") <(losses "$tmp/torchrun.log") || { echo "torchrun and launch runs differ"; exit 1; }

# 3. resume the 2-rank checkpoint on 2 ranks
"$NANOCHAT" launch --nproc-per-node 2 -- base_train "${ARGS[@]}" --num-iterations 20 --model-tag two \
  --resume-from-step 10 > "$tmp/resumed.log" 2> "$tmp/resumed.err"
grep -q "Resuming optimization from step 10" "$tmp/resumed.log"
[ "$(grep -c '^step 000[12][0-9]/00020' "$tmp/resumed.log")" = 10 ]
grep -E "^Step 00020 \| Validation bpb" "$tmp/two.log" "$tmp/resumed.log"

# 4. one rank cannot take over two ranks' optimizer shards
set +e
"$NANOCHAT" base_train "${ARGS[@]}" --num-iterations 20 --model-tag two --resume-from-step 10 > "$tmp/bad.log" 2> "$tmp/bad.err"
rc=$?
set -e
[ $rc != 0 ]
cat "$tmp/bad.err"
grep -q "^error: cannot resume from step 10: its optimizer state was saved by 2 ranks and this run has 1" "$tmp/bad.err"
[ "$(wc -l < "$tmp/bad.err")" = 1 ]
echo "distributed base_train e2e ok"
