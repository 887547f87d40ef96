#!/usr/bin/env bash
# base_train end to end on CPU, with the Python-written base dir of tests/fixtures/python_basedir (tokenizer and a
# depth-2 checkpoint at step 3) and the fixture parquet shards as training data:
#  1. resuming Python's step-3 checkpoint (model + optimizer) and saving it again at once (--num-iterations 3)
#     writes back exactly Python's tensors and optimizer state, read by Python's torch.load;
#  2. the Python run continues for two steps (3 -> 5) and Python's torch.load reads the result;
#  3. a fresh tiny run trains with falling loss and validation bpb, writes meta with every key, metrics.jsonl and the
#     report section; base_eval measures the same val bpb on the same tokens and prints the samples.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
PY=${NANOCHAT_PYTHON:-python3}  # .venv's python (ctest sets it); torch reads what we write
"$PY" -c 'import torch' || { echo "error: $PY cannot import torch (bash scripts/setup.sh installs it into .venv)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=2 NANOCHAT_LOGGER=jsonl
cp -r "$FIXTURES/python_basedir" "$tmp/base"
mkdir -p "$tmp/base/base_data_climbmix"
cp "$FIXTURES"/parquet/pretrain/*.parquet "$tmp/base/base_data_climbmix/"
export NANOCHAT_BASE_DIR="$tmp/base"
D2=(--depth 2 --aspect-ratio 32 --head-dim 32 --max-seq-len 256 --device-batch-size 2 --total-batch-size 512
    --core-metric-every -1 --sample-every -1)

# 1. load + save round trip of Python's checkpoint
"$NANOCHAT" base_train "${D2[@]}" --resume-from-step 3 --num-iterations 3 --eval-every -1 > "$tmp/rt.log"
grep -q "Resuming optimization from step 3" "$tmp/rt.log"
$PY - "$FIXTURES/python_basedir/base_checkpoints/d2" "$tmp/base/base_checkpoints/d2" <<'PYEOF'
import json, sys, torch
ref, got = sys.argv[1], sys.argv[2]
a = torch.load(ref + "/model_000003.pt", map_location="cpu", weights_only=True)
b = torch.load(got + "/model_000003.pt", map_location="cpu", weights_only=True)
assert list(a) == list(b), (list(a), list(b))
for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]), k
oa = torch.load(ref + "/optim_000003_rank0.pt", map_location="cpu", weights_only=True)
ob = torch.load(got + "/optim_000003_rank0.pt", map_location="cpu", weights_only=True)
assert oa["param_groups"] == ob["param_groups"], (oa["param_groups"], ob["param_groups"])
assert sorted(oa["state"]) == sorted(ob["state"])
for i in oa["state"]:
    sa, sb = oa["state"][i], ob["state"][i]
    assert sorted(sa) == sorted(sb), (i, sorted(sa), sorted(sb))
    for k in sa:
        if torch.is_tensor(sa[k]):
            assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), (i, k)
        else:
            assert sa[k] == sb[k], (i, k)
ma, mb = json.load(open(ref + "/meta_000003.json")), json.load(open(got + "/meta_000003.json"))
assert mb["step"] == 3 and mb["model_config"] == ma["model_config"] and mb["loop_state"] == ma["loop_state"]
print("python reads our rewrite of its checkpoint: identical")
PYEOF

# 2. continue the Python run for two steps
"$NANOCHAT" base_train "${D2[@]}" --resume-from-step 3 --num-iterations 5 --eval-every -1 > "$tmp/cont.log"
grep -E "^step 0000[34]/00005" "$tmp/cont.log"
[ "$(grep -cE '^step 0000[34]/00005 .*\| loss: [0-9]+\.[0-9]+ ' "$tmp/cont.log")" = 2 ]
$PY - "$FIXTURES/python_basedir/base_checkpoints/d2" "$tmp/base/base_checkpoints/d2" <<'PYEOF'
import json, math, sys, torch
ref, got = sys.argv[1], sys.argv[2]
a = torch.load(ref + "/model_000003.pt", map_location="cpu", weights_only=True)
b = torch.load(got + "/model_000005.pt", map_location="cpu", weights_only=True)
assert list(a) == list(b)
for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    assert torch.isfinite(b[k].float()).all(), k
assert not torch.equal(a["transformer.h.0.attn.c_q.weight"], b["transformer.h.0.attn.c_q.weight"])
o = torch.load(got + "/optim_000005_rank0.pt", map_location="cpu", weights_only=True)
assert len(o["param_groups"]) == len(torch.load(ref + "/optim_000003_rank0.pt", weights_only=True)["param_groups"])
meta = json.load(open(got + "/meta_000005.json"))
keys = ["step", "val_bpb", "model_config", "user_config", "device_batch_size", "max_seq_len", "total_batch_size",
        "dataloader_state_dict", "loop_state"]
assert list(meta) == keys, list(meta)
assert meta["step"] == 5 and meta["user_config"]["resume_from_step"] == 3 and meta["total_batch_size"] == 512
assert sorted(meta["dataloader_state_dict"]) == ["epoch", "pq_idx", "rg_idx"]
assert sorted(meta["loop_state"]) == ["min_val_bpb", "smooth_train_loss", "total_training_time"]
print("python reads the continued checkpoint")
PYEOF

# 3. a fresh tiny run: falling loss and validation bpb
rm -rf "$tmp/base/base_checkpoints" "$tmp/base/report"
"$NANOCHAT" base_train --depth 2 --aspect-ratio 32 --head-dim 32 --max-seq-len 256 --device-batch-size 4 \
  --total-batch-size 2048 --num-iterations 40 --warmup-steps 5 --eval-every 20 --eval-tokens 4096 \
  --sample-every 40 --core-metric-every 40 --model-tag tiny > "$tmp/train.log"
grep -E "Validation bpb|^step 000(00|39)/" "$tmp/train.log"
grep -qE "^Step 00040 \| CORE metric: -?[0-9.]+$" "$tmp/train.log"   # the mini CORE bundle of the fixture base dir
grep -qE "^wte +: [0-9,]+$" "$tmp/train.log"
grep -qE "^total +: [0-9,]+$" "$tmp/train.log"
[ "$(grep -c '^<|bos|>' "$tmp/train.log")" = 7 ]
grep -q "Peak memory usage: " "$tmp/train.log"
$PY - "$tmp/train.log" <<'PYEOF'
import re, sys
log = open(sys.argv[1]).read()
bpb = [float(x) for x in re.findall(r"^Step \d+ \| Validation bpb: ([0-9.]+)$", log, re.M)]
loss = [float(x) for x in re.findall(r"^step \d+/00040 .*\| loss: ([0-9.]+) \|", log, re.M)]
assert len(bpb) == 3 and len(loss) == 40, (bpb, len(loss))
assert bpb[2] < bpb[0] - 0.3, bpb
assert loss[-1] < loss[0] - 0.5, (loss[0], loss[-1])
line = re.search(r"^step 00039/00040 \(97\.50%\) \| loss: [0-9.]+ \| lrm: [0-9.]+ \| dt: [0-9.]+ms \| tok/sec: [0-9,]+ \| "
                 r"bf16_mfu: 0\.00 \| epoch: \d+ pq: \d+ rg: \d+ \| total time: [0-9.]+m \| eta: [0-9.]+m$", log, re.M)
assert line, "step line format"
print(f"val bpb {bpb[0]:.4f} -> {bpb[2]:.4f}, loss {loss[0]:.4f} -> {loss[-1]:.4f}")
PYEOF
test -f "$tmp/base/base_checkpoints/tiny/model_000040.pt"
test -f "$tmp/base/base_checkpoints/tiny/optim_000040_rank0.pt"
grep -q "Minimum validation bpb" "$tmp/base/report/base-model-training.md"
grep -q "Number of parameters" "$tmp/base/report/base-model-training.md"
test -s "$tmp/base/logs/nanochat/dummy/metrics.jsonl"

# base_eval: the same 4096 val tokens give the same bpb as the training run's last evaluation
"$NANOCHAT" base_eval --eval bpb,sample --model-tag tiny --device-batch-size 4 --split-tokens 4096 > "$tmp/eval.log"
want=$(grep "^Step 00040 | Validation bpb" "$tmp/train.log" | awk '{print $NF}')
grep -q "^val bpb: $want$" "$tmp/eval.log" || { cat "$tmp/eval.log"; echo "val bpb differs from $want"; exit 1; }
grep -q "^train bpb: " "$tmp/eval.log"
[ "$(grep -c '^<|bos|>' "$tmp/eval.log")" -ge 15 ]
grep -q "val bpb" "$tmp/base/report/base-model-evaluation.md"
"$NANOCHAT" base_eval --eval core --model-tag tiny > "$tmp/core.log"
grep -qE "^CORE metric: -?[0-9.]+$" "$tmp/core.log"
test -s "$tmp/base/base_eval/base_model_000040.csv"
echo "base_train e2e ok"
