#!/usr/bin/env bash
# A rank that dies or hangs ends a multi-process run with a clear message and a non-zero status, never a hang:
#  1. nanochat launch: kill -9 rank 1 mid-run -> launch names the dead rank, stops rank 0 and exits non-zero;
#  2. ranks started by hand with torchrun's variables (as torchrun starts them): kill -9 rank 1 -> rank 0's next
#     collective fails with "rank 0 lost its process group ..." and exits 1;
#  3. the same with rank 1 stopped (SIGSTOP, a hang rather than a death): rank 0 gives up after
#     NANOCHAT_DIST_TIMEOUT seconds;
#  4. an incomplete or malformed launcher environment is one error line; so is launching an unknown subcommand.
set -euo pipefail
: "${NANOCHAT:?}" "${FIXTURES:?}"
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
export OMP_NUM_THREADS=1 NANOCHAT_LOGGER=none
source "$(dirname "$0")/dist_e2e_lib.sh"
make_pretrain_base "$tmp"
ARGS=("${TINY_MODEL_ARGS[@]}" --num-iterations 100000 --eval-every -1 --core-metric-every -1 --sample-every -1)
wait_for() {  # wait_for <file> <regex>: until a line matches (at most 60 s)
  for _ in $(seq 600); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1"; cat "$1"; exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. launch
export NANOCHAT_DIST_TIMEOUT=30
"$NANOCHAT" launch --nproc-per-node 2 -- base_train "${ARGS[@]}" > "$tmp/l.log" 2> "$tmp/l.err" &
launch_pid=$!
pids+=("$launch_pid")
wait_for "$tmp/l.log" "^step 00003/"
rank1=$(sed -nE 's/^launch: .*rank 1 pid ([0-9]+).*/\1/p' "$tmp/l.err")
[ -n "$rank1" ]
kill -9 "$rank1"
set +e
timeout 60 tail --pid="$launch_pid" -f /dev/null
wait "$launch_pid"
rc=$?
set -e
cat "$tmp/l.err"
[ $rc != 0 ] && [ $rc != 124 ]
grep -q "^launch: rank 1 was killed by signal 9 .*; stopping the other ranks$" "$tmp/l.err"

# 2. by hand, as torchrun would start them; rank 1 dies
start_ranks() {
  local port; port=$(free_port)
  for r in 0 1; do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$NANOCHAT" base_train "${ARGS[@]}" > "$tmp/r$r.log" 2> "$tmp/r$r.err" &
    eval "pid$r=\$!"
    pids+=("$!")
  done
}
start_ranks
wait_for "$tmp/r0.log" "^step 00003/"
kill -9 "$pid1"
set +e
timeout 60 tail --pid="$pid0" -f /dev/null
wait "$pid0"
rc=$?
set -e
cat "$tmp/r0.err"
[ $rc = 1 ]
grep -q "^error: rank 0 lost its process group during " "$tmp/r0.err"
[ "$(wc -l < "$tmp/r0.err")" = 1 ]

# 3. rank 1 hangs: rank 0 waits NANOCHAT_DIST_TIMEOUT seconds, then ends
export NANOCHAT_DIST_TIMEOUT=5
start_ranks
wait_for "$tmp/r0.log" "^step 00003/"
kill -STOP "$pid1"
set +e
timeout 90 tail --pid="$pid0" -f /dev/null
wait "$pid0"
rc=$?
set -e
kill -9 "$pid1" 2>/dev/null || true
cat "$tmp/r0.err"
[ $rc = 1 ]
grep -q "^error: rank 0 lost its process group during .*NANOCHAT_DIST_TIMEOUT=5s" "$tmp/r0.err"
# 4. bad environments
bad_env() {  # bad_env <expected error regex> VAR=value...
  local want=$1; shift
  if env -u RANK -u LOCAL_RANK -u WORLD_SIZE -u MASTER_ADDR -u MASTER_PORT "$@" \
      "$NANOCHAT" base_eval --eval core --device-type cpu > /dev/null 2> "$tmp/env.err"; then
    echo "accepted: $*"; exit 1
  fi
  cat "$tmp/env.err"
  grep -qE "^error: $want" "$tmp/env.err"
  [ "$(wc -l < "$tmp/env.err")" = 1 ]
}
bad_env "RANK, LOCAL_RANK and WORLD_SIZE must be set together" RANK=0
bad_env "WORLD_SIZE='two' is not an integer" RANK=0 LOCAL_RANK=0 WORLD_SIZE=two
bad_env "inconsistent ranks: RANK=2 LOCAL_RANK=0 WORLD_SIZE=2" RANK=2 LOCAL_RANK=0 WORLD_SIZE=2
bad_env "WORLD_SIZE=2 needs MASTER_ADDR and MASTER_PORT" RANK=0 LOCAL_RANK=0 WORLD_SIZE=2
bad_env "MASTER_PORT=70000 is not a TCP port" RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=70000
bad_env "NANOCHAT_DIST_TIMEOUT='-1' must be a positive number" RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 \
  MASTER_PORT=29999 NANOCHAT_DIST_TIMEOUT=-1
# An unknown subcommand is refused before any rank starts.
if "$NANOCHAT" launch --nproc-per-node 2 -- base_trian --depth 2 > /dev/null 2> "$tmp/sub.err"; then
  echo "launch accepted an unknown subcommand"; exit 1
fi
cat "$tmp/sub.err"
grep -q "^error: unknown subcommand 'base_trian' after '--'" "$tmp/sub.err"
[ "$(wc -l < "$tmp/sub.err")" = 1 ]
"$NANOCHAT" launch --nproc-per-node 1 -- tok-encode --help > /dev/null  # kebab-case names are subcommands too
echo "distributed failure e2e ok"
