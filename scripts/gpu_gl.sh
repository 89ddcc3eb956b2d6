#!/usr/bin/env bash
# The desktop app on the GPU machine: a GLX window on the GPU under Xvfb.
# That machine has no X server and no Debian packages, so Xvfb, the Mesa
# software driver its GLX extension loads (with LLVM), the GL dispatch
# libraries (libglvnd) and the app's X/GLFW libraries travel from here:
# Debian 12's packages, pruned and compressed (about 50 MB), in two parts
# carried by two consecutive device calls (one call carries at most 64 MiB).
#   here:   scripts/gpu_gl.sh pack            # .gpu_gl/part0, part1 (+ sha256 in .gpu_gl/SHA256)
#   call i: carry [".gpu_gl/parti", ".gpu_gl/SHA256"]:  scripts/gpu_gl.sh receive i
#   there:  scripts/gpu_gl.sh unpack          # joins, checks, extracts into $GL_ROOT (/opt/x)
#           scripts/gpu_gl.sh xvfb            # starts Xvfb :99 (1600x1000x24), prints GLX vendor lines
# The app then runs with DISPLAY=:99 __GLX_VENDOR_LIBRARY_NAME=nvidia and
# LD_LIBRARY_PATH=$GL_ROOT/usr/lib/x86_64-linux-gnu (bench/gpu/app_tour.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${GL_ROOT:-/opt/x}
STORE=${GL_STORE:-/root/gl}
PKGS="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 libglx-mesa0 libglapi-mesa libgl1-mesa-dri
 libllvm15 libz3-4 libsensors5 libedit2 libxml2 libicu72 libtinfo6 libffi8 libelf1 libdrm2 libdrm-amdgpu1 libdrm-radeon1
 libdrm-nouveau2 libdrm-intel1 libpciaccess0 xvfb xserver-common libxfont2 libpixman-1-0 libxshmfence1 libfontenc1
 libunwind8 libxau6 libxdmcp6 libbsd0 libmd0 x11-xkb-utils xkb-data libxkbfile1 libx11-6 libx11-data libxcb1
 libxcb-dri3-0 libxcb-dri2-0 libxcb-present0 libxcb-sync1 libxcb-xfixes0 libxcb-glx0 libxcb-shm0 libxcb-randr0
 libx11-xcb1 libxxf86vm1 libxext6 libglfw3 libstb0 libxrandr2 libxinerama1 libxcursor1 libxi6 libxrender1 libxfixes3
 libfreetype6 libpng16-16 libbrotli1"
case "${1:-}" in
pack)
    grep -qx '/.gpu_gl/' .git/info/exclude 2>/dev/null || echo '/.gpu_gl/' >> .git/info/exclude
    work=$(mktemp -d)
    (cd "$work" && mkdir debs root && cd debs && apt-get download $PKGS >/dev/null)
    for f in "$work"/debs/*.deb; do dpkg -x "$f" "$work/root"; done
    # one DRI driver (the others are hard links to the same megadriver); no docs
    find "$work/root/usr/lib/x86_64-linux-gnu/dri" -type f ! -name swrast_dri.so -delete
    rm -rf "$work"/root/usr/share/{doc,man,locale,bug,lintian}
    rm -rf .gpu_gl && mkdir -p .gpu_gl
    tar -C "$work/root" -cf - . | xz -9 -T"$(nproc)" > "$work/gl.tar.xz"
    (cd "$work" && sha256sum gl.tar.xz | cut -d' ' -f1) > .gpu_gl/SHA256
    split -b 26000000 -d -a 1 "$work/gl.tar.xz" .gpu_gl/part
    rm -rf "$work"
    ls -l .gpu_gl ;;
receive)
    mkdir -p "$STORE"
    cp ".gpu_gl/part${2:?part number}" "$STORE/"
    [ -f .gpu_gl/SHA256 ] && cp .gpu_gl/SHA256 "$STORE/"
    echo "gpu_gl: part $2 in $STORE" ;;
unpack)
    cat "$STORE"/part[0-9] > "$STORE/gl.tar.xz"
    echo "$(cat "$STORE/SHA256")  $STORE/gl.tar.xz" | sha256sum -c --quiet - || { echo "gpu_gl: sha256 mismatch" >&2; exit 1; }
    mkdir -p "$ROOT" && tar -C "$ROOT" -xJf "$STORE/gl.tar.xz"
    # Xvfb runs xkbcomp and loads the swrast DRI driver from compiled-in paths
    [ -x /usr/bin/xkbcomp ] || ln -sf "$ROOT/usr/bin/xkbcomp" /usr/bin/xkbcomp
    mkdir -p /usr/lib/x86_64-linux-gnu/dri
    [ -e /usr/lib/x86_64-linux-gnu/dri/swrast_dri.so ] ||
        ln -sf "$ROOT/usr/lib/x86_64-linux-gnu/dri/swrast_dri.so" /usr/lib/x86_64-linux-gnu/dri/swrast_dri.so
    echo "gpu_gl: unpacked into $ROOT" ;;
xvfb)
    export LD_LIBRARY_PATH=$ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LIBGL_DRIVERS_PATH=$ROOT/usr/lib/x86_64-linux-gnu/dri
    "$ROOT/usr/bin/Xvfb" :99 -screen 0 1600x1000x24 -nolisten tcp -xkbdir "$ROOT/usr/share/X11/xkb" \
        >/tmp/xvfb.log 2>&1 &
    for _ in $(seq 50); do [ -e /tmp/.X11-unix/X99 ] && break; sleep 0.1; done
    [ -e /tmp/.X11-unix/X99 ] || { echo "gpu_gl: Xvfb did not start"; cat /tmp/xvfb.log; exit 1; }
    grep -i -E "glx|error" /tmp/xvfb.log | head -5
    echo "gpu_gl: Xvfb :99 up" ;;
*)
    echo "usage: $0 pack | receive I | unpack | xvfb" >&2; exit 2 ;;
esac
