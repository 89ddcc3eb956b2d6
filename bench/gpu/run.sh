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
DEPS=${DEPS:-$ROOT/.deps}

if [ -n "${PREBUILT:-}" ]; then
  BIN=$PREBUILT
else
  BIN=$BUILD
  echo "== build (nvcc $ARCH)"
  $NVCC -O3 -std=c++17 $ARCH -Xcompiler -fPIC -shared -Ikernels -Icore kernels/attention.cu kernels/cuda_backend.cu \
      -o "$BUILD/libattnlab_kernels.so" || exit 1
  $NVCC -O2 -std=c++17 $ARCH -Ikernels -Icore -I"$DEPS" -isystem /usr/include tests/test_cuda.cu \
      -L"$BUILD" -lattnlab_kernels -Xlinker -rpath,"$BUILD" -o "$BUILD/attnlab_cuda_tests" || exit 1
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
      "$BIN/attnlab_cuda_tests" "all-masked*,block-sparse with every*" 2>&1 | tail -15 | tee "$LOGDIR/racecheck.log"
  echo "racecheck rc=${PIPESTATUS[0]}"
fi
exit $TEST_RC
