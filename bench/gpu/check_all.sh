#!/usr/bin/env bash
# One lease, one command: build every CUDA target once (cmake, headless,
# sm_90a) and the ctypes library, then run the cuda tests of core and of the
# GPU model, the CLI on the GPU, the model-shape throughput bench and,
# when A_DIR is set, the kernel A/B timing (bench/gpu/ab.sh). Logs under $OUT.
#   A_DIR=.oldk bench/gpu/check_all.sh
# Env: OUT (default /tmp/check_all), STEPS (default "tests cli bench ab masks"; masks:
# bench/gpu/bench_token_masks.py).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/check_all}
BUILD=${BUILD:-/tmp/build-check-all}
STEPS=${STEPS:-tests cli bench ab masks}
mkdir -p "$OUT" "$BUILD"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
[ -d "$ROOT/.deps/include" ] && export CPATH=$ROOT/.deps/include${CPATH:+:$CPATH}
t0=$(date +%s)
# SKIP_BUILD=1 with BUILD=$GPU_BIN_DIR: binaries prebuilt elsewhere (scripts/gpu_bin.sh),
# used when they run here; otherwise build.
[ -d "$BUILD/lib" ] && export LD_LIBRARY_PATH=$BUILD/lib:${LD_LIBRARY_PATH:-}
if [ "${SKIP_BUILD:-0}" = 1 ] && "$BUILD/attnlab-cli" --version >/dev/null 2>&1; then
  echo "== prebuilt binaries in $BUILD (commit $(cut -c1-10 "$BUILD/COMMIT" 2>/dev/null))"
else
  echo "== build"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DATTNLAB_GUI=OFF -DATTNLAB_BENCH=OFF -DATTNLAB_NATIVE=OFF \
      -DATTNLAB_CUDA_ARCHS=90a -DATTNLAB_DEPS_DIR="$ROOT/.deps" >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -Xcompiler -fPIC -shared -Ikernels -Icore \
      kernels/attention.cu kernels/block_topk_gate.cu -o "$BUILD/libattnlab_kernels.so" >"$OUT/so.log" 2>&1 &
  so_pid=$!
  cmake --build "$BUILD" -j"$(nproc)" --target attnlab_cuda_tests attnlab_cuda_model_tests attnlab_cuda_app_tests \
      attnlab-cli bench_llama_gpu >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -60; exit 1; }
  wait $so_pid || { tail -30 "$OUT/so.log"; exit 1; }
  echo "built in $(( $(date +%s) - t0 )) s"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,temperature.gpu --format=csv,noheader
rc=0
if [[ " $STEPS " == *" tests "* ]]; then
  echo "== cuda tests (core kernels)"
  "$BUILD/attnlab_cuda_tests" >"$OUT/cuda_tests.log" 2>&1; r=$?; tail -3 "$OUT/cuda_tests.log"; [ $r = 0 ] || rc=$r
  echo "== cuda tests (GPU model)"
  ATTNLAB_CLI=$BUILD/attnlab-cli "$BUILD/attnlab_cuda_model_tests" >"$OUT/cuda_model_tests.log" 2>&1; r=$?
  tail -3 "$OUT/cuda_model_tests.log"; [ $r = 0 ] || { rc=$r; grep -B5 -A15 FAILED "$OUT/cuda_model_tests.log" | head -60; }
  echo "== cuda tests (app GPU paths)"
  "$BUILD/attnlab_cuda_app_tests" >"$OUT/cuda_app_tests.log" 2>&1; r=$?
  tail -3 "$OUT/cuda_app_tests.log"; [ $r = 0 ] || { rc=$r; grep -B5 -A15 FAILED "$OUT/cuda_app_tests.log" | head -60; }
fi
if [[ " $STEPS " == *" cli "* ]]; then
  echo "== ppl --device cuda (tiny_llama_hd64)"
  "$BUILD/attnlab-cli" ppl -q --model tests/data/tiny_llama_hd64 --text README.md --ctx 1024 --device cuda \
      --method block_topk:rho=0.3,B=64 2>&1 | tail -5
fi
if [[ " $STEPS " == *" bench "* ]]; then
  echo "== bench_llama_gpu (default model shapes, random weights)"
  "$BUILD/bench_llama_gpu" "${CTX:-8192}" "${REPS:-5}" >"$OUT/bench_llama_gpu.log" 2>&1; tail -25 "$OUT/bench_llama_gpu.log"
fi
if [[ " $STEPS " == *" ab "* ]] && [ -n "${A_DIR:-}" ]; then
  echo "== kernel A/B ($A_DIR vs kernels/)"
  [ -f "$BUILD/libattnlab_kernels_oldk.so" ] && export A_SO=$BUILD/libattnlab_kernels_oldk.so B_SO=$BUILD/libattnlab_kernels.so
  OUT=$OUT/ab BENCH_ARGS=${AB_ARGS:---lens 16384 --dims 64,128 --causal 1 --densities 1,0.2,0.05 --variants 0 --no-flex} \
      timeout "${AB_TIMEOUT:-240}" bash bench/gpu/ab.sh >"$OUT/ab.log" 2>&1
  grep -vE "^\s*$" "$OUT/ab.log" | tail -40
fi
if [[ " $STEPS " == *" masks "* ]]; then
  echo "== token masks (sinks_window) vs FlexAttention and cuDNN dense"
  PYTHONUNBUFFERED=1 timeout "${MASKS_TIMEOUT:-200}" python3 bench/gpu/bench_token_masks.py --lib "$BUILD/libattnlab_kernels.so" \
      --out "$OUT/token_masks" ${MASKS_ARGS:-} 2>&1 | tail -20
fi
echo "total $(( $(date +%s) - t0 )) s, rc=$rc"
exit $rc
