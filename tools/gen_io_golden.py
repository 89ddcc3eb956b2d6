#!/usr/bin/env python3
"""Golden files for tests/test_io.cpp, made with independent Python references.

  tests/data/io_quant_golden.bin    raw ggml blocks of every dequantisable type
                                    plus gguf.quants.dequantize() of them
  tests/data/io_tiny_v3.gguf        GGUFWriter file: every metadata value type,
  tests/data/io_tiny_v2.gguf        nested arrays, a few tensors (v2: same bytes
                                    with version 2 and general.alignment = 64)
  tests/data/io_model_golden.bin    dequantised slices of the default model
                                    (only when assets/models/... is present)
  tests/data/io_golden.safetensors  written by the safetensors package

The values the C++ test hard-codes are defined here too; keep both in sync.
Usage: python3 tools/gen_io_golden.py [--model PATH]
"""
import argparse
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT
from gguf.quants import dequantize, quantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
DEFAULT_MODEL = os.path.join(ROOT, "assets", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

# Byte positions of the fp16 scale fields inside one block, so blocks made of
# random bytes get finite scales (random bits could be inf/nan).
F16_FIELDS = {
    QT.Q4_0: [0], QT.Q4_1: [0, 2], QT.Q5_0: [0], QT.Q5_1: [0, 2], QT.Q8_0: [0],
    QT.Q2_K: [80, 82], QT.Q3_K: [108], QT.Q4_K: [0, 2], QT.Q5_K: [0, 2], QT.Q6_K: [208],
}
QUANT_TYPES = [QT.F32, QT.F16, QT.BF16, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0,
               QT.Q2_K, QT.Q3_K, QT.Q4_K, QT.Q5_K, QT.Q6_K]
ROW = 512  # two K super-blocks, sixteen 32-element blocks


def random_blocks(rng, qt, n_elems):
    blk, size = gguf.GGML_QUANT_SIZES[qt]
    nb = n_elems // blk
    raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    for off in F16_FIELDS[qt]:
        scale = rng.uniform(-0.05, 0.05, size=nb).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(nb, 2)
    return raw.reshape(-1)


def gen_quant_golden(rng):
    records = []
    for qt in QUANT_TYPES:
        rows = []
        x = (rng.standard_normal((2, ROW)) * 0.7).astype(np.float32)
        x[0, :7] = [0.0, 1.0, -1.0, 65504.0 / 1024, 1e-3, -2.5, 3.0]
        if qt in (QT.F32, QT.F16, QT.BF16, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0):
            rows.append(np.ascontiguousarray(quantize(x[0:1], qt)).view(np.uint8).reshape(-1))
        if qt in F16_FIELDS:
            # random bits reach every code path (all high bits, all scales)
            rows.append(random_blocks(rng, qt, ROW))
            rows.append(random_blocks(rng, qt, ROW))
        else:
            rows.append(np.ascontiguousarray(quantize(x[1:2], qt)).view(np.uint8).reshape(-1))
        for raw in rows:
            ref = dequantize(raw.reshape(1, -1), qt).astype(np.float32).reshape(-1)
            assert ref.size == ROW, (qt, ref.size)
            records.append((int(qt), raw.tobytes(), ref))
    out = bytearray(b"IOQG")
    out += struct.pack("<II", 1, len(records))
    for t, raw, ref in records:
        out += struct.pack("<III", t, ref.size, len(raw))
        out += raw
        out += ref.astype("<f4").tobytes()
    path = os.path.join(DATA, "io_quant_golden.bin")
    with open(path, "wb") as f:
        f.write(out)
    print(f"{path}: {len(records)} rows, {len(out)} bytes")


def write_tiny_gguf(path, version, alignment):
    w = gguf.GGUFWriter(path, arch="llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 1.5)
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 3.141592653589793)
    w.add_bool("test.bool", True)
    w.add_string("test.str", "h\u00e9llo w\u00f6rld")
    w.add_key_value("test.arr_i32", [1, -2, 3], VT.ARRAY, sub_type=VT.INT32)
    w.add_key_value("test.arr_u8", [7, 8, 9, 255], VT.ARRAY, sub_type=VT.UINT8)
    w.add_key_value("test.arr_i64", [-5, 2**40], VT.ARRAY, sub_type=VT.INT64)
    w.add_key_value("test.arr_f32", [0.5, 0.25, -8.0], VT.ARRAY, sub_type=VT.FLOAT32)
    w.add_key_value("test.arr_f64", [1e300, -2.5], VT.ARRAY, sub_type=VT.FLOAT64)
    w.add_key_value("test.arr_bool", [True, False, True], VT.ARRAY, sub_type=VT.BOOL)
    w.add_key_value("test.arr_str", ["a", "bc", "", "d\u00e9f"], VT.ARRAY, sub_type=VT.STRING)
    # nested: an array of int32 arrays, and an array of string arrays
    w.add_key_value("test.arr_nested", [[1, 2], [3], [4, 5, 6]], VT.ARRAY, sub_type=VT.ARRAY)
    w.add_key_value("test.arr_nested_str", [["x"], ["y", "zz"]], VT.ARRAY, sub_type=VT.ARRAY)

    f32 = np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1.0  # ne = [3, 2]
    w.add_tensor("w.f32", f32)
    f16 = np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16)
    w.add_tensor("w.f16", f16)
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    for qt, name in ((QT.Q8_0, "w.q8_0"), (QT.Q4_1, "w.q4_1")):
        q = quantize(x, qt)
        w.add_tensor(name, q, raw_dtype=qt)
        # dequantised by the reference, stored next to it for the C++ test
        w.add_tensor(name + ".ref", dequantize(q, qt).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if version != 3:
        # v2 and v3 little-endian files have the same layout; only the
        # version field differs.
        with open(path, "r+b") as f:
            f.seek(4)
            f.write(struct.pack("<I", version))
    print(f"{path}: v{version}, {os.path.getsize(path)} bytes")


def gen_model_golden(model):
    r = gguf.GGUFReader(model)
    want = [  # tensor, first element, count
        ("blk.0.attn_q.weight", 0, 2 * 576),
        ("token_embd.weight", 100 * 576, 576),
        ("blk.0.attn_norm.weight", 0, 64),
    ]
    out = bytearray(b"IOMG")
    out += struct.pack("<I", len(want))
    for name, first, n in want:
        t = next(t for t in r.tensors if t.name == name)
        vals = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(-1)
        seg = vals[first:first + n]
        nb = name.encode()
        out += struct.pack("<I", len(nb)) + nb + struct.pack("<II", first, n) + seg.astype("<f4").tobytes()
    path = os.path.join(DATA, "io_model_golden.bin")
    with open(path, "wb") as f:
        f.write(out)
    print(f"{path}: {len(out)} bytes")


def gen_safetensors():
    import torch
    from safetensors.torch import save_file
    vals = [0.5, -1.0, 2.25, 3.0, -0.125, 1024.0]  # exact in every float dtype
    t = {
        "a.f64": torch.tensor(vals, dtype=torch.float64).reshape(2, 3),
        "b.f32": torch.tensor(vals, dtype=torch.float32).reshape(3, 2),
        "c.f16": torch.tensor(vals, dtype=torch.float16),
        "d.bf16": torch.tensor(vals, dtype=torch.bfloat16).reshape(1, 2, 3),
        "e.i64": torch.tensor([1, -2, 3], dtype=torch.int64),
        "f.u8": torch.tensor([[1, 2], [3, 4]], dtype=torch.uint8),
        "g.scalar": torch.tensor(7.0, dtype=torch.float32),
    }
    path = os.path.join(DATA, "io_golden.safetensors")
    save_file(t, path, metadata={"format": "pt", "note": "golden"})
    os.chmod(path, 0o644)
    print(f"{path}: {os.path.getsize(path)} bytes")


def gen_fuzz_seeds(rng):
    """Small valid seeds for the fuzzers: one tensor of every decodable type,
    and a safetensors file of every dtype."""
    gdir = os.path.join(ROOT, "tests", "fuzz_corpus", "gguf")
    sdir = os.path.join(ROOT, "tests", "fuzz_corpus", "safetensors")
    os.makedirs(gdir, exist_ok=True)
    os.makedirs(sdir, exist_ok=True)
    path = os.path.join(gdir, "seed_all_types.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_custom_alignment(16)
    w.add_key_value("a", [["x", "y"], ["z"]], VT.ARRAY, sub_type=VT.ARRAY)
    w.add_float64("f", 0.5)
    for qt in QUANT_TYPES:
        blk, _ = gguf.GGML_QUANT_SIZES[qt]
        n = 256 if blk == 256 else 32
        if qt in F16_FIELDS:
            raw = random_blocks(rng, qt, n)
        else:
            raw = np.ascontiguousarray(quantize(rng.standard_normal((1, n)).astype(np.float32), qt)).view(np.uint8).reshape(-1)
        w.add_tensor("t." + qt.name, raw.reshape(1, -1), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{path}: {os.path.getsize(path)} bytes")
    from safetensors.numpy import save_file
    t = {
        "f64": np.array([1.0, -2.0], dtype=np.float64),
        "f32": np.array([[1.0, 2.0]], dtype=np.float32),
        "f16": np.array([0.5], dtype=np.float16),
        "i64": np.array([3], dtype=np.int64),
        "i32": np.array([3], dtype=np.int32),
        "i16": np.array([3], dtype=np.int16),
        "i8": np.array([3], dtype=np.int8),
        "u8": np.array([3], dtype=np.uint8),
        "b": np.array([True], dtype=np.bool_),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    path = os.path.join(sdir, "seed_all_dtypes.safetensors")
    save_file(t, path, metadata={"k": "v"})
    os.chmod(path, 0o644)
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    args = ap.parse_args()
    os.makedirs(DATA, exist_ok=True)
    rng = np.random.default_rng(20240521)
    gen_quant_golden(rng)
    write_tiny_gguf(os.path.join(DATA, "io_tiny_v3.gguf"), 3, None)
    write_tiny_gguf(os.path.join(DATA, "io_tiny_v2.gguf"), 2, 64)
    if os.path.exists(args.model):
        gen_model_golden(args.model)
    else:
        print(f"model {args.model} missing: io_model_golden.bin not regenerated", file=sys.stderr)
    gen_safetensors()
    gen_fuzz_seeds(rng)


if __name__ == "__main__":
    main()
