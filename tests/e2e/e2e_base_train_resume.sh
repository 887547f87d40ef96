#!/usr/bin/env bash
# Resume is exact on CPU: 20 steps straight vs 10 steps + save + resume + 10 steps give identical losses at every
# step and identical parameters and optimizer state at the end.
# The data stream resumes as nanochat's does: at the row group after the saved position, so documents still
# buffered at the save are skipped. To compare model, optimizer, schedules and loop state alone, the corpus here is
# one document repeated, which makes every batch the same wherever the stream stands.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
PY=${NANOCHAT_PYTHON:-python3}  # .venv's python (ctest sets it); torch reads what we write
"$PY" -c 'import torch' || { echo "error: $PY cannot import torch (bash scripts/setup.sh installs it into .venv)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=2 NANOCHAT_LOGGER=none
export NANOCHAT_BASE_DIR="$tmp/base"
mkdir -p "$tmp/base/base_data_climbmix"
cp -r "$FIXTURES/python_basedir/tokenizer" "$tmp/base/"
doc=$(head -n 1 "$FIXTURES/parquet/pretrain/shard_00000.expected.jsonl")
for i in $(seq 1 600); do echo "$doc"; done > "$tmp/docs.jsonl"
"$NANOCHAT" dataset --from-text "$tmp/docs.jsonl" --row-group-size 16 --shard-chars 200000 > /dev/null
ARGS=(--depth 2 --aspect-ratio 32 --head-dim 32 --max-seq-len 128 --device-batch-size 2 --total-batch-size 512
      --num-iterations 20 --warmup-steps 4 --eval-every 10 --eval-tokens 512 --core-metric-every -1 --sample-every -1)
"$NANOCHAT" base_train "${ARGS[@]}" --model-tag straight --save-every 10 > "$tmp/straight.log"
mkdir -p "$tmp/base/base_checkpoints/resumed"
cp "$tmp/base/base_checkpoints/straight/"*_000010* "$tmp/base/base_checkpoints/resumed/"
"$NANOCHAT" base_train "${ARGS[@]}" --model-tag resumed --resume-from-step 10 > "$tmp/resumed.log"
grep -q "Resuming optimization from step 10" "$tmp/resumed.log"
steps() { grep -E "^step 000(1[0-9])/00020|^Step 000(1|2)0 \| Validation" "$1" | sed -E 's/ \| dt: .*//'; }
steps "$tmp/straight.log" > "$tmp/a.txt"
steps "$tmp/resumed.log" > "$tmp/b.txt"
[ "$(wc -l < "$tmp/a.txt")" = 12 ] || { cat "$tmp/a.txt"; exit 1; }
diff "$tmp/a.txt" "$tmp/b.txt"
$PY - "$tmp/base/base_checkpoints" <<'PYEOF'
import json, sys, torch
d = sys.argv[1]
a = torch.load(d + "/straight/model_000020.pt", weights_only=True)
b = torch.load(d + "/resumed/model_000020.pt", weights_only=True)
assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
oa, ob = torch.load(d + "/straight/optim_000020_rank0.pt", weights_only=True), torch.load(d + "/resumed/optim_000020_rank0.pt", weights_only=True)
assert oa["param_groups"] == ob["param_groups"]
for i in oa["state"]:
    for k, v in oa["state"][i].items():
        assert torch.equal(v, ob["state"][i][k]) if torch.is_tensor(v) else v == ob["state"][i][k], (i, k)
ma, mb = json.load(open(d + "/straight/meta_000020.json")), json.load(open(d + "/resumed/meta_000020.json"))
assert ma["loop_state"]["smooth_train_loss"] == mb["loop_state"]["smooth_train_loss"]
assert ma["val_bpb"] == mb["val_bpb"] and ma["loop_state"]["min_val_bpb"] == mb["loop_state"]["min_val_bpb"]
print("parameters, optimizer state and loop state identical")
PYEOF
cat "$tmp/b.txt"
echo "resume exact"
