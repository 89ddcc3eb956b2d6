#!/usr/bin/env python3
"""Tiny random models of every supported family, and their golden references,
from Hugging Face transformers (offline: CI and setup never need torch).

For each family in FAMILIES it writes into tests/data/families/<family>/:
  hf/config.json, hf/model.safetensors   the model as save_pretrained writes it
                                         (bfloat16), the family's real switches on
  model.gguf      the same bf16 weights with llama.cpp's names, key prefix and
                  conventions (q/k row interleaving for llama, Gemma's norm + 1,
                  Llama 3.1's rope_freqs, Phi-3's rope_factors_long/short)
  golden.json     token ids, per-position argmax and max|logit|, the model's
                  features, and an index of the float32 arrays in golden.bin
  golden.bin      little-endian float32: full logits at LOGIT_POSITIONS and
                  post-RoPE Q/K (all heads) of the first and last layer at
                  QK_POSITIONS

Shapes: hidden 64, 2 layers, 4 query / 2 key-value heads, vocab 1300 (the ids
of tests/data/tokenizer_small.json), N_TOKENS tokens of KJV text (John 1) from
assets/text/kjv.txt. Windows (48) are shorter than the text, rope scaling is
on with original contexts shorter than it, softcaps low enough to bend.
The reference runs the bf16-rounded weights in float32, eager attention.

  python3 tools/gen_family_golden.py [family ...]
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import transformers
import gguf
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(DATA, "families")
N_TOKENS = 256
LOGIT_POSITIONS = (0, 1, 47, 48, 63, 64, 127, 200, N_TOKENS - 1)
QK_POSITIONS = (0, 1, 47, 64, 130, N_TOKENS - 1)
VOCAB = 1300
WINDOW = 48

COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=512, rms_norm_eps=1e-5,
              initializer_range=0.08)


def family_configs():
    """family -> (transformers config, gguf arch, extra GGUF writer settings)."""
    C = transformers
    half = 8  # head_dim 16 / 2
    g = torch.Generator().manual_seed(7)
    long_f = (1.0 + 3.0 * torch.rand(half, generator=g)).tolist()
    short_f = (1.0 + 0.5 * torch.rand(half, generator=g)).tolist()
    return {
        "llama3": C.LlamaConfig(**COMMON, tie_word_embeddings=False, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
        "qwen2": C.Qwen2Config(**COMMON, tie_word_embeddings=True, rope_parameters={
            "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 128}),
        "qwen3": C.Qwen3Config(**COMMON, head_dim=32, tie_word_embeddings=True, rope_parameters={
            "rope_type": "linear", "rope_theta": 20000.0, "factor": 2.0}),
        "mistral": C.MistralConfig(**COMMON, sliding_window=WINDOW, tie_word_embeddings=False,
                                   rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        "gemma2": C.Gemma2Config(**COMMON, head_dim=16, sliding_window=WINDOW, query_pre_attn_scalar=24,
                                 attn_logit_softcapping=1.5, final_logit_softcapping=2.0,
                                 hidden_activation="gelu_pytorch_tanh",
                                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        "gemma3": C.Gemma3TextConfig(**COMMON, head_dim=16, sliding_window=WINDOW, query_pre_attn_scalar=16,
                                     layer_types=["sliding_attention", "full_attention"],
                                     rope_parameters={
                                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                         "full_attention": {"rope_type": "linear", "rope_theta": 100000.0,
                                                            "factor": 4.0}}),
        "phi3": C.Phi3Config(**COMMON, sliding_window=WINDOW, tie_word_embeddings=False, pad_token_id=0,
                             bos_token_id=1, eos_token_id=2,
                             original_max_position_embeddings=64, rope_parameters={
                                 "rope_type": "longrope", "rope_theta": 10000.0, "long_factor": long_f,
                                 "short_factor": short_f, "original_max_position_embeddings": 64}),
    }


# ---------------------------------------------------------------- capture

captured = {}


def install_capture(model):
    """Wraps the model module's eager attention so post-RoPE Q/K are kept."""
    mod = sys.modules[type(model.model.layers[0].self_attn).__module__]
    inner = mod.eager_attention_forward

    def wrapper(module, query, key, value, attention_mask, **kw):
        captured[module.layer_idx] = (query.detach().clone(), key.detach().clone())
        return inner(module, query, key, value, attention_mask, **kw)

    mod.eager_attention_forward = wrapper


def text_ids():
    with open(os.path.join(ROOT, "assets", "text", "kjv.txt"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("In the beginning was the Word")
    tok = Tokenizer.from_file(os.path.join(DATA, "tokenizer_small.json"))
    ids = tok.encode(text[start:start + 4000], add_special_tokens=False).ids[:N_TOKENS]
    assert len(ids) == N_TOKENS and max(ids) < VOCAB
    return ids


# ---------------------------------------------------------------- GGUF


def permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf LlamaModel.permute (interleaved RoPE rows)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(rp, head_dim):
    """convert_hf_to_gguf's rope_freqs for rope_type llama3."""
    base, factor = rp["rope_theta"], rp["factor"]
    lo, hi, old = rp["low_freq_factor"], rp["high_freq_factor"], rp["original_max_position_embeddings"]
    freqs = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    out = []
    for f in freqs.tolist():
        wl = 2 * math.pi / f
        if wl < old / hi:
            out.append(1.0)
        elif wl > old / lo:
            out.append(factor)
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append(1.0 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


GGUF_NAMES = {  # HF suffix after model.layers.N. -> llama.cpp name after blk.N.
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.qkv_proj": "attn_qkv",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "mlp.gate_up_proj": "ffn_up",
}
GEMMA_NAMES = {"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
               "post_feedforward_layernorm": "post_ffw_norm"}


def gguf_name(hf, gemma):
    top = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    base, kind = hf.rsplit(".", 1)
    if base in top:
        return top[base] + "." + kind
    parts = base.split(".")
    layer, rest = parts[2], ".".join(parts[3:])
    names = dict(GGUF_NAMES, **(GEMMA_NAMES if gemma else {"post_attention_layernorm": "ffn_norm"}))
    return "blk.%s.%s.%s" % (layer, names[rest], kind)


def add_tokenizer(w):
    """tests/data/tokenizer_small.json as GGUF tokenizer metadata (gpt2 BPE,
    SmolLM's pre-tokenizer: individual digits + byte level), so the GGUF is
    complete for `ppl` like the HF directory with its tokenizer.json copy."""
    with open(os.path.join(DATA, "tokenizer_small.json"), encoding="utf-8") as f:
        d = json.load(f)
    vocab = dict(d["model"]["vocab"])
    special = set()
    for t in d["added_tokens"]:
        vocab[t["content"]] = t["id"]
        special.add(t["id"])
    toks = [None] * (max(vocab.values()) + 1)
    for t, i in vocab.items():
        toks[i] = t
    assert all(t is not None for t in toks)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(toks)
    w.add_token_types([3 if i in special else 1 for i in range(len(toks))])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in d["model"]["merges"]])


def write_gguf(path, fam, arch, cfg, state):
    w = gguf.GGUFWriter(path, arch=arch)
    w.add_name("tiny-" + fam)
    add_tokenizer(w)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    rp = cfg.rope_parameters
    full = rp.get("full_attention", rp)
    w.add_rope_freq_base(full["rope_theta"])
    gemma = arch.startswith("gemma")
    extra = {}
    if getattr(cfg, "sliding_window", None) and (fam != "qwen2"):
        w.add_sliding_window(cfg.sliding_window)
    if fam == "gemma2":
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        w.add_final_logit_softcapping(cfg.final_logit_softcapping)
    if gemma and cfg.query_pre_attn_scalar != hd:
        w.add_float32(arch + ".attention.scale", cfg.query_pre_attn_scalar ** -0.5)
    if fam == "gemma3":
        w.add_uint32(arch + ".attention.sliding_window_pattern", 2)
        w.add_float32(arch + ".rope.freq_base_swa", rp["sliding_attention"]["rope_theta"])
    rt = full.get("rope_type", "default")
    if rt == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(full["factor"])
    elif rt == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(full["factor"])
        w.add_rope_scaling_orig_ctx_len(full["original_max_position_embeddings"])
    elif rt == "llama3":
        extra["rope_freqs.weight"] = llama3_rope_factors(full, hd)
    elif rt == "longrope":
        orig = full["original_max_position_embeddings"]
        scale = cfg.max_position_embeddings / orig
        w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(orig)))
        w.add_rope_scaling_orig_ctx_len(orig)
        extra["rope_factors_long.weight"] = np.array(full["long_factor"], dtype=np.float32)
        extra["rope_factors_short.weight"] = np.array(full["short_factor"], dtype=np.float32)

    for name, t in state.items():
        t = t.float()
        if arch == "llama" and name.endswith(("q_proj.weight", "k_proj.weight")):
            heads = cfg.num_attention_heads if "q_proj" in name else cfg.num_key_value_heads
            t = permute(t, heads)
        if gemma and name.endswith("norm.weight"):
            t = t + 1.0   # convert_hf_to_gguf's Gemma norms: stored as 1 + w
        n = gguf_name(name, gemma)
        if "norm" in name:
            w.add_tensor(n, t.numpy().astype(np.float32))
        else:
            bits = t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
            w.add_tensor(n, bits, raw_shape=bits.shape, raw_dtype=gguf.GGMLQuantizationType.BF16)
    for n, a in extra.items():
        w.add_tensor(n, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------- golden

ARCH = {"llama3": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma2": "gemma2",
        "gemma3": "gemma3", "phi3": "phi3"}


def make_family(fam, cfg, ids):
    torch.manual_seed(1000 + sorted(ARCH).index(fam))
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:   # non-trivial norms, so a loader that skips one fails
                p.copy_((0.0 if name.endswith("norm.weight") and fam.startswith("gemma") else 1.0)
                        + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
    model = model.to(torch.bfloat16)
    out = os.path.join(OUT, fam)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    hf_dir = os.path.join(out, "hf")
    model.save_pretrained(hf_dir, safe_serialization=True)
    for f in os.listdir(hf_dir):
        if f == "generation_config.json":
            os.remove(os.path.join(hf_dir, f))
    shutil.copyfile(os.path.join(DATA, "tokenizer_small.json"), os.path.join(hf_dir, "tokenizer.json"))

    model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    install_capture(model)
    captured.clear()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()

    state = {k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    write_gguf(os.path.join(out, "model.gguf"), fam, ARCH[fam], cfg, state)

    blob, index, offset = [], {}, 0

    def put(name, arr):
        nonlocal offset
        a = np.ascontiguousarray(arr, dtype="<f4")
        index[name] = {"offset": offset, "shape": list(a.shape)}
        blob.append(a.tobytes())
        offset += a.size

    put("logits", logits[list(LOGIT_POSITIONS)])
    last = cfg.num_hidden_layers - 1
    for layer in (0, last):
        q, k = captured[layer]
        put("q_layer%d" % layer, q[0].permute(1, 0, 2).numpy()[list(QK_POSITIONS)])
        put("k_layer%d" % layer, k[0].permute(1, 0, 2).numpy()[list(QK_POSITIONS)])
    with open(os.path.join(out, "golden.bin"), "wb") as f:
        for b in blob:
            f.write(b)
    meta = {
        "generator": "tools/gen_family_golden.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "family": fam,
        "model_type": cfg.model_type,
        "gguf_arch": ARCH[fam],
        "text": "assets/text/kjv.txt from 'In the beginning was the Word' (John 1), tests/data/tokenizer_small.json",
        "n_vocab": VOCAB,
        "n_layer": cfg.num_hidden_layers,
        "token_ids": ids,
        "logit_positions": list(LOGIT_POSITIONS),
        "qk_layers": [0, last],
        "qk_positions": list(QK_POSITIONS),
        "argmax": [int(x) for x in logits.argmax(axis=1)],
        "max_abs_logit": [float("%.8g" % x) for x in np.abs(logits).max(axis=1)],
        "bin": "golden.bin",
        "bin_index": index,
    }
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
    print("%-8s max|logit| %.3f  argmax[:6] %s  %d bytes" % (fam, np.abs(logits).max(), meta["argmax"][:6], size))


def rope_golden():
    """tests/data/rope_inv_freq.json: transformers' inverse frequencies and
    attention factor for every rope type, at window lengths on both sides of
    the switches (dynamic past max_position, longrope past the original)."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    g = torch.Generator().manual_seed(11)
    long_f = (1.0 + 3.0 * torch.rand(8, generator=g)).tolist()
    short_f = (1.0 + 0.5 * torch.rand(8, generator=g)).tolist()
    cases = [
        ({"rope_type": "linear", "factor": 4.0}, 100),
        ({"rope_type": "dynamic", "factor": 2.0}, 100),
        ({"rope_type": "dynamic", "factor": 2.0}, 1500),
        ({"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 64}, 100),
        ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128, "beta_fast": 16.0,
          "beta_slow": 2.0}, 100),
        ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}, 100),
        ({"rope_type": "longrope", "long_factor": long_f, "short_factor": short_f,
          "original_max_position_embeddings": 64}, 32),
        ({"rope_type": "longrope", "long_factor": long_f, "short_factor": short_f,
          "original_max_position_embeddings": 64}, 256),
    ]
    out = []
    for params, seq_len in cases:
        rp = dict(params, rope_theta=50000.0)
        cfg = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, head_dim=16,
                                       max_position_embeddings=512, rope_parameters=rp)
        inv, attn = ROPE_INIT_FUNCTIONS[rp["rope_type"]](cfg, "cpu", seq_len=seq_len)
        out.append({"rope_parameters": rp, "max_position_embeddings": 512, "head_dim": 16, "seq_len": seq_len,
                    "inv_freq": [float("%.9g" % x) for x in inv.double().tolist()],
                    "attention_factor": float(attn)})
    with open(os.path.join(DATA, "rope_inv_freq.json"), "w") as f:
        json.dump({"generator": "tools/gen_family_golden.py", "transformers": transformers.__version__,
                   "cases": out}, f, indent=1)
    print("rope: %d cases" % len(out))


def main():
    torch.set_num_threads(2)
    cfgs = family_configs()
    fams = sys.argv[1:] or list(cfgs) + ["rope"]
    ids = text_ids()
    for fam in fams:
        if fam == "rope":
            rope_golden()
        else:
            make_family(fam, cfgs[fam], ids)


if __name__ == "__main__":
    sys.exit(main())
