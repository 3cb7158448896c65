#!/usr/bin/env python3
"""Latency and load of the `cuvae serve` dashboard server on loopback.

Starts `cuvae serve` (any free port, CPU unless --device says otherwise), then
  1. /api/decode of one z, --decodes times one after another: the 50th/95th percentile of the
     server-side time (its Server-Timing header) and of the round trip seen by the client;
  2. --clients concurrent clients x --requests mixed requests each (decode, anchor, classify):
     errors, the 95th-percentile round trip, and the server's resident memory (VmRSS) before and after.
Prints a markdown table; exits 1 on any error response or when memory grew by more than 10%.

  python3 bench/serve_load.py --cuvae build/cuvae --vae runs/mnist/model.safetensors \
      --classifier runs/clf-mnist/model.safetensors
"""
import argparse
import base64
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body)
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        payload = r.read()
        wall = (time.perf_counter() - t0) * 1000.0
        server = None
        m = re.search(r"dur=([0-9.]+)", r.getheader("Server-Timing") or "")
        if m:
            server = float(m.group(1))
        return r.status, payload, wall, server


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cuvae", default="build/cuvae")
    ap.add_argument("--vae", required=True)
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--decodes", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=250)
    a = ap.parse_args()

    proc = subprocess.Popen([a.cuvae, "serve", "--vae", a.vae, "--classifier", a.classifier, "--port", "0",
                             "--device", a.device], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r":(\d+)/", line)
        if not m:
            sys.exit(f"serve did not start: {line!r}")
        port = int(m.group(1))
        c = Client(port)
        info = json.loads(c.request("GET", "/api/info")[1])
        D = info["vae"]["latent"]
        classes = len(info["classes"])
        # A real test image for classify requests.
        image = json.loads(c.request("POST", "/api/encode", {"index": 0})[1])["image"]
        # Anchor statistics are computed on the first anchor request: do it before measuring.
        c.request("POST", "/api/anchor", {"class": 0, "n": 1})

        # 1. Single decodes.
        server_ms, wall_ms = [], []
        for i in range(a.decodes):
            z = [[((i * 7 + d) % 13 - 6) / 3.0 for d in range(D)]]
            status, _, wall, server = c.request("POST", "/api/decode", {"z": z})
            if status != 200:
                sys.exit(f"decode failed with {status}")
            wall_ms.append(wall)
            server_ms.append(server)

        # 2. Concurrent mixed load.
        rss_before = rss_kb(proc.pid)
        errors = []
        lat = []
        lock = threading.Lock()

        def client_loop(t):
            cl = Client(port)
            mine = []
            for i in range(a.requests):
                k = (t + i) % 3
                if k == 0:
                    body = ("/api/decode", {"z": [[0.1 * ((i + d) % 7 - 3) for d in range(D)]]})
                elif k == 1:
                    body = ("/api/anchor", {"class": i % classes, "n": 4, "seed": i})
                else:
                    body = ("/api/classify", {"image": image})
                status, payload, wall, _ = cl.request("POST", *body)
                mine.append(wall)
                if status != 200:
                    with lock:
                        errors.append((body[0], status, payload[:120]))
            with lock:
                lat.extend(mine)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client_loop, args=(t,)) for t in range(a.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - t0
        rss_after = rss_kb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    total = a.clients * a.requests
    print(f"cuvae serve on 127.0.0.1, device {info['device']}, VAE latent {D}, classifier width {info['classifier']['width']}")
    print()
    print("| measurement | value |")
    print("| --- | --- |")
    print(f"| /api/decode, 1 z, server-side (Server-Timing), n = {a.decodes} | p50 {statistics.median(server_ms):.2f} ms, p95 {pct(server_ms, 95):.2f} ms |")
    print(f"| /api/decode, 1 z, client round trip | p50 {statistics.median(wall_ms):.2f} ms, p95 {pct(wall_ms, 95):.2f} ms |")
    print(f"| {a.clients} concurrent clients x {a.requests} mixed requests (decode, anchor n=4, classify) | {total} requests in {seconds:.1f} s, {len(errors)} errors, round trip p50 {statistics.median(lat):.1f} ms, p95 {pct(lat, 95):.1f} ms |")
    print(f"| server resident memory | {rss_before / 1024:.1f} MiB before the load, {rss_after / 1024:.1f} MiB after ({100.0 * (rss_after - rss_before) / rss_before:+.1f}%) |")
    for e in errors[:5]:
        print("error:", e)
    if errors or rss_after > rss_before * 1.10:
        sys.exit(1)


if __name__ == "__main__":
    main()
