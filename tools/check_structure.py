#!/usr/bin/env python3
"""The tree's structural rules, checked (ctest `structure`):

1. Layers: a file in core/<layer>/ includes only its own layer and the layers
   below it, as declared by the attnlab_layer(...) lines of CMakeLists.txt
   (the build enforces this for .cpp files through per-layer include roots;
   this check also covers headers that no .cpp of their own layer includes).
   kernels/ may include the layers attnlab_kernels links (metrics and below).
2. Sizes: no non-test source file over 1,000 lines; no function or lambda
   body over 200 lines (a brace-matching reading of C++, see body_lengths).

Prints one line per violation and exits 1 if there is any; --report lists
the longest bodies too.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FILE_LINES = 1000
MAX_BODY_LINES = 200
SOURCE_DIRS = ["core", "app", "kernels", "bench"]
EXTS = (".h", ".hpp", ".cpp", ".cu", ".cuh")


def read_layers():
    """{layer: set of layers it may include (itself and everything below)}."""
    text = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    direct = {}
    for m in re.finditer(r"^attnlab_layer\((\w+)([^)]*)\)", text, re.M):
        direct[m.group(1)] = [d for d in m.group(2).split() if "::" not in d]
    closure = {}

    def close(layer, seen=()):
        if layer in closure:
            return closure[layer]
        if layer in seen:
            raise SystemExit("CMakeLists.txt: layer cycle through " + layer)
        out = {layer}
        for d in direct.get(layer, []):
            if d in direct:
                out |= close(d, seen + (layer,))
        closure[layer] = out
        return out

    for layer in direct:
        close(layer)
    m = re.search(r"target_link_libraries\(attnlab_kernels PUBLIC[^)]*attnlab_(\w+)\)", text)
    kernels = closure[m.group(1)] if m else set()
    return closure, kernels


def source_files():
    for d in SOURCE_DIRS:
        for dirpath, _, names in os.walk(os.path.join(ROOT, d)):
            for n in sorted(names):
                if n.endswith(EXTS):
                    yield os.path.relpath(os.path.join(dirpath, n), ROOT)


def check_includes(path, lines, closure, kernels, problems):
    parts = path.split(os.sep)
    if parts[0] == "core" and len(parts) > 2:
        allowed = closure.get(parts[1])
        who = "core/" + parts[1]
    elif parts[0] == "kernels":
        allowed = kernels
        who = "kernels"
    else:
        return
    if allowed is None:
        problems.append(f"{path}: folder core/{parts[1]} is not a layer in CMakeLists.txt")
        return
    for i, line in enumerate(lines, 1):
        m = re.match(r'\s*#\s*include\s+"(\w+)/', line)
        if m and m.group(1) in closure and m.group(1) not in allowed:
            problems.append(f"{path}:{i}: {who} includes {m.group(1)}/, a layer above it or beside it")


def strip_code(text):
    """The text with comments, strings and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == 'R' and text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if m:
                end = text.find(")" + m.group(1) + '"', i)
                j = n if end < 0 else end + len(m.group(1)) + 2
                out.append(re.sub(r"[^\n]", " ", text[i:j]))
                i = j
            else:
                out.append(c)
                i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


FUNC_HEAD = re.compile(r"\)\s*(const|override|final|noexcept|mutable|->\s*[\w:<>,\s\*&]+|\s)*$")
NOT_FUNC = re.compile(r"\b(if|for|while|switch|catch|return)\s*\(")


def body_lengths(text):
    """[(first line, lines, head)] for every function or lambda body."""
    code = strip_code(text)
    bodies = []
    stack = []  # (line of '{', is_function, head)
    line = 1
    start_of_stmt = 0
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            head = code[start_of_stmt:i]
            flat = " ".join(head.split())
            is_fn = bool(FUNC_HEAD.search(flat)) and not NOT_FUNC.search(flat.split(")")[0] + ")")
            # `} else if (...) {` and `do {` are blocks; a lambda's head ends in ') {' too.
            if re.search(r"\b(else|do|try)\s*$", flat):
                is_fn = False
            stack.append((line, is_fn, flat[-80:]))
            start_of_stmt = i + 1
        elif c == "}":
            if stack:
                l0, is_fn, head = stack.pop()
                if is_fn:
                    bodies.append((l0, line - l0 + 1, head))
            start_of_stmt = i + 1
        elif c == ";":
            start_of_stmt = i + 1
    return bodies


def main():
    report = "--report" in sys.argv
    closure, kernels = read_layers()
    problems, longest = [], []
    for path in source_files():
        text = open(os.path.join(ROOT, path), encoding="utf-8", errors="replace").read()
        lines = text.split("\n")
        check_includes(path, lines, closure, kernels, problems)
        if len(lines) - 1 > MAX_FILE_LINES:
            problems.append(f"{path}: {len(lines) - 1} lines (at most {MAX_FILE_LINES})")
        for l0, n, head in body_lengths(text):
            longest.append((n, f"{path}:{l0}", head))
            if n > MAX_BODY_LINES:
                problems.append(f"{path}:{l0}: a body of {n} lines (at most {MAX_BODY_LINES}): {head}")
    if report:
        for n, where, head in sorted(longest, reverse=True)[:25]:
            print(f"{n:5d}  {where}  {head}")
    for p in problems:
        print(p)
    print(f"check_structure: {len(problems)} problem(s); layers: " +
          ", ".join(f"{k}<-{'/'.join(sorted(v - {k})) or '-'}" for k, v in sorted(closure.items())))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
