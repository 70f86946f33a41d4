#!/usr/bin/env python3
"""Compares two RGBA/RGB PNG snapshots of the mascot window (Windows build under Wine vs the
Linux build, both on Mesa's lavapipe): same size, the same pixels transparent, and close colours
where both are opaque. Standard library only (zlib). Exit 1 with the numbers when they differ.

    compare-png.py a.png b.png [--max-alpha-mismatch 0.01] [--max-mean-diff 6]
"""
import argparse
import struct
import sys
import zlib


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    channels = {6: 4, 2: 3}.get(colour)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError(f"{path}: only 8-bit RGB/RGBA, non-interlaced PNGs are read")
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 255
        rows.append(line)
        previous = line
    pixels = []
    for line in rows:
        for x in range(width):
            px = line[x * channels : (x + 1) * channels]
            pixels.append(tuple(px) if channels == 4 else tuple(px) + (255,))
    return width, height, pixels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--max-alpha-mismatch", type=float, default=0.01)
    parser.add_argument("--max-mean-diff", type=float, default=6.0)
    args = parser.parse_args()
    wa, ha, a = read_png(args.a)
    wb, hb, b = read_png(args.b)
    if (wa, ha) != (wb, hb):
        print(f"compare-png: sizes differ: {wa}x{ha} vs {wb}x{hb}")
        return 1
    opaque_a = sum(1 for p in a if p[3] > 127)
    mismatch = sum(1 for p, q in zip(a, b) if (p[3] > 127) != (q[3] > 127)) / len(a)
    both = [(p, q) for p, q in zip(a, b) if p[3] > 127 and q[3] > 127]
    diff = sum(abs(p[c] - q[c]) for p, q in both for c in range(3)) / max(1, 3 * len(both))
    print(
        f"compare-png: {wa}x{ha}, {opaque_a / len(a):.1%} opaque, alpha differs on "
        f"{mismatch:.2%} of pixels, mean colour difference {diff:.2f}/255 where both are opaque"
    )
    if opaque_a == 0 or opaque_a == len(a):
        print("compare-png: the first image is all transparent or all opaque")
        return 1
    if mismatch > args.max_alpha_mismatch or diff > args.max_mean_diff:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
