#!/usr/bin/env python3
"""2-D maps of VAE latents: cuvae embed against scikit-learn on the same latent means.

Reads `mu` [N, D] F32 and `label` [N] I64 from a safetensors file (e.g. the latents.safetensors a
cuvae analysis command writes), takes the first --n rows and times scikit-learn's
PCA(n_components=2) and TSNE(perplexity=30, init="pca", learning_rate="auto", random_state=0)
(fit_transform alone), scoring each map with sklearn.manifold.trustworthiness(n_neighbors=5) and a
leave-one-out 5-NN accuracy (majority vote; a tie between labels goes to the nearest neighbour's
label among the tied ones, as cuvae's knn_accuracy). With --cuvae and --vae it then times the whole
`cuvae embed` process (model load, encoding, map and metrics) for --method tsne and --method pca,
reads the embed.json each writes and prints one markdown table:

  python3 bench/embed_vs_sklearn.py --latents runs/mnist/embed/latents.safetensors \
      --cuvae build/cuvae --vae runs/mnist/model.safetensors --n 5000

The latents must be the test-split means of the images `cuvae embed --n N` encodes (the first N
of --split), so that both tools map the same points. Needs numpy and scikit-learn.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    """{name: numpy array} from a safetensors file (8-byte LE header length, JSON header, data)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        sys.exit(f"{path}: not a safetensors file (too short)")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        sys.exit(f"{path}: header length {hlen} past the end of the file")
    header = json.loads(blob[8:8 + hlen])
    data = memoryview(blob)[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = DTYPES.get(info["dtype"])
        if dt is None:
            sys.exit(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=np.dtype(dt).newbyteorder("<"))
        out[name] = arr.reshape(info["shape"])
    return out


def knn_accuracy(z, labels, k=5):
    """Leave-one-out k-NN accuracy with cuvae's tie rule (nearest neighbour among tied labels)."""
    from sklearn.neighbors import NearestNeighbors

    ind = NearestNeighbors(n_neighbors=k).fit(z).kneighbors(return_distance=False)
    nl = labels[ind]  # [n, k], nearest first
    correct = 0
    for i in range(len(z)):
        row = nl[i]
        votes = {}
        for v in row:
            votes[v] = votes.get(v, 0) + 1
        best = max(votes.values())
        pred = next(v for v in row if votes[v] == best)
        correct += int(pred == labels[i])
    return correct / len(z)


def run_sklearn(mu, labels, args):
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE, trustworthiness

    rows = []
    t0 = time.perf_counter()
    y = PCA(n_components=2).fit_transform(mu)
    sec = time.perf_counter() - t0
    rows.append(("pca", "scikit-learn", sec, trustworthiness(mu, y, n_neighbors=5), knn_accuracy(y, labels)))
    tsne = TSNE(n_components=2, perplexity=args.perplexity, init="pca", learning_rate="auto",
                random_state=0)
    t0 = time.perf_counter()
    y = tsne.fit_transform(mu)
    sec = time.perf_counter() - t0
    rows.append(("tsne", "scikit-learn", sec, trustworthiness(mu, y, n_neighbors=5), knn_accuracy(y, labels)))
    return rows


def run_cuvae(args, method):
    with tempfile.TemporaryDirectory(prefix="cuvae-embed-") as out:
        cmd = [args.cuvae, "embed", "--vae", args.vae, "--dataset", args.dataset, "--split", args.split,
               "--n", str(args.n), "--method", method, "--perplexity", str(args.perplexity),
               "--iters", str(args.iters), "--seed", str(args.seed), "--out", out]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sec = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
        with open(os.path.join(out, "embed.json")) as f:
            info = json.load(f)
    name = "cuvae" + (f" ({info['algorithm']})" if method == "tsne" and info.get("algorithm") else "")
    return (method, name, sec, info["trustworthiness"], info["knn_accuracy"]), info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latents", required=True, help="safetensors file with mu [N,D] F32 and label [N] I64")
    ap.add_argument("--cuvae", help="path of the cuvae binary (without it only scikit-learn runs)")
    ap.add_argument("--vae", help="VAE checkpoint for `cuvae embed` (needed with --cuvae)")
    ap.add_argument("--n", type=int, default=5000, help="number of points (first N rows)")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--split", default="test", choices=["test", "train"])
    ap.add_argument("--perplexity", type=float, default=30.0)
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.cuvae and not args.vae:
        ap.error("--cuvae needs --vae")

    t = read_safetensors(args.latents)
    for key in ("mu", "label"):
        if key not in t:
            sys.exit(f"{args.latents}: no tensor '{key}' (has {', '.join(sorted(t))})")
    mu = np.ascontiguousarray(t["mu"], dtype=np.float32)
    labels = np.asarray(t["label"]).astype(np.int64).reshape(-1)
    if mu.ndim != 2 or labels.shape[0] != mu.shape[0]:
        sys.exit(f"{args.latents}: mu {mu.shape} and label {labels.shape} do not match")
    if args.n > mu.shape[0]:
        sys.exit(f"--n {args.n} but {args.latents} holds only {mu.shape[0]} points")
    mu, labels = mu[:args.n], labels[:args.n]

    rows = run_sklearn(mu, labels, args)
    notes = []
    if args.cuvae:
        for method in ("tsne", "pca"):
            row, info = run_cuvae(args, method)
            rows.append(row)
            notes.append(f"cuvae {method}: {info.get('seconds', float('nan')):.2f} s inside the process; "
                         f"5-NN accuracy in the latent space {info.get('knn_accuracy_latent', float('nan')):.4f}")
            if int(info.get("n", args.n)) != args.n:
                notes.append(f"warning: cuvae embedded n = {info.get('n')} points, not {args.n}")

    print(f"n = {args.n}, d = {mu.shape[1]}, perplexity {args.perplexity:g}, {args.iters} iterations, "
          f"{os.cpu_count()} CPUs")
    print()
    print("| method | tool | seconds | trustworthiness | knn_accuracy |")
    print("| --- | --- | ---: | ---: | ---: |")
    for method, tool, sec, tw, acc in sorted(rows, key=lambda r: (r[0] != "tsne", r[1])):
        print(f"| {method} | {tool} | {sec:.2f} | {tw:.4f} | {acc:.4f} |")
    print()
    print("scikit-learn: fit_transform alone; cuvae: the whole `cuvae embed` process "
          "(model load, encoding, map, trustworthiness and both k-NN accuracies).")
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
