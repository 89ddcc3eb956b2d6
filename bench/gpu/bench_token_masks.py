#!/usr/bin/env python3
"""Token masks on the GPU (kernels/flash_fwd.cuh, TOKMASK): a sliding window
with attention sinks (sinks_window: the first g keys + keys i-w+1..i), a
token-level pattern that block lists alone cannot express, timed side by side
in one process on the same inputs:

  ours_masked   AttnLab's flash kernel on the window's tile lists with a bit
                mask for each partially kept tile (the layout
                core/attention/tile_list.h builds)
  ours_cover    the same tiles without the masks (computes extra pairs: the
                cost of the masks is the difference)
  flex          FlexAttention with the same pattern as a mask_mod
  cudnn         SDPA dense causal (the baseline of the speedup column)

The masked output is checked against SDPA (math backend, fp32) with the
explicit boolean mask on the first shape, and the poisoned output must be
written everywhere. Writes OUT.md and OUT.json.
"""
import argparse
import ctypes
import json
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench import AttnArgs, time_fn, log  # noqa: E402


def window_tiles(L, B, w, g, dev):
    """Tile lists + masks for sinks_window(g, w), causal, one head (mask_H = 1)."""
    nb = (L + B - 1) // B
    i = torch.arange(L, device=dev).view(L, 1)
    j = torch.arange(L, device=dev).view(1, L)
    keep = (j <= i) & ((j > i - w) | (j < g))
    blk = keep.view(nb, B, nb, B) if L % B == 0 else None
    assert blk is not None, "L must be a multiple of B here"
    any_kept = blk.any(dim=(1, 3))                     # [nb, nb]
    pairs = blk.sum(dim=(1, 3))
    # pairs a causal tile holds: B*B off the diagonal, B(B+1)/2 on it
    full_pairs = torch.full((nb, nb), B * B, device=dev)
    full_pairs.diagonal().fill_(B * (B + 1) // 2)
    kv_num = any_kept.sum(1).int()
    kv_idx = torch.zeros(nb, nb, dtype=torch.int32, device=dev)
    mask_index = torch.full((nb, nb), -1, dtype=torch.int32, device=dev)
    masks = []
    for I in range(nb):
        cols = torch.nonzero(any_kept[I]).flatten()
        kv_idx[I, :len(cols)] = cols.int()
        for e, J in enumerate(cols.tolist()):
            if pairs[I, J] != full_pairs[I, J]:
                mask_index[I, e] = len(masks)
                bits = blk[I, :, J, :].reshape(B, B // 64, 64).long()
                masks.append((bits << torch.arange(64, device=dev)).sum(-1))   # bit 63 wraps: same bits
    m = torch.stack(masks).contiguous() if masks else torch.zeros(1, B, B // 64, dtype=torch.long, device=dev)
    return kv_num.contiguous(), kv_idx.contiguous(), mask_index.contiguous(), m, keep


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--lens", default="4096,8192,16384")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--window", type=int, default=1000)   # not a multiple of the tile: partial tiles on both ends
    ap.add_argument("--sinks", type=int, default=4)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--no-flex", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dev = torch.device("cuda")
    lib = ctypes.CDLL(a.lib)
    lib.attnlab_cuda_last_error.restype = ctypes.c_char_p
    lib.attnlab_attention_fwd.argtypes = [ctypes.POINTER(AttnArgs)]

    def ck(rc):
        if rc != 0:
            raise RuntimeError(lib.attnlab_cuda_last_error().decode())

    flex = None
    if not a.no_flex:
        try:
            from torch.nn.attention.flex_attention import create_block_mask, flex_attention
            flex = torch.compile(flex_attention, dynamic=False)
        except Exception as ex:  # noqa: BLE001
            log("FlexAttention unavailable:", ex)
    rows = []
    checked = False
    for D in map(int, a.dims.split(",")):
        for L in map(int, a.lens.split(",")):
            H, B = a.heads, a.block
            torch.manual_seed(L + D)
            q, k, v = (torch.randn(1, H, L, D, device=dev, dtype=torch.bfloat16) for _ in range(3))
            o = torch.empty_like(q)
            num, idx, midx, masks, keep = window_tiles(L, B, a.window, a.sinks, dev)
            nb = num.numel()

            def call(with_masks):
                x = AttnArgs()
                x.dtype = 0
                x.q, x.k, x.v, x.o = q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr()
                x.B, x.H, x.Hkv, x.L, x.D, x.causal, x.scale = 1, H, H, L, D, 1, 1.0 / math.sqrt(D)
                x.kv_num_blocks, x.kv_indices, x.block_size = num.data_ptr(), idx.data_ptr(), B
                x.mask_B, x.mask_H, x.max_kv_blocks = 1, 1, nb
                if with_masks:
                    x.kv_mask_index, x.token_masks = midx.data_ptr(), masks.data_ptr()
                return lambda: ck(lib.attnlab_attention_fwd(ctypes.byref(x)))

            masked, cover = call(True), call(False)
            o.fill_(float("nan"))
            masked()
            torch.cuda.synchronize()
            err = float("nan")
            if not checked:   # one reference check (the math backend materialises L x L)
                with sdpa_kernel(SDPBackend.MATH):
                    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=keep)
                err = ((o.float() - ref).norm() / ref.norm()).item()
                checked = True
                del ref
            assert not torch.isnan(o).any(), "unwritten or NaN output"
            r = {"L": L, "D": D, "H": H, "block": B, "window": a.window, "sinks": a.sinks,
                 "kept_pairs": int(keep.sum().item()), "tiles": int(num.sum().item()), "masked_tiles": int(masks.shape[0]),
                 "rel_err_vs_sdpa_math": err}
            r["ours_masked"] = time_fn(masked)
            r["ours_cover"] = time_fn(cover)
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                r["cudnn_dense"] = time_fn(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
            if flex is not None:
                w, g = a.window, a.sinks

                def sw(b, h, qi, kv):
                    return (qi >= kv) & ((qi - kv < w) | (kv < g))
                bm = create_block_mask(sw, 1, 1, L, L, device=dev, BLOCK_SIZE=B)
                try:
                    r["flex"] = time_fn(lambda: flex(q, k, v, block_mask=bm))
                except Exception as ex:  # noqa: BLE001
                    log("flex failed:", str(ex)[:200])
            del keep
            rows.append(r)
            log(f"L={L} D={D}: masked {r['ours_masked']*1e3:.3f} ms, cover {r['ours_cover']*1e3:.3f} ms, "
                f"flex {r.get('flex', float('nan'))*1e3:.3f} ms, cudnn dense {r['cudnn_dense']*1e3:.3f} ms, err {err:.2e}")
    name = torch.cuda.get_device_properties(0).name
    with open(a.out + ".json", "w") as f:
        json.dump({"device": name, "torch": torch.__version__, "rows": rows}, f, indent=1)
    with open(a.out + ".md", "w") as f:
        f.write(f"# Token masks: sinks_window(g={a.sinks}, w={a.window}), tiles of {a.block}, {name}\n\n")
        f.write("bf16, causal, one batch, H heads, times in ms (median of CUDA-event timings, one process).\n\n")
        f.write("| L | D | tiles | masked tiles | ours (masks) | ours (tiles only) | FlexAttention | cuDNN dense | "
                "ours vs flex | ours vs dense |\n|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            fl = r.get("flex")
            f.write(f"| {r['L']} | {r['D']} | {r['tiles']} | {r['masked_tiles']} | {r['ours_masked']*1e3:.3f} | "
                    f"{r['ours_cover']*1e3:.3f} | {fl*1e3:.3f} | " if fl else f"| {r['L']} | {r['D']} | {r['tiles']} | "
                    f"{r['masked_tiles']} | {r['ours_masked']*1e3:.3f} | {r['ours_cover']*1e3:.3f} | - | ")
            f.write(f"{r['cudnn_dense']*1e3:.3f} | {(fl / r['ours_masked']) if fl else float('nan'):.2f}x | "
                    f"{r['cudnn_dense'] / r['ours_masked']:.2f}x |\n")
        f.write(f"\nReference check (first shape, SDPA math backend in fp32 with the boolean mask): rel err "
                f"{rows[0]['rel_err_vs_sdpa_math']:.2e}\n")
    log(open(a.out + ".md").read())


if __name__ == "__main__":
    main()
