#!/usr/bin/env bash
# cpu_epoch.sh — CPU speed benchmark: one MNIST epoch of the ConvVAE at batch 128, cuvae vs PyTorch
# (the pinned network, or with --arch resnet the residual one, the same module on both sides).
#
# Runs `cuvae train-vae --device cpu --epochs 1` (training images/s read from the run's metrics.csv,
# column images_per_s) on both CPU backends ("cuvae": the default, oneDNN when built with it;
# "cuvae-reference": --cpu-backend reference, im2col + Eigen) and `bench/torch_ref.py train
# --epochs 1` (PyTorch, float32, Adam, same architecture and batch) alternately in the same run — cuvae, torch, cuvae, torch, ... — and
# reports every measurement, the medians, the ratio cuvae/torch and both one-epoch test losses
# (quality check: cuvae's must be <= 130 nats/image). Both time only the training loop of the epoch.
# Writes bench/results/cpu-epoch-<YYYY-MM-DD>.md and .json (machine, nproc, CPU model, torch version,
# load average). This is a benchmark, not a test; it takes several minutes.
#
# Debian's python3-torch calls whatever libblas.so.3 the system's alternatives select, by default
# the netlib reference BLAS, which is slow. So each round also runs torch a second time with
# OpenBLAS as libblas.so.3 (via LD_LIBRARY_PATH, nothing is installed; "torch-openblas"), taken from
# Debian's openblas-pthread folder when installed, else unpacked from the cached
# libopenblas0-pthread .deb in /var/cache/apt/archives; skipped with a note when neither exists.
# The headline ratio is against torch as installed; the OpenBLAS ratio is reported beside it.
#
# Usage: bench/cpu_epoch.sh [options]
#   --rounds N        cuvae/torch pairs to run (default 2)
#   --cuvae PATH      cuvae binary (default: <repo>/build/cuvae)
#   --data DIR        MNIST folder (default: <repo>/data/mnist)
#   --threads N       CPU threads for both (default 2; OMP_NUM_THREADS for cuvae, set_num_threads for torch)
#   --results DIR     where the .md/.json go (default: <repo>/bench/results)
#   --max-load X      before starting, wait while the 1-minute load average is above X (default 1.5)
#   --max-wait S      ... but at most S seconds (default 600; then run anyway and say so in the result)
#   --python PATH     Python with PyTorch (default /usr/bin/python3, Debian's python3-torch)
#   --openblas DIR    folder with OpenBLAS's libblas.so.3 for the torch-openblas runs (default: auto)
#   --no-openblas     skip the torch-openblas runs
#   --arch A          conv (the pinned network, default) or resnet (train-vae --arch resnet; results in
#                     cpu-epoch-resnet-<date>.md, and the quality bound is the same 130 nats)
#   --no-reference    skip the cuvae --cpu-backend reference runs
#   --no-torch-installed
#                     skip torch as installed (with the netlib BLAS its transposed convolutions make an
#                     epoch of --arch resnet take over half an hour); the headline ratio is then the
#                     OpenBLAS one
#   --limit N         train on the first N images only (a quick smoke test of this script, not a benchmark)
#   -h, --help        this text
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=2
CUVAE=$SRC/build/cuvae
DATA=$SRC/data/mnist
THREADS=2
RESULTS=$SRC/bench/results
MAX_LOAD=1.5
MAX_WAIT=600
PY=/usr/bin/python3
OPENBLAS=auto
LIMIT=0
ARCH=conv
REFERENCE=1
TORCH_INSTALLED=1

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "cpu_epoch.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --cuvae) CUVAE=${2:?}; shift 2 ;;
    --data) DATA=${2:?}; shift 2 ;;
    --threads) THREADS=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --max-load) MAX_LOAD=${2:?}; shift 2 ;;
    --max-wait) MAX_WAIT=${2:?}; shift 2 ;;
    --python) PY=${2:?}; shift 2 ;;
    --openblas) OPENBLAS=${2:?}; shift 2 ;;
    --no-openblas) OPENBLAS=none; shift ;;
    --limit) LIMIT=${2:?}; shift 2 ;;
    --arch) ARCH=${2:?}; shift 2 ;;
    --no-reference) REFERENCE=0; shift ;;
    --no-torch-installed) TORCH_INSTALLED=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $ARCH == conv || $ARCH == resnet ]] || die "--arch must be conv or resnet, got '$ARCH'"
((TORCH_INSTALLED)) || [[ $OPENBLAS != none ]] || die "--no-torch-installed needs the torch-openblas runs (drop --no-openblas)"
[[ $LIMIT =~ ^[0-9]+$ ]] || die "--limit must be a non-negative integer"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
[[ -x $CUVAE ]] || die "cuvae binary '$CUVAE' not found (build it: cmake --build build --target cuvae)"
[[ -d $DATA ]] || die "no MNIST data in '$DATA' (run scripts/fetch-data)"
"$PY" -c 'import torch, numpy' 2>/dev/null || die "'$PY' cannot import torch (Debian package python3-torch)"

load1() { cut -d' ' -f1 /proc/loadavg; }
above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cuvae-cpu-epoch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$RESULTS"

# OpenBLAS for the torch-openblas runs.
OB_NOTE=""
SYS_BLAS=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)
if [[ $OPENBLAS == auto ]]; then
  OPENBLAS=none
  if [[ $SYS_BLAS == *openblas* ]]; then
    OB_NOTE="libblas.so.3 is already OpenBLAS ($SYS_BLAS): torch as installed uses it, no separate torch-openblas runs"
  elif [[ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]]; then
    OPENBLAS=/usr/lib/x86_64-linux-gnu/openblas-pthread
  else
    deb=$(ls /var/cache/apt/archives/libopenblas0-pthread_*.deb 2>/dev/null | tail -n 1 || true)
    if [[ -n $deb ]] && dpkg-deb -x "$deb" "$TMP/openblas"; then
      OPENBLAS=$TMP/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread
      OB_NOTE="OpenBLAS unpacked from $(basename "$deb") (not installed)"
    else
      OB_NOTE="no OpenBLAS found (install libopenblas0-pthread or pass --openblas DIR): torch-openblas skipped"
    fi
  fi
fi
if [[ $OPENBLAS != none && ! -e $OPENBLAS/libblas.so.3 ]]; then die "no libblas.so.3 in '$OPENBLAS'"; fi
[[ -n $OB_NOTE ]] && echo "$OB_NOTE"

LOAD_INITIAL=$(load1)
waited=0
while above "$(load1)" "$MAX_LOAD" && ((waited < MAX_WAIT)); do
  ((waited == 0)) && echo "load average $(load1) > $MAX_LOAD: waiting up to ${MAX_WAIT}s for the machine to calm down"
  sleep 15
  waited=$((waited + 15))
done
LOAD_START=$(load1)
echo "load average at start: $LOAD_START (initially $LOAD_INITIAL, waited ${waited}s); uptime: $(uptime)"
# What else was running (for the record): the busiest processes other than this script.
ps -eo pcpu=,comm= --sort=-pcpu | head -5 >"$TMP/ps.txt" || true

export OMP_NUM_THREADS=$THREADS
: >"$TMP/measurements.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
  l=$(load1)
  echo "== round $r/$ROUNDS: cuvae (load $l)"
  "$CUVAE" train-vae --dataset mnist --data "$DATA" --epochs 1 --batch 128 --lr 0.001 --device cpu --arch "$ARCH" \
    --train-limit "$LIMIT" --no-progress --out "$TMP/cuvae-$r" | tee "$TMP/cuvae-$r.log"
  printf 'cuvae\t%s\t%s\t%s\n' "$r" "$l" "$TMP/cuvae-$r/metrics.csv" >>"$TMP/measurements.tsv"
  if ((REFERENCE)) && grep -q "onednn)" "$TMP/cuvae-$r.log"; then
    l=$(load1)
    echo "== round $r/$ROUNDS: cuvae --cpu-backend reference (load $l)"
    "$CUVAE" train-vae --dataset mnist --data "$DATA" --epochs 1 --batch 128 --lr 0.001 --device cpu --arch "$ARCH" \
      --cpu-backend reference --train-limit "$LIMIT" --no-progress --out "$TMP/cuvae-ref-$r" | tee "$TMP/cuvae-ref-$r.log"
    printf 'cuvae-reference\t%s\t%s\t%s\n' "$r" "$l" "$TMP/cuvae-ref-$r/metrics.csv" >>"$TMP/measurements.tsv"
  fi

  if ((TORCH_INSTALLED)); then
    l=$(load1)
    echo "== round $r/$ROUNDS: torch (load $l)"
    "$PY" "$SRC/bench/torch_ref.py" train --dataset mnist --data "$DATA" --epochs 1 --batch 128 --lr 1e-3 \
      --arch "$ARCH" --threads "$THREADS" --limit "$LIMIT" --json "$TMP/torch-$r.json" | tee "$TMP/torch-$r.log"
    printf 'torch\t%s\t%s\t%s\n' "$r" "$l" "$TMP/torch-$r.json" >>"$TMP/measurements.tsv"
  fi

  if [[ $OPENBLAS != none ]]; then
    l=$(load1)
    echo "== round $r/$ROUNDS: torch with OpenBLAS (load $l)"
    LD_LIBRARY_PATH=$OPENBLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} OPENBLAS_NUM_THREADS=$THREADS \
      "$PY" "$SRC/bench/torch_ref.py" train --dataset mnist --data "$DATA" --epochs 1 --batch 128 --lr 1e-3 \
      --arch "$ARCH" --threads "$THREADS" --limit "$LIMIT" --json "$TMP/torch-openblas-$r.json" | tee "$TMP/torch-openblas-$r.log"
    printf 'torch-openblas\t%s\t%s\t%s\n' "$r" "$l" "$TMP/torch-openblas-$r.json" >>"$TMP/measurements.tsv"
  fi
done
LOAD_END=$(load1)

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null) ]]; then COMMIT="$COMMIT (+ local changes)"; fi

"$PY" - "$TMP" "$RESULTS" "$(date +%F)" "$(nproc)" "$CPU_MODEL" "$THREADS" "$LOAD_INITIAL" "$LOAD_START" \
  "$LOAD_END" "$waited" "$MAX_LOAD" "$COMMIT" "$CUVAE" "$SYS_BLAS" "$OB_NOTE" "$LIMIT" "$ARCH" <<'EOF'
import csv, json, os, platform, statistics, sys
import torch
(tmp, results, date, nproc, cpu, threads, load_initial, load_start, load_end, waited, max_load, commit,
 cuvae, sys_blas, ob_note, limit, arch) = sys.argv[1:]
limit = int(limit)
rows = []
for line in open(os.path.join(tmp, "measurements.tsv")):
    impl, rnd, load, path = line.rstrip("\n").split("\t")
    if impl.startswith("cuvae"):
        m = list(csv.DictReader(open(path)))[-1]
        cfg = json.load(open(os.path.join(os.path.dirname(path), "config.json")))
        rec = {"impl": impl, "round": int(rnd), "load_before": float(load), "device": cfg.get("device"),
               "images_per_s": float(m["images_per_s"]), "seconds": float(m["seconds"]),
               "test_recon": float(m["test_recon"]), "test_kl": float(m["test_kl"]),
               "test_loss": float(m["test_loss"])}
    else:
        j = json.load(open(path))
        e = j["epochs"][-1]
        rec = {"impl": impl, "round": int(rnd), "load_before": float(load),
               "device": f"cpu ({j['threads']} threads)", "blas": ", ".join(j.get("blas", [])),
               "images_per_s": e["images_per_s"], "seconds": e["seconds"],
               "test_recon": e["test_recon"], "test_kl": e["test_kl"], "test_loss": e["test_loss"]}
    rows.append(rec)

impls = [i for i in ("cuvae", "cuvae-reference", "torch", "torch-openblas") if any(r["impl"] == i for r in rows)]
def med(impl, key):
    return statistics.median(r[key] for r in rows if r["impl"] == impl)

ips = {i: med(i, "images_per_s") for i in impls}
ratio = ips["cuvae"] / ips["torch"] if "torch" in ips else None
ratio_ob = ips["cuvae"] / ips["torch-openblas"] if "torch-openblas" in ips else None
ratio_ref = ips["cuvae-reference"] / ips["torch"] if "cuvae-reference" in ips else None
cu_worst = max(r["test_loss"] for r in rows if r["impl"].startswith("cuvae"))
quality_ok = cu_worst <= 130.0 or limit > 0  # a short smoke-test epoch cannot reach 130
busy = float(load_start) > 1.5
torch_cfg = torch.__config__.show()
notes = []
if busy:
    notes.append(f"The 1-minute load average was {load_start} when the benchmark started (threshold 1.5, "
                 f"waited {waited} s): other processes (e.g. compilers) shared the {nproc} cores, so the "
                 "absolute images/s are low and noisy (OpenMP threads spin-waiting on an oversubscribed "
                 "machine can slow a step by an order of magnitude); the alternating order keeps the "
                 "ratios fairer.")
if "BLAS_INFO=generic" in torch_cfg:
    notes.append(f"Debian's python3-torch is built against the generic libblas.so.3 (BLAS_INFO=generic); on this "
                 f"machine that resolves to {sys_blas}. The netlib reference BLAS is far slower than "
                 "OpenBLAS or MKL; PyTorch's CPU GEMMs and the im2col/col2im-based ConvTranspose2d "
                 "(slow_conv_transpose2d, which 1.13 does not route to oneDNN in float32) depend on it; "
                 "Conv2d uses oneDNN. 'torch-openblas' is the same PyTorch with OpenBLAS as libblas.so.3 "
                 "(what `apt install libopenblas0-pthread` selects); compare against it for a fairer picture. "
                 "pip/conda builds link MKL instead and may be faster still.")
notes.append("'load before' is the 1-minute load average just before each measurement; from the second "
             f"measurement on it includes this benchmark's own previous run (about {threads} while it ran).")
if ob_note:
    notes.append(ob_note + ".")
result = {
    "benchmark": "cpu-epoch", "date": date, "commit": commit, "cuvae": cuvae,
    "task": ("one MNIST epoch (60000 images, 468 steps of 128, last partial batch dropped)" if not limit else
             f"SMOKE TEST, NOT A BENCHMARK: one epoch on the first {limit} MNIST images, batch 128") +
            f", ConvVAE --arch {arch} latent 32, Adam lr 1e-3, beta 1, float32, on the CPU; images/s over the training loop only",
    "arch": arch,
    "machine": {"nproc": int(nproc), "cpu_model": cpu, "threads": int(threads), "python": platform.python_version(),
                "torch": torch.__version__, "system_libblas": sys_blas,
                "load_initial": float(load_initial), "load_start": float(load_start),
                "load_end": float(load_end), "waited_s": int(waited), "busy": busy},
    "measurements": rows,
    "median_images_per_s": ips,
    "ratio_cuvae_over_torch": ratio,
    "ratio_cuvae_over_torch_openblas": ratio_ob,
    "ratio_cuvae_reference_over_torch": ratio_ref,
    "median_test_loss": {i: med(i, "test_loss") for i in impls},
    "quality": {"cuvae_max_test_loss": cu_worst, "limit": 130.0, "ok": quality_ok},
    "other_processes_at_start": open(os.path.join(tmp, "ps.txt")).read().rstrip().splitlines(),
    "notes": notes,
}
base = os.path.join(results, "cpu-epoch-" + ("resnet-" if arch == "resnet" else "") + date + (f"-smoke{limit}" if limit else ""))
md = [f"# CPU epoch benchmark, {date}", "",
      f"{result['task']}.", "",
      f"- machine: {cpu}, nproc {nproc}, {threads} threads for each program; torch {torch.__version__} "
      f"(Debian python3-torch; system libblas.so.3: {sys_blas}), Python {platform.python_version()}",
      f"- cuvae commit {commit}",
      f"- load average: {load_initial} initially, {load_start} at start (waited {waited} s), {load_end} at the end",
      "", "| round | impl | load before | images/s | epoch s | test recon | test KL | test loss |",
      "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for r in rows:
    md.append(f"| {r['round']} | {r['impl']} | {r['load_before']:.2f} | {r['images_per_s']:.1f} | {r['seconds']:.1f} "
              f"| {r['test_recon']:.2f} | {r['test_kl']:.2f} | {r['test_loss']:.2f} |")
md += ["", "**Median images/s: " + ", ".join(f"{i} {ips[i]:.1f}" for i in impls) + ".**", "",
       (f"**Ratio cuvae/torch (as installed): {ratio:.2f}.**" if ratio else "torch as installed: not run (--no-torch-installed).") +
       (f" Ratio cuvae/torch-openblas: {ratio_ob:.2f}." if ratio_ob else "") +
       (f" Reference backend: cuvae-reference/torch {ratio_ref:.2f}." if ratio_ref else ""), "",
       "One-epoch test loss (median, nats/image, z = mu, all 10000 test images): " +
       ", ".join(f"{i} {result['median_test_loss'][i]:.2f}" for i in impls) + ". " +
       f"Quality check (every cuvae round <= 130): {'ok' if quality_ok else 'FAILED'} (worst {cu_worst:.2f}).", ""]
if notes:
    md += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
md += ["Busiest processes at start (%CPU, command):", "", "```"] + result["other_processes_at_start"] + ["```", "",
       "Reproduce: `bench/cpu_epoch.sh" + (" --arch resnet" if arch == "resnet" else "") + "` (see `--help`).", ""]
for ext, text in (("json", json.dumps(result, indent=2) + "\n"), ("md", "\n".join(md))):
    with open(f"{base}.{ext}.tmp", "w") as f:
        f.write(text)
    os.replace(f"{base}.{ext}.tmp", f"{base}.{ext}")
print("\n".join(md))
print(f"wrote {base}.md and {base}.json")
sys.exit(0 if quality_ok else 1)
EOF
