#!/usr/bin/env python3
"""Checks AttnLab screenshots: each PNG must exist and hold drawn content
beyond the background. Standard library only (zlib PNG decoding).

usage: check_screenshots.py DIR NAME[:MIN_COLOURS[:MIN_CONTENT_PERCENT]] ...
Only the view's content area counts (right of the sidebar, above the status
bar), so a window with an empty view fails even though the sidebar is drawn.
A screenshot passes when more than MIN_CONTENT_PERCENT (default 3) of that
area differs from its most common colour (the background) and it has at
least MIN_COLOURS distinct colours (default 12; heatmap views ask for more,
since a colour map draws hundreds)."""
import struct
import sys
import zlib
from collections import Counter


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype not in (2, 6):
                raise ValueError("unsupported PNG (depth %d, colour type %d)" % (depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, p = [], bytearray(stride), 0
    for _ in range(h):
        ft, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def check(path, min_colours, min_content):
    w, h, bpp, rows = read_png(path)
    counts = Counter()
    x0, y1 = 240, h - 40  # sidebar is 210 px wide (+ margins), status bar ~30 px
    for r in rows[60:y1:2]:  # every other row and pixel: plenty for a histogram
        for x in range(x0 * bpp, w * bpp, 2 * bpp):
            counts[r[x:x + 3]] += 1
    total = sum(counts.values())
    bg, n_bg = counts.most_common(1)[0]
    content = 1.0 - n_bg / total
    ok = content > min_content / 100.0 and len(counts) >= min_colours
    return ok, "%dx%d, %.1f%% content beyond background #%s, %d colours (need %d)" % (
        w, h, 100 * content, bg.hex(), len(counts), min_colours)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    d, failed = sys.argv[1], 0
    for spec in sys.argv[2:]:
        parts = spec.split(":")
        name = parts[0]
        mc = int(parts[1]) if len(parts) > 1 and parts[1] else 12
        mp = float(parts[2]) if len(parts) > 2 else 3.0
        try:
            ok, msg = check("%s/%s" % (d, name), mc, mp)
        except Exception as e:  # missing or unreadable: a failure, not a crash
            ok, msg = False, str(e)
        print("%s %s: %s" % ("ok  " if ok else "FAIL", name, msg))
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
