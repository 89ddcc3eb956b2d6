#!/usr/bin/env bash
# The desktop app on the GPU machine, scripted (app_tour.attnlab): a GLX
# window on the GPU under the carried Xvfb (scripts/gpu_gl.sh), the default
# model's real weights (scripts/gpu_model.sh), every view at 8192 tokens.
#   APP=/root/bin/attnlab SWEEP=/root/lab/sweep_ctx8192 OUT=$OUT bench/gpu/app_tour.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
APP=${APP:-/root/bin/attnlab}
OUT=${OUT:-/tmp/app_tour}
SWEEP=${SWEEP:-bench/results/sweep_smollm2_ctx2048}
MODEL=${GPU_MODEL_DIR:-/root/model}/SmolLM2-135M-Instruct.Q4_1.gguf
GL=${GL_ROOT:-/opt/x}
mkdir -p "$OUT/shots"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
[ -d "$(dirname "$APP")/lib" ] && export LD_LIBRARY_PATH=$(dirname "$APP")/lib:$LD_LIBRARY_PATH
export LD_LIBRARY_PATH=$GL/usr/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH
export DISPLAY=:99 __GLX_VENDOR_LIBRARY_NAME=nvidia ATTNLAB_DATA_DIR=$PWD HOME=$(mktemp -d)
[ -e /tmp/.X11-unix/X99 ] || bash scripts/gpu_gl.sh xvfb || exit 1
sed -e "s#@OUT@#$OUT/shots#g" -e "s#@SWEEP@#$SWEEP#g" bench/gpu/app_tour.attnlab > "$OUT/app_tour.attnlab"
timeout "${TOUR_TIMEOUT:-420}" "$APP" "$MODEL" --script "$OUT/app_tour.attnlab" --screenshot-dir "$OUT/shots" \
    --size 1600 1000 >"$OUT/app.log" 2>&1
rc=$?
echo "app rc=$rc"; grep -v "^\s*$" "$OUT/app.log" | tail -25
ls "$OUT/shots"
exit $rc
