#!/usr/bin/env bash
# Prebuilt GPU binaries for the device machine, so a lease is not spent on a
# 4-minute build: built here (sm_90a, no -march=native, Release) and carried
# compressed; the libraries they need beyond glibc and CUDA travel with them.
#   here:    scripts/gpu_bin.sh build          # build-gpu/ (CLI, cuda tests, bench, kernels .so)
#            scripts/gpu_bin.sh pack [gui]     # .gpu_bin/bin.tar.xz; gui: .gpu_bin/app.tar.xz, the app and its
#                                              # X/GLFW libraries apart (it travels beside scripts/gpu_gl.sh's parts)
#   there:   scripts/gpu_bin.sh unpack         # -> $GPU_BIN_DIR (default /root/bin); prints whether they run
# bench/gpu/check_all.sh and run_lab.sh use them with BUILD=$GPU_BIN_DIR SKIP_BUILD=1.
# If they do not run there (other system libraries), those scripts build there.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
DIR=${GPU_BIN_DIR:-/root/bin}
TARGETS="attnlab-cli attnlab_cuda_tests attnlab_cuda_model_tests attnlab_cuda_app_tests bench_llama_gpu"
case "${1:-}" in
build)
    gui=OFF; [ "${2:-}" = gui ] && gui=ON
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DATTNLAB_GUI=$gui -DATTNLAB_BENCH=OFF -DATTNLAB_NATIVE=OFF \
        -DATTNLAB_CUDA_ARCHS=90a >/dev/null
    t=$TARGETS; [ $gui = ON ] && t="$t attnlab"
    nice cmake --build "$BUILD" -j"$(nproc)" --target $t
    # The ctypes library of bench/gpu/*.py, as bench/gpu/check_all.sh builds it.
    nice nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -Xcompiler -fPIC -shared -Ikernels -Icore \
        kernels/attention.cu kernels/block_topk_gate.cu -o "$BUILD/libattnlab_kernels.so"
    # and session 3's kernel sources (.oldk), for bench/gpu/ab.sh's A/B timing
    if [ -d .oldk ]; then
        nice nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -Xcompiler -fPIC -shared -I.oldk -Ikernels -Icore \
            .oldk/attention.cu kernels/block_topk_gate.cu -o "$BUILD/libattnlab_kernels_oldk.so"
    fi ;;
pack)
    grep -qx '/.gpu_bin/' .git/info/exclude 2>/dev/null || echo '/.gpu_bin/' >> .git/info/exclude
    name=bin; files="$TARGETS libattnlab_kernels.so libattnlab_kernels_oldk.so"
    [ "${2:-}" = gui ] && { name=app; files=attnlab; }
    rm -rf .gpu_bin/stage && mkdir -p .gpu_bin/stage/lib
    for f in $files; do [ -f "$BUILD/$f" ] && cp "$BUILD/$f" .gpu_bin/stage/; done
    # Everything ldd resolves outside glibc, the CUDA toolkit and the GL
    # vendor-neutral dispatch (which must come from the machine's driver).
    for f in .gpu_bin/stage/*; do ldd "$f" 2>/dev/null; done | awk '/=> \// {print $3}' | sort -u \
        | grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so|/usr/local/cuda|libcud|libcublas|libGL|libEGL|libOpenGL|libGLX|libGLdispatch|libnvidia' \
        | while read -r lib; do cp -L "$lib" .gpu_bin/stage/lib/; done || true   # ldd fails on some inputs
    git rev-parse HEAD > .gpu_bin/stage/COMMIT
    tar -C .gpu_bin/stage -cJf .gpu_bin/$name.tar.xz .
    rm -rf .gpu_bin/stage
    ls -l .gpu_bin/$name.tar.xz ;;
unpack)
    mkdir -p "$DIR"
    for t in .gpu_bin/bin.tar.xz .gpu_bin/app.tar.xz; do [ -f $t ] && tar -C "$DIR" -xJf $t; done
    for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
    export LD_LIBRARY_PATH=$DIR/lib:${LD_LIBRARY_PATH:-}
    if "$DIR/attnlab-cli" --version >/dev/null 2>&1; then
        echo "gpu_bin: $DIR (commit $(cut -c1-10 "$DIR/COMMIT")) runs here"
    else
        echo "gpu_bin: the prebuilt binaries do not run here:"; "$DIR/attnlab-cli" --version 2>&1 | head -3
        rm -f "$DIR/attnlab-cli"; exit 1
    fi ;;
*)
    echo "usage: $0 build [gui] | pack [gui] | unpack" >&2; exit 2 ;;
esac
