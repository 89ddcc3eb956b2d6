#!/usr/bin/env python3
"""Per-kernel comparison of two PTX files (and, given, two SASS listings from
cuobjdump -sass): identical, identical up to register numbering, or how many
lines differ. Used by bench/gpu/code_diff.sh.

    code_diff.py A.ptx B.ptx [A.sass B.sass]
"""
import difflib
import re
import sys


def anon(name):
    # anonymous-namespace kernels carry a per-build hash in their names
    return re.sub(r"_GLOBAL__N__[0-9a-f]+_", "_GLOBAL__N__", name)


def ptx_kernels(path):
    text = open(path).read()
    starts = [(m.start(), anon(m.group(1))) for m in re.finditer(r"\.(?:visible|weak)?\s*\.entry (\w+)\(", text)]
    out = {}
    for i, (s, name) in enumerate(starts):
        e = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        body = anon(re.sub(r"//.*", "", text[s:e]))
        body = re.sub(r"\$L__\w+", "L", body)
        out[name] = [l.strip() for l in body.split("\n") if l.strip()]
    return out


def sass_kernels(path):
    out, cur = {}, None
    for line in open(path):
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            cur = anon(m.group(1))
            out[cur] = []
            continue
        m = re.match(r"\s*/\*[0-9a-f]+\*/\s+(.*?)\s*;", line)
        if m and cur is not None:
            out[cur].append(re.sub(r"\s+", " ", m.group(1)))
    return out


def compare(a, b, reg_pattern, what):
    def norm(lines):
        return [re.sub(reg_pattern, r"\1", l) for l in lines]
    same = renamed = 0
    differ = []
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            differ.append((k, "only in " + ("B" if k not in a else "A")))
        elif a[k] == b[k]:
            same += 1
        elif norm(a[k]) == norm(b[k]):
            renamed += 1
        else:
            d = sum(1 for l in difflib.unified_diff(norm(a[k]), norm(b[k]), lineterm="", n=0)
                    if l[:1] in "+-" and not l.startswith(("+++", "---")))
            differ.append((k, f"{d} lines differ ({len(a[k])} -> {len(b[k])})"))
    print(f"{what}: {len(a)} kernels: {same} identical, {renamed} identical up to register numbering, {len(differ)} differ")
    for k, why in differ:
        print(f"  {k[:110]}  {why}")


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    compare(ptx_kernels(sys.argv[1]), ptx_kernels(sys.argv[2]), r"%(r|rd|f|fd|p|rs|h|hh)\d+", "PTX")
    if len(sys.argv) == 5:
        compare(sass_kernels(sys.argv[3]), sass_kernels(sys.argv[4]), r"\b(R|UR|P|UP|B)\d+\b", "SASS")


if __name__ == "__main__":
    main()
