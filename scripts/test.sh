#!/usr/bin/env bash
# README's second command: install what is needed, build, run the whole test
# suite. Tests that need the default model fail (not skip) when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ATTNLAB_REQUIRE_ASSETS=1
# The L=8192 GUI run is a benchmark (minutes on 2 cores): ATTNLAB_GUI_8K=1 to include it.
export ATTNLAB_GUI_8K=${ATTNLAB_GUI_8K:-0}
ctest --preset release -j2
