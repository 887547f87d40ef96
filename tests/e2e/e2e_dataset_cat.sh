#!/usr/bin/env bash
# Every parquet fixture (written by arrow-rs) must print, through `nanochat dataset --cat`, exactly the rows of its
# expected JSONL: same values, nulls and nesting (compared as parsed JSON, so key order does not matter).
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
P="$FIXTURES/parquet"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
compare() {  # compare <parquet> <expected.jsonl> [extra --cat flags]
  local pq=$1 exp=$2
  shift 2
  "$NANOCHAT" dataset --cat "$pq" "$@" > "$tmp/out.jsonl"
  python3 - "$tmp/out.jsonl" "$exp" "$@" <<'PY'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = [json.loads(l) for l in open(sys.argv[2])]
args = sys.argv[3:]
if "--columns" in args:
    cols = args[args.index("--columns") + 1].split(",")
    want = [{c: r[c] for c in cols} for r in want]
if "--limit" in args:
    want = want[: int(args[args.index("--limit") + 1])]
if got != want:
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            sys.exit(f"{sys.argv[2]}: row {i} differs:\n got  {json.dumps(g)[:300]}\n want {json.dumps(w)[:300]}")
    sys.exit(f"{sys.argv[2]}: {len(got)} rows, expected {len(want)}")
PY
  echo "ok $(basename "$pq") $*"
}
n=0
for pq in "$P"/pretrain/*.parquet "$P"/tasks/*.parquet; do
  compare "$pq" "${pq%.parquet}.expected.jsonl"; n=$((n + 1))
done
for pq in "$P"/variants/*.parquet; do
  compare "$pq" "$P/variants/expected.jsonl"; n=$((n + 1))
done
for pq in "$P"/types/*.parquet; do
  compare "$pq" "$P/types/types.expected.jsonl"; n=$((n + 1))
done
[ "$n" -eq 12 ] || { echo "expected 12 fixture files, found $n"; exit 1; }
compare "$P/tasks/smoltalk_train.parquet" "$P/tasks/smoltalk_train.expected.jsonl" --columns messages --limit 7
compare "$P/tasks/arc_easy_test.parquet" "$P/tasks/arc_easy_test.expected.jsonl" --columns choices,id

# Errors are one line naming the file, never a crash.
head -c 1000 "$P/pretrain/shard_00000.parquet" > "$tmp/cut.parquet"
if "$NANOCHAT" dataset --cat "$tmp/cut.parquet" > /dev/null 2> "$tmp/err"; then echo "truncated file was accepted"; exit 1; fi
grep -q "cut.parquet" "$tmp/err" || { echo "error does not name the file:"; cat "$tmp/err"; exit 1; }
if "$NANOCHAT" dataset --cat "$P/tasks/mmlu_test.parquet" --columns nope > /dev/null 2> "$tmp/err"; then exit 1; fi
grep -q "no column 'nope'" "$tmp/err" || { cat "$tmp/err"; exit 1; }
echo "all parquet fixtures read back exactly"
