#!/usr/bin/env bash
# README's second command: install what is needed, build, run the whole test
# suite. Tests that need the default model fail (not skip) when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ATTNLAB_REQUIRE_ASSETS=1
ctest --preset release -j2
