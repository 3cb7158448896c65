#!/usr/bin/env bash
# roofline.sh — how close the CPU training steps come to what the machine can do, cuvae beside
# PyTorch, in one run.
#
# Per round (cuvae and PyTorch alternated, every measurement on the same --threads):
#  1. the practical FP32 peak: oneDNN's SGEMM on square matrices (cuvae_bench_roofline; the fastest
#     size's median is the peak), and torch.mm on the same sizes for reference;
#  2. one training step of the pinned VAE at batch 128 and of ResNet-18 width 64 at batch 64 in
#     cuvae (cuvae_bench_roofline, oneDNN backend) and in PyTorch running the same modules
#     (bench/torch_ref.py step: the ConvVAE of bench/torch_ref.py, torchvision's resnet18 with the
#     small-image stem; the same optimizers);
# each step's FLOPs counted from the layer shapes (ConvVAE::step_flops, ResNet18::step_flops: every
# convolution, transposed convolution and fully connected product, forward and backward), as GFLOP/s
# and as a share of the peak. Then a profile of cuvae's two steps: oneDNN's verbose mode (time per
# primitive kind and direction) and, where `perf` may sample, where the CPU time goes by library.
# Medians, ratios and the profile go to bench/results/roofline-cpu-<YYYY-MM-DD>.md. A benchmark,
# not a test: about 4 minutes with the defaults.
#
# Usage: bench/roofline.sh [--rounds N] [--threads N] [--python PATH] [--results DIR] [--build DIR]
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3 THREADS=$(nproc) PY=/usr/bin/python3 RESULTS=$SRC/bench/results BUILD=$SRC/build
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --threads) THREADS=${2:?}; shift 2 ;;
    --python) PY=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --build) BUILD=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "roofline.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "roofline.sh: --rounds must be a positive integer, got '$ROUNDS'" >&2; exit 2; }
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || { echo "roofline.sh: --threads must be a positive integer, got '$THREADS'" >&2; exit 2; }
BENCH=$BUILD/bench/cuvae_bench_roofline
[[ -x $BENCH ]] || { echo "roofline.sh: $BENCH not built (scripts/build, or --build DIR)" >&2; exit 1; }
"$PY" -c 'import torch, torchvision' 2>/dev/null || { echo "roofline.sh: $PY lacks torch/torchvision (scripts/setup --with-torch)" >&2; exit 1; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE
for ((r = 1; r <= ROUNDS; r++)); do
  echo "== round $r/$ROUNDS: cuvae (SGEMM peak, VAE step, ResNet-18 step)"
  "$BENCH" --min-s 3 >"$TMP/cuvae-$r.jsonl"
  echo "== round $r/$ROUNDS: PyTorch (torch.mm, VAE step, ResNet-18 step)"
  "$PY" "$SRC/bench/torch_ref.py" sgemm --sizes 1024 2048 --reps 3 --min-s 2 --threads "$THREADS" >"$TMP/torch-$r.jsonl"
  "$PY" "$SRC/bench/torch_ref.py" step --model vae --device cpu --batch 128 --steps 15 --warmup 3 --threads "$THREADS" |
    tail -n 1 >>"$TMP/torch-$r.jsonl"
  "$PY" "$SRC/bench/torch_ref.py" step --model resnet --device cpu --batch 64 --steps 7 --warmup 2 --threads "$THREADS" |
    tail -n 1 >>"$TMP/torch-$r.jsonl"
done
echo "== profile: oneDNN verbose"
ONEDNN_VERBOSE=1 "$BENCH" --only vae --steps 10 --mark >"$TMP/verbose-vae.txt"
ONEDNN_VERBOSE=1 "$BENCH" --only resnet --steps 3 --mark >"$TMP/verbose-resnet.txt"
PERF=none
if command -v perf >/dev/null && perf record -q -o "$TMP/probe.data" -- true >/dev/null 2>&1; then
  echo "== profile: perf"
  for m in vae resnet; do
    steps=$([[ $m == vae ]] && echo 100 || echo 12)
    ONEDNN_JIT_PROFILE=1 perf record -q -F 499 -o "$TMP/perf-$m.data" -- "$BENCH" --only "$m" --steps "$steps" >/dev/null 2>&1
    perf report -i "$TMP/perf-$m.data" --stdio --no-children -g none --sort dso 2>/dev/null >"$TMP/perf-$m-dso.txt" || true
    perf report -i "$TMP/perf-$m.data" --stdio --no-children -g none --sort dso,sym 2>/dev/null >"$TMP/perf-$m.txt" || true
  done
  PERF=$(perf --version 2>/dev/null || echo perf)
else
  echo "   perf cannot sample here (not installed, or perf_event_paranoid forbids it): the profile has oneDNN's view only"
fi
mkdir -p "$RESULTS"
out=$RESULTS/roofline-cpu-$(date -u +%Y-%m-%d).md
"$PY" - "$TMP" "$ROUNDS" "$out" "$THREADS" "$PERF" <<'PYEOF'
import collections, json, os, re, statistics, sys
tmp, rounds, out, threads, perf = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
med = statistics.median
sg, tsg = collections.defaultdict(list), collections.defaultdict(list)
steps, tsteps, flops, dev, ver, blas = collections.defaultdict(list), collections.defaultdict(list), {}, "", "", ""
for r in range(1, rounds + 1):
    for line in open(os.path.join(tmp, f"cuvae-{r}.jsonl")):
        j = json.loads(line)
        if j["what"] == "sgemm":
            sg[j["n"]].append(j["gflops"])
        else:
            m = "vae" if j["what"] == "vae_step" else "resnet"
            steps[m].append(j["median_s"]); flops[m] = (j["flops"], j["batch"]); dev = j["device"]
    for line in open(os.path.join(tmp, f"torch-{r}.jsonl")):
        j = json.loads(line)
        if j.get("what") == "torch_sgemm":
            tsg[j["n"]].append(j["gflops"]); blas = ", ".join(os.path.basename(b) for b in j.get("blas", []))
        else:
            tsteps[j["model"]].append(j["median_step_s"]); ver = j["torch"]
peak_n = max(sg, key=lambda n: med(sg[n]))
peak = med(sg[peak_n])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
fmt = lambda v, f="{:.1f}": ", ".join(f.format(x) for x in v)
L = ["# Roofline of the CPU training steps: cuvae and PyTorch against the machine's SGEMM peak", "",
     f"Machine: {cpu}, {os.cpu_count()} cores, {threads} threads; cuvae `{dev}`; torch {ver}. "
     f"{rounds} rounds, cuvae and PyTorch alternated (`bench/roofline.sh`).", "",
     "## The practical FP32 peak (GFLOP/s, square C = A·B, 2n³ FLOPs)", "",
     "| n | oneDNN `dnnl_sgemm` (each round) | median | torch.mm (each round) | median |", "| --- | --- | --- | --- | --- |"]
for n in sorted(sg):
    t = f"{fmt(tsg[n])} | {med(tsg[n]):.1f}" if n in tsg else "not run | -"
    L.append(f"| {n} | {fmt(sg[n])} | {med(sg[n]):.1f} | {t} |")
L += ["", f"Peak: **{peak:.1f} GFLOP/s** (oneDNN, n = {peak_n}). torch.mm goes through the BLAS this PyTorch "
      f"was built against ({blas or '?'}); PyTorch's convolutions go through its own oneDNN.", "",
      "## One training step", "",
      "FLOPs per step are counted from the layer shapes: every convolution, transposed convolution and fully "
      "connected product, forward, data gradient (not for the first layer) and weight gradient; batch norm, "
      "activations, pooling, the loss and the optimizer are not counted.", "",
      "| model | batch | GFLOP per step | cuvae ms/step | cuvae GFLOP/s | cuvae % of peak | PyTorch ms/step | PyTorch GFLOP/s | PyTorch % of peak | cuvae speed / PyTorch |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
names = {"vae": "ConvVAE (pinned, 32-d latent), Adam", "resnet": "ResNet-18 width 64, SGD Nesterov"}
summary = {}
for m in ("vae", "resnet"):
    f, b = flops[m]
    c, t = med(steps[m]), med(tsteps[m])
    summary[m] = (f / c / 1e9, f / t / 1e9)
    L.append(f"| {names[m]} | {b} | {f / 1e9:.2f} | {c * 1e3:.1f} | {f / c / 1e9:.1f} | {100 * f / c / 1e9 / peak:.0f}% | "
             f"{t * 1e3:.1f} | {f / t / 1e9:.1f} | {100 * f / t / 1e9 / peak:.0f}% | {t / c:.2f} |")
L += ["", "Each round's step medians (ms): " + "; ".join(
    f"{m} cuvae {fmt([x * 1e3 for x in steps[m]])}, PyTorch {fmt([x * 1e3 for x in tsteps[m]])}" for m in ("vae", "resnet")), ""]

def verbose_profile(path):
    """Exec lines after the '# timed' mark: time per primitive kind and direction, ms per step."""
    agg, timed, step = collections.defaultdict(float), False, None
    for line in open(path):
        if line.startswith("# timed"):
            timed = True
            continue
        if line.startswith("{"):
            step = json.loads(line)
            continue
        if not timed or not line.startswith("onednn_verbose,exec,"):
            continue
        f = line.rstrip("\n").split(",")
        kind, prop = f[3], f[5]
        label = kind if prop in ("undef", "") else f"{kind} {prop.replace('_', ' ')}"
        if kind == "reorder":
            label = "reorder (NCHW ⇄ blocked, weights)"
        agg[label] += float(f[-1])
    return agg, step

L += ["## Where the time goes", "",
      "oneDNN's verbose mode (`ONEDNN_VERBOSE=1`) gives the time of every primitive it runs; the rest of a step is "
      "cuvae's own code (Eigen GEMMs for the fully connected layers, the fused ELBO and softmax cross-entropy, ReLU "
      "and residual adds outside oneDNN, pooling, the optimizer) and the OpenMP runtime. Verbose mode slows a step "
      "a little; the shares are of the step time measured in the same run.", ""]
for m, label in (("vae", "VAE, batch 128"), ("resnet", "ResNet-18 width 64, batch 64")):
    agg, step = verbose_profile(os.path.join(tmp, f"verbose-{m}.txt"))
    n, st = step["reps"], step["median_s"] * 1e3
    total = sum(agg.values()) / n
    L += [f"### {label}: {st:.1f} ms per step under verbose mode", "", "| part of the step | ms per step | share |", "| --- | --- | --- |"]
    for k, v in sorted(agg.items(), key=lambda kv: -kv[1]):
        L.append(f"| oneDNN {k} | {v / n:.2f} | {100 * v / n / st:.1f}% |")
    L.append(f"| outside oneDNN (cuvae's own code, OpenMP runtime) | {max(st - total, 0):.2f} | {100 * max(st - total, 0) / st:.1f}% |")
    L.append("")

def lib_name(lib):
    lib = lib.strip()
    if lib.startswith("[JIT]") or lib.startswith("perf-") or lib in ("[unknown]", "//anon"):
        return "oneDNN's generated (JIT) kernels"
    if lib == "[kernel.kallsyms]":
        return "Linux kernel (page faults on fresh memory, scheduling)"
    if lib.startswith("libgomp"):
        return lib + " (OpenMP: threads waiting at barriers)"
    if lib.startswith("cuvae_bench"):
        return "cuvae's own code"
    return lib

def perf_profile(tmp, m):
    """perf report --sort dso → share per library; --sort dso,sym → the top symbols, unnamed
    addresses of one library taken together."""
    dso = collections.defaultdict(float)
    for line in open(os.path.join(tmp, f"perf-{m}-dso.txt")):
        mt = re.match(r"\s*([0-9.]+)%\s+(.+?)\s*$", line)
        if mt and not line.startswith("#"):
            dso[lib_name(mt.group(2))] += float(mt.group(1))
    syms = collections.defaultdict(float)
    for line in open(os.path.join(tmp, f"perf-{m}.txt")):
        mt = re.match(r"\s*([0-9.]+)%\s+(.+?)\s+\[[.k]\]\s+(.*)$", line)
        if not mt or line.startswith("#"):
            continue
        sym = mt.group(3).strip()
        if re.fullmatch(r"0x[0-9a-f]+", sym):
            sym = "(code without symbols)"
        syms[(lib_name(mt.group(2)), re.sub(r"<.*", "<…>", sym)[:80])] += float(mt.group(1))
    return dso, syms

if perf != "none":
    L += [f"### Sampled with {perf} (`perf record -F 499` over the whole process: model set-up, then 100 VAE or 12 ResNet-18 steps; "
          "oneDNN's JIT code mapped with `ONEDNN_JIT_PROFILE=1`)", ""]
    for m, label in (("vae", "VAE"), ("resnet", "ResNet-18")):
        if not os.path.exists(os.path.join(tmp, f"perf-{m}-dso.txt")):
            continue
        dso, syms = perf_profile(tmp, m)
        L += [f"{label}, CPU samples by library:", "", "| library | share |", "| --- | --- |"]
        for k, v in sorted(dso.items(), key=lambda kv: -kv[1])[:8]:
            L.append(f"| {k} | {v:.1f}% |")
        L += ["", f"{label}, the top symbols:", "", "| share | library | symbol |", "| --- | --- | --- |"]
        for (lib, sym), pct in sorted(syms.items(), key=lambda kv: -kv[1])[:10]:
            L.append(f"| {pct:.1f}% | {lib} | `{sym.replace('|', '/')}` |")
        L.append("")
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))
print(f"\nwritten: {out}")
for m in ("vae", "resnet"):
    c, t = summary[m]
    print(f"{m}: cuvae {c:.1f} GFLOP/s ({100 * c / peak:.0f}% of {peak:.0f}), PyTorch {t:.1f} GFLOP/s ({100 * t / peak:.0f}%)")
PYEOF
