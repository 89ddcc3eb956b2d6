#!/usr/bin/env python3
"""Markdown tables from a sweep directory's results.jsonl (attnlab-cli sweep / run).

  tools/sweep_table.py DIR                 # one row per (method, density, ctx), every column
  tools/sweep_table.py DIR --by-ctx        # perplexity change side by side per context length

Reads only what the sweep measured; prints nothing it did not. Rows of a
GPU sweep carry the device's name and the forward pass's peak device memory
(dense and with the method, in the same run).
"""
import argparse
import json
import math
import os
import sys


def load_rows(d):
    path = os.path.join(d, "results.jsonl")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON: {e}")
    if not rows:
        sys.exit(f"{path}: no rows")
    return rows


def num(v, fmt):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def label(r):
    m = r["method"]
    # trained files by name only: their full paths and sha256 are in the row
    parts = []
    for p in m.split(","):
        if "params=" in p or "table=" in p:
            k, _, v = p.partition("=")
            p = k + "=" + os.path.basename(v)
        parts.append(p)
    return "`" + ",".join(parts).replace("|", "\\|") + "`"


def mb(v):
    return "-" if not v else f"{v / 2**20:.0f}"


def passkey(r):
    t = r.get("passkey_trials", 0)
    return "-" if not t else f"{round(r['passkey_accuracy'] * t)}/{t}"


def table_rows(rows):
    out = ["| ctx | method | block density | token density | ppl (Δ vs dense) | top-1 agreement | passkey | "
           "selection s | attention s | peak GPU MiB (dense) | row s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["ctx"], r.get("method_name", ""), r.get("density_set", 0))):
        dense_mem = r.get("dense_device_bytes_peak", 0)
        out.append("| {} | {} | {} | {} | {} ({:+.1f}%) | {} | {} | {} | {} | {} ({}) | {} |".format(
            r["ctx"], label(r), num(r["block_density"], ".3f"), num(r["token_density"], ".3f"), num(r["ppl"], ".3f"),
            100 * r["delta_ppl_rel"], num(r["top1_agreement"], ".3f"), passkey(r), num(r.get("predictor_s"), ".2f"),
            num(r.get("kernel_s"), ".3f"), mb(r.get("device_bytes_peak", 0)), mb(dense_mem),
            num(r.get("seconds"), ".1f")))
    return out


def table_by_ctx(rows):
    ctxs = sorted({r["ctx"] for r in rows})
    cells = {}
    bd = {}
    for r in rows:
        key = (r.get("method_name", ""), r["method"])
        cells[(key, r["ctx"])] = r
        bd.setdefault(key, {})[r["ctx"]] = r["block_density"]
    head = "| method | " + " | ".join(f"Δppl ctx {c}" for c in ctxs) + " | " + \
        " | ".join(f"block density {c}" for c in ctxs) + " |"
    out = [head, "|---|" + "---|" * (2 * len(ctxs))]
    for key in sorted({k for k, _ in cells}, key=lambda k: (k[0] != "dense", k[0], k[1])):
        any_r = next(cells[(key, c)] for c in ctxs if (key, c) in cells)
        line = [label(any_r)]
        for c in ctxs:
            r = cells.get((key, c))
            line.append("-" if r is None else (f"{r['ppl']:.3f}" if key[0] == "dense" else f"{100 * r['delta_ppl_rel']:+.1f}%"))
        for c in ctxs:
            line.append(num(bd[key].get(c), ".3f"))
        out.append("| " + " | ".join(line) + " |")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="sweep output directory (holds results.jsonl)")
    ap.add_argument("--by-ctx", action="store_true", help="perplexity change per method, one column per ctx")
    a = ap.parse_args()
    rows = load_rows(a.dir)
    devs = sorted({r.get("device_name") or r.get("device") or "cpu" for r in rows})
    toks = sorted({r["tokens"] for r in rows})
    print(f"<!-- {len(rows)} rows from {a.dir}/results.jsonl; device: {', '.join(devs)}; "
          f"evaluation tokens: {', '.join(map(str, toks))}; text: {rows[0].get('text', '?')} -->")
    print("\n".join(table_by_ctx(rows) if a.by_ctx else table_rows(rows)))


if __name__ == "__main__":
    main()
