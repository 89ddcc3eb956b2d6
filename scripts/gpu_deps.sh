#!/usr/bin/env bash
# Fills .deps/ (git-ignored) with the header-only dependencies the GPU machine
# lacks (it has nvcc, CMake and Python but no Debian packages), from this
# machine's Debian packages, so a device call can carry them:
#   .deps/eigen3 .deps/nlohmann .deps/catch2   found by CMake (ATTNLAB_DEPS_DIR)
#   .deps/include/{CLI,stb,boost}              found through CPATH=.deps/include
# Boost is cut to the headers core/graph actually includes (about 5 MB of 162).
set -euo pipefail
cd "$(dirname "$0")/.."
test -d build/layers || { echo "gpu_deps: build first (bash scripts/setup.sh)" >&2; exit 1; }
rm -rf .deps && mkdir -p .deps/include
cp -r /usr/include/eigen3 .deps/eigen3
cp -r /usr/include/nlohmann .deps/nlohmann
cp -r /usr/include/catch2 .deps/catch2
cp -r /usr/include/CLI /usr/include/stb .deps/include/
roots=$(for l in build/layers/*; do printf -- '-I%s ' "$l"; done)
for f in core/graph/*.cpp; do
  g++ -std=c++17 -M $roots -I/usr/include/eigen3 "$f"
done | tr ' \\' '\n\n' | grep '^/usr/include/boost/' | sort -u | while read -r h; do
  mkdir -p ".deps/include/$(dirname "${h#/usr/include/}")"
  cp "$h" ".deps/include/${h#/usr/include/}"
done
du -sh .deps
