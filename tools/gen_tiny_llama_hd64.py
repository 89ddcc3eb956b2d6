#!/usr/bin/env python3
"""Writes tests/data/tiny_llama_hd64: a tiny random Llama whose head dimension
(64) the CUDA flash kernels support, for the GPU forward-pass test
(tests/test_cuda_model.cu) and an end-to-end `attnlab-cli ppl --device cuda`.

  hidden 128, 2 layers, 4 heads, 2 kv heads (GQA 2:1), head_dim 64 (q_dim 256
  != hidden: the explicit head_dim path), SwiGLU 256, vocab 1300, tied
  embeddings, rope_theta 20000, 2048 positions, weights N(0, 0.02) (the HF
  default: realistic logit scale; at 0.1 the logits are so peaked that bf16
  activations alone move them by ~1e-2); saved in bfloat16 (~1.2 MB).

tokenizer.json is a copy of tests/data/tokenizer_small.json (1290 ids < 1300),
so the directory is a complete checkpoint for `ppl`.

  python3 tools/gen_tiny_llama_hd64.py
"""
import os
import shutil
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")


def main():
    torch.manual_seed(4321)
    cfg = LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=64, vocab_size=1300, max_position_embeddings=2048,
                      rms_norm_eps=1e-5, rope_theta=20000.0, tie_word_embeddings=True, initializer_range=0.02)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        # Non-trivial norm weights, so a loader or kernel that skips them fails.
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model = model.to(torch.bfloat16)
    out_dir = os.path.join(DATA, "tiny_llama_hd64")
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    shutil.copyfile(os.path.join(DATA, "tokenizer_small.json"), os.path.join(out_dir, "tokenizer.json"))
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print("wrote", out_dir, total, "bytes")


if __name__ == "__main__":
    sys.exit(main())
