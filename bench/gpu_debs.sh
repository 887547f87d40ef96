#!/usr/bin/env bash
# gpu_debs.sh: downloads the Debian packages bench/gpu_check.sh needs on a GPU machine that has PyTorch, CMake, ninja,
# nvcc and g++ but no package registry (a cloud image with torch preinstalled, say). Run it here, on a Debian 12
# machine with apt; copy the folder along with the checkout.
#   bash bench/gpu_debs.sh            # -> .deb/*.deb (ignored by git; about 15 MB)
#   bash bench/gpu_debs.sh DIR        # -> DIR/*.deb
# What is fetched: the -dev packages our CMakeLists.txt finds (scripts/setup.sh's list less the compiler, CMake and
# ninja, which the GPU machine has, and gloo, which only CPU multi-process runs need), pkgconf, and every library they
# pull in, except the C runtime, which must be the machine's own (OpenSSL comes along: cpp-httplib's .pc requires it).
# gpu_check.sh unpacks them into a private root (never into /), so nothing on that machine is changed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.deb}
mkdir -p "$out"

WANTED=(
  libpcre2-dev libzstd-dev libcpp-httplib-dev libsnappy-dev zlib1g-dev libcurl4-openssl-dev
  nlohmann-json3-dev libfmt-dev libyaml-cpp-dev libcli11-dev libgtest-dev pkgconf-bin
)
# The machine's own: the C/C++ runtime and its headers (the compiler there comes with them).
SKIP='^(libc6|libc6-dev|libc-dev-bin|linux-libc-dev|libgcc-s1|gcc-12-base|libstdc\+\+6|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc.*|rpcsvc-proto)$'

mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${WANTED[@]}" | grep -v '^[ <]' | sort -u | grep -Ev "$SKIP")
echo "gpu_debs: downloading ${#closure[@]} packages into $out/"
(cd "$out" && apt-get download -q -o APT::Sandbox::User=root "${closure[@]}" > /dev/null)
du -sh "$out" | awk '{print "gpu_debs: " $1 " in " $2}'
