#!/usr/bin/env python3
"""SentencePiece-style BPE tokenizers (byte fallback) and their ids from the
Hugging Face `tokenizers` library, for tests/test_tokenizer_spm.cpp.

One BPE model (700 merges-trained tokens on KJV text, plus <0x00>..<0xFF> byte
tokens at ids 3..258 as in Llama 2) in the three shapes real tokenizer.json
files take:
  tokenizer_spm_llama.json      normalizer Prepend("▁") + Replace(" ", "▁"), no
                                pre-tokenizer (Llama 2, Mistral v0.1)
  tokenizer_spm_metaspace.json  no normalizer, Metaspace(prepend_scheme first,
                                split false) (Mistral v0.3)
  tokenizer_spm_gemma.json      normalizer Replace(" ", "▁") only (Gemma)
each with <s> added by a TemplateProcessing post-processor; the llama
variant also as GGUF tokenizer metadata (tokenizer_spm_llama.gguf, scores
instead of merges, as llama.cpp's converter writes SentencePiece models); and
tokenizer_spm_golden.json: {variant: [{"text", "ids"}]} on tricky text (KJV,
whitespace runs, digits, CJK, emoji, accents, literal <s>, empty).

  python3 tools/gen_spm_tokenizer_golden.py
"""
import json
import os

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")

TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "And God said, Let there be light: and there was light.",
    " leading space",
    "two  spaces,   three,\ttab\nnewline\n\nand trailing  ",
    "digits 1234567890 and 3.14159, 42nd",
    "中文字符 and 日本語のテキスト",
    "emoji 😀👍🏽 and accents café naïve Ωμέγα",
    "Arabic مرحبا Devanagari नमस्ते",
    "<s>literal special <s> in the middle</s>",
    "",
    " ",
    "\u2581already a meta space",
]


def kjv():
    with open(os.path.join(ROOT, "assets", "text", "kjv.txt"), encoding="utf-8") as f:
        return f.read()


def base_model():
    text = kjv()[:300000]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tr = trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator([text[i:i + 2000] for i in range(0, len(text), 2000)], tr)
    d = json.loads(tok.to_str())
    # Byte tokens at ids 3..258, the rest shifted up (Llama 2's layout).
    vocab = d["model"]["vocab"]
    shifted = {}
    for t, i in vocab.items():
        shifted[t] = i if i < 3 else i + 256
    for b in range(256):
        shifted["<0x%02X>" % b] = 3 + b
    d["model"]["vocab"] = shifted
    d["post_processor"] = {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    d["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    return d


def write_gguf(d, path):
    """The llama variant as llama.cpp's converter writes a SentencePiece
    vocabulary: tokenizer.ggml.model "llama", tokens by id, scores (here -id:
    the trainer numbers merged tokens in merge order, so a higher score is an
    earlier merge, as in SentencePiece BPE models), token types (2 unknown,
    3 control, 6 byte, 1 normal)."""
    import gguf
    vocab = d["model"]["vocab"]
    toks = [None] * (max(vocab.values()) + 1)
    for t, i in vocab.items():
        toks[i] = t
    special = {a["id"] for a in d["added_tokens"]}
    types = []
    for i, t in enumerate(toks):
        types.append(2 if t == "<unk>" else 3 if i in special else 6 if t.startswith("<0x") and len(t) == 6 else 1)
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([-float(i) for i in range(len(toks))])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    base = base_model()
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
    variants = {
        "llama": dict(base),
        "metaspace": dict(base, normalizer=None, pre_tokenizer={
            "type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}),
        "gemma": dict(base, normalizer=replace, pre_tokenizer=None),
    }
    golden = {"generator": "tools/gen_spm_tokenizer_golden.py", "variants": {}}
    for name, d in variants.items():
        path = os.path.join(DATA, "tokenizer_spm_%s.json" % name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(d, f, ensure_ascii=False)
        tok = Tokenizer.from_file(path)
        cases = []
        for t in TEXTS + [kjv()[100000:101500]]:
            ids = tok.encode(t).ids
            cases.append({"text": t, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True)})
        golden["variants"][name] = cases
        print(name, [len(c["ids"]) for c in cases])
    write_gguf(variants["llama"], os.path.join(DATA, "tokenizer_spm_llama.gguf"))
    with open(os.path.join(DATA, "tokenizer_spm_golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
