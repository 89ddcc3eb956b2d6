#!/usr/bin/env bash
# Times two builds of the attention kernels side by side on this GPU: A from
# the kernel sources in $A_DIR (attention.cu and the headers it includes,
# e.g. an earlier commit's `git show REV:kernels/...` copied there), B from
# kernels/. Both .so are built in parallel, then bench.py runs A, B, A, B with
# the same arguments (BENCH_ARGS), so drift shows as A-vs-A spread.
#   A_DIR=.oldk OUT=/tmp/ab bench/gpu/ab.sh
#   A_SO=a.so B_SO=b.so A_DIR=- OUT=/tmp/ab bench/gpu/ab.sh     (both built already)
set -uo pipefail
cd "$(dirname "$0")/../.."
A_DIR=${A_DIR:?A_DIR: folder with the A kernel sources}
OUT=${OUT:-/tmp/ab}
ARCH="-gencode=arch=compute_90a,code=sm_90a"
mkdir -p "$OUT/a" "$OUT/b"
build() {   # $1 folder holding attention.cu, $2 output folder
  nvcc -O3 -std=c++17 $ARCH -Xcompiler -fPIC -shared -I"$1" -Ikernels -Icore "$1/attention.cu" kernels/block_topk_gate.cu \
      -o "$2/libattnlab_kernels.so" >"$2/build.log" 2>&1 || { tail -20 "$2/build.log"; return 1; }
}
# A_SO / B_SO: libraries prebuilt elsewhere (scripts/gpu_bin.sh carries them)
if [ -n "${A_SO:-}" ] && [ -n "${B_SO:-}" ]; then
  cp "$A_SO" "$OUT/a/libattnlab_kernels.so" && cp "$B_SO" "$OUT/b/libattnlab_kernels.so" || exit 1
else
  build "$A_DIR" "$OUT/a" & pa=$!
  build kernels "$OUT/b" & pb=$!
  wait $pa || exit 1
  wait $pb || exit 1
fi
ARGS=${BENCH_ARGS:---lens 32768,16384 --dims 128,64 --causal 0,1 --densities 1,0.2,0.05 --variants 0,1 --no-flex}
for round in 1 2; do
  for side in a b; do
    echo "== round $round: $side"
    PYTHONUNBUFFERED=1 python3 bench/gpu/bench.py --lib "$OUT/$side/libattnlab_kernels.so" --out "$OUT/${side}${round}" $ARGS \
        2>&1 | grep -vE '^\s*$' | tail -40
  done
done
