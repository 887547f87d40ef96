#!/usr/bin/env bash
# bench/gpu_check.sh --smoke: the GPU check's steps at toy sizes on the CPU build, so that the script a GPU machine
# runs (tests, the GPU -> CPU checkpoint comparison, three base_train runs, infer_bench, the summary table) is
# exercised in CI, where there is no GPU. Checks: it exits 0 and its summary has every row, with numbers in them.
# env: NANOCHAT (binary), SOURCE_DIR, NANOCHAT_PYTHON (python with torch).
set -euo pipefail
: "${NANOCHAT:?}" "${SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/e2e_gpu_check.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=2
BUILD="$(dirname "$NANOCHAT")" RESULTS="$work" PYTHON="${NANOCHAT_PYTHON:-python3}" \
  bash "$SOURCE_DIR/bench/gpu_check.sh" --smoke > "$work/out.log" 2>&1 || { cat "$work/out.log"; fail "gpu_check.sh --smoke failed"; }
s="$work/summary.md"
[ -s "$s" ] || fail "no summary.md"
cat "$s"
grep -Eq '^\| GPU tests \(ctest -L gpu\) \| 100% tests passed, 0 tests failed out of [0-9]+ \([0-9]+ skipped\) \|$' "$s" ||
  fail "the GPU tests row (every test skipped on a CPU)"
grep -Eq '^\| GPU checkpoint -> CPU \| greedy tokens: ([0-9]+)/\1 the same; last-position logits: max abs\(GPU - CPU\) [0-9.e+-]+ \|$' "$s" || fail "the checkpoint row"
for run in d12 d24_bf16 d24_fp8; do
  grep -Eq "^\| $run \| [0-9]+ \| [0-9,]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| - \| [0-9.]+ \|$" "$s" || fail "the $run row"
done
grep -Eq '^FP8 against bf16 at depth 24: [0-9.]+x the tokens/s; largest loss gap over 6 steps [0-9.]+' "$s" ||
  fail "the FP8 comparison line"
grep -Eq '^\| 4 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|$' "$s" || fail "the inference rows"
grep -q 'all checks passed' "$work/out.log" || fail "the closing line"
echo "gpu_check.sh --smoke: ok"
