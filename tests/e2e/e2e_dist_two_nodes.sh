#!/usr/bin/env bash
# Two nodes over a real network: two network namespaces joined by a veth pair, one rank in each, Gloo on CPU.
#  1. `nanochat launch --nnodes 2 --node-rank R --master-addr <node 0's address>` gives the same losses as two ranks
#     on one node, and so does torchrun --nnodes 2;
#  2. cutting the link mid-run (ip link set ... down) ends both ranks within NANOCHAT_DIST_TIMEOUT, each with one
#     error line naming the peer it lost, and the last committed checkpoint resumes once the link is back;
#  3. killing one node's rank ends the other node's within the timeout.
# The nodes share the base dir, as a shared filesystem does for nanochat's multi-node runs (every rank loads the model
# to resume; rank 0 writes it, each rank its optimizer shard). Needs root and network namespaces; skips (77) where
# they cannot be made.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
PY=${NANOCHAT_PYTHON:-python3}
if [ "$(id -u)" != 0 ] || ! command -v ip > /dev/null; then echo "skipped: needs root and iproute2 (ip netns)"; exit 77; fi
tmp=$(mktemp -d)
id=$$
ns0=nc${id}a ns1=nc${id}b
net="10.$((100 + id % 100)).$((id / 100 % 250)).0"
addr0=${net%.0}.1 addr1=${net%.0}.2
cleanup() {
  [ -n "${pids:-}" ] && kill -9 $pids 2> /dev/null || true
  ip netns del "$ns0" 2> /dev/null || true
  ip netns del "$ns1" 2> /dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
if ! ip netns add "$ns0" 2> "$tmp/ns.err" || ! ip netns add "$ns1" 2>> "$tmp/ns.err" ||
   ! ip link add "v${id}a" type veth peer name "v${id}b" 2>> "$tmp/ns.err"; then
  echo "skipped: cannot create network namespaces here ($(head -1 "$tmp/ns.err"))"; exit 77
fi
ip link set "v${id}a" netns "$ns0"
ip link set "v${id}b" netns "$ns1"
ip -n "$ns0" addr add "$addr0/24" dev "v${id}a"
ip -n "$ns1" addr add "$addr1/24" dev "v${id}b"
for n in "$ns0:v${id}a" "$ns1:v${id}b"; do
  ip -n "${n%%:*}" link set lo up
  ip -n "${n%%:*}" link set "${n#*:}" up
done

export OMP_NUM_THREADS=1 NANOCHAT_LOGGER=none NANOCHAT_DIST_TIMEOUT=15
source "$(dirname "$0")/dist_e2e_lib.sh"
make_pretrain_base "$tmp"  # $tmp/base, seen by both nodes
ARGS=("${TINY_MODEL_ARGS[@]}" --eval-every -1 --core-metric-every -1 --sample-every -1)
losses() { sed -n 's/^step \([0-9]*\)\/.*| loss: \([0-9.]*\) .*/\1 \2/p' "$1"; }
port=29517
# on_node <0|1> <log> <command...>: runs the command in that node's network namespace
on_node() {
  local node=$1 log=$2
  shift 2
  local ns=$ns0
  [ "$node" = 1 ] && ns=$ns1
  ip netns exec "$ns" "$@" > "$log" 2> "$log.err"
}
two_nodes() {  # two_nodes <tag> <base_train args...>: both nodes through nanochat launch, in the background
  local tag=$1
  shift
  port=$((port + 1))
  for r in 0 1; do
    on_node $r "$tmp/$tag$r.log" "$NANOCHAT" launch --nnodes 2 --node-rank $r --nproc-per-node 1 \
      --master-addr "$addr0" --master-port $port -- base_train "${ARGS[@]}" "$@" &
    eval "pid_$tag$r=\$!"
    pids="${pids:-} $!"
  done
}
wait_ok() {  # wait_ok <pid> <log>
  wait "$1" || { echo "FAIL: $2 exited with an error"; tail -n 8 "$2" "$2.err"; exit 1; }
}

# --- 1. the same run on one node and on two ---
NANOCHAT_BASE_DIR=$tmp/base "$NANOCHAT" launch --nproc-per-node 2 -- base_train "${ARGS[@]}" --num-iterations 8 \
  --model-tag one > "$tmp/one.log" 2> "$tmp/one.err"
two_nodes two --num-iterations 8 --model-tag two
wait_ok "$pid_two0" "$tmp/two0.log"
wait_ok "$pid_two1" "$tmp/two1.log"
grep -q "^Distributed world size: 2$" "$tmp/two0.log"
[ "$(losses "$tmp/two0.log" | wc -l)" = 8 ]
diff <(losses "$tmp/one.log") <(losses "$tmp/two0.log") || { echo "FAIL: two nodes and one node differ"; exit 1; }
echo "ok: nanochat launch on two nodes gives one node's losses"

port=$((port + 1))
for r in 0 1; do
  on_node $r "$tmp/tr$r.log" "$(dirname "$PY")/torchrun" --nnodes 2 --node-rank $r --nproc-per-node 1 \
    --master-addr "$addr0" --master-port $port --no-python "$NANOCHAT" base_train "${ARGS[@]}" --num-iterations 8 \
    --model-tag torchrun &
  eval "pid_tr$r=\$!"
  pids="$pids $!"
done
wait_ok "$pid_tr0" "$tmp/tr0.log"
wait_ok "$pid_tr1" "$tmp/tr1.log"
diff <(losses "$tmp/one.log") <(losses "$tmp/tr0.log") || { echo "FAIL: torchrun on two nodes differs"; exit 1; }
echo "ok: torchrun on two nodes gives the same losses"

# --- 2. the link goes down mid-run ---
wait_for() {  # wait_for <file> <regex> (at most 120 s)
  for _ in $(seq 1200); do grep -qE "$2" "$1" 2> /dev/null && return 0; sleep 0.1; done
  echo "FAIL: timed out waiting for '$2' in $1"; tail -n 8 "$1" "$1.err"; exit 1
}
two_nodes cut --num-iterations 100000 --save-every 3 --model-tag cut
wait_for "$tmp/cut0.log" "^Saved metadata to: .*meta_000006.json"
ip -n "$ns1" link set "v${id}b" down
t0=$(date +%s)
for r in 0 1; do
  eval "p=\$pid_cut$r"
  rc=0
  timeout 90 tail --pid="$p" -f /dev/null || { echo "FAIL: node $r still running 90 s after the link went down"; exit 1; }
  wait "$p" || rc=$?
  [ $rc != 0 ] || { echo "FAIL: node $r exited 0 after losing its peer"; exit 1; }
done
dt=$(( $(date +%s) - t0 ))
[ $dt -le $((NANOCHAT_DIST_TIMEOUT * 3 + 10)) ] || { echo "FAIL: the ranks took ${dt}s to stop (timeout ${NANOCHAT_DIST_TIMEOUT}s)"; exit 1; }
# one error line per node, naming the peer it lost (rank 1's comes through launch with a "[rank 1] " prefix)
grep -qE "^error: rank 0 lost its process group during .*: its peer rank 1 at $addr1 died or did not answer" \
  "$tmp/cut0.log.err" || { echo "FAIL: node 0 does not name its lost peer"; cat "$tmp/cut0.log.err"; exit 1; }
grep -qE "^(\[rank 1\] )?error: rank 1 lost its process group during .*: its peer rank 0 at $addr0 died" \
  "$tmp/cut1.log.err" || { echo "FAIL: node 1 does not name its lost peer"; cat "$tmp/cut1.log.err"; exit 1; }
[ "$(grep -c "error: " "$tmp/cut0.log.err")" = 1 ] || { echo "FAIL: node 0 printed more than one error"; cat "$tmp/cut0.log.err"; exit 1; }
grep -h "error: " "$tmp/cut0.log.err" "$tmp/cut1.log.err" | cut -c1-200
echo "ok: both nodes stopped ${dt}s after the link went down"
ip -n "$ns1" link set "v${id}b" up
last=$(ls "$tmp/base/base_checkpoints/cut" | sed -n 's/^meta_0*\([0-9][0-9]*\)\.json$/\1/p' | sort -n | tail -1)
[ -n "$last" ] && [ "$last" -ge 6 ]
two_nodes resume --num-iterations $((last + 2)) --model-tag cut --resume-from-step "$last"
wait_ok "$pid_resume0" "$tmp/resume0.log"
wait_ok "$pid_resume1" "$tmp/resume1.log"
grep -q "Resuming optimization from step $last" "$tmp/resume0.log"
echo "ok: resumed from step $last after the link came back"

# --- 3. one node's rank is killed ---
two_nodes kill --num-iterations 100000 --model-tag kill
wait_for "$tmp/kill0.log" "^step 00003/"
rank1=$(sed -nE 's/^launch: .*rank 1 pid ([0-9]+).*/\1/p' "$tmp/kill1.log.err" "$tmp/kill1.log" | head -1)
[ -n "$rank1" ] || { echo "FAIL: no rank pid in node 1's launch log"; cat "$tmp/kill1.log.err"; exit 1; }
kill -9 "$rank1"
timeout 90 tail --pid="$pid_kill0" -f /dev/null || { echo "FAIL: node 0 still running 90 s after node 1's rank died"; exit 1; }
rc=0
wait "$pid_kill0" || rc=$?
[ $rc != 0 ]
grep -h "^error: " "$tmp/kill0.log.err" | head -2
echo "e2e_dist_two_nodes: ok"
