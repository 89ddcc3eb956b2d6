#!/usr/bin/env bash
# GUI test under Xvfb: scripted runs of the real app on the default model.
#   run_gui_test.sh APP SCREENSHOT_DIR [--no-8k]
# 1. visit every view and screenshot it; check every screenshot has content
# 2. cancel a running capture, capture again, draw a map (app stays usable)
# 3. L = 8192: map recompute time and frame time during a long job (benchmark
#    lines "bench: ...", reported, not thresholds)
set -euo pipefail
app=${1:?usage: run_gui_test.sh APP SCREENSHOT_DIR}
out=${2:?usage: run_gui_test.sh APP SCREENSHOT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
model=assets/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$model" ]; then
  if [ "${ATTNLAB_REQUIRE_ASSETS:-0}" = 1 ]; then echo "gui: $model missing" >&2; exit 1; fi
  echo "gui: skipped ($model missing; scripts/setup.sh downloads it)"; exit 0
fi
command -v xvfb-run >/dev/null || { echo "gui: xvfb-run not installed (apt-get install xvfb xauth)" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/*.png
export HOME=$(mktemp -d)   # recent-files list of the test, not the user's
trap 'rm -rf "$HOME"' EXIT
run() {
  # @OUT@ in a script is the screenshot directory (sweep and snapshot outputs go there too).
  sed "s#@OUT@#$out#g" "$here/$1" > "$out/$1"
  xvfb-run -a -s "-screen 0 1600x1000x24" "$app" --script "$out/$1" --screenshot-dir "$out"
}
rm -rf "$out/sweep" "$out/snapshots" "$out/charts"
echo "== visit every view"
run visit_all.attnlab
python3 "$here/check_screenshots.py" "$out" source.png attention_map.png:100 attention_map_zoom.png:20 \
  attention_map_sparse.png:100 masks.png:20 layers_heads.png:30 layers_heads_adaptive.png:30 \
  hyperbolic.png:60 hyperbolic_drag.png:60 hyperbolic_graph.png:60 tradeoffs.png:20 tradeoffs_time.png:20 \
  tradeoffs_sweep.png:12 kernels.png:12 quadratic.png:12 snapshots.png:60 snapshots_scenario.png:20
# The trade-offs view's four charts, each as PNG and CSV with every sweep row.
for c in ppl_change mass_recall passkey top1_agreement; do
  [ -s "$out/charts/tradeoffs_$c.png" ] && [ -s "$out/charts/tradeoffs_$c.csv" ] || { echo "gui: export_charts: no tradeoffs_$c.png/.csv" >&2; exit 1; }
done
python3 "$here/check_screenshots.py" "$out/charts" tradeoffs_ppl_change.png:12
# each method's measured rows are in the CSV: the 30 sweep rows (beside the Pareto front and slider points)
rows=$(grep -v "^series,\|^Pareto front,\|^(unnamed)," "$out/charts/tradeoffs_ppl_change.csv" | grep -c . || true)
[ "$rows" = 30 ] || { echo "gui: tradeoffs_ppl_change.csv has $rows method points, want the sweep's 30" >&2; exit 1; }
# The exported snapshot holds one PNG per view, and the app read it back as verified.
for v in source attention_map masks layers_heads hyperbolic tradeoffs kernels quadratic snapshots; do
  [ -s "$out/snapshots/gui_export/figures/$v.png" ] || { echo "gui: export lacks figures/$v.png" >&2; exit 1; }
done
echo "== cancelled capture leaves the app usable"
run cancel.attnlab
python3 "$here/check_screenshots.py" "$out" after_cancel.png:100
if [ "${3:-}" != "--no-8k" ] && [ "${ATTNLAB_GUI_8K:-1}" = 1 ]; then
  echo "== L = 8192 map recompute and frame time during the capture job"
  run bench_8k.attnlab
  python3 "$here/check_screenshots.py" "$out" attention_map_8k.png:100 attention_map_8k_zoom.png:20
fi
echo "gui: ok (screenshots in $out)"
