#!/usr/bin/env bash
# On the GPU machine (nvcc, CMake, no Debian packages): build the headless
# tree with the carried header-only deps (.deps, from scripts/gpu_deps.sh),
# then run every CUDA test and a GPU perplexity end to end.
#   bash scripts/gpu_check.sh [LOGDIR]      # LOGDIR default /tmp/gpu_check
# Exit status: the first failing step's.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-/tmp/gpu_check}
mkdir -p "$LOG"
test -d .deps/eigen3 || { echo "gpu_check: .deps missing (run scripts/gpu_deps.sh here first and carry .deps)" >&2; exit 1; }
export CPATH=$PWD/.deps/include${CPATH:+:$CPATH}
B=build-headless
echo "== configure"
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DATTNLAB_GUI=OFF -DATTNLAB_BENCH=OFF -DATTNLAB_NATIVE=OFF \
    -DATTNLAB_CUDA_ARCHS=90a -DATTNLAB_DEPS_DIR=$PWD/.deps >"$LOG/configure.log" 2>&1 || { tail -30 "$LOG/configure.log"; exit 1; }
echo "== build"
time cmake --build $B -j"$(nproc)" --target attnlab-cli attnlab_cuda_tests attnlab_cuda_model_tests attnlab_cuda_app_tests \
    bench_llama_gpu >"$LOG/build.log" 2>&1 || { grep -E "error|Error" -A3 "$LOG/build.log" | head -60; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
rc=0
export ATTNLAB_CLI=$PWD/$B/attnlab-cli
for t in attnlab_cuda_tests attnlab_cuda_model_tests attnlab_cuda_app_tests; do
  echo "== $t"
  ./$B/$t 2>&1 | tee "$LOG/$t.log" | tail -6
  r=${PIPESTATUS[0]}
  echo "$t rc=$r"
  [ $r -ne 0 ] && [ $rc -eq 0 ] && rc=$r
done
echo "== ppl --device cuda (tests/data/tiny_llama_hd64, README.md as text)"
./$B/attnlab-cli ppl -q --json -m tests/data/tiny_llama_hd64 -t README.md --ctx 512 --max-tokens 3000 --device cuda \
    --method block_topk:rho=0.3,B=64 2>&1 | tee "$LOG/ppl.json" | head -c 600; echo
exit $rc
