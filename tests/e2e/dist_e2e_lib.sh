# dist_e2e_lib: shared setup of the multi-process pretraining tests (e2e_dist_base_train.sh and e2e_dist_kill.sh
# source it; not a test itself).
#
#   source "$(dirname "$0")/dist_e2e_lib.sh"
#   make_pretrain_base "$tmp"        # NANOCHAT_BASE_DIR=$tmp/base with the fixture tokenizer and pretraining shards
#   "$NANOCHAT" base_train "${TINY_MODEL_ARGS[@]}" ...
#
# Shards get small row groups so each of two ranks owns a share of every shard, the validation one included.

# A depth-2 model small enough for 2 single-threaded ranks on a 2-core machine.
TINY_MODEL_ARGS=(--depth 2 --aspect-ratio 32 --head-dim 32 --max-seq-len 128 --device-batch-size 2
                 --total-batch-size 512)

make_pretrain_base() {  # make_pretrain_base <scratch dir>
  export NANOCHAT_BASE_DIR="$1/base"
  mkdir -p "$NANOCHAT_BASE_DIR"
  cp -r "$FIXTURES/python_basedir/tokenizer" "$NANOCHAT_BASE_DIR/"
  cat "$FIXTURES"/parquet/pretrain/*.expected.jsonl > "$1/docs.jsonl"
  "$NANOCHAT" dataset --from-text "$1/docs.jsonl" --row-group-size 16 --shard-chars 400000 > /dev/null
}
