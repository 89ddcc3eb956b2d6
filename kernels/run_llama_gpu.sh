#!/usr/bin/env bash
# GPU forward pass (llama_gpu) on the device machine: tests, CLI end to end,
# throughput at the default model's shapes. Logs under $LOGDIR (default $OUT
# or /tmp/llama_gpu_logs).
#   PREBUILT=dir kernels/run_llama_gpu.sh   # binaries built elsewhere, in a folder of
#       this checkout (they find tests/data and assets beside them: base/data_path.h)
#   kernels/run_llama_gpu.sh                # builds with cmake (headless, sm_90a) first,
#       with the header-only deps carried in .deps (scripts/gpu_deps.sh makes it)
# Env: CTX (default 8192), REPS (5), SANITIZE=1 (memcheck on the small cases).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOGDIR=${LOGDIR:-${OUT:-/tmp/llama_gpu_logs}}
mkdir -p "$LOGDIR"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
done
if [ -n "${PREBUILT:-}" ]; then
  BIN=$ROOT/$PREBUILT
else
  [ -d "$ROOT/.deps/include" ] && export CPATH=$ROOT/.deps/include${CPATH:+:$CPATH}
  BIN=${BUILD:-/tmp/build-llama-gpu}
  cmake -S . -B "$BIN" -DCMAKE_BUILD_TYPE=Release -DATTNLAB_GUI=OFF -DATTNLAB_BENCH=OFF \
    -DATTNLAB_CUDA_ARCHS=90a -DATTNLAB_DEPS_DIR="$ROOT/.deps" >"$LOGDIR/cmake.log" 2>&1 || { tail -30 "$LOGDIR/cmake.log"; exit 1; }
  cmake --build "$BIN" -j"$(nproc)" --target attnlab_cuda_model_tests attnlab-cli bench_llama_gpu \
    >"$LOGDIR/build.log" 2>&1 || { grep -E "error" -A3 "$LOGDIR/build.log" | head -40; exit 1; }
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
ldd "$BIN/attnlab_cuda_model_tests" | grep -E "not found|cublas|cudart" || true
echo "== tests"
ATTNLAB_CLI=$BIN/attnlab-cli "$BIN/attnlab_cuda_model_tests" 2>&1 | tee "$LOGDIR/cuda_model_tests.log"
TEST_RC=${PIPESTATUS[0]}
echo "tests rc=$TEST_RC"
echo "== ppl --device cuda (tiny_llama_hd64, README.md)"
"$BIN/attnlab-cli" ppl -q --model tests/data/tiny_llama_hd64 --text README.md --ctx 1024 --device cuda \
  --method block_topk:rho=0.3,B=64 2>&1 | tee "$LOGDIR/ppl_cli.log"
echo "== bench (default model shapes, random weights)"
"$BIN/bench_llama_gpu" "${CTX:-8192}" "${REPS:-5}" 2>&1 | tee "$LOGDIR/bench_llama_gpu.log"
if [ "${SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck (test cases tagged [small]; full log in memcheck.log)"
  timeout "${SAN_TIMEOUT:-90}" compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 \
    "$BIN/attnlab_cuda_model_tests" "[small]" >"$LOGDIR/memcheck.log" 2>&1
  echo "memcheck rc=$?"
  grep -m 40 -E "=====|FAILED|passed" "$LOGDIR/memcheck.log"
fi
exit $TEST_RC
