#!/usr/bin/env bash
# test.sh: build what changed, then run the whole test suite (ctest) on CPU.
#   bash scripts/test.sh            all tests
#   bash scripts/test.sh -R Tokenizer   extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
