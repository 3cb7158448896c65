#!/usr/bin/env python3
"""Totals per kernel from an Nsight Compute `--print-summary per-kernel` log of
gpu__time_duration.sum (scripts/gpu-check's profile stages): invocations x average, largest first,
with each kernel's share of all the profiled time. Kernel names are shortened to their first
identifier; rows with the same short name and launch shape are merged.

  bench/ncu_summary.py LOG [--top N]
"""
import argparse
import re
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log", help="ncu --print-summary per-kernel output")
    ap.add_argument("--top", type=int, default=15, help="rows to print (default 15)")
    args = ap.parse_args()
    try:
        lines = open(args.log, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        sys.exit(f"ncu_summary: cannot read {args.log}: {e.strerror}")
    head = re.compile(r"^\s+(.+?) \((\d+), (\d+), (\d+)\)x\((\d+), (\d+), (\d+)\), Device \d+, CC [\d.]+, Invocations (\d+)")
    metric = re.compile(r"gpu__time_duration\.sum\s+(ns|us|ms|s)\s+([\d.,]+)\s+([\d.,]+)\s+([\d.,]+)")
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
    rows, pending = {}, None
    for line in lines:
        m = head.match(line)
        if m:
            name = re.sub(r"^void ", "", m.group(1)).replace("<unnamed>::", "").replace("(anonymous namespace)::", "")
            name = name.split("(")[0]
            while re.search(r"<[^<>]*>", name):  # template arguments, innermost first
                name = re.sub(r"<[^<>]*>", "", name)
            name = name.split("::")[-1]
            grid = "x".join(m.group(i) for i in (2, 3, 4)) + " / " + "x".join(m.group(i) for i in (5, 6, 7))
            pending = (name, grid, int(m.group(8)))
            continue
        m = metric.search(line)
        if m and pending:
            avg = float(m.group(4).replace(",", "")) * scale[m.group(1)]
            key = pending[:2]
            calls, total = rows.get(key, (0, 0.0))
            rows[key] = (calls + pending[2], total + pending[2] * avg)
            pending = None
    if not rows:
        sys.exit(f"ncu_summary: no per-kernel gpu__time_duration.sum rows in {args.log}")
    all_us = sum(t for _, t in rows.values())
    print(f"{'kernel':40} {'grid / block':28} {'calls':>5} {'total us':>10} {'share':>6}")
    for (name, grid), (calls, total) in sorted(rows.items(), key=lambda kv: -kv[1][1])[: args.top]:
        print(f"{name[:40]:40} {grid:28} {calls:5d} {total:10.1f} {100 * total / all_us:5.1f}%")
    print(f"{'all profiled kernels':40} {'':28} {sum(c for c, _ in rows.values()):5d} {all_us:10.1f}")


if __name__ == "__main__":
    main()
