#!/usr/bin/env bash
# One device call for the GPU head map (issue 12 item 2; HEADMAP_GPU_CHECK.md):
# builds the head-map cuda test, the app-path cuda test and the L = 8192 map
# bench (headless, sm_90a), runs them and prints PASS/FAIL and the timings.
# Needs .deps/ carried (scripts/gpu_deps.sh). Logs under $OUT.
#   OUT=$OUT bash bench/gpu/check_head_map.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/check_head_map}
BUILD=${BUILD:-/tmp/build-head-map}
mkdir -p "$OUT" "$BUILD"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
[ -d "$ROOT/.deps/include" ] && export CPATH=$ROOT/.deps/include${CPATH:+:$CPATH}
t0=$(date +%s)
echo "== build"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DATTNLAB_GUI=OFF -DATTNLAB_BENCH=OFF -DATTNLAB_NATIVE=OFF \
    -DATTNLAB_CUDA_ARCHS=90a -DATTNLAB_DEPS_DIR="$ROOT/.deps" >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; echo "FAIL: cmake"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target attnlab_cuda_head_map_tests attnlab_cuda_app_tests bench_head_map_gpu \
    >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -60; echo "FAIL: build"; exit 1; }
echo "built in $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
rc=0
for t in attnlab_cuda_head_map_tests attnlab_cuda_app_tests; do
  echo "== $t"
  "$BUILD/$t" >"$OUT/$t.log" 2>&1; r=$?
  grep -E "^L=|^D=|skipped" "$OUT/$t.log" | head -60
  tail -3 "$OUT/$t.log"
  if [ $r = 0 ]; then echo "PASS: $t"; else rc=$r; echo "FAIL: $t"; grep -B8 -A20 FAILED "$OUT/$t.log" | head -120; fi
done
echo "== bench_head_map_gpu (L=8192, median of 20 after 3 warm-up; CPU median of 3)"
"$BUILD/bench_head_map_gpu" 8192 20 3 2>&1 | tee "$OUT/bench_head_map_gpu.log"; r=${PIPESTATUS[0]}
[ $r = 0 ] && echo "PASS: bench_head_map_gpu" || { rc=$r; echo "FAIL: bench_head_map_gpu"; }
echo "total $(( $(date +%s) - t0 )) s, rc=$rc"
exit $rc
