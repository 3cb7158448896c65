#!/usr/bin/env bash
# resnet_cpu.sh — CPU speed of ResNet-18 training, cuvae (both CPU backends) vs PyTorch/torchvision.
#
# The standard network (width 64, small-image stem, 28x28x1 inputs, batch 64), measured two ways,
# alternating cuvae and PyTorch within each round:
#  1. one training step: cuvae's `resnet_step/cpu/width:64/batch:64/onednn:{1,0}` Google Benchmark
#     (training-mode forward, fused cross-entropy, backward, SGD with Nesterov momentum) on the
#     oneDNN and the reference backend, and `bench/torch_ref.py resnet-step` (the same step, median
#     of timed steps), both in images per second of wall time;
#  2. whole processes, as a user runs them: `cuvae train-classifier --dataset mnist --width 64
#     --epochs 1 --batch 64 --train-limit 1920 --test-limit 64 --device cpu --no-progress` (30 steps,
#     MNIST load, test pass and checkpoints included) against `bench/torch_ref.py resnet-train
#     --steps 30 --save FILE` (MNIST load, 30 torchvision steps, torch.save of the model's and the
#     optimizer's state), wall-clock seconds.
# Medians and the ratios go to bench/results/resnet-step-cpu-<YYYY-MM-DD>.md, every raw measurement
# (Google Benchmark's JSON, PyTorch's JSON lines, process seconds) to the .json beside it. A
# benchmark, not a test: it takes about 10 minutes.
#
# Usage: bench/resnet_cpu.sh [--rounds N] [--threads N] [--python PATH] [--results DIR] [--build DIR]
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3 THREADS=2 PY=/usr/bin/python3 RESULTS=$SRC/bench/results BUILD=$SRC/build
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --threads) THREADS=${2:?}; shift 2 ;;
    --python) PY=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --build) BUILD=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "resnet_cpu.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
BENCH=$BUILD/bench/cuvae_bench_step
CUVAE=$BUILD/cuvae
[[ -x $BENCH && -x $CUVAE ]] || { echo "resnet_cpu.sh: $BENCH or $CUVAE not built (scripts/build)" >&2; exit 1; }
"$PY" -c 'import torch, torchvision' 2>/dev/null || { echo "resnet_cpu.sh: $PY lacks torch/torchvision (scripts/setup --with-torch)" >&2; exit 1; }
"$SRC/scripts/fetch-data" >/dev/null
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE
seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >"$TMP/last.log" 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
for ((r = 1; r <= ROUNDS; r++)); do
  echo "== round $r: cuvae step (onednn, reference)"
  "$BENCH" --benchmark_filter='resnet_step/cpu/width:64/batch:64/' --benchmark_format=json \
    --benchmark_repetitions=2 >"$TMP/cuvae-$r.json"
  echo "== round $r: torch step"
  "$PY" "$SRC/bench/torch_ref.py" resnet-step --batch 64 --steps 7 --threads "$THREADS" | tail -n 1 >"$TMP/torch-$r.json"
  echo "== round $r: cuvae process"
  seconds "$CUVAE" train-classifier --dataset mnist --width 64 --epochs 1 --batch 64 --train-limit 1920 \
    --test-limit 64 --device cpu --no-progress --out "$TMP/run-$r" >"$TMP/cuvae-proc-$r.txt"
  grep -q "^device: cpu (.*onednn)" "$TMP/last.log" || { cat "$TMP/last.log"; echo "resnet_cpu.sh: cuvae did not run the onednn backend" >&2; exit 1; }
  echo "== round $r: torch process"
  seconds "$PY" "$SRC/bench/torch_ref.py" resnet-train --steps 30 --batch 64 --threads "$THREADS" \
    --save "$TMP/torch-ckpt-$r.pt" >"$TMP/torch-proc-$r.txt"
  tail -n 1 "$TMP/last.log" >"$TMP/torch-proc-$r.json"
  rm -f "$TMP/torch-ckpt-$r.pt"
  echo "   cuvae $(cat "$TMP/cuvae-proc-$r.txt") s, torch $(cat "$TMP/torch-proc-$r.txt") s"
done
mkdir -p "$RESULTS"
out=$RESULTS/resnet-step-cpu-$(date -u +%Y-%m-%d).md
"$PY" - "$TMP" "$ROUNDS" "$out" "$THREADS" <<'PYEOF'
import json, os, statistics, sys
tmp, rounds, out, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
raw = {"rounds": []}
for r in range(1, rounds + 1):
    raw["rounds"].append({
        "cuvae_step_benchmark": json.load(open(os.path.join(tmp, f"cuvae-{r}.json"))),
        "torch_step": json.load(open(os.path.join(tmp, f"torch-{r}.json"))),
        "cuvae_process_s": float(open(os.path.join(tmp, f"cuvae-proc-{r}.txt")).read()),
        "torch_process_s": float(open(os.path.join(tmp, f"torch-proc-{r}.txt")).read()),
        "torch_process": json.load(open(os.path.join(tmp, f"torch-proc-{r}.json")))})
json.dump(raw, open(out[:-3] + ".json", "w"), indent=1)
one, ref, th, cp, tp, ver = [], [], [], [], [], ""
for r in range(1, rounds + 1):
    j = json.load(open(os.path.join(tmp, f"cuvae-{r}.json")))
    for b in j["benchmarks"]:
        if b.get("run_type") == "iteration":
            (one if "/onednn:1" in b["name"] else ref).append(b["items_per_second"])
    t = json.load(open(os.path.join(tmp, f"torch-{r}.json")))
    th.append(t["images_per_s"]); ver = t.get("torch", "")
    cp.append(float(open(os.path.join(tmp, f"cuvae-proc-{r}.txt")).read()))
    tp.append(float(open(os.path.join(tmp, f"torch-proc-{r}.txt")).read()))
m1, mr, mt = statistics.median(one), statistics.median(ref), statistics.median(th)
mc, mp = statistics.median(cp), statistics.median(tp)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
fmt = lambda v: ", ".join(f"{x:.1f}" for x in v)
lines = ["# ResNet-18 training on the CPU (width 64, 28x28x1, batch 64)", "",
         f"Machine: {cpu}, {os.cpu_count()} cores, {threads} threads; torch {ver} (oneDNN inside); "
         f"cuvae and PyTorch alternated in each of {rounds} rounds (bench/resnet_cpu.sh).", "",
         "## One training step (images per second of wall time, higher is better)", "",
         "| implementation | each measurement | median |", "| --- | --- | --- |",
         f"| cuvae, `--cpu-backend onednn` | {fmt(one)} | {m1:.1f} |",
         f"| cuvae, `--cpu-backend reference` (im2col + Eigen) | {fmt(ref)} | {mr:.1f} |",
         f"| torchvision resnet18 (PyTorch CPU) | {fmt(th)} | {mt:.1f} |", "",
         f"Ratios to PyTorch: onednn {m1 / mt:.2f}, reference {mr / mt:.2f}.", "",
         "## Whole processes: 30 steps with MNIST loading (seconds, lower is better)", "",
         "| process | each run | median |", "| --- | --- | --- |",
         f"| `cuvae train-classifier --dataset mnist --width 64 --epochs 1 --batch 64 --train-limit 1920 --test-limit 64 --device cpu --no-progress` | {fmt(cp)} | {mc:.1f} |",
         f"| `bench/torch_ref.py resnet-train --steps 30 --batch 64 --save FILE` | {fmt(tp)} | {mp:.1f} |", "",
         f"cuvae's process takes {mc / mp:.2f}x PyTorch's (both write a checkpoint of the model and the "
         f"optimizer state; the cuvae process also evaluates 64 test images and writes its metrics and plots).", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines)); print(f"wrote {out} and {out[:-3]}.json")
PYEOF
