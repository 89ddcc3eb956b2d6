#!/usr/bin/env bash
# README's first command: install and build everything, then run the main job
# on the default model: perplexity on the KJV evaluation text, and a capture
# of every layer's Q/K/V.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL=assets/models/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p out
./build/attnlab-cli info "$MODEL"
./build/attnlab-cli ppl --model "$MODEL" --text kjv:eval --ctx 1024 --max-tokens 4096
./build/attnlab-cli capture --model "$MODEL" --text kjv:eval --ctx 1024 --out out/smollm2_kjv_eval_1024.safetensors
./build/attnlab-cli info out/smollm2_kjv_eval_1024.safetensors
# The desktop app opens on the default model where there is a display.
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x build/attnlab ]; then
  exec ./build/attnlab
else
  echo "start: no display here; on a desktop, ./build/attnlab opens the app on the default model"
fi
