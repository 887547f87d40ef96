#!/usr/bin/env bash
# End-to-end: our BPE trainer (`nanochat tok_train`) learns exactly the merges of rustbpe (the Rust trainer the Python
# nanochat uses) on real text: ~2.4 MB of the Python documentation from Debian's python3.11-doc (tutorial, reference,
# howto, faq, c-api), as one JSONL of paragraphs (~15k documents, so several of tok_train's 8192-document buffers)
# plus a few whole files as plain-text documents (cropped at the default --doc-cap), vocab 4096 with nanochat's
# split pattern. Fails unless every rank is identical (bench/rustbpe_compare.py names the first one that differs).
# A negative control checks the comparison itself: a copy of rustbpe's ranks with two merges swapped must differ.
# Skipped (77) when the Python has no rustbpe or python3.11-doc is not installed.
# env: NANOCHAT (binary), SOURCE_DIR, FIXTURES (unused); NANOCHAT_PYTHON (default $SOURCE_DIR/.venv/bin/python).
set -euo pipefail
: "${NANOCHAT:?}" "${SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${NANOCHAT_PYTHON:-$SOURCE_DIR/.venv/bin/python}
docs=/usr/share/doc/python3.11/html/_sources
if ! "$PY" -c 'import rustbpe' 2>/dev/null; then
  echo "skipped: $PY cannot import rustbpe (bash scripts/setup.sh installs it into .venv)"
  exit 77
fi
if [ ! -d "$docs/tutorial" ]; then
  echo "skipped: $docs is missing (install python3.11-doc: bash scripts/setup.sh)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/e2e_tokenizer_rustbpe.XXXXXX")
trap 'rm -rf "$work"' EXIT
export NANOCHAT_BASE_DIR="$work/base"
compare="$SOURCE_DIR/bench/rustbpe_compare.py"
vocab=4096

# The corpus: paragraphs (cut at blank lines) of the sorted .rst.txt files, one JSON document per line.
find "$docs/tutorial" "$docs/reference" "$docs/howto" "$docs/faq" "$docs/c-api" -name '*.txt' | LC_ALL=C sort > "$work/files"
"$PY" - "$work/files" "$work/corpus.jsonl" <<'PY'
import json, re, sys
n = 0
with open(sys.argv[2], "w") as out:
    for path in open(sys.argv[1]).read().split("\n"):
        if not path:
            continue
        text = open(path, "rb").read().decode("utf-8", errors="replace")
        for para in re.split(r"\n[ \t]*\n", text):
            if para.strip():
                out.write(json.dumps({"text": para + "\n"}) + "\n")
                n += 1
print(f"corpus: {n} paragraphs")
PY
whole=("$docs/tutorial/classes.rst.txt" "$docs/reference/datamodel.rst.txt" "$docs/howto/unicode.rst.txt")
inputs=("$work/corpus.jsonl" "${whole[@]}")

# Ours, into the default place: $NANOCHAT_BASE_DIR/tokenizer/tokenizer.pkl.
"$NANOCHAT" tok_train --input "${inputs[@]}" --vocab-size "$vocab" > "$work/ours.log" 2>&1 || { tail -20 "$work/ours.log"; fail "tok_train failed"; }
grep "^Training on \|^Training time: " "$work/ours.log"
ours="$NANOCHAT_BASE_DIR/tokenizer/tokenizer.pkl"
[ -s "$ours" ] || fail "tok_train wrote no $ours"
docs_ours=$(sed -n 's/^Training on \([0-9]*\) documents, \([0-9]*\) characters.*/\1 \2/p' "$work/ours.log")

# rustbpe on the same documents.
"$PY" "$compare" train --vocab-size "$vocab" --out "$work/rustbpe.tiktoken" "${inputs[@]}" | tee "$work/rust.log"
docs_rust=$(sed -n 's/^rustbpe: \([0-9]*\) documents, \([0-9]*\) characters.*/\1 \2/p' "$work/rust.log")
[ "$docs_ours" = "$docs_rust" ] || fail "the two read different documents: ours '$docs_ours', rustbpe '$docs_rust'"
[ "$(wc -l < "$work/rustbpe.tiktoken")" -eq $((vocab - 9)) ] || fail "rustbpe learned fewer than $((vocab - 9 - 256)) merges"

# The comparison can fail: rustbpe's own ranks with merges 1000 and 1001 swapped.
awk '$2 == 1000 { $2 = 1001; print; next } $2 == 1001 { $2 = 1000 } { print }' "$work/rustbpe.tiktoken" > "$work/swapped.tiktoken"
if "$PY" "$compare" compare "$work/rustbpe.tiktoken" "$work/swapped.tiktoken" > "$work/control.log"; then
  fail "the comparison did not notice two swapped merges: $(cat "$work/control.log")"
fi
grep -q "first differing rank 1000 " "$work/control.log" || fail "negative control: $(cat "$work/control.log")"

# The test proper.
"$PY" "$compare" compare "$ours" "$work/rustbpe.tiktoken" | tee "$work/compare.log" || fail "ours and rustbpe learned different merges"
grep -q "^merges identical: $((vocab - 9)) ranks" "$work/compare.log" || fail "unexpected comparison: $(cat "$work/compare.log")"
echo "ok: tok_train and rustbpe learned the same $((vocab - 9 - 256)) merges"
