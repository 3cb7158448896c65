#!/usr/bin/python3
"""The largest difference between two safetensors checkpoints of the same model:
max over tensors of max|a - b| / max|a| (per-tensor max-norm relative), printed as %.3g (0 when
every compared tensor is bit-identical).

Usage: tests/max_rel_diff.py A.safetensors B.safetensors [all|conv_fc|bn]
  all      every F32 tensor (default)
  conv_fc  all but batch norm's (names with "bn" or "downsample.1")
  bn       batch norm's only (weights, biases and running statistics)
Used by tests/mpi.sh and bench/accumulate.sh; needs numpy."""
import json
import struct
import sys

import numpy as np


def load(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    header = json.loads(b[8:8 + n])
    base = 8 + n
    return {k: np.frombuffer(b[base + v['data_offsets'][0]:base + v['data_offsets'][1]], dtype=np.float32)
            for k, v in header.items() if k != '__metadata__' and v['dtype'] == 'F32'}


def main():
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] not in ('all', 'conv_fc', 'bn')):
        sys.exit(__doc__)
    a, b = load(sys.argv[1]), load(sys.argv[2])
    if a.keys() != b.keys():
        sys.exit(f"{sys.argv[1]} and {sys.argv[2]} hold different tensors")
    which = sys.argv[3] if len(sys.argv) == 4 else 'all'
    is_bn = lambda k: 'bn' in k or 'downsample.1' in k
    keys = [k for k in a if which == 'all' or (which == 'bn') == is_bn(k)]
    print("%.3g" % max(float(np.abs(a[k].astype(np.float64) - b[k]).max() / max(np.abs(a[k]).max(), 1e-30)) for k in keys))


if __name__ == '__main__':
    main()
