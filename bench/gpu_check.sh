#!/usr/bin/env bash
# gpu_check.sh: nanochat-cpp's check on one CUDA GPU, in one go (about 8 minutes on an H100): builds against the
# machine's own PyTorch, runs the GPU-labelled tests (each CUDA op against its CPU/plain reference), checks that a
# checkpoint trained on the GPU gives the same greedy tokens on the CPU, measures base_train at depth 12 (60 steps)
# and at depth 24 with and without --fp8 (20 steps each), and infer_bench on CUDA; then prints one summary table.
#
#   bash bench/gpu_debs.sh        # once, on a Debian 12 machine with apt: the -dev packages into .deb/ (~15 MB)
#   bash bench/gpu_check.sh       # on the GPU machine, in a copy of the checkout that holds .deb/
#   bash bench/gpu_check.sh --smoke   # the same steps at toy sizes on the CPU build in build/: checks this script
#
# The GPU machine needs PyTorch with CUDA (its libtorch is what we link), nvcc, g++, CMake and ninja; the C++
# libraries it lacks come from .deb/, unpacked into a private root under the build folder (nothing is installed).
# Environment: PYTHON (default python3, the one with torch), DEBS (default .deb), BUILD (default build-gpu),
# RESULTS (default $BUILD/gpu_check: the logs and summary.md), JOBS (default: all cores).
# Exit status: 0 when every check passed (the measurements are reported, not judged), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
smoke=0
[ "${1:-}" = --smoke ] && smoke=1
PY=${PYTHON:-python3}
py() { LD_LIBRARY_PATH="$ld_path_before" "$PY" "$@"; }  # python with the machine's own libraries, not .deb's
ld_path_before=${LD_LIBRARY_PATH:-}
DEBS=${DEBS:-.deb}
JOBS=${JOBS:-$(nproc)}
if [ $smoke = 1 ]; then BUILD=${BUILD:-build}; else BUILD=${BUILD:-build-gpu}; fi
RESULTS=${RESULTS:-$BUILD/gpu_check}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
t_start=$(date +%s)
failures=()
note() { echo "gpu_check: $*"; }
check() {  # check NAME COMMAND...: runs it with its output in $RESULTS/NAME.log; a failure is counted, not fatal
  local name=$1
  shift
  note "$name ..."
  if "$@" > "$RESULTS/$name.log" 2>&1; then
    note "$name: ok ($(($(date +%s) - t_start)) s in)"
  else
    note "$name: FAILED (exit $?), last lines of $RESULTS/$name.log:"
    tail -n 15 "$RESULTS/$name.log" | sed 's/^/    /'
    failures+=("$name")
  fi
}

# --- 1. build --------------------------------------------------------------------------------------------------------
torch_prefix=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)') ||
  { echo "gpu_check: $PY cannot import torch: set PYTHON to the python that has PyTorch"; exit 1; }
if [ $smoke = 0 ]; then
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
    { echo "gpu_check: $PY's torch sees no CUDA GPU (run with --smoke to check the script on a CPU)"; exit 1; }
  command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ] ||
    { echo "gpu_check: nvcc not found: put the CUDA toolkit's bin/ on PATH"; exit 1; }
  command -v nvcc > /dev/null || export PATH="$PATH:/usr/local/cuda/bin"
  prefix="$torch_prefix"
  mkdir -p "$BUILD"
  root="$(cd "$BUILD" && pwd)/debroot"
  if compgen -G "$DEBS/*.deb" > /dev/null; then
    rm -rf "$root" && mkdir -p "$root"
    command -v dpkg-deb > /dev/null || { echo "gpu_check: dpkg-deb not found: unpack $DEBS/*.deb yourself"; exit 1; }
    for f in "$DEBS"/*.deb; do dpkg-deb -x "$f" "$root"; done
    lib="$root/usr/lib/x86_64-linux-gnu"
    prefix="$torch_prefix;$root/usr"
    export PKG_CONFIG_LIBDIR="$lib/pkgconfig:$root/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root"
    # The linker needs it too (libcurl's own libraries); python runs without it (py above).
    export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    pkgconf_flag=()
    command -v pkg-config > /dev/null || pkgconf_flag=(-DPKG_CONFIG_EXECUTABLE="$root/usr/bin/pkgconf")
    note "unpacked $(ls "$DEBS"/*.deb | wc -l) packages from $DEBS/ into $root"
  else
    pkgconf_flag=()
    note "no $DEBS/*.deb: the C++ libraries must be installed on this machine (bash bench/gpu_debs.sh fetches them)"
  fi
  arch=$(py -c 'import torch; c = torch.cuda.get_device_capability(); print(f"{c[0]}{c[1]}")')
  check configure cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DNANOCHAT_CUDA=ON -DNANOCHAT_CUDA_ARCHS="$arch" -DNANOCHAT_PYTHON="$(command -v "$PY")" "${pkgconf_flag[@]}"
  check build cmake --build "$BUILD" -j "$JOBS" --target nanochat test_cuda
else
  [ -x "$BUILD/nanochat" ] || { echo "gpu_check --smoke: no $BUILD/nanochat: run bash scripts/setup.sh first"; exit 1; }
fi
[ -x "$BUILD/nanochat" ] || { echo "gpu_check: the build failed; see $RESULTS/build.log"; exit 1; }
NANOCHAT="$(cd "$BUILD" && pwd)/nanochat"


# --- 2. the GPU-labelled tests -----------------------------------------------------------------------------------
# fp32 (the model tests compare the GPU with the CPU in the compute dtype, which would be bf16 on a GPU); the kernel
# tests pick their own dtypes.
check gpu_tests env NANOCHAT_DTYPE=float32 ctest --test-dir "$BUILD" -L gpu --output-on-failure

# --- 3. a base dir: the 32768-token cl100k-prefix tokenizer and the fixture shards (no network needed) -----------
# Each run saves its last step (17 GB at depth 24 with the optimizer): in memory when /dev/shm has room, deleted after.
base="$RESULTS/base"
if [ $smoke = 0 ] && [ "$(df -k --output=avail /dev/shm 2> /dev/null | tail -1)" -gt $((40 * 1024 * 1024)) ] 2> /dev/null; then
  base=/dev/shm/nanochat_gpu_check.$$
  trap 'rm -rf "$base"' EXIT
fi
rm -rf "$base" && mkdir -p "$base/base_data_climbmix"
cp tests/fixtures/parquet/pretrain/*.parquet "$base/base_data_climbmix/"
check tokenizer py bench/make_cl100k_tokenizer.py "$base/tokenizer" 32768
export NANOCHAT_BASE_DIR="$base" NANOCHAT_LOGGER=none
device=cuda
if [ $smoke = 1 ]; then device=cpu; fi

# --- 4. a checkpoint trained on the GPU gives the same greedy tokens on the CPU ------------------------------------
# fp32 weights on both sides, so that the comparison is of the checkpoint and the two code paths (the GPU's KV cache
# is bf16, as nanochat's; its logits are compared too).
ckpt_size=(--depth 4 --max-seq-len 256 --device-batch-size 8 --total-batch-size 2048 --num-iterations 30)
[ $smoke = 1 ] && ckpt_size=(--depth 2 --max-seq-len 64 --device-batch-size 2 --total-batch-size 128 --num-iterations 4)
check ckpt_train env NANOCHAT_DTYPE=float32 "$NANOCHAT" base_train --device-type "$device" "${ckpt_size[@]}" \
  --eval-every -1 --core-metric-every -1 --sample-every -1 --model-tag gpucheck
same_tokens() {
  local args=(sample --source base --model-tag gpucheck --prompt "The capital of France is" --temperature 0
    --max-tokens 24 --json --logits 64)
  NANOCHAT_DTYPE=float32 "$NANOCHAT" "${args[@]}" --device-type "$device" | grep '^{' > "$RESULTS/sample_gpu.json" &&
    NANOCHAT_DTYPE=float32 "$NANOCHAT" "${args[@]}" --device-type cpu | grep '^{' > "$RESULTS/sample_cpu.json" &&
    py - "$RESULTS/sample_gpu.json" "$RESULTS/sample_cpu.json" <<'PYEOF'
import json, sys
g, c = (json.loads(open(p).readline()) for p in sys.argv[1:3])
same = sum(a == b for a, b in zip(g["ids"], c["ids"]))
diff = max(abs(a - b) for a, b in zip(g["last_logits"], c["last_logits"]))
print(f"greedy tokens: {same}/{len(c['ids'])} the same; last-position logits: max abs(GPU - CPU) {diff:.2e}")
print("GPU:", g["text"]); print("CPU:", c["text"])
sys.exit(0 if g["ids"] == c["ids"] else 1)
PYEOF
}
check ckpt_same_tokens same_tokens

# --- 5. training throughput ----------------------------------------------------------------------------------------
train() {  # train NAME ARGS...: a base_train run of its own (no eval, no CORE, no samples), log in NAME.log
  local name=$1
  shift
  check "$name" "$NANOCHAT" base_train --device-type "$device" --eval-every -1 --core-metric-every -1 \
    --sample-every -1 --model-tag "$name" "$@"
  rm -rf "$base/base_checkpoints/$name"  # gigabytes at depth 24, and nothing reads them
}
if [ $smoke = 1 ]; then
  train d12 --depth 2 --max-seq-len 64 --device-batch-size 2 --total-batch-size 128 --num-iterations 12
  train d24_bf16 --depth 2 --max-seq-len 64 --device-batch-size 2 --total-batch-size 128 --num-iterations 6
  train d24_fp8 --depth 2 --max-seq-len 64 --device-batch-size 2 --total-batch-size 128 --num-iterations 6 --fp8
else
  # Depth 12 as nanochat's single-GPU runs (device batch 32 x 2048, 4 micro-batches a step); depth 24 at one
  # micro-batch of 16 x 2048 a step, so that 20 steps take seconds.
  train d12 --depth 12 --device-batch-size 32 --total-batch-size 262144 --num-iterations 60
  train d24_bf16 --depth 24 --device-batch-size 16 --total-batch-size 32768 --num-iterations 20
  train d24_fp8 --depth 24 --device-batch-size 16 --total-batch-size 32768 --num-iterations 20 --fp8
fi

# --- 6. inference --------------------------------------------------------------------------------------------------
if [ $smoke = 1 ]; then
  check infer "$NANOCHAT" infer_bench --depth 2 --device-type "$device" --batch-sizes 1,4 --prompt-len 16 \
    --max-tokens 8 --repeats 2 --json
else
  check infer "$NANOCHAT" infer_bench --depth 12 --device-type cuda --batch-sizes 1,8,32 --prompt-len 256 \
    --max-tokens 128 --repeats 3 --json
fi

# --- 7. the summary ----------------------------------------------------------------------------------------------
py - "$RESULTS" "$(($(date +%s) - t_start))" "${failures[*]:-}" <<'PYEOF' | tee "$RESULTS/summary.md"
import json, os, re, statistics, sys
results, seconds, failed = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def read(name):
    p = os.path.join(results, name + ".log")
    return open(p, errors="replace").read() if os.path.exists(p) else ""
step_re = re.compile(r"^step (\d+)/(\d+) .*?\| loss: ([0-9.]+) .*?\| dt: ([0-9.]+)ms \| tok/sec: ([0-9,]+) \| "
                     r"bf16_mfu: ([0-9.]+)", re.M)
def train_row(name):
    log = read(name)
    rows = [(int(s), float(l), float(dt), int(t.replace(",", "")), float(m)) for s, _, l, dt, t, m in step_re.findall(log)]
    timed = [r for r in rows if r[0] >= min(10, len(rows) // 2)] or rows  # the first steps warm up (allocator, cuBLAS)
    mem = re.search(r"Peak memory usage: ([0-9.]+)MiB", log)
    gpu = re.search(r"^GPU: (.*?) \|", log, re.M)
    fp8 = re.search(r"converted (\d+)/(\d+) linear layers", log)
    if not rows:
        return None
    return dict(name=name, steps=len(rows), tok=statistics.median(r[3] for r in timed),
                mfu=statistics.median(r[4] for r in timed), dt=statistics.median(r[2] for r in timed),
                loss=rows[-1][1], losses={r[0]: r[1] for r in rows}, mem=float(mem.group(1)) / 1024 if mem else None,
                gpu=gpu.group(1) if gpu else "cpu", fp8=f"{fp8.group(1)}/{fp8.group(2)}" if fp8 else "-")
print(f"# gpu_check summary ({seconds} s)\n")
tests = read("gpu_tests")
m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", tests)
skipped = len(re.findall(r"\*\*\*Skipped", tests))
print("| check | result |\n|---|---|")
print(f"| GPU tests (ctest -L gpu) | {m.group(0) if m else 'did not run'}{f' ({skipped} skipped)' if skipped else ''} |")
same = re.search(r"^greedy tokens: .*", read("ckpt_same_tokens"), re.M)
print(f"| GPU checkpoint -> CPU | {same.group(0) if same else 'did not run'} |")
for f in failed:
    print(f"| {f} | FAILED (see {f}.log) |")
print()
rows = [r for r in (train_row(n) for n in ("d12", "d24_bf16", "d24_fp8")) if r]
if rows:
    print(f"Training on {rows[0]['gpu']} (median of the steps after warm-up):\n")
    print("| run | steps | tok/s | bf16_mfu % | dt ms | peak GiB | FP8 layers | last loss |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        mem = f"{r['mem']:.1f}" if r["mem"] is not None else "-"
        print(f"| {r['name']} | {r['steps']} | {int(r['tok']):,} | {r['mfu']:.2f} | {r['dt']:.1f} | {mem} | {r['fp8']} | {r['loss']:.4f} |")
    by = {r["name"]: r for r in rows}
    if "d24_bf16" in by and "d24_fp8" in by:
        a, b = by["d24_bf16"], by["d24_fp8"]
        common = sorted(set(a["losses"]) & set(b["losses"]))
        gap = max(abs(a["losses"][s] - b["losses"][s]) for s in common) if common else float("nan")
        print(f"\nFP8 against bf16 at depth 24: {b['tok'] / a['tok']:.2f}x the tokens/s; largest loss gap over "
              f"{len(common)} steps {gap:.4f} (same seed, same data)")
    print()
infer = read("infer")
js = [l for l in infer.splitlines() if l.startswith("{")]
if js:
    j = json.loads(js[-1])
    print(f"Inference ({j['model']}, {j['device']}, prompt {j['prompt_len']}, {j['max_tokens']} new tokens):\n")
    print("| batch | TTFT ms | TPOT ms | tokens/s |\n|---|---|---|---|")
    for r in j["results"]:
        print(f"| {r['batch_size']} | {r['ttft_ms']:.2f} | {r['tpot_ms']:.2f} | {r['tokens_per_s']:.1f} |")
PYEOF
if [ ${#failures[@]} -gt 0 ]; then
  note "failed: ${failures[*]} (logs in $RESULTS)"
  exit 1
fi
note "all checks passed; the table is in $RESULTS/summary.md"
