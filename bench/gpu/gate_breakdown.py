#!/usr/bin/env python3
"""The gates alone (attnlab_block_topk, attnlab_learned_gate), for a per-kernel
breakdown under a profiler:
    ncu --metrics gpu__time_duration.sum python3 bench/gpu/gate_breakdown.py --lib libattnlab_kernels.so
Each gate runs once to warm up, then --runs times; with ncu
every launch is listed with its duration (pooling, projection, scores, select).
Without a profiler it prints the median time of each gate (CUDA events).
"""
import argparse
import ctypes
import statistics

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--L", type=int, default=32768)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--causal", type=int, default=0)
    ap.add_argument("--density", type=float, default=0.2)
    ap.add_argument("--dg", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    lib = ctypes.CDLL(args.lib)
    vp, ci, cf = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    lib.attnlab_cuda_last_error.restype = ctypes.c_char_p
    lib.attnlab_block_topk_workspace.restype = ctypes.c_size_t
    lib.attnlab_block_topk_workspace.argtypes = [ci] * 6
    lib.attnlab_block_topk.argtypes = [ci, vp, vp, ci, ci, ci, ci, ci, ci, cf, ci, cf, ci, vp, vp, vp, vp]
    has_learned = hasattr(lib, "attnlab_learned_gate")   # (a library built before it had none)
    if has_learned:
        lib.attnlab_learned_gate_workspace.restype = ctypes.c_size_t
        lib.attnlab_learned_gate_workspace.argtypes = [ci] * 7
        lib.attnlab_learned_gate.argtypes = [ci, vp, vp, vp, vp, ci, ci, ci, ci, ci, ci, ci, ci, cf, ci, vp, vp, vp, vp]

    def ck(rc):
        if rc != 0:
            raise RuntimeError(lib.attnlab_cuda_last_error().decode())

    dev = torch.device("cuda")
    L, D, H, BS = args.L, args.D, args.H, args.block
    nb = (L + BS - 1) // BS
    q = torch.randn(1, H, L, D, device=dev, dtype=torch.bfloat16)
    k = torch.randn(1, H, L, D, device=dev, dtype=torch.bfloat16)
    num = torch.empty(1, H, nb, dtype=torch.int32, device=dev)
    idx = torch.empty(1, H, nb, nb, dtype=torch.int32, device=dev)
    ws = torch.empty(lib.attnlab_block_topk_workspace(1, H, H, L, D, BS), dtype=torch.uint8, device=dev)
    wq = torch.randn(H, D, args.dg, device=dev) / D ** 0.5
    wk = torch.randn(H, D, args.dg, device=dev) / D ** 0.5
    gates = {
        "block_topk": lambda: ck(lib.attnlab_block_topk(0, q.data_ptr(), k.data_ptr(), 1, H, H, L, D, args.causal, 0.0,
                                                        BS, args.density, 0, num.data_ptr(), idx.data_ptr(),
                                                        ws.data_ptr(), None)),
    }
    if has_learned:
        lws = torch.empty(lib.attnlab_learned_gate_workspace(1, H, H, L, D, args.dg, BS), dtype=torch.uint8, device=dev)
        gates["learned_gate"] = lambda: ck(lib.attnlab_learned_gate(
            0, q.data_ptr(), k.data_ptr(), wq.data_ptr(), wk.data_ptr(), args.dg, 1, H, H, L, D, args.causal, BS,
            args.density, 0, num.data_ptr(), idx.data_ptr(), lws.data_ptr(), None))
    for name, fn in gates.items():
        fn()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for _ in range(args.runs):
            s.record(); fn(); e.record(); torch.cuda.synchronize()
            times.append(s.elapsed_time(e))
        print(f"{name}: L={L} D={D} H={H} block={BS} causal={args.causal}: median {statistics.median(times):.3f} ms "
              f"over {args.runs} runs", flush=True)


if __name__ == "__main__":
    main()
