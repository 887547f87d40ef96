#!/usr/bin/env bash
# A disk that fills up during a save: base_train's checkpoint directory is a tmpfs sized from a reference run on an
# ordinary disk, so that it runs out of space at a chosen point:
#   first  - in the first checkpoint's model file (nothing is saved, nothing is loadable);
#   model2 - the first checkpoint fits, the second runs out in its model file;
#   optim2 - the second's model file fits, its optimizer state does not;
#   meta2  - the second's model and optimizer files fit, its meta (the commit marker) does not;
#   rewrite - a second run saves step 1 over the first run's, and the disk has no room for the new copy.
# Files are written as <name>.pending first (checkpoint_manager.h), so that is the name in the error. Each time
# base_train stops with one line on stderr naming the file and "No space left on device" (ENOSPC), and leaves no
# .tmp or .pending file and nothing of step 2; the first checkpoint's files are byte for byte the reference run's
# (rewrite: the first run's), and `nanochat sample` picks step 1 as the latest and loads it (its zip CRC-32s
# checked on the way).
# Needs permission to mount a tmpfs (root, or an unprivileged user namespace); exits 77 (ctest: skipped) without.
# Run: ctest --test-dir build -R e2e_disk_full, or by hand with NANOCHAT=build/nanochat FIXTURES=tests/fixtures.
# env: NANOCHAT (binary), FIXTURES (tests/fixtures).
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
# The mounts live in a private mount namespace of their own, gone with the test however it ends.
if [ -z "${E2E_DISK_FULL_NS:-}" ]; then
  for ns in "unshare --mount --propagation private" "unshare --user --map-root-user --mount --propagation private"; do
    if $ns true 2> /dev/null; then E2E_DISK_FULL_NS=1 exec $ns bash "$0" "$@"; fi
  done
  echo "skipped: cannot make a private mount namespace here (unshare --mount refused, as root and as a user namespace)"
  exit 77
fi
tmp=$(mktemp -d)
cleanup() {
  for m in "$tmp"/base/base_checkpoints/*; do mountpoint -q "$m" 2> /dev/null && umount "$m"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
probe="$tmp/probe"
mkdir -p "$probe"
if ! err=$(mount -t tmpfs -o size=64k tmpfs "$probe" 2>&1); then
  echo "skipped: mounting a tmpfs is not permitted here: $err"
  exit 77
fi
umount "$probe"
export OMP_NUM_THREADS=2 NANOCHAT_LOGGER=none NANOCHAT_BASE_DIR="$tmp/base"
mkdir -p "$tmp/base"
cp -r "$FIXTURES/python_basedir/tokenizer" "$tmp/base/"
cat "$FIXTURES"/parquet/pretrain/*.expected.jsonl > "$tmp/docs.jsonl"
"$NANOCHAT" dataset --from-text "$tmp/docs.jsonl" > /dev/null
# Two saves: step 1 (--save-every 1) and step 2 (the last step).
TRAIN=(base_train --depth 1 --aspect-ratio 32 --head-dim 32 --max-seq-len 128 --device-batch-size 2
       --total-batch-size 256 --num-iterations 2 --save-every 1 --eval-every -1 --core-metric-every -1
       --sample-every -1)
fail() { echo "FAIL: $*"; exit 1; }

# The reference run on an ordinary disk gives each file's size.
"$NANOCHAT" "${TRAIN[@]}" --model-tag ref > "$tmp/ref.log"
ref="$tmp/base/base_checkpoints/ref"
for f in model_000001.pt optim_000001_rank0.pt meta_000001.json model_000002.pt optim_000002_rank0.pt \
         meta_000002.json; do
  [ -s "$ref/$f" ] || fail "the reference run did not write $f: $(ls "$ref")"
done
[ "$(ls "$ref" | wc -l)" = 6 ] || fail "the reference run wrote more than two checkpoints: $(ls "$ref")"
page=$(getconf PAGESIZE)
pages() { local n=0 f; for f in "$@"; do n=$((n + ($(stat -c %s "$ref/$f") + page - 1) / page)); done; echo $n; }
m1=$(pages model_000001.pt)
first=$(pages model_000001.pt optim_000001_rank0.pt meta_000001.json)
m2=$(pages model_000002.pt)
o2=$(pages optim_000002_rank0.pt)
echo "reference: step 1 takes $first pages of $page bytes, model_000002.pt $m2, optim_000002_rank0.pt $o2"

# disk_full <case> <pages> <file that runs out of space>
disk_full() {
  local name=$1 size=$(($2 * page)) file=$3 rc=0
  local dir="$tmp/base/base_checkpoints/$name"
  mkdir -p "$dir"
  mount -t tmpfs -o "size=$size" tmpfs "$dir"
  "$NANOCHAT" "${TRAIN[@]}" --model-tag "$name" > "$tmp/$name.log" 2> "$tmp/$name.err" || rc=$?
  [ $rc != 0 ] || fail "$name: base_train finished on a $size-byte disk: $(ls -l "$dir")"
  [ "$(wc -l < "$tmp/$name.err")" = 1 ] || fail "$name: wanted one line on stderr, got: $(cat "$tmp/$name.err")"
  grep -qE "^error: cannot write $dir/$file: .*No space left on device$" "$tmp/$name.err" \
    || fail "$name: wanted 'error: cannot write $dir/$file: ...No space left on device', got: $(cat "$tmp/$name.err")"
  [ -z "$(find "$dir" -name '*.tmp' -o -name '*.pending')" ] || fail "$name: a .tmp/.pending file was left: $(ls "$dir")"
  [ -z "$(find "$dir" -name '*_000002*')" ] || fail "$name: files of the failed step 2 were left: $(ls "$dir")"
  echo "ok: $name ($size bytes): $(cat "$tmp/$name.err")"
}

# Too small for the first checkpoint: nothing committed, and the loader says so.
disk_full first $((m1 / 2)) model_000001.pt.pending
[ -z "$(ls "$tmp/base/base_checkpoints/first")" ] || fail "first: files left: $(ls "$tmp/base/base_checkpoints/first")"
rc=0
"$NANOCHAT" sample -i base --model-tag first -p hi --max-tokens 2 > "$tmp/first.sample" 2>&1 || rc=$?
[ $rc != 0 ] && grep -q "no checkpoints found in .*base_checkpoints/first" "$tmp/first.sample" \
  || fail "first: sample should find no checkpoint: $(cat "$tmp/first.sample")"
umount "$tmp/base/base_checkpoints/first"

# Too small for the second checkpoint, running out in each of its three files in turn.
disk_full model2 $((first + m2 / 2)) model_000002.pt.pending
disk_full optim2 $((first + m2 + o2 / 2)) optim_000002_rank0.pt.pending
disk_full meta2 $((first + m2 + o2)) meta_000002.json.pending
for name in model2 optim2 meta2; do
  dir="$tmp/base/base_checkpoints/$name"
  # The first checkpoint is whole: the same tensors as the reference run (CPU training is deterministic) and its
  # meta for step 1.
  cmp "$ref/model_000001.pt" "$dir/model_000001.pt" || fail "$name: model_000001.pt differs from the reference run's"
  cmp "$ref/optim_000001_rank0.pt" "$dir/optim_000001_rank0.pt" || fail "$name: optim_000001_rank0.pt differs"
  grep -q '"step": 1,' "$dir/meta_000001.json" || fail "$name: meta_000001.json: $(head -c 300 "$dir/meta_000001.json")"
  # Whatever of step 2 is left is not committed: the latest step is 1, and it loads.
  "$NANOCHAT" sample -i base --model-tag "$name" -p hi --max-tokens 2 > "$tmp/$name.sample" 2>&1 \
    || fail "$name: sample could not load the first checkpoint: $(tail -3 "$tmp/$name.sample")"
  grep -q "^Loading model from $dir with step 1$" "$tmp/$name.sample" \
    || fail "$name: sample did not pick step 1: $(grep -m1 Loading "$tmp/$name.sample")"
  echo "ok: $name: step 1 intact and picked as the latest"
done

# A run resumed at its last step saves that step again; with no room for a second copy, the old one must stay
# committed.
dir="$tmp/base/base_checkpoints/rewrite"
mkdir -p "$dir"
mount -t tmpfs -o "size=$(((first + m1 / 2) * page))" tmpfs "$dir"
TRAIN1=()  # TRAIN with one iteration: it saves step 1 only
prev=
for a in "${TRAIN[@]}"; do if [ "$prev" = --num-iterations ]; then TRAIN1+=(1); else TRAIN1+=("$a"); fi; prev=$a; done
"$NANOCHAT" "${TRAIN1[@]}" --model-tag rewrite > "$tmp/rewrite1.log" 2>&1 \
  || fail "rewrite: the first run failed: $(tail -3 "$tmp/rewrite1.log")"
mkdir -p "$tmp/rewrite1"
cp "$dir"/* "$tmp/rewrite1/"
rc=0
"$NANOCHAT" "${TRAIN1[@]}" --model-tag rewrite --resume-from-step 1 > "$tmp/rewrite.log" 2> "$tmp/rewrite.err" || rc=$?
[ $rc != 0 ] || fail "rewrite: the second run saved a second copy of step 1 on a disk without room for it"
grep -qE "^error: cannot write $dir/model_000001.pt.pending: .*No space left on device$" "$tmp/rewrite.err" \
  || fail "rewrite: wanted 'error: cannot write $dir/model_000001.pt.pending: ...No space left on device', got: $(cat "$tmp/rewrite.err")"
[ -z "$(find "$dir" -name '*.tmp' -o -name '*.pending')" ] || fail "rewrite: a .tmp/.pending file was left: $(ls "$dir")"
for f in "$tmp/rewrite1"/*; do cmp "$f" "$dir/$(basename "$f")" || fail "rewrite: $(basename "$f") changed"; done
"$NANOCHAT" sample -i base --model-tag rewrite -p hi --max-tokens 2 > "$tmp/rewrite.sample" 2>&1 \
  || fail "rewrite: sample could not load step 1: $(tail -3 "$tmp/rewrite.sample")"
echo "ok: rewrite: $(cat "$tmp/rewrite.err"); the first run's step 1 intact and loadable"
echo "e2e_disk_full: ok"
