#!/usr/bin/env bash
# resnet_cpu.sh — CPU speed of one ResNet-18 training step, cuvae vs PyTorch/torchvision.
#
# The standard network (width 64, small-image stem, 28x28x1 inputs, batch 64): cuvae's
# `resnet_step/cpu/width:64/batch:64` Google Benchmark (training-mode forward, fused cross-entropy,
# backward, SGD with Nesterov momentum) and `bench/torch_ref.py resnet-step` (torchvision's resnet18
# with the same stem, the same step, median of timed steps), alternately in the same run — cuvae,
# torch, cuvae, torch — then the medians and the ratio cuvae/torch. Writes
# bench/results/resnet-step-cpu-<YYYY-MM-DD>.md. A benchmark, not a test: it takes a few minutes.
#
# Usage: bench/resnet_cpu.sh [--rounds N] [--threads N] [--python PATH] [--results DIR]
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=2 THREADS=2 PY=/usr/bin/python3 RESULTS=$SRC/bench/results
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --threads) THREADS=${2:?}; shift 2 ;;
    --python) PY=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "resnet_cpu.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
BENCH=$SRC/build/bench/cuvae_bench_step
[[ -x $BENCH ]] || { echo "resnet_cpu.sh: $BENCH not built (scripts/build)" >&2; exit 1; }
"$PY" -c 'import torch, torchvision' 2>/dev/null || { echo "resnet_cpu.sh: $PY lacks torch/torchvision (scripts/setup --with-torch)" >&2; exit 1; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
for ((r = 1; r <= ROUNDS; r++)); do
  echo "== round $r: cuvae"
  OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE "$BENCH" --benchmark_filter='resnet_step/cpu/width:64/batch:64' \
    --benchmark_format=json --benchmark_repetitions=3 >"$TMP/cuvae-$r.json"
  echo "== round $r: torch"
  "$PY" "$SRC/bench/torch_ref.py" resnet-step --batch 64 --steps 7 --threads "$THREADS" | tail -n 1 >"$TMP/torch-$r.json"
  cat "$TMP/torch-$r.json"
done
mkdir -p "$RESULTS"
out=$RESULTS/resnet-step-cpu-$(date -u +%Y-%m-%d).md
"$PY" - "$TMP" "$ROUNDS" "$out" "$THREADS" <<'PYEOF'
import json, os, platform, statistics, sys
tmp, rounds, out, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
cu, th, blas, ver = [], [], [], ""
for r in range(1, rounds + 1):
    j = json.load(open(os.path.join(tmp, f"cuvae-{r}.json")))
    cu += [b["items_per_second"] for b in j["benchmarks"] if b.get("run_type") == "iteration"]
    t = json.load(open(os.path.join(tmp, f"torch-{r}.json")))
    th.append(t["images_per_s"]); blas = t.get("blas", []); ver = t.get("torch", "")
mc, mt = statistics.median(cu), statistics.median(th)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = [f"# ResNet-18 training step on the CPU (width 64, 28x28x1, batch 64)", "",
         f"Machine: {cpu}, {os.cpu_count()} cores, {threads} threads each; torch {ver}, BLAS {blas}.", "",
         "| implementation | images/s (each measurement) | median |", "| --- | --- | --- |",
         f"| cuvae (im2col + Eigen) | {', '.join(f'{v:.1f}' for v in cu)} | {mc:.1f} |",
         f"| torchvision resnet18 (PyTorch CPU) | {', '.join(f'{v:.1f}' for v in th)} | {mt:.1f} |", "",
         f"Ratio cuvae/torch: {mc / mt:.2f}.", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines)); print(f"wrote {out}")
PYEOF
