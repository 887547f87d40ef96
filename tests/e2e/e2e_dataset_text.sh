#!/usr/bin/env bash
# `nanochat dataset --from-text` builds shards into $NANOCHAT_BASE_DIR/base_data_climbmix that read back (through
# --cat) as exactly the input documents, in order; the last shard is the validation split.
set -euo pipefail
: "${NANOCHAT:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NANOCHAT_BASE_DIR="$tmp/base"
mkdir -p "$tmp/in/notes"
printf 'A first document.\nIt has two lines.' > "$tmp/in/notes/a.txt"
printf 'Second: ünïcödé 🦙' > "$tmp/in/notes/b.md"
python3 - "$tmp/in/docs.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(300):
        f.write(json.dumps({"text": f"jsonl document {i} " + "word " * (i % 37), "id": i}) + "\n")
PY
"$NANOCHAT" dataset --from-text "$tmp/in/notes" "$tmp/in/docs.jsonl" --shard-chars 4000 --row-group-size 16 > "$tmp/log"
grep -q "Done! Wrote" "$tmp/log" || { cat "$tmp/log"; exit 1; }
data="$NANOCHAT_BASE_DIR/base_data_climbmix"
n=$(ls "$data"/*.parquet | wc -l)
[ "$n" -ge 2 ] || { echo "expected at least 2 shards, got $n"; exit 1; }
ls "$data" | grep -q '\.tmp$' && { echo "temp file left behind"; exit 1; }
for f in "$data"/*.parquet; do "$NANOCHAT" dataset --cat "$f"; done > "$tmp/back.jsonl"
python3 - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
want = [open(f"{t}/in/notes/a.txt").read(), open(f"{t}/in/notes/b.md").read()]
want += [json.loads(l)["text"] for l in open(f"{t}/in/docs.jsonl")]
got = [json.loads(l)["text"] for l in open(f"{t}/back.jsonl")]
assert got == want, f"{len(got)} docs back, {len(want)} expected; first difference at " + str(next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None))
PY
# Building again into a directory that already has shards is refused (it would change the validation split).
if "$NANOCHAT" dataset --from-text "$tmp/in/notes" > /dev/null 2> "$tmp/err"; then echo "overwrote existing shards"; exit 1; fi
grep -q "already holds" "$tmp/err" || { cat "$tmp/err"; exit 1; }
echo "from-text: $n shards read back exactly"
