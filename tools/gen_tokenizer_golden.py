#!/usr/bin/env python3
"""Golden data for tests/test_tokenizer.cpp, from independent references.

Reference 1: Hugging Face `tokenizers`, built from the GGUF's own vocabulary
and merges (read with the `gguf` package) with SmolLM2's pre-tokenizer:
Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False,
use_regex=True)], a ByteLevel decoder and the control tokens (token_type 3)
added as special tokens.
Reference 2: transformers' own GGUF tokenizer conversion
(AutoTokenizer.from_pretrained(dir, gguf_file=...)). That conversion uses a
plain ByteLevel pre-tokenizer whatever tokenizer.ggml.pre says, so the script
reports where it differs from reference 1, and fails unless it matches
reference 1 rebuilt with that same plain GPT-2 pre-tokenizer on every case.

Writes (all small):
  tests/data/tokenizer_golden.json        cases (text + ids from reference 1)
  tests/data/tokenizer_small.json         a truncated tokenizer.json (first N
                                          merges), for from_tokenizer_json
  tests/data/tokenizer_small_llama3.json  the same vocabulary with a llama3
                                          Split pre-tokenizer
  (the golden file also holds the ids the `tokenizers` library gives for every
  case on the two small files)

Usage: python3 tools/gen_tokenizer_golden.py [--model PATH] [--kjv PATH]
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_MERGES = 1000

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def kjv_passage(kjv_text, heading, nbytes=2048):
    """About nbytes of the chapter starting at `heading`, cut at a line end."""
    start = kjv_text.index("\n" + heading + "\n") + 1
    chunk = kjv_text[start:start + nbytes]
    return chunk[:chunk.rindex("\n") + 1]


def tricky_cases():
    return [
        ("empty", ""),
        ("spaces_tabs_newlines", "a  b   c\t\td\n\ne \t \n f   "),
        ("trailing_whitespace", "end of line   \n\n\t"),
        ("only_whitespace", " \t\n  \r\n   "),
        ("leading_spaces", "   leading"),
        ("digits", "1234567890 3.14159 1,000,000"),
        ("digits_mixed", "abc123def 4th 2024-01-01 x²³ ½ ٣٤ ⅧⅨ"),
        ("emoji", "I 🙂 it 👍🏽!! 🙂🙂"),
        ("emoji_zwj", "family: 👨‍👩‍👧 done"),
        ("cjk", "中文字符 と日本語のテキスト、한국어"),
        ("arabic", "مرحبا بالعالم، كيف حالك؟"),
        ("devanagari", "नमस्ते दुनिया, आप कैसे हैं?"),
        ("cyrillic", "Привет, мир! Как дела?"),
        ("combining", "e\u0301te\u0301 cafe\u0301 n\u0303 A\u030a \u0301lone"),
        ("precomposed", "été café naïve Ångström"),
        ("contractions", "I'll they've DON'T it's we'd you're 'sup ''s I'M"),
        ("chat", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"),
        ("special_adjacent", "x<|endoftext|><|endoftext|>y <|im_end|>"),
        ("special_partial", "<|im_start <|im_end| <|endoftext"),
        ("punctuation", "Hello, world!!! (yes) -- \"quoted\" [a]{b} $5 #tag @user 100% a/b\\c ... ?!"),
        ("code", "def f(x):\n    return x**2  # square\n\tif x != 0: pass\n"),
        ("unicode_spaces", "a\u00a0b\u2003c\u3000d\u2028e\u0085f \u00a0 g"),
        ("control_chars", "a\x00b\x01c\x7fd\x1c e"),
        # SmolLM2's vocabulary has no token for bytes 0x04 and 0x06: BPE drops them
        ("dropped_bytes", "a\x04b \x06\x06 c\x04"),
        ("long_word", "Pneumonoultramicroscopicsilicovolcanoconiosis " * 3),
        ("repeats", "aaaaaaaaaaaaaaaa bbbbbbbb ==========" + "-" * 40),
        ("mixed_scripts", "The Ελληνικά word, עברית text, and ภาษาไทย."),
    ]


def read_gguf_vocab(path):
    from gguf import GGUFReader
    r = GGUFReader(path)
    f = r.fields
    tokens = f["tokenizer.ggml.tokens"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    merges = f["tokenizer.ggml.merges"].contents()
    pre = f["tokenizer.ggml.pre"].contents()
    model = f["tokenizer.ggml.model"].contents()
    assert model == "gpt2" and pre == "smollm", (model, pre)
    return tokens, types, merges


def fnv1a64(ids):
    """FNV-1a over the ids, one 32-bit value per step (mirrored in the C++ test)."""
    h = 0xcbf29ce484222325
    for i in ids:
        h ^= i
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def split_merge(m):
    i = m.index(" ", 1)
    return m[:i], m[i + 1:]


def build_reference(tokens, types, merges, pre_tokenizer):
    from tokenizers import AddedToken, Tokenizer, decoders, models
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, [split_merge(m) for m in merges]))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(tokens[i], special=True, normalized=False)
                for i in range(len(tokens)) if types[i] == 3]
    users = [AddedToken(tokens[i], special=False, normalized=False)
             for i in range(len(tokens)) if types[i] == 4]
    tok.add_special_tokens(specials)
    if users:
        tok.add_tokens(users)
    return tok


def smollm_pre():
    from tokenizers import pre_tokenizers as pt
    return pt.Sequence([pt.Digits(individual_digits=True),
                        pt.ByteLevel(add_prefix_space=False, use_regex=True)])


def gpt2_pre():
    from tokenizers import pre_tokenizers as pt
    return pt.ByteLevel(add_prefix_space=False, use_regex=True)


def llama3_pre():
    from tokenizers import Regex
    from tokenizers import pre_tokenizers as pt
    return pt.Sequence([pt.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
                        pt.ByteLevel(add_prefix_space=False, use_regex=False)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--kjv", default=os.path.join(ROOT, "assets/text/kjv.txt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/data"))
    ap.add_argument("--no-transformers", action="store_true", help="skip the cross-check")
    args = ap.parse_args()

    tokens, types, merges = read_gguf_vocab(args.model)
    with open(args.kjv, encoding="utf-8") as fh:
        kjv = fh.read()
    cases = [("kjv_genesis_1", kjv_passage(kjv, "Genesis 1")),
             ("kjv_john_1", kjv_passage(kjv, "John 1"))] + tricky_cases()

    ref = build_reference(tokens, types, merges, smollm_pre())
    golden = []
    for name, text in cases:
        ids = ref.encode(text, add_special_tokens=False).ids
        back = ref.decode(ids, skip_special_tokens=False)
        if back != text and name != "dropped_bytes":
            print(f"note: tokenizers does not round-trip {name!r}: {back!r}", file=sys.stderr)
        golden.append({"name": name, "text": text, "ids": ids})

    # The same vocabulary with the plain GPT-2 ByteLevel regex (pre type "gpt2"):
    # golden ids for that splitter, and what transformers' GGUF conversion uses.
    ref_gpt2 = build_reference(tokens, types, merges, gpt2_pre())
    for g in golden:
        g["ids_gpt2"] = ref_gpt2.encode(g["text"], add_special_tokens=False).ids

    # Cross-check against transformers' GGUF conversion. It builds a plain
    # ByteLevel pre-tokenizer whatever tokenizer.ggml.pre says (no Digits step),
    # so it can only differ from reference 1 where a whitespace run meets a
    # digit ("\n\n  1": smollm keeps "\n\n  " whole, GPT-2 leaves " 1" to
    # the digit). It must match the gpt2 variant everywhere.
    disagreements = []
    if not args.no_transformers:
        from transformers import AutoTokenizer
        hf = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(args.model)),
                                           gguf_file=os.path.basename(args.model))
        hf_pre = json.loads(hf.backend_tokenizer.to_str())["pre_tokenizer"]
        print(f"transformers GGUF conversion pre_tokenizer: {json.dumps(hf_pre)}", file=sys.stderr)
        bad = 0
        for g in golden:
            ids = hf(g["text"], add_special_tokens=False)["input_ids"]
            if ids != g["ids"]:
                disagreements.append(g["name"])
            if ids != g["ids_gpt2"]:
                bad += 1
                print(f"ERROR {g['name']}: transformers differs from tokenizers even with the GPT-2 "
                      f"pre-tokenizer", file=sys.stderr)
        print(f"transformers vs tokenizers (smollm pre-tokenizer): {len(golden) - len(disagreements)}/"
              f"{len(golden)} agree; differ on {disagreements} (transformers ignores tokenizer.ggml.pre)",
              file=sys.stderr)
        print(f"transformers vs tokenizers (gpt2 pre-tokenizer): {len(golden) - bad}/{len(golden)} agree",
              file=sys.stderr)
        if bad:
            return 1

    # Small tokenizer.json files: the specials, the 256 bytes and the tokens the
    # first SMALL_MERGES merges make (ids kept, so no gaps: SmolLM2 numbers its
    # merge results in merge order).
    n_keep = max(i for i, t in enumerate(types) if t != 1) + 1 + 256 + SMALL_MERGES
    small_tokens = tokens[:n_keep]
    small_set = set(small_tokens)
    small_merges = []
    for m in merges[:SMALL_MERGES]:
        a, b = split_merge(m)
        if a in small_set and b in small_set and a + b in small_set:
            small_merges.append(m)
    small_files = {}
    for fname, pre in (("tokenizer_small.json", smollm_pre()), ("tokenizer_small_llama3.json", llama3_pre())):
        small = build_reference(small_tokens, types[:n_keep], small_merges, pre)
        path = os.path.join(args.out, fname)
        small.save(path, pretty=False)
        small_files[fname] = small
        print(f"wrote {path}: {len(small_tokens)} tokens, {len(small_merges)} merges, "
              f"{os.path.getsize(path)} bytes", file=sys.stderr)
    from tokenizers import Tokenizer
    for fname in small_files:
        # reload from disk, so the ids come from exactly what the C++ test reads
        t = Tokenizer.from_file(os.path.join(args.out, fname))
        key = "ids_" + fname[len("tokenizer_"):-len(".json")]
        for g in golden:
            g[key] = t.encode(g["text"], add_special_tokens=False).ids

    # The whole KJV, as a count and a hash (too big to store the ids).
    import time
    t0 = time.time()
    kjv_ids = ref.encode(kjv, add_special_tokens=False).ids
    print(f"tokenizers: KJV {len(kjv)} chars -> {len(kjv_ids)} tokens in {time.time() - t0:.2f} s",
          file=sys.stderr)

    out = {
        "kjv_full": {"bytes": len(kjv.encode("utf-8")), "n_tokens": len(kjv_ids), "fnv1a64": fnv1a64(kjv_ids)},
        "about": "Golden ids from tools/gen_tokenizer_golden.py (Hugging Face tokenizers). "
                 "ids: the full SmolLM2 vocabulary from the GGUF (smollm pre-tokenizer); ids_gpt2: the same with the plain GPT-2 ByteLevel regex; ids_small / ids_small_llama3: "
                 "tokenizer_small.json / tokenizer_small_llama3.json.",
        "model": os.path.basename(args.model),
        "transformers_differs_on": disagreements,
        "cases": golden,
    }
    path = os.path.join(args.out, "tokenizer_golden.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=True, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {path}: {len(golden)} cases, {os.path.getsize(path)} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
