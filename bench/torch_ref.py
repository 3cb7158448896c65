#!/usr/bin/env python3
"""PyTorch reference for cuvae's pinned ConvVAE and its ResNet-18 classifier.

Defines the ConvVAE as a torch.nn.Module whose state_dict keys are exactly the
tensor names cuvae writes (enc.conv1.weight, ..., dec.deconv2.bias; with arch "resnet" the
residual network of cuvae train-vae --arch resnet: enc.conv_in, enc.res1.conv1, ...,
dec.conv_out), a loader
for gzipped IDX files (gzip + numpy), a reader for safetensors checkpoints
(plain json + numpy, validated like the format's reference reader), and two
subcommands:

  check  load a cuvae checkpoint (ConvVAE; ConvAE, the same without enc.logvar; or ConvCVAE,
         with the one-hot label before enc.fc and dec.fc1) into the module with
         load_state_dict(strict=True)
         and evaluate it on the test set with z = mu, in float64 and float32;
         prints one JSON line {"recon", "kl", "loss", "n", "strict_load", ...}
         (recon/kl/loss are the float64 numbers, nats per image).
  nll    importance-sampled -log p(x) (IWAE bound, K samples, torch.randn and torch.logsumexp
         in float64) of a VAE checkpoint, optionally on test images binarized exactly as
         cuvae eval-vae --binarize does (cuvae's Philox in numpy); one JSON line
         {"nll", "nll_stderr", "n", "k"}.
  train  train the same architecture on the CPU in float32 with Adam, beta = 1,
         shuffled batches (last partial batch dropped) and PyTorch's default
         initialisation; prints per-epoch test recon/KL/loss and training
         images/s (only the training loop of each epoch is timed).
  resnet-step
         time training steps of that resnet18 (training mode, cross-entropy, backward,
         SGD with Nesterov momentum) on the CPU on fixed 28x28 inputs; prints one JSON
         line {"images_per_s", "batch", "steps", ...}.
  resnet-check
         load a cuvae classifier checkpoint into torchvision.models.resnet18 with the
         small-image stem (conv1 3x3 stride 1 without bias, maxpool = Identity) with
         load_state_dict(strict=True) and evaluate it on the test set in evaluation
         mode; prints one JSON line {"loss" (nats/image), "accuracy", "n", ...}.

Run with Debian's Python (which has PyTorch): /usr/bin/python3 bench/torch_ref.py --help
"""

import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    _Module = nn.Module
except ImportError:  # reported to the user in main()
    torch = None
    _Module = object

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# ----------------------------------------------------------------------------- data

def read_idx(path):
    """Reads an IDX file (gzipped when the name ends in .gz) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_DTYPES[code])
    count = int(np.prod(dims)) if ndim else 1
    body = raw[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise ValueError(f"{path}: expected {count * dtype.itemsize} data bytes for shape {dims}, found {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def find_file(folder, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"no {stem}(.gz) in {folder} (see scripts/fetch-data)")


def load_images(folder, split, limit=0):
    """Returns uint8 images [N, 1, 28, 28] of the 'train' or 't10k' split (first `limit` when > 0)."""
    imgs = read_idx(find_file(folder, f"{split}-images-idx3-ubyte"))
    if imgs.ndim != 3:
        raise ValueError(f"{folder}: {split} images have {imgs.ndim} dimensions, expected 3")
    if limit and limit > 0:
        imgs = imgs[:limit]
    return np.array(imgs[:, None, :, :], copy=True)  # writable, contiguous


def load_labels(folder, split, limit=0):
    """Returns int64 labels [N] of the 'train' or 't10k' split (first `limit` when > 0)."""
    lab = read_idx(find_file(folder, f"{split}-labels-idx1-ubyte"))
    if limit and limit > 0:
        lab = lab[:limit]
    return np.array(lab, dtype=np.int64)


def data_dir(args):
    return args.data if args.data else os.path.join(REPO_ROOT, "data", args.dataset)


# ----------------------------------------------------------------------------- model

class ResBlock(_Module):
    """cuvae's layers/res_block.h: y = relu(x + conv2(relu(conv1(x)))), 3x3 convolutions with bias,
    no normalisation."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


FEATURES = {"conv": 64, "resnet": 128}  # channels of the encoder's last maps (cuvae's VaeConfig::feature_channels)


class Encoder(_Module):
    """arch "conv": the pinned conv1, conv2; arch "resnet": conv_in, res1 (28x28), down1, res2 (14x14),
    down2, res3 (7x7) with 32/64/128 channels (cuvae's models/vae_bodies.h). Then fc (+K one-hot
    columns for a CVAE), mu and, unless an AE, logvar."""

    def __init__(self, channels, height, width, latent, logvar=True, arch="conv", classes=0):
        super().__init__()
        if arch not in FEATURES:
            raise ValueError(f"arch must be conv or resnet, got {arch!r}")
        self.arch = arch
        if arch == "conv":
            self.conv1 = nn.Conv2d(channels, 32, 4, 2, 1)
            self.conv2 = nn.Conv2d(32, 64, 4, 2, 1)
        else:
            self.conv_in = nn.Conv2d(channels, 32, 3, 1, 1)
            self.res1 = ResBlock(32)
            self.down1 = nn.Conv2d(32, 64, 4, 2, 1)
            self.res2 = ResBlock(64)
            self.down2 = nn.Conv2d(64, 128, 4, 2, 1)
            self.res3 = ResBlock(128)
        self.fc = nn.Linear(FEATURES[arch] * (height // 4) * (width // 4) + classes, 256)
        self.mu = nn.Linear(256, latent)
        if logvar:  # the plain autoencoder (ConvAE) has no enc.logvar
            self.logvar = nn.Linear(256, latent)

    def features(self, x):
        """The flattened feature maps that enter enc.fc."""
        if self.arch == "conv":
            return F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1)
        h = self.res1(F.relu(self.conv_in(x)))
        h = self.res2(F.relu(self.down1(h)))
        return self.res3(F.relu(self.down2(h))).flatten(1)

    def head(self, h):
        h = F.relu(self.fc(h))
        mu = self.mu(h)
        return mu, (self.logvar(h) if hasattr(self, "logvar") else torch.zeros_like(mu))

    def forward(self, x):
        return self.head(self.features(x))


class Decoder(_Module):
    """fc1 (+K one-hot columns for a CVAE), fc2, then arch "conv": deconv1, deconv2; arch "resnet":
    res3 (7x7), up2, res2 (14x14), up1, res1 (28x28), conv_out. Returns logits."""

    def __init__(self, channels, height, width, latent, arch="conv", classes=0):
        super().__init__()
        if arch not in FEATURES:
            raise ValueError(f"arch must be conv or resnet, got {arch!r}")
        self.arch, self.f = arch, FEATURES[arch]
        self.h4, self.w4 = height // 4, width // 4
        self.fc1 = nn.Linear(latent + classes, 256)
        self.fc2 = nn.Linear(256, self.f * self.h4 * self.w4)
        if arch == "conv":
            self.deconv1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
            self.deconv2 = nn.ConvTranspose2d(32, channels, 4, 2, 1)
        else:
            self.res3 = ResBlock(128)
            self.up2 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
            self.res2 = ResBlock(64)
            self.up1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
            self.res1 = ResBlock(32)
            self.conv_out = nn.Conv2d(32, channels, 3, 1, 1)

    def forward(self, z):
        h = F.relu(self.fc1(z))
        h = F.relu(self.fc2(h)).view(-1, self.f, self.h4, self.w4)
        if self.arch == "conv":
            return self.deconv2(F.relu(self.deconv1(h)))  # logits
        h = F.relu(self.up2(self.res3(h)))
        h = F.relu(self.up1(self.res2(h)))
        return self.conv_out(self.res1(h))  # logits


class ConvVAE(_Module):
    def __init__(self, channels=1, height=28, width=28, latent=32, beta=1.0, arch="conv"):
        super().__init__()
        if height % 4 or width % 4:
            raise ValueError(f"image size {height}x{width} is not a multiple of 4")
        self.beta, self.arch = float(beta), arch
        self.enc = Encoder(channels, height, width, latent, arch=arch)
        self.dec = Decoder(channels, height, width, latent, arch=arch)

    def forward(self, x, sample=True):
        mu, logvar = self.enc(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
        return self.dec(z), mu, logvar


class ConvCVAE(_Module):
    """The conditional VAE (Sohn et al. 2015) as cuvae trains it: the one-hot label appended after
    the flattened encoder features (enc.fc is Linear(F*h/4*w/4 + K, 256)) and after z (dec.fc1 is
    Linear(D + K, 256)); the rest as ConvVAE."""

    def __init__(self, channels=1, height=28, width=28, latent=32, beta=1.0, classes=10, arch="conv"):
        super().__init__()
        self.beta, self.classes, self.arch = float(beta), int(classes), arch
        self.enc = Encoder(channels, height, width, latent, arch=arch, classes=classes)
        self.dec = Decoder(channels, height, width, latent, arch=arch, classes=classes)

    def encode(self, x, y):
        h = self.enc.features(x)
        return self.enc.head(torch.cat([h, F.one_hot(y, self.classes).to(h.dtype)], 1))

    def decode(self, z, y):
        return self.dec(torch.cat([z, F.one_hot(y, self.classes).to(z.dtype)], 1))

    def forward(self, x, y, sample=True):
        mu, logvar = self.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
        return self.decode(z, y), mu, logvar


class ConvAE(ConvVAE):
    """The plain autoencoder: ConvVAE's layers without enc.logvar; z = enc.mu, no KL."""

    def __init__(self, channels=1, height=28, width=28, latent=32, beta=0.0, arch="conv"):
        super().__init__(channels, height, width, latent, 0.0, arch)
        self.enc = Encoder(channels, height, width, latent, logvar=False, arch=arch)

    def forward(self, x, sample=False):
        mu, logvar = self.enc(x)
        return self.dec(mu), mu, logvar


def philox_uniform_at(seed, offset, index):
    """cuvae's philox_uniform_at (core/philox.h) for a numpy array of indices: Philox4x32-10 with
    counter (index lo, index hi, offset lo, offset hi) and key (seed lo, seed hi); the third word's
    top 24 bits + 0.5, times 2^-24, as float32."""
    index = np.asarray(index, dtype=np.uint64)
    M0, M1, W0, W1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57), 0x9E3779B9, 0xBB67AE85
    mask = np.uint64(0xFFFFFFFF)
    c0 = index & mask
    c1 = index >> np.uint64(32)
    c2 = np.full_like(c0, offset & 0xFFFFFFFF)
    c3 = np.full_like(c0, offset >> 32)
    k0, k1 = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    for _ in range(10):
        p0 = M0 * c0
        p1 = M1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & mask
        hi1, lo1 = p1 >> np.uint64(32), p1 & mask
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
        k0, k1 = (k0 + W0) & 0xFFFFFFFF, (k1 + W1) & 0xFFFFFFFF
    return ((c2 >> np.uint64(8)).astype(np.float32) + np.float32(0.5)) * np.float32(1.0 / 16777216.0)


def binarize_like_cuvae(images_u8, seed=0xB1A7):
    """cuvae's binarized_copy: pixel -> 255 when philox_uniform_at(seed, 0, i) < byte/255, else 0."""
    flat = images_u8.reshape(-1)
    u = philox_uniform_at(seed, 0, np.arange(flat.size, dtype=np.uint64))
    out = np.where(u < flat.astype(np.float32) / np.float32(255.0), 255, 0).astype(np.uint8)
    return out.reshape(images_u8.shape)


def load_checkpoint_model(path):
    """A ConvVAE or ConvAE from a cuvae checkpoint, loaded with load_state_dict(strict=True)."""
    tensors, meta = read_safetensors(path)
    if "config" not in meta:
        raise ValueError(f"{path}: no 'config' in __metadata__")
    cfg = json.loads(meta["config"])
    kind = cfg.get("model", "ConvVAE")
    if kind not in ("ConvVAE", "ConvAE", "ConvCVAE"):
        raise ValueError(f"{path}: model is {kind}, not ConvVAE, ConvAE or ConvCVAE")
    args = (int(cfg["channels"]), int(cfg["height"]), int(cfg["width"]), int(cfg["latent"]), float(cfg.get("beta", 1.0)))
    arch = cfg.get("arch", "conv")  # checkpoints from before --arch hold the pinned network
    if kind == "ConvCVAE":
        model = ConvCVAE(*args, classes=int(cfg["classes"]), arch=arch)
    else:
        model = (ConvAE if kind == "ConvAE" else ConvVAE)(*args, arch=arch)
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)  # raises on any missing/unexpected key or shape mismatch
    return model, cfg


def elbo_terms(logits, x, mu, logvar):
    """Per-image recon (sum of BCE-with-logits over pixels) and KL, in nats."""
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
    return recon, kl


def evaluate(model, images_u8, dtype, batch=500, labels=None):
    """Test-set means of recon, KL and loss with z = mu, accumulated in float64 (a CVAE takes the
    true labels)."""
    model = model.to(dtype).eval()
    tot_r = tot_k = 0.0
    n = images_u8.shape[0]
    with torch.no_grad():
        for i in range(0, n, batch):
            x = torch.from_numpy(images_u8[i:i + batch]).to(dtype) / 255.0
            if labels is not None:
                logits, mu, logvar = model(x, torch.from_numpy(labels[i:i + batch]), sample=False)
            else:
                logits, mu, logvar = model(x, sample=False)
            r, k = elbo_terms(logits, x, mu, logvar)
            tot_r += r.double().sum().item()
            tot_k += k.double().sum().item()
    recon, kl = tot_r / n, tot_k / n
    return {"recon": recon, "kl": kl, "loss": recon + model.beta * kl}


# ----------------------------------------------------------------------------- safetensors

def read_safetensors(path):
    """Returns (tensors {name: np.ndarray float32, F16 widened; int64}, metadata dict); raises ValueError on a
    malformed file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file ({len(raw)} bytes)")
    (hlen,) = struct.unpack("<Q", raw[:8])
    if hlen > len(raw) - 8:
        raise ValueError(f"{path}: header length {hlen} runs past the end of the file ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: header is not valid JSON: {e}")
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    data = raw[8 + hlen:]
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"{path}: __metadata__ must map strings to strings")
    sizes = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
    entries = []
    for name, info in header.items():
        for key in ("dtype", "shape", "data_offsets"):
            if key not in info:
                raise ValueError(f"{path}: tensor '{name}' has no '{key}'")
        dt, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in sizes:
            raise ValueError(f"{path}: tensor '{name}' has unknown dtype {dt}")
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"{path}: tensor '{name}' has a bad shape {shape}")
        if not (0 <= begin <= end <= len(data)):
            raise ValueError(f"{path}: tensor '{name}' offsets [{begin}, {end}) out of bounds ({len(data)} data bytes)")
        if end - begin != math.prod(shape) * sizes[dt]:
            raise ValueError(f"{path}: tensor '{name}' has {end - begin} bytes, shape {shape} x {dt} needs "
                             f"{math.prod(shape) * sizes[dt]}")
        entries.append((begin, end, name, dt, shape))
    entries.sort()
    pos = 0
    for begin, end, name, _, _ in entries:
        if begin != pos:
            raise ValueError(f"{path}: tensor '{name}' starts at {begin}, expected {pos} (offsets not contiguous)")
        pos = end
    if pos != len(data):
        raise ValueError(f"{path}: tensors cover {pos} data bytes, file has {len(data)}")
    tensors = {}
    for begin, end, name, dt, shape in entries:
        if dt not in ("F32", "F16", "I64"):
            raise ValueError(f"{path}: tensor '{name}' is {dt}; cuvae checkpoints hold F32 (or F16) and I64 only")
        np_dt = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}[dt]
        v = np.frombuffer(data, dtype=np_dt, count=math.prod(shape), offset=begin).reshape(shape)
        tensors[name] = v.astype(np.float32) if dt == "F16" else v  # F16 widens exactly, as cuvae reads it
    return tensors, meta


def save_file(tensors, path, metadata=None):
    """Writes {name: torch.Tensor} as a safetensors file in the layout of safetensors.torch.save_file
    (the Python safetensors package is not in Debian): tensors ordered by dtype (wider first) then
    name, contiguous little-endian data, a compact JSON header with "__metadata__" first only when
    `metadata` is given, padded with spaces to a multiple of 8 bytes."""
    dtypes = {torch.float64: ("F64", 8), torch.float32: ("F32", 4), torch.float16: ("F16", 2),
              torch.bfloat16: ("BF16", 2), torch.int64: ("I64", 8), torch.int32: ("I32", 4),
              torch.int16: ("I16", 2), torch.int8: ("I8", 1), torch.uint8: ("U8", 1), torch.bool: ("BOOL", 1)}
    order = sorted(tensors.items(), key=lambda kv: (-dtypes[kv[1].dtype][1], kv[0]))
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    for name, t in order:
        blob = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype][0], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def cmd_export(args):
    """Loads a cuvae checkpoint into its PyTorch module (strict) and saves module.state_dict() as
    PyTorch users do, with no cuvae config (only {"format": "pt"} with --format-pt)."""
    tensors, meta = read_safetensors(args.checkpoint)
    cfg = json.loads(meta.get("config", "{}"))
    if cfg.get("model") == "resnet18":
        if int(cfg["base_width"]) != 64:
            raise ValueError(f"{args.checkpoint}: width {cfg['base_width']}; torchvision's resnet18 has width 64")
        model = torchvision_resnet18(int(cfg["channels"]), int(cfg["classes"]))
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    else:
        model, _ = load_checkpoint_model(args.checkpoint)
    save_file(model.state_dict(), args.out, {"format": "pt"} if args.format_pt else None)
    print(json.dumps({"out": args.out, "model": type(model).__name__, "tensors": len(model.state_dict())}))
    return 0


def cmd_half(args):
    """Rewrites a cuvae checkpoint with every float32 tensor stored as float16 (half the bytes; cuvae
    widens F16 back to float32 exactly when it loads), keeping its metadata (the cuvae config) and
    every other tensor as it is. Prints the largest relative rounding of any tensor."""
    tensors, meta = read_safetensors(args.checkpoint)
    out, worst = {}, 0.0
    for name, v in tensors.items():
        t = torch.from_numpy(v.copy())
        if t.dtype == torch.float32:
            if not torch.isfinite(t).all() or t.abs().max() > 65504:
                raise ValueError(f"{args.checkpoint}: tensor {name} has values float16 cannot hold")
            h = t.half()
            norm = float(t.norm())
            worst = max(worst, float((h.float() - t).norm()) / norm if norm > 0 else 0.0)
            t = h
        out[name] = t
    tmp = args.out + ".tmp"
    save_file(out, tmp, meta or None)
    if "sha256" in meta:  # cuvae's checksum of the data section: recompute it for the new bytes
        import hashlib
        with open(tmp, "rb") as f:
            raw = f.read()
        hlen = struct.unpack("<Q", raw[:8])[0]
        meta = dict(meta, sha256=hashlib.sha256(raw[8 + hlen:]).hexdigest())
        save_file(out, tmp, meta)
    os.replace(tmp, args.out)
    print(json.dumps({"out": args.out, "bytes": os.path.getsize(args.out), "tensors": len(out),
                      "max_relative_rounding": worst}))
    return 0


# ----------------------------------------------------------------------------- commands

def torchvision_resnet18(channels, classes):
    """torchvision's resnet18 with cuvae's small-image stem."""
    import torchvision
    m = torchvision.models.resnet18(num_classes=classes)
    m.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    m.maxpool = nn.Identity()
    return m


def cmd_resnet_step(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision_resnet18(1, 10)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    idx = torch.arange(args.batch * 784, dtype=torch.int64)
    x = ((idx * 2654435761) % 256).to(torch.float32).reshape(args.batch, 1, 28, 28) / 255.0
    y = torch.arange(args.batch) % 10

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"images_per_s": args.batch / med, "median_step_s": med, "batch": args.batch,
                      "steps": args.steps, "threads": args.threads, "torch": torch.__version__,
                      "blas": loaded_blas()}))
    return 0


def cmd_resnet_train(args):
    """A whole training process as a user runs it: load MNIST, train torchvision's resnet18 (small
    stem) for --steps steps of --batch shuffled training images (SGD, Nesterov momentum), then, with
    --save, write the checkpoint a user would keep (torch.save of the model's and the optimizer's
    state_dict, as cuvae writes its model and training state)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder = data_dir(args)
    images = torch.from_numpy(load_images(folder, "train", 0)).to(torch.float32) / 255.0
    labels = torch.from_numpy(load_labels(folder, "train", 0))
    n = args.steps * args.batch
    order = torch.randperm(images.shape[0])[:n]
    model = torchvision_resnet18(1, 10)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    t0 = time.perf_counter()
    for s in range(args.steps):
        i = order[s * args.batch:(s + 1) * args.batch]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images[i]), labels[i])
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    save_s = None
    if args.save:
        t1 = time.perf_counter()
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, args.save)
        save_s = time.perf_counter() - t1
    print(json.dumps({"steps": args.steps, "batch": args.batch, "train_s": dt, "images_per_s": n / dt,
                      "save_s": save_s, "last_loss": float(loss), "threads": args.threads,
                      "torch": torch.__version__}))
    return 0


def cmd_sgemm(args):
    """PyTorch's FP32 matrix product C = A @ B on square matrices (torch.mm on the CPU, 2·n³ FLOPs
    per call), timed as cuvae_bench_roofline times oneDNN's SGEMM: warm-up calls, then the median
    of at least --reps calls lasting at least --min-s seconds. One JSON line per size."""
    torch.set_num_threads(args.threads)
    for n in args.sizes:
        a = torch.rand(n, n) - 0.5
        b = torch.rand(n, n) - 0.5
        for _ in range(2):
            torch.mm(a, b)
        times, t_start = [], time.perf_counter()
        while len(times) < args.reps or time.perf_counter() - t_start < args.min_s:
            t0 = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - t0)
        times.sort()
        med = times[len(times) // 2]
        print(json.dumps({"what": "torch_sgemm", "n": n, "median_s": med, "gflops": 2.0 * n ** 3 / med / 1e9,
                          "reps": len(times), "threads": args.threads, "torch": torch.__version__,
                          "blas": loaded_blas()}), flush=True)
    return 0


def cmd_step(args):
    """Training steps of the same architectures cuvae trains (the ConvVAE with Adam and the fused
    ELBO's terms; torchvision's resnet18 with the small stem, SGD with Nesterov momentum) on one
    device, eager or through torch.compile, timed as cuvae's bench_step times its own: warm-up
    steps first, then the median of --steps timed steps (CUDA events on a GPU)."""
    torch.manual_seed(0)
    dev = torch.device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(args.threads)
    # cuvae's GPU path computes in float32 (cuDNN FMA math, cuBLAS pedantic math) and picks cuDNN's
    # algorithms from its heuristics; PyTorch by default lets cuDNN's convolutions use TF32 (10-bit
    # mantissa products). The same arithmetic unless --tf32 / --cudnn-benchmark ask otherwise.
    torch.backends.cudnn.allow_tf32 = bool(args.tf32)
    torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
    torch.backends.cudnn.benchmark = bool(args.cudnn_benchmark)
    if args.model == "vae":
        model = ConvVAE(1, 28, 28, 32, 1.0).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        model = torchvision_resnet18(1, 10).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train()
    idx = torch.arange(args.batch * 784, dtype=torch.int64)
    x = (((idx * 2654435761) % 256).to(torch.float32).reshape(args.batch, 1, 28, 28) / 255.0).to(dev)
    y = (torch.arange(args.batch) % 10).to(dev)

    def loss_of(x, y):
        if args.model == "vae":
            logits, mu, logvar = model(x)
            r, k = elbo_terms(logits, x, mu, logvar)
            return (r + k).mean()
        return F.cross_entropy(model(x), y)

    fwd_bwd = torch.compile(loss_of) if args.compile else loss_of

    def step():
        opt.zero_grad(set_to_none=True)
        fwd_bwd(x, y).backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            step()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) / 1000.0)
        else:
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"model": args.model, "device": str(dev), "compile": bool(args.compile), "batch": args.batch,
                      "tf32": bool(args.tf32), "cudnn_benchmark": bool(args.cudnn_benchmark),
                      "images_per_s": args.batch / med, "median_step_s": med, "steps": args.steps,
                      "torch": torch.__version__,
                      "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None}), flush=True)
    return 0


def cmd_resnet_check(args):
    tensors, meta = read_safetensors(args.checkpoint)
    cfg = json.loads(meta.get("config", "{}"))
    if cfg.get("model") != "resnet18":
        raise ValueError(f"{args.checkpoint}: model is {cfg.get('model')}, not resnet18")
    if int(cfg["base_width"]) != 64:
        raise ValueError(f"{args.checkpoint}: width {cfg['base_width']}; torchvision's resnet18 has width 64")
    model = torchvision_resnet18(int(cfg["channels"]), int(cfg["classes"]))
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)  # raises on any missing/unexpected key or shape mismatch
    model.eval()
    folder = data_dir(args)
    images = load_images(folder, "t10k", args.limit)
    labels = read_idx(find_file(folder, "t10k-labels-idx1-ubyte"))[:images.shape[0]].astype(np.int64)
    out = {"n": int(images.shape[0]), "strict_load": True, "torch": torch.__version__}
    for dtype, key in ((torch.float64, None), (torch.float32, "float32")):
        m = model.to(dtype)
        loss, right = 0.0, 0
        with torch.no_grad():
            for b in range(0, images.shape[0], args.batch):
                x = torch.from_numpy(images[b:b + args.batch]).to(dtype) / 255.0
                y = torch.from_numpy(labels[b:b + args.batch])
                logits = m(x)
                loss += float(F.cross_entropy(logits, y, reduction="sum"))
                right += int((logits.argmax(1) == y).sum())
        r = {"loss": loss / images.shape[0], "accuracy": right / images.shape[0]}
        if key is None:
            out.update(r)
        else:
            out[key] = r
    print(json.dumps(out))
    return 0


def cmd_check(args):
    model, cfg = load_checkpoint_model(args.checkpoint)
    images = load_images(data_dir(args), "t10k", args.limit)
    if images.shape[1:] != (int(cfg["channels"]), int(cfg["height"]), int(cfg["width"])):
        raise ValueError(f"test images are {images.shape[1:]}, checkpoint expects "
                         f"{(cfg['channels'], cfg['height'], cfg['width'])}")
    labels = load_labels(data_dir(args), "t10k", args.limit) if isinstance(model, ConvCVAE) else None
    r64 = evaluate(model, images, torch.float64, args.batch, labels)
    r32 = evaluate(model, images, torch.float32, args.batch, labels)
    out = dict(r64)
    if isinstance(model, ConvAE):  # no KL term: recon is the whole loss
        out = {"recon": r64["recon"], "loss": r64["recon"]}
        r32 = {"recon": r32["recon"], "loss": r32["recon"]}
    out.update({"n": int(images.shape[0]), "strict_load": True, "beta": model.beta,
                "model": "ae" if isinstance(model, ConvAE) else "cvae" if isinstance(model, ConvCVAE) else "vae",
                "arch": model.arch, "parameters": sum(p.numel() for p in model.parameters()),
                "float32": r32, "torch": torch.__version__})
    print(json.dumps(out))
    return 0


def cmd_nll(args):
    """Importance-sampled -log p(x) (the IWAE bound, Burda et al. 2016) computed independently of
    cuvae: torch.randn for epsilon, torch.logsumexp, float64 throughout."""
    model, cfg = load_checkpoint_model(args.checkpoint)
    if not type(model) is ConvVAE:
        raise ValueError(f"{args.checkpoint}: the NLL here needs an unconditional VAE (not an AE or a CVAE)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images = load_images(data_dir(args), "t10k", args.limit)
    if args.binarize:
        images = binarize_like_cuvae(images)
    model = model.double().eval()
    per_image = []
    t0 = time.time()
    log2pi = math.log(2 * math.pi)
    with torch.no_grad():
        for i in range(0, images.shape[0], args.batch):
            x = torch.from_numpy(images[i:i + args.batch]).double() / 255.0
            mu, logvar = model.enc(x)
            std = torch.exp(0.5 * logvar)
            lw = []
            for k0 in range(0, args.k, args.chunk):
                s = min(args.chunk, args.k - k0)
                eps = torch.randn(s, *mu.shape, dtype=torch.float64)
                z = mu.unsqueeze(0) + std.unsqueeze(0) * eps  # [s, b, D]
                logits = model.dec(z.reshape(-1, z.shape[-1])).reshape(s, x.shape[0], -1)
                xt = x.reshape(1, x.shape[0], -1).expand_as(logits)
                log_px = -F.binary_cross_entropy_with_logits(logits, xt, reduction="none").sum(-1)
                log_pz = -0.5 * (z.pow(2) + log2pi).sum(-1)
                log_qz = -0.5 * (eps.pow(2) + logvar.unsqueeze(0) + log2pi).sum(-1)
                lw.append(log_px + log_pz - log_qz)
            lw = torch.cat(lw, 0)  # [K, b]
            per_image.append(-(torch.logsumexp(lw, 0) - math.log(args.k)))
    v = torch.cat(per_image).numpy()
    print(json.dumps({"nll": float(v.mean()), "nll_stderr": float(v.std(ddof=1) / math.sqrt(len(v))),
                      "n": int(len(v)), "k": args.k, "binarized": bool(args.binarize),
                      "seconds": time.time() - t0, "torch": torch.__version__}))
    return 0


def loaded_blas():
    """Paths of the BLAS libraries this process has loaded (libblas.so.3 is an alternative on Debian)."""
    torch.ones(2, 2) @ torch.ones(2, 2)
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return []
    return sorted(os.path.realpath(p) for p in paths if p.startswith("/"))


def cmd_train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    folder = data_dir(args)
    train = torch.from_numpy(load_images(folder, "train", args.limit)).float().div_(255.0)
    test = load_images(folder, "t10k", args.test_limit)
    n, c, h, w = train.shape
    model = ConvVAE(c, h, w, args.latent, 1.0, arch=args.arch)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = n // args.batch
    if steps == 0:
        raise ValueError(f"{n} training images are fewer than one batch of {args.batch}")
    blas = loaded_blas()
    print(f"torch {torch.__version__} (BLAS {', '.join(blas) or 'unknown'}), {torch.get_num_threads()} threads: ConvVAE "
          f"--arch {args.arch} "
          f"({sum(p.numel() for p in model.parameters())} parameters) on {n} {args.dataset} images, "
          f"batch {args.batch}, {steps} steps/epoch", flush=True)
    records = []
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n)
        total = 0.0
        t0 = time.perf_counter()
        for s in range(steps):
            x = train[order[s * args.batch:(s + 1) * args.batch]]
            logits, mu, logvar = model(x)
            r, k = elbo_terms(logits, x, mu, logvar)
            loss = (r + k).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        secs = time.perf_counter() - t0
        e = evaluate(model, test, torch.float32)
        rec = {"epoch": epoch + 1, "train_loss": total / steps, "test_recon": e["recon"], "test_kl": e["kl"],
               "test_loss": e["loss"], "seconds": secs, "images_per_s": steps * args.batch / secs}
        records.append(rec)
        print(f"epoch {epoch + 1}: train loss {rec['train_loss']:.2f}, test recon {e['recon']:.2f} + KL "
              f"{e['kl']:.2f} = {e['loss']:.2f} nats/image ({secs:.1f} s, {rec['images_per_s']:.0f} img/s)",
              flush=True)
    if args.json:
        result = {"torch": torch.__version__, "arch": args.arch, "blas": blas, "threads": torch.get_num_threads(), "dataset": args.dataset,
                  "train_images": n, "test_images": int(test.shape[0]), "batch": args.batch, "lr": args.lr,
                  "seed": args.seed, "epochs": records}
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.json)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check", help="load a cuvae checkpoint strictly and evaluate it (z = mu)")
    c.add_argument("--checkpoint", required=True, help="model.safetensors written by cuvae train-vae")
    c.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    c.add_argument("--data", help="folder with the IDX files (default: <repo>/data/<dataset>)")
    c.add_argument("--limit", type=int, default=0, help="evaluate only the first N test images (0 = all)")
    c.add_argument("--batch", type=int, default=500, help="images per evaluation batch")

    t = sub.add_parser("train", help="train the reference ConvVAE on the CPU (float32, Adam, beta = 1)")
    t.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    t.add_argument("--data", help="folder with the IDX files (default: <repo>/data/<dataset>)")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--latent", type=int, default=32)
    t.add_argument("--arch", choices=["conv", "resnet"], default="conv",
                   help="conv (the pinned network) or resnet (the residual encoder and decoder of cuvae --arch resnet)")
    t.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=int, default=0, help="use only the first N training images (0 = all)")
    t.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images (0 = all)")
    t.add_argument("--json", help="write the per-epoch numbers to this JSON file")

    n = sub.add_parser("nll", help="importance-sampled -log p(x) of a cuvae VAE checkpoint, computed in PyTorch")
    n.add_argument("--checkpoint", required=True, help="model.safetensors written by cuvae train-vae")
    n.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    n.add_argument("--data", help="folder with the IDX files (default: <repo>/data/<dataset>)")
    n.add_argument("--limit", type=int, default=0, help="evaluate only the first N test images (0 = all)")
    n.add_argument("--k", type=int, default=100, help="importance samples per image")
    n.add_argument("--chunk", type=int, default=100, help="samples per decoder pass")
    n.add_argument("--batch", type=int, default=50, help="images per batch")
    n.add_argument("--binarize", action="store_true", help="binarize the test images exactly as cuvae eval-vae --binarize")
    n.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    n.add_argument("--seed", type=int, default=0)

    r = sub.add_parser("resnet-check", help="load a cuvae classifier strictly into torchvision's resnet18 and evaluate it")
    r.add_argument("--checkpoint", required=True, help="model.safetensors written by cuvae train-classifier (width 64)")
    r.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    r.add_argument("--data", help="folder with the IDX files (default: <repo>/data/<dataset>)")
    r.add_argument("--limit", type=int, default=0, help="evaluate only the first N test images (0 = all)")
    r.add_argument("--batch", type=int, default=250, help="images per evaluation batch")

    e = sub.add_parser("export", help="load a cuvae checkpoint into its PyTorch module and save its state_dict "
                                      "as PyTorch users do (no cuvae config)")
    e.add_argument("--checkpoint", required=True, help="model.safetensors written by cuvae (VAE, AE, CVAE, ResNet-18 width 64)")
    e.add_argument("--out", required=True, help="the safetensors file to write")
    e.add_argument("--format-pt", action="store_true", help='write __metadata__ {"format": "pt"} (default: none)')

    h = sub.add_parser("half", help="store a cuvae checkpoint's float32 tensors as float16, its config kept "
                                    "(half the bytes; cuvae loads F16 exactly)")
    h.add_argument("--checkpoint", required=True, help="a cuvae model.safetensors")
    h.add_argument("--out", required=True, help="the safetensors file to write")

    b = sub.add_parser("resnet-step", help="time training steps of torchvision's resnet18 (small stem) on the CPU")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--steps", type=int, default=5, help="timed steps (the median is reported)")
    b.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")

    tr = sub.add_parser("resnet-train", help="a whole training process: load MNIST, train torchvision's resnet18 "
                                             "(small stem) for --steps steps")
    tr.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    tr.add_argument("--data", help="folder with the IDX files (default: <repo>/data/<dataset>)")
    tr.add_argument("--batch", type=int, default=64)
    tr.add_argument("--steps", type=int, default=30)
    tr.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    tr.add_argument("--save", metavar="PATH", help="after training, torch.save the model's and the optimizer's "
                                                   "state_dict to PATH (the checkpoint)")

    st = sub.add_parser("step", help="time training steps of the VAE or ResNet-18 on a device, eager or torch.compile")
    st.add_argument("--model", choices=["vae", "resnet"], default="vae")
    st.add_argument("--device", default="cuda", help="cuda or cpu")
    st.add_argument("--batch", type=int, default=128)
    st.add_argument("--steps", type=int, default=50, help="timed steps (the median is reported)")
    st.add_argument("--warmup", type=int, default=10, help="untimed steps first (torch.compile compiles in the first)")
    st.add_argument("--compile", action="store_true", help="run the forward and loss through torch.compile")
    st.add_argument("--tf32", action="store_true",
                    help="let cuDNN and cuBLAS use TF32 (PyTorch's default for convolutions; cuvae computes in float32)")
    st.add_argument("--cudnn-benchmark", action="store_true",
                    help="torch.backends.cudnn.benchmark: time cuDNN's algorithms (as cuvae's --nondeterministic)")
    st.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")

    g = sub.add_parser("sgemm", help="time torch.mm on square float32 matrices on the CPU (GFLOP/s)")
    g.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 3072])
    g.add_argument("--reps", type=int, default=5, help="timed calls at least (the median is reported)")
    g.add_argument("--min-s", type=float, default=3.0, help="seconds each size runs at least")
    g.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")

    args = p.parse_args(argv)
    if torch is None:
        print("error: numpy/PyTorch are not importable by this Python; use Debian's /usr/bin/python3 "
              "(package python3-torch)", file=sys.stderr)
        return 2
    try:
        return {"check": cmd_check, "train": cmd_train, "nll": cmd_nll, "resnet-check": cmd_resnet_check,
                "resnet-step": cmd_resnet_step, "resnet-train": cmd_resnet_train, "export": cmd_export,
                "half": cmd_half,
                "step": cmd_step, "sgemm": cmd_sgemm}[args.cmd](args)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
