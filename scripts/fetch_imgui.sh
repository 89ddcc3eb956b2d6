#!/usr/bin/env bash
# Dear ImGui 1.93 (docking branch, with its GLFW and OpenGL3 backends) and
# ImPlot, from the imgui-bundle source distribution on PyPI: pinned version,
# sha256 checked, only the sources the app builds extracted into
# deps/imgui-bundle-VERSION/ (ignored by git; never committed). CMake finds
# them there (ATTNLAB_IMGUI_DIR). Run by scripts/setup.sh; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.93.0
SHA256=10ad1dab8258a6787b4f07bb926b08d0efc648a7906242568c8dd778c5e719bf
DEST=deps/imgui-bundle-$VERSION
STAMP=$DEST/.sha256
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SHA256" ]; then exit 0; fi
echo "fetch_imgui: imgui-bundle $VERSION (Dear ImGui docking + ImPlot sources) from PyPI"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "imgui-bundle==$VERSION"
sdist=$tmp/imgui_bundle-$VERSION.tar.gz
echo "$SHA256  $sdist" | sha256sum -c --quiet - || { echo "fetch_imgui: $sdist: sha256 mismatch" >&2; exit 1; }
top=imgui_bundle-$VERSION/external
tar -C "$tmp" -xzf "$sdist" --wildcards \
    "$top/imgui/imgui/imgui*.cpp" "$top/imgui/imgui/imgui*.h" "$top/imgui/imgui/imstb_*.h" "$top/imgui/imgui/imconfig.h" \
    "$top/imgui/imgui/LICENSE.txt" "$top/imgui/imgui/backends/imgui_impl_glfw.*" \
    "$top/imgui/imgui/backends/imgui_impl_opengl3*" "$top/imgui/imgui/misc/cpp/imgui_stdlib.*" "$top/implot/implot/implot*.cpp" "$top/implot/implot/implot*.h" \
    "$top/implot/implot/LICENSE"
rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
mv "$tmp/$top/imgui/imgui" "$DEST.tmp/imgui"
mv "$tmp/$top/implot/implot" "$DEST.tmp/implot"
echo "$SHA256" > "$DEST.tmp/.sha256"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "fetch_imgui: $DEST"
