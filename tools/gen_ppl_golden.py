#!/usr/bin/env python3
"""Reference perplexity of the default model on a fixed KJV evaluation slice.

Hugging Face transformers dequantises the GGUF itself and runs the model in
float32 on the first 4096 tokens of the evaluation part of the KJV (the New
Testament, from the line "Matthew 1"; see core/data/corpus.h), cut into
non-overlapping windows of 1024 tokens, each token after the first of a window
predicted from the tokens before it in that window: the rule of
core/metrics/perplexity.cpp. Writes tests/data/ppl_smollm2.json with the token
ids (so the C++ test does not depend on our tokenizer) and the reference nll/ppl.

Usage: python3 tools/gen_ppl_golden.py [--model assets/models/X.gguf] [--kjv assets/text/kjv.txt]
"""
import argparse
import json
import math
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CTX = 1024
N_TOKENS = 4096


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--kjv", default=os.path.join(ROOT, "assets/text/kjv.txt"))
    a = ap.parse_args()
    text = open(a.kjv, encoding="utf-8").read()
    at = text.index("\nMatthew 1\n") + 1          # the evaluation part starts at this line
    text = text[at:]
    d, f = os.path.split(os.path.abspath(a.model))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    # transformers' GGUF conversion drops SmolLM2's pre-tokenizer rule
    # (tokenizer.ggml.pre = "smollm": split digits one by one, then GPT-2's
    # byte-level regex); put it back, as in the model's own tokenizer.json.
    from tokenizers import pre_tokenizers
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    ids = tok(text[:200000], add_special_tokens=False)["input_ids"][:N_TOKENS]
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32).eval()
    nll, n = 0.0, 0
    with torch.no_grad():
        for w in range(0, len(ids), CTX):
            win = torch.tensor([ids[w:w + CTX]])
            logp = torch.log_softmax(model(win).logits[0].double(), dim=-1)
            tgt = win[0, 1:]
            nll -= logp[torch.arange(len(tgt)), tgt].sum().item()
            n += len(tgt)
    out = {"model_sha256_note": "default model, see scripts/setup.sh", "ctx": CTX, "token_ids": ids,
           "n_predicted": n, "nll": nll / n, "ppl": math.exp(nll / n),
           "reference": "transformers %s, float32, CPU" % __import__("transformers").__version__}
    path = os.path.join(ROOT, "tests/data/ppl_smollm2.json")
    with open(path + ".tmp", "w") as fh:
        json.dump(out, fh)
    os.replace(path + ".tmp", path)
    print("reference ppl %.4f over %d predicted tokens -> %s" % (out["ppl"], n, path))


if __name__ == "__main__":
    main()
