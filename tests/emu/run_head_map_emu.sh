#!/usr/bin/env bash
# Runs tests/test_cuda_head_map.cu without a GPU: kernels/head_map.cu and
# kernels/head_map_run.cpp compiled by g++ against the CPU emulation of CUDA in
# tests/emu/cuda_runtime.h, linked with the CPU libraries of an existing build.
# The test's shapes are cut to L = 300 and 2100 (finest factors 1 and 2): the
# emulation runs one OS thread per CUDA thread (L = 2100: ~17 s a map).
#   tests/emu/run_head_map_emu.sh [BUILD=build] [SHAPES='{300, 4, 2, 1.0f}, {2100, 2, 1, 1.5f}']
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
SHAPES=${2:-'{300, 4, 2, 1.0f}, {2100, 2, 1, 1.5f}'}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# Kernel launches become calls of the emulation's launchers (the downsampling and
# keep-bit kernels have no barrier: their threads run one after another).
sed -E 's/(\w+)<<<(.*)>>>\((.*)\);/emu_launch(\1, \2)(\3);/' kernels/head_map.cu |
  sed -E "s/emu_launch\((hm_downsample_kernel|hm_bits_rows_kernel|hm_bits_blocks_kernel)/emu_launch_seq(\1/" >"$W/head_map_emu.cpp"
grep -q "emu_launch(hm_pool_kernel" "$W/head_map_emu.cpp" || { echo "emu: launch syntax not recognised" >&2; exit 1; }
sed -E "s/const shape shapes\[\] = \{.*\};/const shape shapes[] = {$SHAPES};/" tests/test_cuda_head_map.cu >"$W/test.cpp"
INC="-Itests/emu -Ikernels $(for l in "$B"/layers/*; do printf -- '-I%s ' "$l"; done) -I/usr/include/eigen3"
LIBS="-Wl,--whole-archive $B/libattnlab_methods.a -Wl,--no-whole-archive $B/libattnlab_metrics.a $B/libattnlab_methods.a
      $B/libattnlab_data.a $B/libattnlab_model.a $B/libattnlab_io.a $B/libattnlab_attention.a $B/libattnlab_base.a -lpthread"
g++ -std=c++20 -O2 -fopenmp -w $INC -x c++ "$W/head_map_emu.cpp" "$W/test.cpp" tests/emu/head_map_emu_backend.cpp \
    kernels/head_map_run.cpp -x none -o "$W/emu_test" $LIBS
"$W/emu_test" "GPU head map*"
