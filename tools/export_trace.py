#!/usr/bin/env python3
"""Write an AttnLab trace from any Hugging Face Llama-family model.

For models too large for AttnLab's CPU engine: run them where they fit (a GPU
box with transformers) and open the trace in AttnLab. The format is the one
`attnlab-cli capture` writes (core/io/trace.h): a safetensors file with tensors
layers.<l>.{q,k,v} of shape [n_tokens, heads, head_dim] (post-RoPE q and k,
Hugging Face rotate-half order) and one metadata key, "attnlab.trace", holding
a JSON header.

Q/K/V are taken inside the model's own attention call, through a registered
attention function, so they are exactly what the model attends with.

  python3 tools/export_trace.py --model DIR --text FILE --ctx 2048 --out t.safetensors
  python3 tools/export_trace.py --model DIR --ids 1,2,3 --out t.safetensors
"""
import argparse
import hashlib
import json
import os
import sys


def sha256_of_checkpoint(model_dir):
    """sha256 over config.json then every shard the checkpoint uses, in sorted name order.

    The shards are those named by model.safetensors.index.json, else
    model.safetensors. The C++ loader (core/model/llama_load.cpp) computes the
    same digest, so a trace names the exact weights it came from."""
    h = hashlib.sha256()
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        shards = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    names = ["config.json"] + shards
    for n in names:
        with open(os.path.join(model_dir, n), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Hugging Face checkpoint directory (Llama family)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="UTF-8 text file")
    src.add_argument("--ids", help="comma-separated token ids instead of text")
    ap.add_argument("--ctx", type=int, default=1024, help="tokens to capture from the start (default 1024)")
    ap.add_argument("--layers", default="", help="e.g. 0,5,10-12 (default: all)")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers import AttentionInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    cfg = AutoConfig.from_pretrained(a.model)
    if cfg.model_type not in ("llama", "mistral", "qwen2"):
        sys.exit(f"error: {a.model}/config.json: model_type: '{cfg.model_type}' is not a Llama-family model")

    text_spec, text_sha = "", ""
    if a.text:
        raw = open(a.text, "rb").read()
        text_sha = hashlib.sha256(raw).hexdigest()
        text_spec = a.text
        tok = AutoTokenizer.from_pretrained(a.model)
        ids = tok(raw.decode("utf-8"), add_special_tokens=True)["input_ids"]
    else:
        tok = None
        ids = [int(x) for x in a.ids.split(",") if x.strip()]
    ids = ids[: a.ctx]
    if len(ids) < 2:
        sys.exit("error: fewer than 2 tokens to capture")

    n_layer = cfg.num_hidden_layers
    layers = list(range(n_layer))
    if a.layers:
        layers = []
        for part in a.layers.split(","):
            lo, _, hi = part.partition("-")
            layers += list(range(int(lo), int(hi or lo) + 1))
        layers = sorted(set(layers))
        if not layers or layers[0] < 0 or layers[-1] >= n_layer:
            sys.exit(f"error: --layers: outside 0..{n_layer - 1}")

    captured = {}
    inner = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def capture_attention(module, query, key, value, attention_mask, **kwargs):
        # query [b, n_head, L, d], key/value [b, n_head_kv, L, d], post-RoPE
        li = module.layer_idx
        if li in layers:
            captured[li] = tuple(t[0].transpose(0, 1).float().cpu().numpy().copy() for t in (query, key, value))
        return inner(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("attnlab_capture", capture_attention)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32,
                                                 attn_implementation="attnlab_capture")
    model.to(a.device).eval()
    with torch.no_grad():
        model(torch.tensor([ids], device=a.device))

    np_dtype = {"f32": np.float32, "f16": np.float16}.get(a.dtype)
    tensors = {}
    for li in layers:
        for name, arr in zip("qkv", captured[li]):
            if a.dtype == "bf16":
                # numpy has no bfloat16: round to nearest even in uint16, as the C++ writer does
                bits = arr.astype(np.float32).view(np.uint32)
                bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
                tensors[f"layers.{li}.{name}"] = bits.astype(np.uint16)
            else:
                tensors[f"layers.{li}.{name}"] = np.ascontiguousarray(arr.astype(np_dtype))

    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    header = {
        "format": "attnlab-trace", "format_version": 1, "producer": "tools/export_trace.py",
        "model_id": getattr(cfg, "_name_or_path", "") or os.path.basename(os.path.normpath(a.model)),
        "model_sha256": sha256_of_checkpoint(a.model),
        "text_spec": text_spec, "text_sha256": text_sha, "arch": "llama",
        "n_layer": n_layer, "n_head": cfg.num_attention_heads,
        "n_head_kv": getattr(cfg, "num_key_value_heads", cfg.num_attention_heads),
        "head_dim": head_dim, "n_ctx_train": cfg.max_position_embeddings,
        "rope_theta": _rope_theta(cfg),
        "layers": layers, "n_tokens": len(ids), "token_ids": ids,
        "token_strings": [tok.decode([i]) if tok else str(i) for i in ids],
        "dtype": a.dtype.upper(),
    }
    tmp = a.out + ".tmp"
    save_file(tensors, tmp, metadata={"attnlab.trace": json.dumps(header)})
    if a.dtype == "bf16":
        _retag_dtype(tmp, "U16", "BF16")
    os.chmod(tmp, 0o644)
    os.replace(tmp, a.out)
    print(f"wrote {a.out}: {len(ids)} tokens, {len(layers)} layers, {a.dtype}")


def _rope_theta(cfg):
    """transformers 5 keeps theta in rope_parameters; older versions in rope_theta."""
    rp = getattr(cfg, "rope_parameters", None) or {}
    if isinstance(rp, dict) and "rope_theta" in rp:
        return float(rp["rope_theta"])
    return float(getattr(cfg, "rope_theta", 10000.0))


def _retag_dtype(path, old, new):
    """safetensors.numpy cannot write bfloat16: the bits were stored as U16; relabel them."""
    import struct
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        for k, v in head.items():
            if k != "__metadata__" and v["dtype"] == old:
                v["dtype"] = new
        data = json.dumps(head, separators=(",", ":")).encode()
        if len(data) > n:
            raise RuntimeError("header grew")
        f.seek(8)
        f.write(data + b" " * (n - len(data)))


if __name__ == "__main__":
    main()
