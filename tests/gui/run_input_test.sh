#!/usr/bin/env bash
# The app driven by real X input (xdotool) under Xvfb, as a person uses it:
# keys switch the view and the layer/head, Ctrl+M and typing set the method
# spec, the wheel zooms the map and a drag pans it, F1 opens help, a tab is
# dragged to the side of another view (docking them side by side) and the
# window is resized to 1024x700. tests/gui/input.attnlab checks each effect
# in the app's state; then a second start restores the session and layout
# (tests/gui/session.attnlab); screenshots are checked for content.
#   run_input_test.sh APP OUT_DIR
set -euo pipefail
app=${1:?usage: run_input_test.sh APP OUT_DIR}
out=${2:?usage: run_input_test.sh APP OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
model=assets/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$model" ]; then
  if [ "${ATTNLAB_REQUIRE_ASSETS:-0}" = 1 ]; then echo "input: $model missing" >&2; exit 1; fi
  echo "input: skipped ($model missing)"; exit 0
fi
for t in Xvfb xdotool python3; do command -v $t >/dev/null || { echo "input: $t not installed (scripts/setup.sh)" >&2; exit 1; }; done
rm -rf "$out" && mkdir -p "$out"
export HOME=$(mktemp -d); echo "input: HOME=$HOME"
disp=:$(( 90 + RANDOM % 800 ))
Xvfb $disp -screen 0 1600x1000x24 -nolisten tcp >"$out/xvfb.log" 2>&1 &
xpid=$!
trap 'kill $apid $xpid 2>/dev/null || true; [ -n "${KEEP_HOME:-}" ] || rm -rf "$HOME"' EXIT
for _ in $(seq 50); do xdotool -display $disp getmouselocation >/dev/null 2>&1 && break; sleep 0.1; done
export DISPLAY=$disp
"$app" "$model" --script "$here/input.attnlab" --screenshot-dir "$out" >"$out/app.log" 2>&1 &
apid=$!
await_signal() {   # the app's "signal NAME"
  for _ in $(seq 600); do
    [ -f "$out/$1.signal" ] && { rm -f "$out/$1.signal"; return 0; }
    kill -0 $apid 2>/dev/null || { echo "input: the app exited before signalling $1" >&2; tail -20 "$out/app.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "input: no signal $1" >&2; exit 1
}
done_() { touch "$out/$1.go"; }
win() { xdotool search --sync --pid $apid --name AttnLab | head -1; }
key() { xdotool key --delay 120 "$@"; }   # XTEST: real key events to the focused window
await_signal keys
xdotool windowactivate --sync "$(win)" 2>/dev/null || xdotool windowfocus --sync "$(win)"
key 2 Right Right Down
done_ keys
await_signal method
key ctrl+m
done_ method
await_signal typing   # the app says when its box is open and takes keys
key ctrl+a
xdotool type --delay 60 "sinks_window:g=4,w=64"
sleep 0.3
key Return
done_ typing
await_signal zoom
# the map's centre: the attention_map window's rectangle from dump_layout
read -r mx my < <(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['views']['attention_map']['rect']; print(int(r[0]+0.4*(r[2]-r[0])), int(r[1]+0.5*(r[3]-r[1])))" "$out/layout_map.json")
xdotool mousemove --sync $mx $my
for _ in 1 2 3; do xdotool click 4; sleep 0.15; done
xdotool mousedown 1; for d in 10 20 30 40; do xdotool mousemove --sync $((mx + d)) $((my + d)); sleep 0.08; done; xdotool mouseup 1
done_ zoom
await_signal help
key F1
sleep 0.5
done_ help
await_signal dock
key F1   # help closed again
python3 - "$out/layout_map.json" > "$out/dock_path.txt" <<'PY'
import json, sys
L = json.load(open(sys.argv[1]))
v = L["views"]
tab = v["masks"]["tab"]
r = v["attention_map"]["rect"]
fs = L["font_size"]
# ImGui's "dock right" target of a node: centre + 2.4 * half-size, half-size = min(1.5 font, max(0.5 font, smaller side / 8))
hs = int(min(1.5 * fs, max(0.5 * fs, min(r[2] - r[0], r[3] - r[1]) / 8)))
cx, cy = int((r[0] + r[2]) / 2), int((r[1] + r[3]) / 2)
print(int((tab[0] + tab[2]) / 2), int((tab[1] + tab[3]) / 2), cx + int(hs * 2.4), cy)
PY
read -r tx ty dx dy < "$out/dock_path.txt"
xdotool mousemove --sync $tx $ty; sleep 0.2
xdotool mousedown 1; sleep 0.2
for s in 1 2 3 4 5 6 7 8 9 10; do
  xdotool mousemove --sync $(( tx + (dx - tx) * s / 10 )) $(( ty + 60 + (dy - ty - 60) * s / 10 )); sleep 0.1
done
sleep 0.4; xdotool mouseup 1
done_ dock
await_signal resize
xdotool windowsize --sync "$(win)" 1024 700
sleep 0.5
done_ resize
rc=0; wait $apid || rc=$?
apid=
grep -E "^script .*:|screenshot:" "$out/app.log" | tail -20
[ $rc = 0 ] || { echo "input: the app failed (rc $rc)" >&2; tail -30 "$out/app.log" >&2; exit 1; }
# A second start in the same HOME restores the session and the dock layout.
"$app" "$model" --script "$here/session.attnlab" --screenshot-dir "$out" >"$out/app2.log" 2>&1 &
apid=$!
rc=0; wait $apid || rc=$?
apid=
[ $rc = 0 ] || { echo "input: the restored session failed (rc $rc)" >&2; grep -E "^script /" "$out/app2.log" >&2; exit 1; }
python3 "$here/check_screenshots.py" "$out" input_help.png:12 input_docked.png:30 input_1024x700.png:30 session_restored.png:30
echo "input: ok"
