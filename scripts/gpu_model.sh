#!/usr/bin/env bash
# The default model's real weights on the GPU machine, which one device call
# can carry only part of (64 MiB a call; the GGUF is 98 MB): split here, carry
# one part per call while the machine stays warm, join and check there.
#   here:    scripts/gpu_model.sh split [N]      # .gpu_model/part1..partN (N = 2 by default)
#   call i:  carry [".gpu_model/parti", ...]:  bash scripts/gpu_model.sh receive i
#            after the last part -> $GPU_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf, sha256 checked
# Three parts leave room beside each for the prebuilt binaries (scripts/gpu_bin.sh).
# Parts are copied outside the checkout (GPU_MODEL_DIR, default /root/model):
# a later call that does not carry .gpu_model loses it, files outside stay.
# A part and the checkout leave little room under the limit, so the
# header-only deps (.deps, scripts/gpu_deps.sh), the KJV text and the A/B
# kernel sources (.oldk) travel compressed:
#   here:    scripts/gpu_model.sh pack           # .gpu_pack/*.xz (3 MB)
#   there:   scripts/gpu_model.sh unpack         # back into .deps, assets/text, .oldk
set -euo pipefail
cd "$(dirname "$0")/.."
FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53   # scripts/setup.sh's
DIR=${GPU_MODEL_DIR:-/root/model}
case "${1:-}" in
split)
    grep -qx '/.gpu_model/' .git/info/exclude 2>/dev/null || echo '/.gpu_model/' >> .git/info/exclude
    mkdir -p .gpu_model
    src=assets/models/$FILE
    echo "$SHA  $src" | sha256sum -c --quiet -
    n=${2:-2}
    [[ "$n" =~ ^[1-9]$ ]] || { echo "gpu_model: N must be 1..9" >&2; exit 2; }
    rm -f .gpu_model/part*
    size=$(stat -c %s "$src")
    chunk=$(( (size + n - 1) / n ))
    split -b "$chunk" -d -a 1 "$src" .gpu_model/tmp.
    for i in $(seq 0 $(( n - 1 ))); do mv ".gpu_model/tmp.$i" ".gpu_model/part$(( i + 1 ))"; done
    echo "$n" > .gpu_model/count
    ls -l .gpu_model ;;
receive)
    n=${2:?part number}
    mkdir -p "$DIR"
    total=$(cat .gpu_model/count 2>/dev/null || echo 2)
    cp ".gpu_model/part$n" "$DIR/part$n"
    have=0; for i in $(seq 1 "$total"); do [ -f "$DIR/part$i" ] && have=$(( have + 1 )); done
    if [ "$have" = "$total" ]; then
        for i in $(seq 1 "$total"); do cat "$DIR/part$i"; done > "$DIR/$FILE.tmp"
        echo "$SHA  $DIR/$FILE.tmp" | sha256sum -c --quiet - || { echo "gpu_model: sha256 mismatch" >&2; exit 1; }
        mv "$DIR/$FILE.tmp" "$DIR/$FILE"
        rm -f "$DIR"/part[0-9]
        echo "gpu_model: $DIR/$FILE (sha256 ok)"
    else
        echo "gpu_model: part $n of $total in $DIR ($have there)"
    fi ;;
pack)
    grep -qx '/.gpu_pack/' .git/info/exclude 2>/dev/null || echo '/.gpu_pack/' >> .git/info/exclude
    mkdir -p .gpu_pack
    tar -cJf .gpu_pack/deps.tar.xz .deps
    xz -9 -c assets/text/kjv.txt > .gpu_pack/kjv.txt.xz
    [ -d .oldk ] && tar -cJf .gpu_pack/oldk.tar.xz .oldk
    # learned_gate's file (regenerated, not in git) for the full-context sweep
    g=bench/results/trained/gate.safetensors
    [ -f $g ] && xz -9 -c $g > .gpu_pack/gate.safetensors.xz
    ls -l .gpu_pack ;;
unpack)
    [ -d .deps ] || tar -xJf .gpu_pack/deps.tar.xz
    mkdir -p assets/text
    [ -f assets/text/kjv.txt ] || xz -dc .gpu_pack/kjv.txt.xz > assets/text/kjv.txt
    [ -d .oldk ] || [ ! -f .gpu_pack/oldk.tar.xz ] || tar -xJf .gpu_pack/oldk.tar.xz
    g=bench/results/trained/gate.safetensors
    [ -f $g ] || [ ! -f .gpu_pack/gate.safetensors.xz ] || xz -dc .gpu_pack/gate.safetensors.xz > $g
    echo "gpu_model: unpacked .deps, assets/text/kjv.txt$([ -d .oldk ] && echo ', .oldk')" ;;
*)
    echo "usage: $0 split [N] | pack | receive I | unpack" >&2; exit 2 ;;
esac
