#!/usr/bin/env bash
# setup.sh: everything nanochat-cpp needs on a fresh Debian 12 machine, then a Release build into build/.
#   bash scripts/setup.sh          install what is missing (needs root or sudo for apt), configure, build
# 1. Debian packages (compiler, CMake, the C++ libraries, chromium for the browser test).
# 2. .venv/: a Python virtual environment with requirements.txt (the pinned torch wheel, whose libtorch we build
#    against, and the Python packages the tests and benchmarks check our output with).
# 3. CMake with CMAKE_PREFIX_PATH = .venv's torch.utils.cmake_prefix_path — unless CMAKE_PREFIX_PATH is set in the
#    environment (any libtorch >= 2.9, e.g. a GPU machine's own torch), which wins. With a CUDA toolkit (nvcc on PATH
#    or in /usr/local/cuda) this is the CUDA build; without one, the CPU build.
# Idempotent: a second run installs nothing and rebuilds only what changed (ccache + a torch PCH).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  python3 python3-venv
  libgloo-dev libpcre2-dev nlohmann-json3-dev libcpp-httplib-dev libcurl4-openssl-dev
  libzstd-dev libsnappy-dev zlib1g-dev libcli11-dev libfmt-dev libyaml-cpp-dev
  googletest libgtest-dev libbenchmark-dev
  librsvg2-bin python3-protobuf
  wamerican unzip python3.11-doc
  chromium
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The venv, reinstalled only when requirements.txt changed (pip's cache makes a reinstall a few minutes; the first
# download is about 3 GB: torch and the CUDA libraries it loads).
stamp=.venv/.requirements.txt
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt "$stamp"; then
  echo "setup: installing requirements.txt into .venv/"
  [ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  cp requirements.txt "$stamp"
fi

# The CUDA toolkit's usual home, so `nvcc` is found without a login shell's PATH.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi

prefix=${CMAKE_PREFIX_PATH:-$(.venv/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')}
# Paths relative to the checkout in ccache keys, so a fresh clone elsewhere reuses the cache.
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime CCACHE_BASEDIR="$PWD"
configured=$(sed -n 's/^NANOCHAT_CONFIGURED_PREFIX:INTERNAL=//p' build/CMakeCache.txt 2>/dev/null || true)
if [ ! -f build/build.ninja ] || [ "$configured" != "$prefix" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DNANOCHAT_CONFIGURED_PREFIX:INTERNAL="$prefix"
fi
cmake --build build -j "$(nproc)"
echo "setup: done — the program is build/nanochat ($(build/nanochat --version | head -1))"
