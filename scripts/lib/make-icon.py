#!/usr/bin/env python3
"""Writes the app icon: the tray icon's round face (src/desktop/tray.rs) drawn at SIZE px, as
an RGBA PNG, with the standard library only.

    scripts/lib/make-icon.py OUT.png [SIZE]
"""
import struct
import sys
import zlib


def face(size):
    scale = size / 32.0
    rows = []
    for y in range(size):
        row = bytearray([0])  # filter: none
        for x in range(size):
            dx = (x + 0.5) / scale - 16.0
            dy = (y + 0.5) / scale - 16.0
            inside = dx * dx + dy * dy <= 15.0 * 15.0
            eye = (abs(dx) - 5.0) ** 2 + (dy + 4.0) ** 2 <= 5.0
            if not inside:
                row += bytes([0, 0, 0, 0])
            elif eye:
                row += bytes([60, 40, 60, 255])
            else:
                row += bytes([250, 200, 210, 255])
        rows.append(bytes(row))
    return b"".join(rows)


def png(size, pixels):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(pixels, 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    out = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    with open(out, "wb") as f:
        f.write(png(size, face(size)))
