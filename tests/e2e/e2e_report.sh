#!/usr/bin/env bash
# e2e_report: `nanochat report reset|generate` on a scratch base dir.
#   NANOCHAT=build/nanochat SOURCE_DIR=. bash tests/e2e/e2e_report.sh
# reset writes header.md describing this checkout; sections and metrics.jsonl are laid down the way the
# training scripts write them (nanochat/report.h, nanochat/logger.h); generate must assemble report.md in
# nanochat's order with the summary table, wall clock and charts, copy it to the working directory, and the
# charts must render (rsvg-convert, when installed). Also: bad subcommands fail cleanly; rank 1 writes nothing.
set -euo pipefail
: "${NANOCHAT:?set NANOCHAT to the nanochat binary}"
: "${SOURCE_DIR:?set SOURCE_DIR to the source checkout}"
NANOCHAT=$(readlink -f "$NANOCHAT")
SOURCE_DIR=$(readlink -f "$SOURCE_DIR")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/e2e_report.XXXXXX")
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
export NANOCHAT_BASE_DIR="$tmp/base"
mkdir -p "$tmp/work"
cd "$tmp/work"
fail() { echo "FAIL: $*" >&2; exit 1; }
has() { grep -qF -- "$1" "$2" || fail "$2 lacks: $1"; }

# --- bad input: one-line errors, exit 2
if "$NANOCHAT" report frobnicate 2>"$tmp/err"; then fail "unknown command accepted"; fi
has "frobnicate" "$tmp/err"
"$NANOCHAT" report --help | grep -q "generate" || fail "--help does not list the commands"

# --- rank 1 writes nothing
RANK=1 "$NANOCHAT" report reset --source-dir "$SOURCE_DIR"
[ ! -e "$NANOCHAT_BASE_DIR/report/header.md" ] || fail "rank 1 wrote header.md"

# --- reset: header from this checkout
"$NANOCHAT" report reset --source-dir "$SOURCE_DIR"
header="$NANOCHAT_BASE_DIR/report/header.md"
has "# nanochat training report" "$header"
has "- Commit: $(git -C "$SOURCE_DIR" rev-parse --short HEAD)" "$header"
has "- Platform: Linux" "$header"
has "- libtorch: " "$header"
has "Run started: " "$header"
files=$(sed -n 's/^- Files: //p' "$header")
[ -n "$files" ] && [ "${files//,/}" -gt 5 ] || fail "bloat file count '$files'"

# --- what the stages write: section files and a base_train metrics.jsonl
now() { date -d "@$1" '+%Y-%m-%d %H:%M:%S'; }
section() {  # file title seconds-after-start body
  printf '## %s\ntimestamp: %s\n\n%b\n' "$2" "$(now $((started + $3)))" "$4" > "$NANOCHAT_BASE_DIR/report/$1"
}
write_run() {
  started=$(date -d "$(sed -n 's/^Run started: //p' "$header")" +%s)
  section tokenizer-training.md "Tokenizer training" 60 "- vocab_size: 32,768\n- train_time: 12.5000\n"
  section base-model-training.md "Base model training" 5400 "- depth: 4\n- Minimum validation bpb: 1.2345\n"
  section base-model-evaluation.md "Base model evaluation" 6000 "- CORE metric: 0.1234\n"
  section sft.md "SFT" 7200 "- num_iterations: 100\n"
  section chat-evaluation-sft.md "Chat evaluation sft" 7500 "- ARC-Easy: 0.3000\n- GSM8K: 0.0100\n- ChatCORE metric: 0.0500\n"
  mkdir -p "$NANOCHAT_BASE_DIR/logs/nanochat/d4"
  awk -v t="$started" 'BEGIN {
    for (s = 0; s <= 500; s += 10) {
      printf "{\"step\": %d, \"wall_time\": %d, \"train/loss\": %.4f, \"train/lrm\": 1.0}\n", s, t + s, 3 + 7 * exp(-s / 80.0)
      if (s % 100 == 0) printf "{\"step\": %d, \"wall_time\": %d, \"val/bpb\": %.4f}\n", s, t + s, 1 + 2 * exp(-s / 120.0)
    }
  }' > "$NANOCHAT_BASE_DIR/logs/nanochat/d4/metrics.jsonl"
}
write_run

# --- generate
"$NANOCHAT" report generate > "$tmp/gen.log"
report="$NANOCHAT_BASE_DIR/report/report.md"
cmp -s "$report" report.md || fail "report.md was not copied to the working directory"
prev=0
for s in "# nanochat training report" "## Tokenizer training" "## Base model training" \
         "![Base model: train loss](report-charts/base-train-loss.svg)" \
         "![Base model: validation bits per byte](report-charts/base-val-bpb.svg)" \
         "## Base model evaluation" "## SFT" "## Chat evaluation sft" "## Summary" \
         "| CORE            | 0.1234   | -        | -        |" "| ChatCORE        | -        | 0.0500   | -        |" \
         "Total wall clock time: 2h5m"; do
  line=$(grep -nF -- "$s" report.md | head -1 | cut -d: -f1)
  [ -n "$line" ] || fail "report.md lacks: $s"
  [ "$line" -ge "$prev" ] || fail "out of order: $s"
  prev=$line
done
for chart in base-train-loss base-val-bpb; do
  [ -s "report-charts/$chart.svg" ] || fail "report-charts/$chart.svg missing"
  if command -v rsvg-convert >/dev/null; then
    rsvg-convert -o "$tmp/$chart.png" "report-charts/$chart.svg" || fail "$chart.svg does not render"
    [ "$(head -c 8 "$tmp/$chart.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$chart.png is not a PNG"
  fi
done
grep -q "^Estimated cost" report.md && fail "a CPU-only run has no hourly rate, so no cost"

# --- on a GPU machine: the header lists the GPUs and the summary the cost. This machine may have no GPU, so a
# stand-in nvidia-smi prints what the real one prints for 8 H100s (the format query_gpus parses).
mkdir -p "$tmp/bin"
cat > "$tmp/bin/nvidia-smi" <<'SMI'
#!/bin/sh
case "$*" in
  *--query-gpu=index,name,memory.total*) for i in 0 1 2 3 4 5 6 7; do echo "$i, NVIDIA H100 80GB HBM3, 81559"; done ;;
  "") echo "| NVIDIA-SMI 535.104.05             Driver Version: 535.104.05   CUDA Version: 12.2     |" ;;
  *) exit 6 ;;
esac
SMI
chmod +x "$tmp/bin/nvidia-smi"
PATH="$tmp/bin:$PATH" CUDA_VISIBLE_DEVICES= "$NANOCHAT" report reset --source-dir "$SOURCE_DIR" > /dev/null
[ ! -e "$NANOCHAT_BASE_DIR/report/base-model-evaluation.md" ] || fail "reset kept an old section"
has "- GPUs: 8x NVIDIA H100 80GB HBM3" "$header"
has "- GPU Memory: 637.2 GB total" "$header"
has "- CUDA Version: 12.2" "$header"
has "- Hourly Rate: \$24.00/hour" "$header"
write_run
"$NANOCHAT" report generate > /dev/null
has "Total wall clock time: 2h5m" report.md
has "Estimated cost: \$50.00 (2.08 h at \$24.00/hour)" report.md
echo "e2e_report: ok"
