#!/usr/bin/env python3
"""Load an `attnlab-cli export` into PyTorch FlexAttention and check that it
reproduces AttnLab's sparse output for the reference head.

    attnlab-cli export --source MODEL --method block_topk:rho=0.2,B=64 --out sel.safetensors
    python3 tools/flex_check.py sel.safetensors            # reads sel.ref.safetensors too

The export holds, per layer and head, FlexAttention's block lists: kv_* for
partial blocks (mask_mod applied) and full_kv_* for fully kept blocks (no
mask_mod). The reference sidecar holds one head's Q, K, V, its token mask and
AttnLab's block-sparse output. This script builds
BlockMask.from_kv_blocks(...) for that layer/head with mask_mod = the token
mask, runs flex_attention (eager: torch.compile is not needed on CPU), and
compares. It also checks that the block lists cover exactly the token mask:
a block listed as full must be fully kept, and no kept pair may lie outside
the listed blocks. Exit status 0 when everything agrees.
"""
import argparse
import json
import sys

import torch
from safetensors import safe_open
from torch.nn.attention.flex_attention import BlockMask, flex_attention


def load(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return tensors, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export", help="FILE.safetensors written by attnlab-cli export")
    ap.add_argument("--ref", help="reference sidecar (default: FILE.ref.safetensors)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max |diff| / max |ref| allowed")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = ap.parse_args()
    ref_path = args.ref or (args.export[: -len(".safetensors")] if args.export.endswith(".safetensors") else args.export) + ".ref.safetensors"

    ex, exmeta = load(args.export)
    ref, refmeta = load(ref_path)
    meta = json.loads(exmeta["attnlab.flex"])
    rmeta = json.loads(refmeta["attnlab.flex_ref"])
    B = int(meta["block_size"])
    li, h = int(rmeta["layer_index"]), int(rmeta["head"])
    L = int(meta["n_tokens"])
    dt = getattr(torch, args.dtype)

    # [layers, heads, nq(, nk)] -> this layer and head, batch 1, 1 head.
    sel = lambda name: ex[name][li, h].unsqueeze(0).unsqueeze(0).contiguous().to(torch.int32)
    kv_num, kv_idx = sel("kv_num_blocks"), sel("kv_indices")
    full_num, full_idx = sel("full_kv_num_blocks"), sel("full_kv_indices")
    mask = ref["token_mask"].to(torch.bool)

    # The block lists against the token mask.
    nq = kv_num.shape[-1]
    problems = 0
    covered = torch.zeros(nq, nq, dtype=torch.bool)
    for I in range(nq):
        for kind, num, idx in (("partial", kv_num, kv_idx), ("full", full_num, full_idx)):
            for J in idx[0, 0, I, : int(num[0, 0, I])].tolist():
                covered[I, J] = True
                blk = mask[I * B : (I + 1) * B, J * B : (J + 1) * B]
                if kind == "full" and not bool(blk.all()):
                    problems += 1
    kept_blocks = torch.zeros(nq, nq, dtype=torch.bool)
    for I in range(nq):
        for J in range(nq):
            kept_blocks[I, J] = bool(mask[I * B : (I + 1) * B, J * B : (J + 1) * B].any())
    outside = int((kept_blocks & ~covered).sum())
    problems += outside

    mask_mod = lambda b, hh, q_idx, kv_idx_: mask[q_idx, kv_idx_]
    bm = BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=B, mask_mod=mask_mod, seq_lengths=(L, L))
    q = ref["q"].to(dt)[None, None]
    k = ref["k"].to(dt)[None, None]
    v = ref["v"].to(dt)[None, None]
    out = flex_attention(q, k, v, block_mask=bm, scale=float(rmeta["scale"]))[0, 0]
    want = ref["out"].to(dt)
    # Rows with no selected key: AttnLab writes zeros, FlexAttention too.
    err = float((out - want).abs().max())
    rel = err / max(float(want.abs().max()), 1e-30)
    ok = rel <= args.tol and problems == 0
    print(json.dumps({
        "export": args.export, "method": meta["method"], "layer": rmeta["layer"], "head": h, "block_size": B,
        "n_tokens": L, "torch": torch.__version__, "max_abs_diff": err, "rel_diff": rel, "tol": args.tol,
        "blocks_full_but_not_fully_kept": problems - outside, "kept_blocks_missing_from_lists": outside,
        "token_density": float(mask.sum()) / (L * (L + 1) / 2), "ok": ok,
    }, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
