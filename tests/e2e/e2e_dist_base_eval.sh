#!/usr/bin/env bash
# base_eval on 2 processes reports what 1 process reports, on the Python-written d2 model of the fixture base dir:
#  1. CORE (examples strided over ranks, correct counts summed): the CSV equals the Python reference's
#     expected_core.json exactly, through nanochat launch (all examples) and .venv's torchrun --no_python
#     (--max-per-task 10);
#  2. bits per byte (row groups strided over ranks, nats and bytes summed): within 1% of 1 process.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
PY=${NANOCHAT_PYTHON:-python3}  # .venv's python (ctest sets it); its torchrun starts ranks
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 NANOCHAT_LOGGER=none NANOCHAT_DIST_TIMEOUT=120
export NANOCHAT_BASE_DIR="$tmp/base"
cp -r "$FIXTURES/python_basedir" "$NANOCHAT_BASE_DIR"
chmod -R u+w "$NANOCHAT_BASE_DIR"
check() {  # $1 = expected key suffix ("" or "_max_per_task_10")
  $PY "$(dirname "$0")/check_core_csv.py" "$NANOCHAT_BASE_DIR/base_eval/base_model_000003.csv" \
    "$FIXTURES/python_basedir/expected_core.json" "$1"
}

# 1. CORE
"$NANOCHAT" launch --nproc-per-node 2 -- base_eval --eval core --model-tag d2 --device-type cpu > "$tmp/core.log" 2> "$tmp/core.err"
grep -q "^Distributed world size: 2$" "$tmp/core.log"
grep -q "^CORE metric: 0.1545$" "$tmp/core.log" || { cat "$tmp/core.log" "$tmp/core.err"; exit 1; }
check ""
rm "$NANOCHAT_BASE_DIR/base_eval/base_model_000003.csv"
T=(base_eval --eval core --model-tag d2 --max-per-task 10 --device-type cpu)
# torchrun from .venv's torch wheel, as nanochat users launch (torchrun --no-python runs our binary directly).
TORCHRUN=$(dirname "$PY")/torchrun
"$TORCHRUN" --standalone --nproc_per_node=2 --no_python "$NANOCHAT" "${T[@]}" > "$tmp/tr.log" 2> "$tmp/tr.err" \
  || { cat "$tmp/tr.log" "$tmp/tr.err"; exit 1; }
grep -q "^Distributed world size: 2$" "$tmp/tr.log"
check "_max_per_task_10"

# 2. bits per byte on training data built from the fixture documents (small row groups: every rank gets a share)
cat "$FIXTURES"/parquet/pretrain/*.expected.jsonl > "$tmp/docs.jsonl"
"$NANOCHAT" dataset --from-text "$tmp/docs.jsonl" --row-group-size 16 --shard-chars 400000 > /dev/null
E=(--eval bpb --model-tag d2 --device-batch-size 2 --split-tokens 65536 --device-type cpu)
"$NANOCHAT" base_eval "${E[@]}" > "$tmp/bpb1.log"
"$NANOCHAT" launch --nproc-per-node 2 -- base_eval "${E[@]}" > "$tmp/bpb2.log" 2> "$tmp/bpb2.err"
grep -E "^(train|val) bpb" "$tmp/bpb1.log" "$tmp/bpb2.log"
$PY - "$tmp/bpb1.log" "$tmp/bpb2.log" <<'PYEOF'
import re, sys
def read(p):
    return {k: float(v) for k, v in re.findall(r"^(train|val) bpb: ([0-9.]+)$", open(p).read(), re.M)}
a, b = read(sys.argv[1]), read(sys.argv[2])
assert sorted(a) == sorted(b) == ["train", "val"], (a, b)
for k in a:
    assert abs(a[k] - b[k]) / a[k] < 0.01, (k, a[k], b[k])
PYEOF
echo "distributed base_eval e2e ok"
