#!/usr/bin/env python3
"""Golden references for tests/test_model.cpp, from Hugging Face transformers.

Writes into tests/data/:
  logits_smollm2.json  token ids of a fixed KJV passage (John 1, New Testament:
                       the evaluation part of the text), per-position argmax and
                       max|logit|, and an index of the float32 arrays in the .bin
  logits_smollm2.bin   little-endian float32: full logits of a few positions and
                       post-RoPE Q/K (all heads) of layers 0 and 29 at a few positions
  tiny_llama/          a tiny random Llama (hidden 64, 2 layers, 4 heads, 2 kv heads,
                       vocab 300) saved with save_pretrained(safe_serialization=True)
                       in bfloat16, to test the safetensors loader
  logits_tiny_llama.json  its float32 logits for fixed ids

The default model is dequantised by transformers itself (gguf_file=...), which
also undoes llama.cpp's Q/K row permutation, so the reference is independent of
our GGUF reader. Token ids come from the transformers tokenizer, so the C++
test does not depend on our tokenizer.

Usage: python3 tools/gen_logits_golden.py [--model assets/models/X.gguf]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, AttentionInterface, LlamaConfig, LlamaForCausalLM
from transformers.integrations.sdpa_attention import sdpa_attention_forward

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
N_TOKENS = 160                # >= 128 tokens of the prompt
QK_LAYERS = (0, 29)           # layers whose post-RoPE Q/K are stored
QK_POSITIONS = (0, 1, 5, 63, N_TOKENS - 1)
LOGIT_POSITIONS = (0, 63, N_TOKENS - 1)   # full logits (float32) of these

# Records post-RoPE query/key per layer: the attention interface receives them
# after apply_rotary_pos_emb, exactly what our hook sees.
captured = {}


def capture_attention(module, query, key, value, attention_mask, **kwargs):
    captured[module.layer_idx] = (query.detach().clone(), key.detach().clone())
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register("attnlab_capture", capture_attention)


def john1_text(kjv_path):
    with open(kjv_path, encoding="utf-8") as f:
        text = f.read()
    start = text.index("In the beginning was the Word")
    return text[start:start + 4000]


def smollm2_golden(model_path):
    model_dir, model_file = os.path.split(os.path.abspath(model_path))
    tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=model_file)
    ids = tok(john1_text(os.path.join(ROOT, "assets", "text", "kjv.txt")), add_special_tokens=False)["input_ids"]
    ids = ids[:N_TOKENS]
    assert len(ids) == N_TOKENS

    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_file, dtype=torch.float32,
                                                 attn_implementation="attnlab_capture")
    model.eval()
    captured.clear()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()  # [n, vocab]

    blob = []
    index = {}
    offset = 0

    def put(name, arr):
        nonlocal offset
        a = np.ascontiguousarray(arr, dtype="<f4")
        index[name] = {"offset": offset, "shape": list(a.shape)}
        blob.append(a.tobytes())
        offset += a.size

    put("logits", logits[list(LOGIT_POSITIONS)])
    for layer in QK_LAYERS:
        q, k = captured[layer]        # [1, heads, n, head_dim]
        q = q[0].permute(1, 0, 2).numpy()  # [n, heads, head_dim]
        k = k[0].permute(1, 0, 2).numpy()
        put(f"q_layer{layer}", q[list(QK_POSITIONS)])
        put(f"k_layer{layer}", k[list(QK_POSITIONS)])

    with open(os.path.join(DATA, "logits_smollm2.bin"), "wb") as f:
        for b in blob:
            f.write(b)
    cfg = model.config
    meta = {
        "generator": "tools/gen_logits_golden.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "model": os.path.relpath(os.path.abspath(model_path), ROOT),
        "text": "assets/text/kjv.txt from 'In the beginning was the Word' (John 1)",
        "n_vocab": int(logits.shape[1]),
        "n_head": cfg.num_attention_heads,
        "n_head_kv": cfg.num_key_value_heads,
        "head_dim": cfg.hidden_size // cfg.num_attention_heads,
        "token_ids": [int(t) for t in ids],
        "logit_positions": list(LOGIT_POSITIONS),
        "qk_layers": list(QK_LAYERS),
        "qk_positions": list(QK_POSITIONS),
        "argmax": [int(x) for x in logits.argmax(axis=1)],
        "max_abs_logit": [float("%.8g" % x) for x in np.abs(logits).max(axis=1)],
        "bin": "logits_smollm2.bin",
        "bin_index": index,     # offsets in float32 elements
    }
    with open(os.path.join(DATA, "logits_smollm2.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("smollm2: max|logit|", np.abs(logits).max(), "argmax[:8]", meta["argmax"][:8])


def tiny_llama_golden():
    torch.manual_seed(1234)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=300, max_position_embeddings=256, rms_norm_eps=1e-5,
                      rope_theta=5000.0, tie_word_embeddings=False, initializer_range=0.15)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        # Non-trivial norm weights, so a loader that skips them fails.
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    # Saved in bfloat16 (small files, and tests the BF16 path); the reference
    # runs the bf16-rounded weights in float32.
    model = model.to(torch.bfloat16)
    out_dir = os.path.join(DATA, "tiny_llama")
    model.save_pretrained(out_dir, safe_serialization=True)
    model = LlamaForCausalLM.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    ids = [int(x) for x in (torch.arange(24) * 37 + 11) % 300]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
    meta = {
        "generator": "tools/gen_logits_golden.py",
        "transformers": transformers.__version__,
        "token_ids": ids,
        "n_vocab": cfg.vocab_size,
        "logits": [[float("%.8g" % x) for x in row] for row in logits],
    }
    with open(os.path.join(DATA, "logits_tiny_llama.json"), "w") as f:
        json.dump(meta, f)
    print("tiny: max|logit|", np.abs(logits).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "assets", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    os.makedirs(DATA, exist_ok=True)
    torch.set_num_threads(2)
    tiny_llama_golden()
    smollm2_golden(args.model)


if __name__ == "__main__":
    sys.exit(main())
