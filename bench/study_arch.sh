#!/usr/bin/env bash
# The pinned ConvVAE (--arch conv) against the residual one (--arch resnet), on the CPU.
#   bench/study_arch.sh fashion   FashionMNIST: a CVAE and a beta = 0.1 VAE of each arch (EPOCHS,
#                                 default 8, seed 0), each judged by the committed width-32 ResNet-18
#                                 (bench/models/fashion-mnist-resnet18-w32.safetensors, 93.92%):
#                                 100 CVAE samples and 100 anchored VAE samples per class at s = 0.5,
#                                 and the reconstructions of all 10,000 test images; one per-class
#                                 table with both archs side by side
#   bench/study_arch.sh fashion-epochs
#                                 the conv CVAE trained longer: beta = 1 for 30 epochs, and beta = 0.5
#                                 for 30, 60, 100 and 200 epochs (one run continued with --resume, a
#                                 copy kept at each stop; 100 epochs take 32-47 min on one core), each
#                                 judged as above (plus 1000 samples per class for the last two), in
#                                 one table
#   bench/study_arch.sh fashion-cosine
#                                 the conv networks with a cosine learning rate (--schedule cosine):
#                                 the beta = 0.5 CVAE for 60 epochs and the beta = 0.1 VAE for 30,
#                                 side by side with one thread each, judged as above (the CVAE also
#                                 with 1000 samples per class; the VAE's anchored samples)
#   bench/study_arch.sh fashion-mixture
#                                 anchored samples from a per-class Gaussian mixture (validate
#                                 --components M, M = 1, 3, 10, 20; 1000 samples per class at s = 0.5)
#                                 for the beta = 0.1 VAE of 8 epochs (trained here when missing) and,
#                                 when fashion-cosine has trained it, the 30-epoch cosine one; one table
#   bench/study_arch.sh fashion-ae
#                                 the plain autoencoder (--model ae, no KL term, 30 epochs, one core):
#                                 its reconstructions of the 10,000 test images per class, judged as
#                                 above, beside the VAE's and the CVAE's when those parts have run
#   bench/study_arch.sh fashion-latent
#                                 the beta = 0.5 conv CVAE with latent 64 and 128 (60 epochs, side by
#                                 side with one thread each), 1000 samples per class and all test
#                                 reconstructions, beside latent 32 from fashion-epochs
#   bench/study_arch.sh fashion-latent-small
#                                 the same CVAE with latent 16 and 8 (60 epochs, side by side with one
#                                 thread each), judged as fashion-latent, beside latent 32
#   bench/study_arch.sh mnist     dynamically binarized MNIST: each arch trained for the same
#                                 MNIST_MINUTES of CPU time (default 120; --epochs from a one-epoch
#                                 probe), then eval-vae --binarize --nll K (K = NLL_K, default 1000) on
#                                 the first NLL_LIMIT test images (default 0 = all 10,000; NLL_K=0
#                                 trains only, and a second call with the model in place only
#                                 evaluates, so each step may get its own THREADS; RANKS=N evaluates
#                                 over N mpirun ranks of THREADS threads each, each rank 1/N of the
#                                 images)
# On a GPU (CUVAE=build-carry/cuvae, which takes the GPU when there is one) set TAG=h200 or the
# like: it replaces "cpu" in the result files' names.
# Logs and tables go to bench/results/, run folders to runs/arch/ (a part skips the training of a
# run whose model.safetensors exists). THREADS (default 2) sets
# OMP_NUM_THREADS; two parts may share a 2-core machine with THREADS=1 each (ARCHS=conv or
# ARCHS=resnet runs one arch of the mnist part, so that both can train side by side).
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help || $# -ne 1 ]]; then
  sed -n '2,49p' "$0" | sed 's/^# \{0,1\}//'
  [[ $# -eq 1 ]] && exit 0 || exit 2
fi
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${THREADS:-2}
TAG=${TAG:-cpu}
B=${CUVAE:-build/cuvae}
R=bench/results
D=$(date +%Y-%m-%d)
S=runs/arch
JUDGE=bench/models/fashion-mnist-resnet18-w32.safetensors
mkdir -p "$S" "$R"
# Echoes and times a command (GNU time where installed; bare GPU hosts lack it).
run() {
  echo "+ $*"
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "(%e s wall)" "$@"
  else
    local t0=$EPOCHREALTIME
    "$@"
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "(%.2f s wall)\n", b - a }' >&2
  fi
}

# The beta = 0.5 conv CVAE (60 epochs, seed 0) with other latent sizes beside latent 32 (the run of
# fashion-epochs): trains the missing runs side by side with one thread each, validates each with
# 1000 samples per class and all 10,000 test reconstructions, and writes one per-class table to
# $R/arch-PART-$TAG-$D.md.   latent_study PART WORD Z...   (WORD: wider or narrower, for the title)
latent_study() {
  local part=$1 word=$2 z c r
  shift 2
  for z in "$@"; do
    c=$S/cvae-fashion-conv-b0.5-e60-z$z
    [ -f $c/model.safetensors ] || OMP_NUM_THREADS=1 run $B train-vae --dataset fashion-mnist --model cvae --arch conv \
      --beta 0.5 --latent $z --epochs 60 --seed 0 --out $c --no-progress > $S/train-$(basename $c).log 2>&1 &
  done
  wait
  for z in "$@"; do cat $S/train-cvae-fashion-conv-b0.5-e60-z$z.log; done
  for r in "${@/#/cvae-fashion-conv-b0.5-e60-z}" cvae-fashion-conv-b0.5-e60; do
    [ -f $S/validate-$r-n1000/validation.json ] ||
      run $B validate --vae $S/$r/model.safetensors --classifier $JUDGE --n 1000 --recon 10000 \
        --out $S/validate-$r-n1000 --no-progress
  done
  python3 - "$S" "$R/arch-$part-$TAG-$D.md" "$part" "$word" "$@" <<'EOF'
import sys
sys.path.insert(0, "bench")
from study_tables import class_names, last_metrics, load, per_class_table, recon_share, samples, write
S, out, part, word = sys.argv[1:5]
runs = {32: "cvae-fashion-conv-b0.5-e60"}
runs.update({int(z): f"cvae-fashion-conv-b0.5-e60-z{z}" for z in sys.argv[5:]})
runs = dict(sorted(runs.items()))
v = {z: load(S, f"validate-{r}-n1000") for z, r in runs.items()}
lines = [f"# FashionMNIST: the conv CVAE with a {word} latent (beta 0.5, 60 epochs, seed 0, one thread per run)", "",
         "Judge: bench/models/fashion-mnist-resnet18-w32.safetensors (93.92%). Samples: 1000 per class at s = 0.5, "
         "z ~ N(0, 0.25 I) with the label. Reconstructions: all 10,000 test images at z = mu with the true label, as a "
         "share of the originals the judge gets right. Latent 32 is the run of `fashion-epochs`.", ""]
lines += per_class_table(class_names(v[32]), [(f"samples, latent {z}", samples(x)) for z, x in v.items()] +
                         [(f"recon / originals, latent {z}", recon_share(x)) for z, x in v.items()])
def elbo(r):
    row = last_metrics(S, r)
    return float(row["test_recon"]) + float(row["test_kl"])
lines += ["", "Test -ELBO (recon + KL, nats per image): " + ", ".join(f"latent {z}: {elbo(r):.2f}" for z, r in runs.items()),
          "", f"Reproduce: `bench/study_arch.sh {part}` (after `fashion-epochs` for latent 32).", ""]
write(out, lines)
EOF
}

case $1 in
  fashion)
    E=${EPOCHS:-8}
    {
      for arch in conv resnet; do
        [ -f $S/cvae-fashion-$arch/model.safetensors ] ||
          run $B train-vae --dataset fashion-mnist --model cvae --arch $arch --epochs "$E" --seed 0 \
            --out $S/cvae-fashion-$arch --no-progress
        [ -f $S/vae-fashion-$arch-b0.1/model.safetensors ] ||
          run $B train-vae --dataset fashion-mnist --beta 0.1 --arch $arch --epochs "$E" --seed 0 \
            --out $S/vae-fashion-$arch-b0.1 --no-progress
        run $B validate --vae $S/cvae-fashion-$arch/model.safetensors --compare-vae $S/vae-fashion-$arch-b0.1/model.safetensors \
          --classifier $JUDGE --recon 10000 --out $S/validate-cvae-fashion-$arch --no-progress
        run $B validate --vae $S/vae-fashion-$arch-b0.1/model.safetensors --classifier $JUDGE --recon 10000 \
          --out $S/validate-vae-fashion-$arch --no-progress
        cp $S/validate-cvae-fashion-$arch/validation.md "$R/arch-fashion-$arch-cvae-validation-$TAG-$D.md"
        cp $S/validate-vae-fashion-$arch/validation.md "$R/arch-fashion-$arch-vae-validation-$TAG-$D.md"
      done
      python3 - "$S" "$R/arch-fashion-per-class-$TAG-$D.md" "$E" <<'EOF'
import csv, json, sys
S, out, epochs = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name):
    return json.load(open(f"{S}/{name}/validation.json"))
def elbo(run):
    rows = list(csv.DictReader(open(f"{S}/{run}/metrics.csv")))
    return float(rows[-1]["test_loss"])
v = {a: (load(f"validate-cvae-fashion-{a}"), load(f"validate-vae-fashion-{a}")) for a in ("conv", "resnet")}
names = [c["name"] for c in v["conv"][0]["anchored"]["per_class"]]
pct = lambda x: f"{100 * x:.1f}%"
cols = ["CVAE samples", "anchored VAE samples", "CVAE recon / originals", "VAE recon / originals"]
lines = [f"# FashionMNIST: --arch conv against --arch resnet ({epochs} epochs each, seed 0)", "",
         "Judge: bench/models/fashion-mnist-resnet18-w32.safetensors (ResNet-18 width 32, 93.92% on the test set). "
         "Samples: 100 per class at s = 0.5 (CVAE: z ~ N(0, 0.25 I) with the label; VAE (beta = 0.1): z ~ N(m_c, 0.25 Sigma_c)). "
         "Reconstructions: all 10,000 test images at z = mu (the CVAE with the true label), as a share of the originals "
         "the judge gets right (target: at least 95% in every class).", "",
         "| class | " + " | ".join(f"{c}: conv | {c}: resnet" for c in cols) + " | originals |",
         "|---|" + "---|" * (2 * len(cols) + 1)]
def recon_ratio(j, k):
    r = j["reconstructions"]
    return r["per_class_accuracy"][k] / r["per_class_originals_accuracy"][k]
for k, name in enumerate(names):
    cells = []
    cells += [pct(v[a][0]["anchored"]["per_class"][k]["accuracy"]) for a in ("conv", "resnet")]
    cells += [pct(v[a][1]["anchored"]["per_class"][k]["accuracy"]) for a in ("conv", "resnet")]
    cells += [pct(recon_ratio(v[a][0], k)) for a in ("conv", "resnet")]
    cells += [pct(recon_ratio(v[a][1], k)) for a in ("conv", "resnet")]
    cells.append(pct(v["conv"][0]["reconstructions"]["per_class_originals_accuracy"][k]))
    lines.append(f"| {k} {name} | " + " | ".join(cells) + " |")
tot = []
tot += [pct(v[a][0]["anchored"]["accuracy"]) for a in ("conv", "resnet")]
tot += [pct(v[a][1]["anchored"]["accuracy"]) for a in ("conv", "resnet")]
tot += [pct(v[a][0]["reconstructions"]["accuracy"] / v[a][0]["reconstructions"]["originals_accuracy"]) for a in ("conv", "resnet")]
tot += [pct(v[a][1]["reconstructions"]["accuracy"] / v[a][1]["reconstructions"]["originals_accuracy"]) for a in ("conv", "resnet")]
tot.append(pct(v["conv"][0]["reconstructions"]["originals_accuracy"]))
lines.append("| **all** | " + " | ".join(f"**{c}**" for c in tot) + " |")
lines += ["", "Test -ELBO (nats per image, z = mu): " + ", ".join(
    f"{a} CVAE {elbo(f'cvae-fashion-{a}'):.2f}, {a} VAE (beta 0.1) {elbo(f'vae-fashion-{a}-b0.1'):.2f}" for a in ("conv", "resnet")),
    "", "Reproduce: `bench/study_arch.sh fashion`.", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
print(f"wrote {out}")
EOF
    } 2>&1 | tee "$R/arch-fashion-$TAG-$D.log" ;;
  fashion-epochs)
    {
      [ -f $S/cvae-fashion-conv-b1-e30/model.safetensors ] ||
        run $B train-vae --dataset fashion-mnist --model cvae --arch conv --beta 1 --epochs 30 --seed 0 \
          --out $S/cvae-fashion-conv-b1-e30 --no-progress
      prev=
      for e in 30 60 100 200; do
        out=$S/cvae-fashion-conv-b0.5-e$e
        if [ ! -f $out/model.safetensors ]; then
          [ -n "$prev" ] && { rm -rf $out; cp -r $prev $out; }
          run $B train-vae --dataset fashion-mnist --model cvae --arch conv --beta 0.5 --epochs $e --seed 0 \
            --out $out --no-progress $([ -n "$prev" ] && echo --resume)
        fi
        prev=$out
      done
      runs="cvae-fashion-conv-b1-e30 cvae-fashion-conv-b0.5-e30 cvae-fashion-conv-b0.5-e60 cvae-fashion-conv-b0.5-e100"
      runs="$runs cvae-fashion-conv-b0.5-e200"
      for r in $runs; do  # a validation already written is kept
        [ -f $S/validate-$r/validation.json ] ||
          run $B validate --vae $S/$r/model.safetensors --classifier $JUDGE --recon 10000 --out $S/validate-$r --no-progress
      done
      for e in 100 200; do
        [ -f $S/validate-cvae-fashion-conv-b0.5-e$e-n1000/validation.json ] ||
          run $B validate --vae $S/cvae-fashion-conv-b0.5-e$e/model.safetensors --classifier $JUDGE --n 1000 --recon 2 \
            --out $S/validate-cvae-fashion-conv-b0.5-e$e-n1000 --no-progress
      done
      python3 - "$S" "$R/arch-fashion-epochs-$TAG-$D.md" $runs <<'EOF'
import csv, json, sys
S, out, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = runs + ["cvae-fashion-conv-b0.5-e100-n1000", "cvae-fashion-conv-b0.5-e200-n1000"]
v = {r: json.load(open(f"{S}/validate-{r}/validation.json")) for r in cols}
def label(r):
    if r.endswith("-n1000"): return f"beta 0.5, {r.split('-e')[-1][:-6]} ep, 1000/class"
    b, e = r.split("-b")[1].split("-e")
    return f"beta {b}, {e} ep"
pct = lambda x: f"{100 * x:.1f}%"
names = [c["name"] for c in v[runs[0]]["anchored"]["per_class"]]
def recon(r, k=None):
    x = v[r]["reconstructions"]
    if k is None: return x["accuracy"] / x["originals_accuracy"]
    return x["per_class_accuracy"][k] / x["per_class_originals_accuracy"][k]
lines = ["# FashionMNIST: the conv CVAE trained longer (seed 0, one thread per run)", "",
         "Judge: bench/models/fashion-mnist-resnet18-w32.safetensors (93.92% on the test set). Samples: 100 per class "
         "(1000 in the last two sample columns) at s = 0.5, z ~ N(0, 0.25 I) with the label. Reconstructions: all 10,000 "
         "test images at z = mu with the true label, as a share of the originals the judge gets right. "
         "Targets: samples 90% with no class under 70%; reconstructions 95% of the originals in every class.", "",
         "| class | " + " | ".join(f"samples: {label(r)}" for r in cols) + " | " +
         " | ".join(f"recon / originals: {label(r)}" for r in runs) + " |",
         "|---|" + "---|" * (len(cols) + len(runs))]
for k, name in enumerate(names):
    lines.append(f"| {k} {name} | " + " | ".join(pct(v[r]["anchored"]["per_class"][k]["accuracy"]) for r in cols) + " | " +
                 " | ".join(pct(recon(r, k)) for r in runs) + " |")
lines.append("| **all** | " + " | ".join(f"**{pct(v[r]['anchored']['accuracy'])}**" for r in cols) + " | " +
             " | ".join(f"**{pct(recon(r))}**" for r in runs) + " |")
def elbo(r):
    return float(list(csv.DictReader(open(f"{S}/{r}/metrics.csv")))[-1]["test_loss"])
lines += ["", "Test -ELBO (nats per image: recon + KL, unweighted): " + ", ".join(f"{label(r)}: {elbo(r):.2f}" for r in runs),
          "", "Reproduce: `bench/study_arch.sh fashion-epochs`.", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
print(f"wrote {out}")
EOF
    } 2>&1 | tee "$R/arch-fashion-epochs-$TAG-$D.log" ;;
  fashion-mixture)
    {
      m=$S/vae-fashion-conv-b0.1
      [ -f $m/model.safetensors ] || OMP_NUM_THREADS=1 run $B train-vae --dataset fashion-mnist --beta 0.1 --arch conv \
        --epochs 8 --seed 0 --out $m --no-progress
      vaes=$m
      [ -f $S/vae-fashion-conv-b0.1-cos30/model.safetensors ] && vaes="$vaes $S/vae-fashion-conv-b0.1-cos30"
      for v in $vaes; do
        for k in 1 3 10 20; do  # a validation already written is kept
          [ -f $S/validate-$(basename $v)-mix$k/validation.json ] ||
            run $B validate --vae $v/model.safetensors --classifier $JUDGE --n 1000 --recon 2 --components $k \
              --out $S/validate-$(basename $v)-mix$k --no-progress
        done
      done
      python3 - "$S" "$R/arch-fashion-mixture-$TAG-$D.md" $vaes <<'EOF'
import os, sys
sys.path.insert(0, "bench")
from study_tables import class_names, load, per_class_table, samples, write
S, out, vaes = sys.argv[1], sys.argv[2], [os.path.basename(v) for v in sys.argv[3:]]
label = {"vae-fashion-conv-b0.1": "8 epochs", "vae-fashion-conv-b0.1-cos30": "30 epochs, cosine"}
cols = [(m, k) for m in vaes for k in [1, 3, 10, 20]]
v = {x: load(S, f"validate-{x[0]}-mix{x[1]}") for x in cols}
lines = ["# FashionMNIST: anchored samples from a per-class Gaussian mixture", "",
         "The beta = 0.1 conv VAE; `validate --n 1000 --components M`: class c's codes mu over the 60,000 training "
         "images get an M-component Gaussian mixture (EM, full covariances; M = 1 is the class's own Gaussian), and "
         "each sample draws a component by its weight, then z ~ N(mean_cm, 0.25 Sigma_cm) (s = 0.5). Judge: "
         "bench/models/fashion-mnist-resnet18-w32.safetensors (93.92%). Target: 85%.", ""]
lines += per_class_table(class_names(v[cols[0]]), [(f"{label.get(m, m)}, M = {k}", samples(v[(m, k)])) for m, k in cols])
lines.append("| Frechet distance to test features | " + " | ".join(f"{v[x]['anchored']['frechet']:.3f}" for x in cols) + " |")
lines += ["", "Reproduce: `bench/study_arch.sh fashion-mixture` (after `fashion-cosine` for the 30-epoch model).", ""]
write(out, lines)
EOF
    } 2>&1 | tee "$R/arch-fashion-mixture-$TAG-$D.log"
    ;;
  fashion-ae)
    {
      a=$S/ae-fashion-conv-e30
      [ -f $a/model.safetensors ] || OMP_NUM_THREADS=1 run $B train-vae --dataset fashion-mnist --model ae --arch conv \
        --epochs 30 --seed 0 --out $a --no-progress
      [ -f $S/validate-ae-fashion-conv-e30/validation.json ] ||
        run $B validate --vae $a/model.safetensors --classifier $JUDGE --recon 10000 --out $S/validate-ae-fashion-conv-e30 \
          --no-progress
      python3 - "$S" "$R/arch-fashion-ae-recon-$TAG-$D.md" <<'EOF'
import os, sys
sys.path.insert(0, "bench")
from study_tables import class_names, last_metrics, load, per_class_table, recon_share, write
S, out = sys.argv[1], sys.argv[2]
cols = {"AE, 30 epochs": "validate-ae-fashion-conv-e30",
        "VAE beta 0.1, 30 epochs, cosine": "validate-vae-fashion-conv-b0.1-cos30",
        "CVAE beta 0.5, 100 epochs": "validate-cvae-fashion-conv-b0.5-e100"}
v = {k: load(S, d) for k, d in cols.items() if os.path.exists(f"{S}/{d}/validation.json")}
lines = ["# FashionMNIST: how well the pinned conv decoder draws each class from a test image's own code", "",
         "Reconstructions of all 10,000 test images (z = mu; the CVAE with the true label), classified by "
         "bench/models/fashion-mnist-resnet18-w32.safetensors, as a share of the originals it gets right. "
         "The AE has no KL term at all (`--model ae`, latent 32, Bernoulli likelihood). Target: 95% in every class.", ""]
lines += per_class_table(class_names(v["AE, 30 epochs"]), [(h, recon_share(x)) for h, x in v.items()])
last = last_metrics(S, "ae-fashion-conv-e30")
lines += ["", f"AE test recon after 30 epochs: {float(last['test_recon']):.2f} nats per image.", "",
          "Reproduce: `bench/study_arch.sh fashion-ae` (the other columns: `fashion-cosine` and `fashion-epochs`).", ""]
write(out, lines)
EOF
    } 2>&1 | tee "$R/arch-fashion-ae-recon-$TAG-$D.log"
    ;;
  fashion-latent)
    { latent_study fashion-latent wider 64 128; } 2>&1 | tee "$R/arch-fashion-latent-$TAG-$D.log" ;;
  fashion-latent-small)
    { latent_study fashion-latent-small narrower 16 8; } 2>&1 | tee "$R/arch-fashion-latent-small-$TAG-$D.log" ;;
  fashion-cosine)
    {
      c=$S/cvae-fashion-conv-b0.5-cos60 v=$S/vae-fashion-conv-b0.1-cos30
      [ -f $c/model.safetensors ] || OMP_NUM_THREADS=1 run $B train-vae --dataset fashion-mnist --model cvae --arch conv \
        --beta 0.5 --epochs 60 --schedule cosine --seed 0 --out $c --no-progress &
      [ -f $v/model.safetensors ] || OMP_NUM_THREADS=1 run $B train-vae --dataset fashion-mnist --arch conv \
        --beta 0.1 --epochs 30 --schedule cosine --seed 0 --out $v --no-progress &
      wait
      run $B validate --vae $c/model.safetensors --classifier $JUDGE --recon 10000 --out $S/validate-cvae-fashion-conv-b0.5-cos60 --no-progress
      run $B validate --vae $c/model.safetensors --classifier $JUDGE --n 1000 --recon 2 \
        --out $S/validate-cvae-fashion-conv-b0.5-cos60-n1000 --no-progress
      run $B validate --vae $v/model.safetensors --classifier $JUDGE --recon 10000 --out $S/validate-vae-fashion-conv-b0.1-cos30 --no-progress
      python3 - "$S" "$R/arch-fashion-cosine-$TAG-$D.md" <<'EOF'
import csv, json, sys
S, out = sys.argv[1], sys.argv[2]
cols = {"CVAE samples, 100/class": "validate-cvae-fashion-conv-b0.5-cos60",
        "CVAE samples, 1000/class": "validate-cvae-fashion-conv-b0.5-cos60-n1000",
        "anchored VAE samples, 100/class": "validate-vae-fashion-conv-b0.1-cos30"}
v = {k: json.load(open(f"{S}/{d}/validation.json")) for k, d in cols.items()}
recon = {"CVAE recon / originals": v["CVAE samples, 100/class"], "VAE recon / originals": v["anchored VAE samples, 100/class"]}
pct = lambda x: f"{100 * x:.1f}%"
names = [c["name"] for c in next(iter(v.values()))["anchored"]["per_class"]]
def rec(x, k=None):
    r = x["reconstructions"]
    if k is None: return r["accuracy"] / r["originals_accuracy"]
    return r["per_class_accuracy"][k] / r["per_class_originals_accuracy"][k]
lines = ["# FashionMNIST: the conv networks with a cosine learning rate (seed 0, one thread per run)", "",
         "CVAE: beta 0.5, 60 epochs, `--schedule cosine`; VAE: beta 0.1, 30 epochs, `--schedule cosine`. Judge: "
         "bench/models/fashion-mnist-resnet18-w32.safetensors (93.92%). Samples at s = 0.5 (anchored: the class's "
         "Gaussian in the VAE's latent space); reconstructions of all 10,000 test images as a share of the originals "
         "the judge gets right. Targets: CVAE samples 90% with no class under 70%, anchored 85%, reconstructions 95% "
         "of the originals in every class.", "",
         "| class | " + " | ".join(list(cols) + list(recon)) + " |", "|---|" + "---|" * (len(cols) + len(recon))]
for k, name in enumerate(names):
    lines.append(f"| {k} {name} | " + " | ".join(pct(v[c]["anchored"]["per_class"][k]["accuracy"]) for c in cols) +
                 " | " + " | ".join(pct(rec(x, k)) for x in recon.values()) + " |")
lines.append("| **all** | " + " | ".join(f"**{pct(v[c]['anchored']['accuracy'])}**" for c in cols) + " | " +
             " | ".join(f"**{pct(rec(x))}**" for x in recon.values()) + " |")
def elbo(d):
    return float(list(csv.DictReader(open(f"{S}/{d}/metrics.csv")))[-1]["test_loss"])
lines += ["", f"Test -ELBO (nats per image): CVAE {elbo('cvae-fashion-conv-b0.5-cos60'):.2f}, "
          f"VAE {elbo('vae-fashion-conv-b0.1-cos30'):.2f}.", "", "Reproduce: `bench/study_arch.sh fashion-cosine`.", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
print(f"wrote {out}")
EOF
    } 2>&1 | tee "$R/arch-fashion-cosine-$TAG-$D.log" ;;
  mnist)
    MIN=${MNIST_MINUTES:-120}
    K=${NLL_K:-1000}
    LIM=${NLL_LIMIT:-0}
    for arch in ${ARCHS:-conv resnet}; do
      out=$S/mnist-bin-$arch-${MIN}min
      {
        if [ ! -f $out/model.safetensors ]; then
          # One epoch tells the epoch time; the rest of the budget goes to --resume.
          run $B train-vae --dataset mnist --binarize --arch $arch --epochs 1 --seed 0 --out $out --no-progress
          secs=$(tail -n 1 $out/metrics.csv | cut -d, -f6)
          epochs=$(python3 -c "print(max(1, int($MIN * 60 / $secs)))")
          echo "epoch of --arch $arch: $secs s, so $epochs epochs fit in $MIN minutes"
          run $B train-vae --dataset mnist --binarize --arch $arch --epochs "$epochs" --seed 0 --out $out --resume --no-progress
          cp $out/metrics.csv "$R/arch-mnist-$arch-${MIN}min-metrics-$TAG-$D.csv"
        fi
        if [ "$K" -gt 0 ]; then
          mpi=()
          [ "${RANKS:-1}" -gt 1 ] && mpi=(mpirun --oversubscribe -np "$RANKS" -x OMP_NUM_THREADS)
          [ "${RANKS:-1}" -gt 1 ] && [ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
          run "${mpi[@]}" $B eval-vae --checkpoint $out/model.safetensors --dataset mnist --binarize --nll "$K" --limit "$LIM" --no-progress |
            tail -n 1 | tee "$R/arch-mnist-$arch-${MIN}min-nll-k$K-n$LIM-$TAG-$D.json"
        fi
      } 2>&1 | tee -a "$R/arch-mnist-$arch-${MIN}min-$TAG-$D.log"
    done ;;
  *) echo "usage: bench/study_arch.sh fashion|fashion-epochs|fashion-cosine|fashion-mixture|fashion-ae|fashion-latent|fashion-latent-small|mnist" >&2; exit 2 ;;
esac
