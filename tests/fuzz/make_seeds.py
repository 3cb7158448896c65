#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into tests/fuzz/corpus/<target>/seed-*.

Small valid files (a few MNIST-shaped IDX records drawn here, raw and gzip; CIFAR-10 records;
a tiny safetensors file; PNGs of every colour type, bit depth and interlacing; valid JSON
requests) and interesting invalid ones. Everything is synthetic and deterministic: no data set
file is copied. Inputs follow each target's layout (see the comment at the top of
tests/fuzz/fuzz_<target>.cpp). Run it again after changing a layout; files the fuzzer added
(named by their SHA-1) are left alone.

Usage: tests/fuzz/make_seeds.py [CORPUS_DIR]   (default: tests/fuzz/corpus beside this file)
"""
import base64
import gzip
import json
import os
import struct
import sys
import zlib

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---- IDX ---------------------------------------------------------------------------------

def digit(i, h=28, w=28):
    """A synthetic 'digit': a ring or a bar whose position depends on i (not real data)."""
    px = bytearray(h * w)
    cy, cx = h / 2, w / 2 + (i % 3) - 1
    for y in range(h):
        for x in range(w):
            r = ((y - cy) ** 2 + (x - cx) ** 2) ** 0.5
            ring = abs(r - (h / 4 + i % 2)) < 2.0
            bar = i % 2 == 1 and abs(x - cx) < 1.5 and 4 <= y < h - 4
            if ring or bar:
                px[y * w + x] = 255 if (y + x + i) % 5 else 200
    return bytes(px)


def idx_images(n, h, w, pixels, magic=0x803):
    return struct.pack(">IIII", magic, n, h, w) + pixels


def idx_labels(labels, magic=0x801, n=None):
    return struct.pack(">II", magic, len(labels) if n is None else n) + bytes(labels)


def idx_input(images, labels, classes=10):
    assert len(images) < 65536
    return bytes([classes - 1]) + struct.pack("<H", len(images)) + images + labels


def idx_seeds():
    px3 = b"".join(digit(i) for i in range(3))
    img3, lab3 = idx_images(3, 28, 28, px3), idx_labels([7, 2, 1])
    write("idx", "raw-3x28x28", idx_input(img3, lab3))
    write("idx", "gzip-3x28x28", idx_input(gz(img3), gz(lab3)))
    write("idx", "raw-images-gzip-labels", idx_input(img3, gz(lab3)))
    write("idx", "gzip-images-raw-labels", idx_input(gz(idx_images(2, 28, 28, px3[:1568])), idx_labels([0, 9])))
    small = bytes(10 * i + j for i in range(3) for j in range(6))
    write("idx", "raw-3x2x3", idx_input(idx_images(3, 2, 3, small), idx_labels([0, 9, 4])))
    write("idx", "raw-1x1x1-2-classes", idx_input(idx_images(1, 1, 1, b"\x80"), idx_labels([1]), classes=2))
    write("idx", "raw-256-classes", idx_input(idx_images(2, 2, 2, bytes(8)), idx_labels([255, 128]), classes=256))
    # Gzip variants: two members, trailing garbage after the member (ignored, as gzread does).
    img_small = idx_images(3, 2, 3, small)
    write("idx", "gzip-two-members", idx_input(gz(img_small[:10]) + gz(img_small[10:]), gz(idx_labels([0, 9, 4]))))
    write("idx", "gzip-trailing-garbage", idx_input(gz(img_small) + b"garbage", idx_labels([0, 9, 4])))
    write("idx", "gzip-stored-block", idx_input(gzip.compress(img_small, compresslevel=0, mtime=0), idx_labels([0, 9, 4])))
    raw_deflate = zlib.compressobj(9, zlib.DEFLATED, 31)  # a gzip stream from zlib itself (OS byte 3, no name)
    write("idx", "gzip-zlib-stream", idx_input(raw_deflate.compress(img_small) + raw_deflate.flush(), idx_labels([0, 9, 4])))
    # Invalid ones.
    write("idx", "bad-magic", idx_input(idx_images(3, 2, 3, small, magic=0x801), idx_labels([0, 9, 4])))
    write("idx", "bad-label-magic", idx_input(img_small, idx_labels([0, 9, 4], magic=0x803)))
    write("idx", "truncated-header", idx_input(img_small[:10], idx_labels([0, 9, 4])))
    write("idx", "truncated-pixels", idx_input(img_small[:-1], idx_labels([0, 9, 4])))
    write("idx", "trailing-pixels", idx_input(img_small + b"xy", idx_labels([0, 9, 4])))
    write("idx", "count-mismatch", idx_input(img_small, idx_labels([0, 9])))
    write("idx", "label-out-of-range", idx_input(img_small, idx_labels([0, 9, 10])))
    write("idx", "zero-dims", idx_input(idx_images(0, 2, 3, b""), idx_labels([])))
    write("idx", "huge-dims-raw", idx_input(idx_images(10000000, 4096, 4096, bytes(64)), idx_labels([1] * 8, n=10000000)))
    # A small gzip "bomb": the header promises 10^7 images of 4096×4096, 200 kB of zeros follow
    # (the output buffer grows with the data, past its first 64 kB step, never to the promise).
    write("idx", "huge-dims-gzip", idx_input(gz(idx_images(10000000, 4096, 4096, bytes(200000))), gz(idx_labels([1] * 8, n=10000000))))
    cut = gz(img3)
    write("idx", "gzip-truncated", idx_input(cut[: len(cut) // 2], lab3))
    bad = bytearray(gz(img_small))
    for k in range(10, len(bad) - 8):
        bad[k] ^= 0x5A
    write("idx", "gzip-corrupt", idx_input(bytes(bad), idx_labels([0, 9, 4])))
    crc = bytearray(gz(img_small))
    crc[-8] ^= 1
    write("idx", "gzip-bad-crc", idx_input(bytes(crc), idx_labels([0, 9, 4])))


# ---- CIFAR-10 ------------------------------------------------------------------------------

def cifar_record(label, r):
    return bytes([label]) + bytes((50 * ch + 7 * r + p) & 0xFF for ch in range(3) for p in range(1024))


def cifar_seeds():
    write("cifar10", "one-record", cifar_record(3, 0))
    write("cifar10", "two-records", cifar_record(9, 0) + cifar_record(0, 1))
    write("cifar10", "label-10", cifar_record(10, 0))
    write("cifar10", "short", cifar_record(1, 0)[:3000])
    write("cifar10", "one-byte-long", cifar_record(1, 0) + b"z")
    write("cifar10", "empty", b"")


# ---- safetensors -----------------------------------------------------------------------------

def safetensors(header, data, pad=True, raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    w = struct.pack("<6f", 0.5, -1.0, 2.0, 0.0, 1e-3, 3.25)
    idx = struct.pack("<2q", 4, -7)
    hdr = {
        "__metadata__": {"format": "pt", "cuvae": "{\"latent\":2}"},
        "enc.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "index": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
    }
    write("safetensors", "valid", safetensors(hdr, w + idx))
    all_types = {}
    data = b""
    for name, size in [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4), ("I16", 2), ("I8", 1), ("U8", 1), ("BOOL", 1)]:
        all_types["t_" + name] = {"dtype": name, "shape": [1, 2], "data_offsets": [len(data), len(data) + 2 * size]}
        data += bytes(range(2 * size))
    write("safetensors", "all-dtypes", safetensors(all_types, data))
    write("safetensors", "empty-header", safetensors({}, b""))
    write("safetensors", "scalar-and-empty", safetensors(
        {"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}, "e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [4, 4]}},
        struct.pack("<f", 1.0)))
    write("safetensors", "unpadded", safetensors({"a": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]}}, b"abc", pad=False))
    # Invalid ones.
    write("safetensors", "too-short", b"\x08\x00\x00")
    write("safetensors", "header-too-long", struct.pack("<Q", 1 << 40) + b"{}")
    write("safetensors", "header-past-end", struct.pack("<Q", 64) + b"{}      ")
    write("safetensors", "not-json", safetensors(None, b"", raw_header=b"{\"a\": [1, 2"))
    write("safetensors", "not-object", safetensors(None, b"", raw_header=b"[1, 2, 3]"))
    write("safetensors", "duplicate-key", safetensors(None, b"ab", raw_header=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'))
    write("safetensors", "bad-dtype", safetensors({"a": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}}, b"a"))
    write("safetensors", "negative-shape", safetensors({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, b"a"))
    write("safetensors", "shape-overflow", safetensors({"a": {"dtype": "F64", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 8]}}, bytes(8)))
    write("safetensors", "size-mismatch", safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)))
    write("safetensors", "gap", safetensors({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}, b"ab"))
    write("safetensors", "overlap", safetensors({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}, "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, b"abc"))
    write("safetensors", "out-of-bounds", safetensors({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, b"ab"))
    write("safetensors", "trailing", safetensors({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"ab"))
    write("safetensors", "begin-after-end", safetensors({"a": {"dtype": "U8", "shape": [0], "data_offsets": [2, 1]}}, b"ab"))
    write("safetensors", "metadata-not-strings", safetensors({"__metadata__": {"k": 1}}, b""))
    write("safetensors", "metadata-array", safetensors({"__metadata__": ["k"]}, b""))
    write("safetensors", "deep-nesting", safetensors(None, b"", raw_header=b"{\"a\":" + b"[" * 2000 + b"]" * 2000 + b"}"))
    write("safetensors", "bad-utf8-name", safetensors(None, b"a", raw_header=b'{"\xff\xfe":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'))


# ---- PNG -----------------------------------------------------------------------------------

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(values, depth):
    if depth >= 8:
        fmt = ">B" if depth == 8 else ">H"
        return b"".join(struct.pack(fmt, v) for v in values)
    out, acc, bits = bytearray(), 0, 0
    for v in values:
        acc = (acc << depth) | v
        bits += depth
        if bits == 8:
            out.append(acc)
            acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(w, h, colour, depth, pixel, interlace=0, palette=None, filters=(0, 1, 2, 3, 4), extra=b"", iend=True):
    """pixel(x, y) → list of samples; rows use filter types from `filters` in turn (as 'none'
    data with the filter byte set only for type 0; other types are encoded properly)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    bpp = max(1, channels * depth // 8)

    def encode(xs, ys, fi):
        raw, prev = b"", None
        for n, y in enumerate(ys):
            line = pack_row([s for x in xs for s in pixel(x, y)], depth)
            f = filters[(fi + n) % len(filters)]
            out = bytearray([f])
            p = prev if prev is not None else bytes(len(line))
            for i, v in enumerate(line):
                a = line[i - bpp] if i >= bpp else 0
                b = p[i]
                c = p[i - bpp] if i >= bpp else 0
                if f == 0:
                    pr = 0
                elif f == 1:
                    pr = a
                elif f == 2:
                    pr = b
                elif f == 3:
                    pr = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                out.append((v - pr) & 0xFF)
            raw += bytes(out)
            prev = line
        return raw

    if interlace:
        raw = b""
        for k, (x0, y0, dx, dy) in enumerate(ADAM7):
            xs, ys = list(range(x0, w, dx)), list(range(y0, h, dy))
            if xs and ys:
                raw += encode(xs, ys, k)
    else:
        raw = encode(list(range(w)), list(range(h)), 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    out += extra
    comp = zlib.compress(raw, 9)
    out += chunk(b"IDAT", comp[: len(comp) // 2]) + chunk(b"IDAT", comp[len(comp) // 2:])
    if iend:
        out += chunk(b"IEND", b"")
    return out


def grey(x, y):
    return [(x * 9 + y * 3) & 0xFF]


def png_seeds():
    m = (1 << 16) - 1
    write("png", "grey-28", b"\x00" + png(28, 28, 0, 8, grey))
    write("png", "grey-28-end", b"\x02" + png(28, 28, 0, 8, grey))
    write("png", "rgb-32", b"\x05" + png(32, 32, 2, 8, lambda x, y: [x * 8, y * 8, (x ^ y) * 8]))
    write("png", "rgba-28-as-grey", b"\x00" + png(28, 28, 6, 8, lambda x, y: [x * 9, y * 9, 40, 255 - x]))
    write("png", "grey-alpha-32-as-rgb", b"\x05" + png(32, 32, 4, 8, lambda x, y: [x * 8, y * 8]))
    write("png", "grey16-28", b"\x00" + png(28, 28, 0, 16, lambda x, y: [(x * 2341 + y * 17) & m]))
    write("png", "rgb16-8x6", b"\x09" + png(8, 6, 2, 16, lambda x, y: [x * 8000, y * 9000, 1234]))
    for depth in (1, 2, 4):
        write("png", "grey%d-13x7" % depth, b"\x08" + png(13, 7, 0, depth, lambda x, y, d=depth: [(x + y) % (1 << d)]))
    pal = bytes(v for i in range(16) for v in (i * 16, 255 - i * 16, (i * 40) & 0xFF))
    write("png", "palette4-28", b"\x00" + png(28, 28, 3, 4, lambda x, y: [(x + y) % 16], palette=pal))
    trns = chunk(b"tRNS", bytes(range(0, 256, 16)))
    write("png", "palette8-trns-9x5", b"\x09" + png(9, 5, 3, 8, lambda x, y: [(x * y) % 16], palette=pal, extra=trns))
    write("png", "grey-trns-9x5", b"\x08" + png(9, 5, 0, 8, grey, extra=chunk(b"tRNS", b"\x00\x12")))
    write("png", "adam7-grey-28", b"\x00" + png(28, 28, 0, 8, grey, interlace=1))
    write("png", "adam7-rgb-11x9", b"\x09" + png(11, 9, 2, 8, lambda x, y: [x * 20, y * 20, 99], interlace=1))
    write("png", "adam7-grey2-5x3", b"\x08" + png(5, 3, 0, 2, lambda x, y: [(x + y) % 4], interlace=1))
    text = chunk(b"tEXt", b"Comment\x00fuzz seed") + chunk(b"gAMA", struct.pack(">I", 45455))
    write("png", "ancillary-chunks-28", b"\x00" + png(28, 28, 0, 8, grey, extra=text))
    # Invalid ones.
    ok = png(28, 28, 0, 8, grey)
    write("png", "no-iend", b"\x02" + png(28, 28, 0, 8, grey, iend=False))
    write("png", "truncated", b"\x00" + ok[: len(ok) // 2])
    write("png", "wrong-size", b"\x00" + png(30, 30, 0, 8, grey))
    write("png", "not-png", b"\x00GIF89a\x01\x00\x01\x00")
    write("png", "huge-header", b"\x00" + ok[:16] + struct.pack(">II", 1 << 30, 1 << 30) + ok[24:])
    write("png", "bad-filter", b"\x00" + png(28, 28, 0, 8, grey, filters=(7,)))
    write("png", "bad-depth", b"\x00" + ok[:24] + b"\x03" + ok[25:])
    write("png", "palette-missing", b"\x00" + png(28, 28, 3, 8, lambda x, y: [x % 4]))
    write("png", "signature-only", b"\x00" + ok[:8])


# ---- dashboard requests ----------------------------------------------------------------------

def data_url(p):
    return "data:image/png;base64," + base64.b64encode(p).decode()


def requests_seeds():
    mnist = data_url(png(28, 28, 0, 8, grey))
    cifar = data_url(png(32, 32, 2, 8, lambda x, y: [x * 8, y * 8, 77]))
    rgba = data_url(png(28, 28, 6, 8, lambda x, y: [x * 9, y * 9, 40, 255]))

    def req(name, sel, body):
        write("requests", name, bytes([sel]) + (body if isinstance(body, bytes) else json.dumps(body).encode()))

    z8 = [0.5, -1.0, 2.0, 0.0, 1e-3, -3.25, 10.0, -9999.5]
    req("decode", 0, {"z": [z8, z8[::-1]]})
    req("decode-cifar", 8, {"z": [[0.25] * 16]})
    req("encode-image", 1, {"image": mnist})
    req("encode-rgba", 1, {"image": rgba})
    req("encode-index", 1, {"index": 3})
    req("encode-cifar", 9, {"image": cifar})
    req("anchor", 2, {"class": 7, "n": 4, "noise": 0.5, "seed": 11})
    req("anchor-defaults", 2, {"class": 0})
    req("interpolate", 3, {"from": 0, "to": 49, "steps": 8, "mode": "slerp"})
    req("interpolate-defaults", 3, {"from": 1, "to": 2})
    req("classify", 4, {"image": mnist})
    req("gradcam", 5, {"image": mnist, "layer": "layer3", "class": 2})
    req("gradcam-cifar", 13, {"image": cifar})
    req("body", 6, {"a": [1, 2.5, "x", None, True, {"b": []}]})
    # Invalid ones (the error classes of tests/test_serve_api.cpp).
    req("bad-json", 0, b'{"z": [[0,')
    req("nan", 0, b'{"z": [[NaN, 0, 0, 0, 0, 0, 0, 0]]}')
    req("not-object", 0, b"[1, 2]")
    req("z-short-row", 0, {"z": [[0, 0, 0]]})
    req("z-too-big", 0, b'{"z": [[1e5, 0, 0, 0, 0, 0, 0, 0]]}')
    req("z-overflow", 0, b'{"z": [[1e400, 0, 0, 0, 0, 0, 0, 0]]}')
    req("z-string", 0, {"z": [["a", 0, 0, 0, 0, 0, 0, 0]]})
    req("index-huge", 1, b'{"index": 18446744073709551615}')
    req("index-float", 1, {"index": 1.5})
    req("index-no-test-data", 17, {"index": 0})
    req("both-fields", 1, {"index": 1, "image": "x"})
    req("jpeg-url", 1, {"image": "data:image/jpeg;base64,AAAA"})
    req("bad-base64", 1, {"image": "data:image/png;base64,@@@@"})
    req("not-png", 4, {"image": "data:image/png;base64,AAAAAAAAAAAA"})
    req("wrong-size", 4, {"image": data_url(png(30, 30, 0, 8, grey))})
    req("class-out-of-range", 2, {"class": 10, "n": 1})
    req("noise-negative", 2, {"class": 1, "n": 2, "noise": -1})
    req("steps-1", 3, {"from": 0, "to": 1, "steps": 1})
    req("mode-cubic", 3, {"from": 0, "to": 1, "mode": "cubic"})
    req("layer9", 5, {"image": mnist, "layer": "layer9"})
    req("nested", 0, b"[" * 40 + b"]" * 40)
    req("escaped-strings", 6, b'{"a\\"[[[[": "\\u00e9\\ud83d\\ude00[{", "b": "\\\\"}')


if __name__ == "__main__":
    idx_seeds()
    cifar_seeds()
    safetensors_seeds()
    png_seeds()
    requests_seeds()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(ROOT) for f in fs)
    print("seeds written under %s (%d bytes in the corpus)" % (ROOT, total))
