#!/usr/bin/env bash
# Compares the code nvcc generates for two trees of the attention kernels,
# without a GPU: PTX per kernel (identical, identical up to virtual register
# numbering, or different) and SASS per kernel (the same three, physical
# registers). A refactor that leaves PTX identical up to register numbering
# computes the same thing; where SASS also matches, it runs the same too.
#   A_DIR=.oldk bench/gpu/code_diff.sh        # A: a folder holding attention.cu and
#                                             # the headers it includes (from an
#                                             # earlier commit); B: kernels/
# SASS needs cuobjdump: CUDA's own, or PyPI's nvidia-cuda-cuobjdump==13.5.37
# (pip download --no-deps; unzip; nvidia/cu13/bin/cuobjdump), via CUOBJDUMP.
set -euo pipefail
cd "$(dirname "$0")/../.."
A_DIR=${A_DIR:?A_DIR: folder with the A kernel sources}
OUT=${OUT:-/tmp/code_diff}
ARCHS=${ARCHS:-"90a 80"}
CUOBJDUMP=${CUOBJDUMP:-cuobjdump}
mkdir -p "$OUT"
test -d build/layers || { echo "code_diff: configure the build first (build/layers)" >&2; exit 1; }
INC="-Ikernels $(for l in build/layers/*; do printf -- '-I%s ' "$l"; done) -I/usr/include/eigen3"
for arch in $ARCHS; do
  for side in a b; do
    src=kernels/attention.cu; extra=""
    [ $side = a ] && { src=$A_DIR/attention.cu; extra="-I$A_DIR"; }
    nvcc -O3 -DNDEBUG -std=c++17 $extra $INC -gencode=arch=compute_$arch,code=compute_$arch -ptx "$src" \
        -o "$OUT/$side.$arch.ptx" 2>/dev/null &
    nvcc -O3 -DNDEBUG -std=c++17 $extra $INC -gencode=arch=compute_$arch,code=sm_$arch -cubin "$src" \
        -o "$OUT/$side.$arch.cubin" 2>/dev/null &
  done
  wait
  if command -v "$CUOBJDUMP" >/dev/null; then
    for side in a b; do "$CUOBJDUMP" -sass "$OUT/$side.$arch.cubin" > "$OUT/$side.$arch.sass"; done
  fi
  echo "== sm_$arch"
  python3 tools/code_diff.py "$OUT/a.$arch.ptx" "$OUT/b.$arch.ptx" \
      $( [ -s "$OUT/a.$arch.sass" ] && echo "$OUT/a.$arch.sass $OUT/b.$arch.sass" )
done
