#!/usr/bin/env bash
# The lab on the GPU machine with the default model's real weights, resumable
# across device calls (each at most 10 minutes; state lives outside the
# checkout, in $LAB, while the machine stays warm):
#   call i: carry .gpu_pack .gpu_model/parti .gpu_model/count:  STEPS=receivei bench/gpu/run_lab.sh
#           (scripts/gpu_model.sh unpack first; the last part: STEPS="receiveN smoke sweep")
#   later:  carry .gpu_pack:  STEPS=sweep bench/gpu/run_lab.sh   (continues the sweep)
# With prebuilt binaries (scripts/gpu_bin.sh): BUILD=/root/bin.
# Steps: build (implied when the binaries are missing or do not run), receive1..receive9
# (scripts/gpu_model.sh), smoke (ppl dense and block_topk at ctx 2048 and
# 8192, capture --device cuda at 8192), sweep (attnlab-cli sweep --device cuda
# into $LAB/sweep_ctx8192, rows appended as they finish; SWEEP_TIMEOUT
# seconds), pack ($OUT/sweep_ctx8192.tgz with the rows and figures).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LAB=${LAB:-/root/lab}
OUT=${OUT:-/tmp/lab_out}
BUILD=${BUILD:-/tmp/build-check-all}
MODEL=${GPU_MODEL_DIR:-/root/model}/SmolLM2-135M-Instruct.Q4_1.gguf
STEPS=${STEPS:-smoke sweep pack}
mkdir -p "$LAB" "$OUT"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
[ -d "$ROOT/.deps/include" ] && export CPATH=$ROOT/.deps/include${CPATH:+:$CPATH}
CLI=$BUILD/attnlab-cli
has() { [[ " $STEPS " == *" $1 "* ]]; }
[ -d "$BUILD/lib" ] && export LD_LIBRARY_PATH=$BUILD/lib:${LD_LIBRARY_PATH:-}   # prebuilt (scripts/gpu_bin.sh)
if ! "$CLI" --version >/dev/null 2>&1 || has build; then
  echo "== build"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DATTNLAB_GUI=OFF -DATTNLAB_BENCH=OFF -DATTNLAB_NATIVE=OFF \
      -DATTNLAB_CUDA_ARCHS=90a -DATTNLAB_DEPS_DIR="$ROOT/.deps" >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  cmake --build "$BUILD" -j"$(nproc)" --target attnlab-cli >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
fi
for i in 1 2 3 4 5 6 7 8 9; do has receive$i && { bash scripts/gpu_model.sh receive $i || exit 1; }; done
[ -f "$MODEL" ] || { echo "run_lab: no model at $MODEL yet"; exit 0; }
export ATTNLAB_DATA_DIR=$ROOT
if has smoke; then
  echo "== smoke: ppl --device cuda, real weights, 65536 evaluation tokens"
  for ctx in 2048 8192; do
    for m in "" "--method block_topk:rho=0.2,B=64" "--method sinks_window:g=4,w=1024"; do
      /usr/bin/time -f "   %e s wall" "$CLI" ppl -q --json --model "$MODEL" --text kjv:eval --ctx $ctx --max-tokens 65536 \
          --device cuda $m > "$OUT/ppl_${ctx}_$(echo "${m:-dense}" | tr -c 'a-z0-9.=\n' '_').json" 2>"$OUT/ppl.err" \
          || { cat "$OUT/ppl.err"; continue; }
      python3 - "$OUT"/ppl_${ctx}_$(echo "${m:-dense}" | tr -c 'a-z0-9.=\n' '_').json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
d, s = j.get("dense", j), j.get("sparse", j)
print(f"   ctx {j['ctx']:5d} {j.get('method','dense'):28s} ppl dense {d['ppl']:.4f} sparse {s['ppl']:.4f} "
      f"dppl {100*j.get('delta_ppl_rel', 0):+.2f}%  tok_d {j.get('token_density', 1):.3f} path {j.get('selection_path','-')} "
      f"sel {j.get('predictor_seconds', 0):.2f} s  attn {j.get('sparse_kernel_seconds', j.get('attention_seconds', 0)):.3f} s  "
      f"{s.get('tokens_per_s', 0):.0f} tok/s")
PY
      cat "$OUT/ppl.err" | tail -2
    done
  done
  echo "== capture --device cuda, 8192 tokens"
  /usr/bin/time -f "   %e s wall" "$CLI" capture -q --json --model "$MODEL" --text kjv:eval --ctx 8192 --device cuda \
      --dtype bf16 --out "$LAB/eval8192.safetensors" | head -c 600; echo
  ls -la "$LAB/eval8192.safetensors"
fi
# The scenario's methods, densities, contexts and passkey depths (one source of truth).
SCEN=scenarios/tradeoff_sweep_ctx8192.json
scen() { python3 -c "import json,sys; v=json.load(open('$SCEN'))[sys.argv[1]]; print(','.join(map(str, v)))" "$1"; }
# learned_gate's file is regenerated, not kept in git (bench/results/trained/README.md)
GATE=; [ -f bench/results/trained/gate.safetensors ] && GATE=",learned_gate:params=bench/results/trained/gate.safetensors"
if has sweep; then
  echo "== sweep --device cuda (resumable; $LAB/sweep_ctx8192; the methods of $SCEN)"
  timeout "${SWEEP_TIMEOUT:-480}" "$CLI" sweep -q --device cuda --model "$MODEL" --text kjv:eval --ctx "$(scen ctx)" \
      --methods "${SWEEP_METHODS:-$(scen methods)$GATE}" --densities "$(scen densities)" --max-tokens "$(scen max_tokens)" \
      --passkey-depths "$(scen passkey_depths)" --no-recall --out "$LAB/sweep_ctx8192" > "$OUT/sweep.log" 2>&1
  echo "sweep rc=$? ($(wc -l < "$LAB/sweep_ctx8192/results.jsonl" 2>/dev/null || echo 0) rows)"
  tail -45 "$OUT/sweep.log"
fi
if has run; then
  # the scenario itself, end to end (a snapshot; its shard RUN_SHARD=i/n if set)
  echo "== run $SCEN --device cuda ${RUN_SHARD:+--shard $RUN_SHARD}"
  sed "s#assets/models/SmolLM2-135M-Instruct.Q4_1.gguf#$MODEL#" "$SCEN" > "$LAB/scenario_ctx8192.json"
  /usr/bin/time -f "   %e s wall" timeout "${RUN_TIMEOUT:-540}" "$CLI" run -q --device cuda "$LAB/scenario_ctx8192.json" \
      ${RUN_SHARD:+--shard $RUN_SHARD} --out "$LAB/run_ctx8192${RUN_SHARD:+_$(echo $RUN_SHARD | tr / o)}" --force \
      > "$OUT/run.log" 2>&1
  echo "run rc=$?"; tail -20 "$OUT/run.log"
  tar -C "$LAB" -czf "$OUT/run_ctx8192.tgz" $(cd "$LAB" && ls -d run_ctx8192*) 2>/dev/null && ls -la "$OUT/run_ctx8192.tgz"
fi
if has pack || has sweep; then
  tar -C "$LAB" -czf "$OUT/sweep_ctx8192.tgz" sweep_ctx8192 2>/dev/null && ls -la "$OUT/sweep_ctx8192.tgz"
fi
exit 0
