#!/usr/bin/env bash
# Build, check and time AttnLab's CUDA kernels on this machine's GPU, side by
# side with PyTorch SDPA (cuDNN, flash) and FlexAttention, in one run.
#   bench/gpu/run.sh                 # build into $BUILD (default /tmp/build-cuda-bench), test, bench
#   PREBUILT=dir bench/gpu/run.sh    # use libattnlab_kernels.so + attnlab_cuda_tests from dir
# Env: LOGDIR (default bench/results), BENCH_ARGS (extra args for bench.py),
#      SANITIZE=1 (compute-sanitizer memcheck + racecheck on the small tests).
# Writes $LOGDIR/<device>.md and .json (device name from nvidia-smi).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-/tmp/build-cuda-bench}
LOGDIR=${LOGDIR:-$ROOT/bench/results}
mkdir -p "$LOGDIR" "$BUILD"
NVCC=${NVCC:-nvcc}
ARCH="-gencode=arch=compute_90a,code=sm_90a"
DEPS=${DEPS:-$ROOT/.deps}   # scripts/gpu_deps.sh makes it
[ -d "$DEPS/include" ] && export CPATH=$DEPS/include${CPATH:+:$CPATH}

if [ -n "${PREBUILT:-}" ]; then
  BIN=$PREBUILT
else
  BIN=$BUILD
  echo "== build (nvcc $ARCH)"
  # the C API that bench.py loads through ctypes: the attention kernels and the gate
  $NVCC -O3 -std=c++17 $ARCH -Xcompiler -fPIC -shared -Ikernels -Icore kernels/attention.cu kernels/block_topk_gate.cu \
      -o "$BUILD/libattnlab_kernels.so" || exit 1
  # the test binary needs core and the GPU model (cuda_backend registers it): cmake
  cmake -S . -B "$BUILD/cmake" -DCMAKE_BUILD_TYPE=Release -DATTNLAB_GUI=OFF -DATTNLAB_BENCH=OFF -DATTNLAB_NATIVE=OFF \
      -DATTNLAB_CUDA_ARCHS=90a -DATTNLAB_DEPS_DIR="$DEPS" >"$BUILD/cmake.log" 2>&1 || { tail -20 "$BUILD/cmake.log"; exit 1; }
  cmake --build "$BUILD/cmake" -j"$(nproc)" --target attnlab_cuda_tests >"$BUILD/build.log" 2>&1 \
      || { grep -E "error" -A3 "$BUILD/build.log" | head -40; exit 1; }
  cp "$BUILD/cmake/attnlab_cuda_tests" "$BUILD/"
fi
DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' )
echo "== device: $DEV"
echo "== tests"
LD_LIBRARY_PATH=$BIN:${LD_LIBRARY_PATH:-} "$BIN/attnlab_cuda_tests" 2>&1 | tee "$LOGDIR/tests.log"
TEST_RC=${PIPESTATUS[0]}
echo "tests rc=$TEST_RC"
echo "== bench"
PYTHONUNBUFFERED=1 python3 bench/gpu/bench.py --lib "$BIN/libattnlab_kernels.so" --out "$LOGDIR/$DEV" ${BENCH_ARGS:-} \
    2>&1 | tee "$LOGDIR/bench.log"
if [ "${SANITIZE:-0}" = 1 ]; then
  echo "== compute-sanitizer memcheck (small sizes)"
  ATTNLAB_CUDA_TEST_SMALL=1 LD_LIBRARY_PATH=$BIN timeout ${SAN_TIMEOUT:-90} compute-sanitizer --tool memcheck --error-exitcode 9 \
      "$BIN/attnlab_cuda_tests" 2>&1 | tail -25 | tee "$LOGDIR/memcheck.log"
  echo "memcheck rc=${PIPESTATUS[0]}"
  echo "== compute-sanitizer racecheck (small sizes, dense + sparse)"
  ATTNLAB_CUDA_TEST_SMALL=1 LD_LIBRARY_PATH=$BIN timeout ${SAN_TIMEOUT:-90} compute-sanitizer --tool racecheck --error-exitcode 9 \
      "$BIN/attnlab_cuda_tests" "all-masked*,block-sparse with every*,block_topk*" 2>&1 | tail -15 | tee "$LOGDIR/racecheck.log"
  echo "racecheck rc=${PIPESTATUS[0]}"
fi
exit $TEST_RC
