#!/usr/bin/env python3
"""Side-by-side attention benchmark on one GPU, in one process, on the same inputs
and the same block masks: AttnLab's CUDA kernels (through ctypes on
libattnlab_kernels.so), PyTorch SDPA (cuDNN and flash backends) and
FlexAttention with a BlockMask built from the same kv_num_blocks/kv_indices.

TFLOP/s count only the computed (query, key) pairs of kept blocks (4*D per
pair; causal diagonal blocks count their lower triangle), so dense causal
counts L(L+1)/2 pairs. Speedup is against cuDNN dense at the same L, D, causal.
Timing: CUDA events per call, warm-up first, median of the repeats.
"""
import argparse
import ctypes
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BS = 128


def log(*a):
    print(*a, flush=True)


def time_fn(fn, min_reps=3, target_s=0.25):
    fn()  # warm-up (compilation, handles)
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); fn(); e.record(); torch.cuda.synchronize()
    est = s.elapsed_time(e) / 1e3
    reps = int(max(min_reps, min(50, target_s / max(est, 1e-6))))
    times = []
    for _ in range(reps):
        s.record(); fn(); e.record(); torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    return statistics.median(times)


def make_masks(H, nb, causal, density, gen, device):
    """kv_num [1,H,nb], kv_idx [1,H,nb,nb] (ascending, tail padded with valid indices)."""
    r = torch.rand(H, nb, nb, generator=gen, device=device)
    I = torch.arange(nb, device=device).view(1, nb, 1)
    J = torch.arange(nb, device=device).view(1, 1, nb)
    if causal:
        r = torch.where(J > I, torch.full_like(r, -1.0), r)
        r = torch.where(J == I, torch.full_like(r, 2.0), r)  # keep the diagonal
        allowed = (torch.arange(nb, device=device) + 1).view(1, nb).expand(H, nb)
    else:
        allowed = torch.full((H, nb), nb, device=device)
    k = torch.clamp(torch.round(density * allowed.float()).long(), min=1)
    k = torch.minimum(k, allowed)
    order = torch.argsort(r, dim=-1, descending=True)
    pos = torch.arange(nb, device=device).view(1, 1, nb)
    kept = pos < k.unsqueeze(-1)
    # ascending indices of kept blocks first, then padding (repeat of a kept index)
    key = torch.where(kept, order, order + nb)
    idx = torch.sort(key, dim=-1).values
    idx = torch.where(idx >= nb, idx - nb, idx)
    return k.int().unsqueeze(0).contiguous(), idx.int().unsqueeze(0).contiguous()


def computed_pairs(kv_num, kv_idx, causal, L):
    H, nb = kv_num.shape[1], kv_num.shape[2]
    if not causal:
        return int(kv_num.sum().item()) * BS * BS
    full = int(kv_num.sum().item()) - H * nb  # every row keeps its diagonal block
    return full * BS * BS + H * nb * (BS * (BS + 1) // 2)


class AttnArgs(ctypes.Structure):
    """attnlab_attn_args (kernels/attnlab_cuda.h), for the score-variant rows."""
    _fields_ = [("dtype", ctypes.c_int), ("q", ctypes.c_void_p), ("k", ctypes.c_void_p), ("v", ctypes.c_void_p),
                ("o", ctypes.c_void_p), ("B", ctypes.c_int), ("H", ctypes.c_int), ("Hkv", ctypes.c_int),
                ("L", ctypes.c_int), ("D", ctypes.c_int), ("causal", ctypes.c_int), ("scale", ctypes.c_float),
                ("q_strides", ctypes.c_longlong * 3), ("k_strides", ctypes.c_longlong * 3),
                ("v_strides", ctypes.c_longlong * 3), ("o_strides", ctypes.c_longlong * 3),
                ("kv_num_blocks", ctypes.c_void_p), ("kv_indices", ctypes.c_void_p), ("block_size", ctypes.c_int),
                ("mask_B", ctypes.c_int), ("mask_H", ctypes.c_int), ("max_kv_blocks", ctypes.c_int),
                ("stream", ctypes.c_void_p), ("score", ctypes.c_int), ("relu_bias", ctypes.c_float),
                ("relu_row_norm", ctypes.c_int), ("hyp_c", ctypes.c_float), ("hyp_beta", ctypes.c_float),
                ("hyp_gamma", ctypes.c_float), ("kv_mask_index", ctypes.c_void_p), ("token_masks", ctypes.c_void_p)]


SCORES = {"relu": 1, "hyperbolic": 2}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--lens", default="32768,16384,4096")
    ap.add_argument("--dims", default="128,64")
    ap.add_argument("--causal", default="0,1")
    ap.add_argument("--densities", default="1,0.4,0.2,0.1,0.05")
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--budget-s", type=float, default=300)
    ap.add_argument("--no-flex", action="store_true")
    ap.add_argument("--scores", default="",
                    help="also time dense attention with these score functions (relu,hyperbolic; default kernel variant)")
    ap.add_argument("--variants", default="0,1",
                    help="our kernel variants to time (attnlab_set_kernel_variant: 0 default, 1 8w x 16r, 2 4w x 32r, "
                         "3 wgmma+TMA); the first one's error is checked and reported")
    ap.add_argument("--out", required=True, help="basename for .md and .json")
    args = ap.parse_args()

    t_start = time.time()
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(0)
    device_name = props.name
    lib = ctypes.CDLL(args.lib)
    lib.attnlab_cuda_last_error.restype = ctypes.c_char_p
    lib.attnlab_block_topk_workspace.restype = ctypes.c_size_t
    vp, ci, cf = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    lib.attnlab_flash_fwd.argtypes = [ci, vp, vp, vp, vp, ci, ci, ci, ci, ci, ci, cf, vp]
    lib.attnlab_block_sparse_fwd.argtypes = [ci, vp, vp, vp, vp, ci, ci, ci, ci, ci, ci, cf, vp, vp, ci, ci, ci, ci, vp]
    lib.attnlab_block_topk_workspace.argtypes = [ci, ci, ci, ci, ci, ci]
    lib.attnlab_set_kernel_variant.argtypes = [ci]
    lib.attnlab_attention_fwd.argtypes = [ctypes.POINTER(AttnArgs)]
    VARIANTS = {0: "default", 1: "8w x 16r", 2: "4w x 32r", 3: "wgmma+TMA", 4: "wgmma+TMA, intra-WG pipelined"}
    lib.attnlab_default_kernel_variant.argtypes = [ci, ci]
    var_list = [int(x) for x in args.variants.split(",")]
    lib.attnlab_block_topk.argtypes = [ci, vp, vp, ci, ci, ci, ci, ci, ci, cf, ci, cf, ci, vp, vp, vp, vp]
    lib.attnlab_learned_gate_workspace.restype = ctypes.c_size_t
    lib.attnlab_learned_gate_workspace.argtypes = [ci, ci, ci, ci, ci, ci, ci]
    lib.attnlab_learned_gate.argtypes = [ci, vp, vp, vp, vp, ci, ci, ci, ci, ci, ci, ci, ci, cf, ci, vp, vp, vp, vp]

    def ck(rc):
        if rc != 0:
            raise RuntimeError(lib.attnlab_cuda_last_error().decode())

    flex = None
    if not args.no_flex:
        try:
            from torch.nn.attention.flex_attention import BlockMask, flex_attention
            import torch._dynamo as dynamo
            dynamo.config.recompile_limit = 1000  # one compile per shape; the default 8 fell back to eager
            if hasattr(dynamo.config, "cache_size_limit"):
                dynamo.config.cache_size_limit = 1000
            flex = torch.compile(flex_attention, dynamic=False)
        except Exception as ex:  # noqa: BLE001
            log("FlexAttention unavailable:", ex)

    def causal_mod(b, h, q, kv):
        return q >= kv

    rows = []
    B, H = args.batch, args.heads
    dens_list = [float(x) for x in args.densities.split(",")]
    configs = [(L, D, c) for D in map(int, args.dims.split(",")) for L in map(int, args.lens.split(","))
               for c in map(int, args.causal.split(","))]
    gen = torch.Generator(device=dev)
    gen.manual_seed(1234)
    skipped = []
    for (L, D, causal) in configs:
        if time.time() - t_start > args.budget_s:
            skipped.append((L, D, causal))
            continue
        nb = (L + BS - 1) // BS
        torch.manual_seed(L + D + causal)
        q = torch.randn(B, H, L, D, device=dev, dtype=torch.bfloat16)
        k = torch.randn(B, H, L, D, device=dev, dtype=torch.bfloat16)
        v = torch.randn(B, H, L, D, device=dev, dtype=torch.bfloat16)
        o = torch.empty_like(q)
        scale = 1.0 / math.sqrt(D)

        def sdpa(backend):
            def f():
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
            return f

        res = {}
        ref = None
        for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
            try:
                res[name] = time_fn(sdpa(backend))
                if ref is None:
                    ref = sdpa(backend)().float()
            except Exception as ex:  # noqa: BLE001
                log(f"  {name} failed: {str(ex)[:200]}")
        ours_dense = lambda: ck(lib.attnlab_flash_fwd(0, q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(),
                                                        B, H, H, L, D, causal, scale, None))
        main_v, others = var_list[0], var_list[1:]
        VARIANTS[0] = "default = " + VARIANTS[lib.attnlab_default_kernel_variant(D, BS)]
        ck(lib.attnlab_set_kernel_variant(main_v))
        o.fill_(float("nan"))
        ours_dense()
        torch.cuda.synchronize()
        err_dense = ((o.float() - ref).norm() / ref.norm()).item() if ref is not None else float("nan")
        res["ours"] = time_fn(ours_dense)
        for var in others:   # (not `v`: that is the V tensor)
            ck(lib.attnlab_set_kernel_variant(var))
            res[f"ours_v{var}"] = time_fn(ours_dense)
        ck(lib.attnlab_set_kernel_variant(main_v))

        # gate at density 0.2 (its cost does not depend on the density)
        ws = torch.empty(lib.attnlab_block_topk_workspace(B, H, H, L, D, BS), dtype=torch.uint8, device=dev)
        gnum = torch.empty(B, H, nb, dtype=torch.int32, device=dev)
        gidx = torch.empty(B, H, nb, nb, dtype=torch.int32, device=dev)
        gate = lambda: ck(lib.attnlab_block_topk(0, q.data_ptr(), k.data_ptr(), B, H, H, L, D, causal, scale, BS,
                                                 0.2, 0, gnum.data_ptr(), gidx.data_ptr(), ws.data_ptr(), None))
        t_gate = time_fn(gate)
        # the learned gate (random W_q, W_k of d_g = 32: its cost does not depend on the values)
        DG = 32
        wq = torch.randn(H, D, DG, device=dev) / D ** 0.5
        wk = torch.randn(H, D, DG, device=dev) / D ** 0.5
        lws = torch.empty(lib.attnlab_learned_gate_workspace(B, H, H, L, D, DG, BS), dtype=torch.uint8, device=dev)
        lgate = lambda: ck(lib.attnlab_learned_gate(0, q.data_ptr(), k.data_ptr(), wq.data_ptr(), wk.data_ptr(), DG, B, H,
                                                    H, L, D, causal, BS, 0.2, 0, gnum.data_ptr(), gidx.data_ptr(),
                                                    lws.data_ptr(), None))
        t_lgate = time_fn(lgate)
        del lws

        dense_pairs = (L * (L + 1) // 2 if causal else L * L) * H * B
        base = res.get("cudnn", float("nan"))
        for method in ["cudnn", "flash", "ours"] + [f"ours_v{v}" for v in others]:
            if method in res:
                mname = f"ours dense ({VARIANTS[main_v]})" if method == "ours" else (
                    f"ours dense ({VARIANTS[int(method[6:])]})" if method.startswith("ours_v") else f"{method} dense")
                rows.append(dict(L=L, D=D, causal=causal, density=1.0, method=mname, time_ms=res[method] * 1e3,
                                 tflops=4 * D * dense_pairs / res[method] / 1e12, speedup=base / res[method],
                                 rel_err=err_dense if method == "ours" else None))
        for sname in [x for x in args.scores.split(",") if x]:
            sa = AttnArgs(dtype=0, q=q.data_ptr(), k=k.data_ptr(), v=v.data_ptr(), o=o.data_ptr(), B=B, H=H, Hkv=H, L=L,
                          D=D, causal=causal, scale=scale, score=SCORES[sname], relu_bias=0.0, relu_row_norm=0,
                          hyp_c=1.0, hyp_beta=1.0, hyp_gamma=0.0)
            ck(lib.attnlab_set_kernel_variant(0))
            t_sc = time_fn(lambda: ck(lib.attnlab_attention_fwd(ctypes.byref(sa))))
            ck(lib.attnlab_set_kernel_variant(main_v))
            rows.append(dict(L=L, D=D, causal=causal, density=1.0, method=f"ours dense, score {sname} (default variant)",
                             time_ms=t_sc * 1e3, tflops=4 * D * dense_pairs / t_sc / 1e12, speedup=base / t_sc))
            log(f"  score {sname}: {t_sc*1e3:.2f} ms {4*D*dense_pairs/t_sc/1e12:.0f} TFLOP/s")
        rows.append(dict(L=L, D=D, causal=causal, density=None, method="ours gate (block_topk)", time_ms=t_gate * 1e3,
                         tflops=None, speedup=None, share_of_ours_dense=t_gate / res["ours"],
                         share_of_cudnn_dense=t_gate / base if base == base else None))
        rows.append(dict(L=L, D=D, causal=causal, density=None, method="ours learned gate (d_g 32)",
                         time_ms=t_lgate * 1e3, tflops=None, speedup=None, share_of_ours_dense=t_lgate / res["ours"],
                         share_of_cudnn_dense=t_lgate / base if base == base else None))
        log(f"L={L} D={D} causal={causal}: cudnn {res.get('cudnn', 0)*1e3:.2f} ms, flash {res.get('flash', 0)*1e3:.2f} ms, "
            f"ours v{main_v} {res['ours']*1e3:.2f} ms ("
            + ", ".join(f"v{v} {res[f'ours_v{v}']*1e3:.2f}" for v in others) + f") (rel err vs sdpa {err_dense:.2e}), "
            f"gate {t_gate*1e3:.3f} ms, learned gate {t_lgate*1e3:.3f} ms")

        for dens in dens_list:
            if time.time() - t_start > args.budget_s:
                skipped.append((L, D, causal, dens))
                break
            kv_num, kv_idx = make_masks(H, nb, causal, dens, gen, dev)
            pairs = computed_pairs(kv_num, kv_idx, causal, L) * B
            sp = lambda: ck(lib.attnlab_block_sparse_fwd(0, q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(),
                                                           B, H, H, L, D, causal, scale, kv_num.data_ptr(),
                                                           kv_idx.data_ptr(), BS, 1, H, nb, None))
            o.fill_(float("nan"))
            sp()
            torch.cuda.synchronize()
            ours_out = o.float().clone()
            t_other = {}
            for var in others:
                ck(lib.attnlab_set_kernel_variant(var))
                t_sp1 = t_other[var] = time_fn(sp)
                rows.append(dict(L=L, D=D, causal=causal, density=dens, method=f"ours block-sparse ({VARIANTS[var]})",
                                 time_ms=t_sp1 * 1e3, tflops=4 * D * pairs / t_sp1 / 1e12, speedup=base / t_sp1))
            ck(lib.attnlab_set_kernel_variant(main_v))
            t_sp = time_fn(sp)
            rows.append(dict(L=L, D=D, causal=causal, density=dens, method=f"ours block-sparse ({VARIANTS[main_v]})",
                             time_ms=t_sp * 1e3, tflops=4 * D * pairs / t_sp / 1e12, speedup=base / t_sp,
                             real_density=pairs / dense_pairs))
            line = (f"  dens {dens}: ours v{main_v} sparse {t_sp*1e3:.2f} ms {4*D*pairs/t_sp/1e12:.0f} TFLOP/s ("
                    + ", ".join(f"v{v} {4*D*pairs/t/1e12:.0f}" for v, t in t_other.items()) + ")")
            if flex is not None:
                try:
                    if causal:
                        diag = torch.arange(nb, device=dev, dtype=torch.int32).view(1, 1, nb, 1).expand(1, H, nb, nb)
                        # full blocks: kept blocks other than the diagonal
                        pos = torch.arange(nb, device=dev).view(1, 1, 1, nb)
                        valid = pos < kv_num.unsqueeze(-1)
                        is_diag = kv_idx == torch.arange(nb, device=dev, dtype=torch.int32).view(1, 1, nb, 1)
                        keyf = torch.where(valid & ~is_diag, kv_idx, kv_idx + nb)
                        fidx = torch.sort(keyf, dim=-1).values
                        fidx = torch.where(fidx >= nb, fidx - nb, fidx).int().contiguous()
                        fnum = (kv_num - 1).int().contiguous()
                        bm = BlockMask.from_kv_blocks(torch.ones_like(kv_num), diag.contiguous().int(), fnum, fidx,
                                                      BLOCK_SIZE=BS, mask_mod=causal_mod)
                    else:
                        bm = BlockMask.from_kv_blocks(torch.zeros_like(kv_num), kv_idx, kv_num, kv_idx, BLOCK_SIZE=BS)
                    fx = lambda: flex(q, k, v, block_mask=bm, scale=scale)
                    fo = fx().float()
                    err_fx = ((ours_out - fo).norm() / fo.norm()).item()
                    t_fx = time_fn(fx)
                    rows.append(dict(L=L, D=D, causal=causal, density=dens, method="flex block-sparse",
                                     time_ms=t_fx * 1e3, tflops=4 * D * pairs / t_fx / 1e12, speedup=base / t_fx,
                                     rel_err_ours_vs_flex=err_fx))
                    rows[-2]["rel_err"] = err_fx
                    line += f" | flex {t_fx*1e3:.2f} ms {4*D*pairs/t_fx/1e12:.0f} TFLOP/s | ours vs flex rel err {err_fx:.2e}"
                except Exception as ex:  # noqa: BLE001
                    line += f" | flex failed: {str(ex)[:300]}"
            log(line)
        del q, k, v, o
        torch.cuda.empty_cache()

    meta = dict(device=device_name, torch=torch.__version__, B=B, H=H, dtype="bf16", block=BS,
                elapsed_s=time.time() - t_start, skipped=[list(s) for s in skipped],
                cudnn_version=torch.backends.cudnn.version())
    with open(args.out + ".json", "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    md = [f"# Attention benchmark on {device_name}", "",
          f"bf16, B={B}, H={H} (no GQA), block {BS}; torch {torch.__version__}, cuDNN {meta['cudnn_version']}. "
          "TFLOP/s on computed blocks (4·D per computed pair; causal diagonal blocks count their lower triangle); "
          "speedup = cuDNN dense time / time. Same inputs and block masks for every method, one process.", "",
          "| L | D | causal | density | method | ms | TFLOP/s | speedup vs cuDNN dense | note |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        note = ""
        if r.get("rel_err") is not None:
            note = f"rel err {r['rel_err']:.1e}"
        if r.get("share_of_cudnn_dense") is not None:
            note = f"{100*r['share_of_ours_dense']:.2f}% of ours dense, {100*r['share_of_cudnn_dense']:.2f}% of cuDNN dense"
        md.append("| {} | {} | {} | {} | {} | {:.3f} | {} | {} | {} |".format(
            r["L"], r["D"], r["causal"], "" if r["density"] is None else r["density"], r["method"], r["time_ms"],
            "" if r["tflops"] is None else f"{r['tflops']:.0f}",
            "" if r["speedup"] is None else f"{r['speedup']:.2f}x", note))
    if skipped:
        md += ["", f"Not measured (time budget): {skipped}"]
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    log("\n".join(md))


if __name__ == "__main__":
    main()
