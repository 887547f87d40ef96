#!/usr/bin/env bash
# setup.sh: everything nanochat-cpp needs on a fresh Debian 12 machine, then a Release build into build/.
#   bash scripts/setup.sh          install missing packages (needs root or sudo), configure, build
# Idempotent: a second run installs nothing and rebuilds only what changed (ccache + a torch PCH).
# CUDA: export CMAKE_PREFIX_PATH=<libtorch with CUDA>/share/cmake before running to build against it instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libgloo-dev libopenblas0-pthread python3-torch
  libpcre2-dev nlohmann-json3-dev libcpp-httplib-dev libcurl4-openssl-dev
  libzstd-dev libsnappy-dev zlib1g-dev libcli11-dev libfmt-dev libyaml-cpp-dev
  googletest libgtest-dev libbenchmark-dev
  librsvg2-bin python3-protobuf
  wamerican unzip python3.11-doc
  chromium nodejs
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The browser test drives chromium with node's playwright-core; npm comes with some nodejs builds, else Debian's npm.
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# libtorch's CPU matmuls go through libblas.so.3; with the reference BLAS they run ~30x slower than OpenBLAS.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
openblas=/usr/lib/$arch/openblas-pthread/libblas.so.3
if [ -e "$openblas" ] && [ "$(readlink -f /usr/lib/$arch/libblas.so.3)" != "$(readlink -f $openblas)" ]; then
  $SUDO update-alternatives --set "libblas.so.3-$arch" "$openblas"
  $SUDO update-alternatives --set "liblapack.so.3-$arch" "/usr/lib/$arch/openblas-pthread/liblapack.so.3" || true
fi

export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build -j "$(nproc)"

# Node packages for the browser test (tests/browser/package-lock.json pins them).
if [ ! -d tests/browser/node_modules/playwright-core ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
echo "setup: done — the program is build/nanochat"
