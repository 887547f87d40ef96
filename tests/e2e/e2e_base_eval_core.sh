#!/usr/bin/env bash
# End-to-end: `nanochat base_eval --eval core` on the Python-written base dir (tests/fixtures/python_basedir) writes
# base_eval/base_model_000003.csv whose accuracies equal expected_core.json (the Python reference's core_eval), with
# CORE within 1e-6, for all examples and for --max-per-task 10. The exact float values are checked in
# test_torch_core_eval.cpp; this checks the command, its CSV and its report section.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export NANOCHAT_BASE_DIR=$work/base
cp -r "$FIXTURES/python_basedir" "$NANOCHAT_BASE_DIR"
chmod -R u+w "$NANOCHAT_BASE_DIR"
check() {  # $1 = expected key suffix ("" or "_max_per_task_10")
  python3 "$(dirname "$0")/check_core_csv.py" "$NANOCHAT_BASE_DIR/base_eval/base_model_000003.csv" \
    "$FIXTURES/python_basedir/expected_core.json" "$1"
}
"$NANOCHAT" base_eval --eval core --model-tag d2 --device-type cpu > "$work/out.txt"
grep -q "CORE metric: 0.1545" "$work/out.txt" || { cat "$work/out.txt"; echo "FAIL: CORE line"; exit 1; }
check ""
grep -q "CORE metric" "$NANOCHAT_BASE_DIR/report/base-model-evaluation.md" || { echo "FAIL: report section"; exit 1; }
"$NANOCHAT" base_eval --eval core --model-tag d2 --max-per-task 10 --device-type cpu > "$work/out10.txt"
check "_max_per_task_10"
echo "e2e_base_eval_core: all checks passed"
