#!/usr/bin/env bash
# torch_parity.sh — checks that a cuvae checkpoint means the same thing to PyTorch.
#
# Trains a small ConvVAE with `cuvae train-vae` (1 epoch on 6400 MNIST images), evaluates the
# checkpoint with `cuvae eval-vae` and with the PyTorch reference (bench/torch_ref.py check, which
# loads it with load_state_dict(strict=True)) on the first 2000 test images, and fails unless
# recon, KL and loss agree to 1e-3 relative (PyTorch float64 as the reference). Then the same for a
# plain autoencoder (--model ae, loaded strictly into the ConvAE module: no enc.logvar), a
# conditional VAE (--model cvae, into ConvCVAE, evaluated with the true labels), and the
# residual VAE and CVAE (--arch resnet, into the modules with ResBlocks), the
# importance-sampled NLL (eval-vae --nll 50 against torch_ref.py nll, independent epsilon) on 200
# test images, which must agree within the standard error. Finally each checkpoint makes the round
# trip cuvae -> PyTorch module -> state_dict() saved as PyTorch users do (no cuvae config) -> cuvae
# eval-vae, which must print the very same numbers.
# Exits 77 (CTest: skipped) when Debian's /usr/bin/python3 cannot import torch.
#
# Usage: tests/torch_parity.sh CUVAE_BINARY SOURCE_DIR
set -euo pipefail

usage() {
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
}
if [[ ${1:-} == -h || ${1:-} == --help ]]; then usage; exit 0; fi
if [[ $# -ne 2 ]]; then usage >&2; exit 2; fi

CUVAE=$1
SRC=$2
PY=${CUVAE_TORCH_PYTHON:-/usr/bin/python3}
TOL=1e-3

if ! "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "SKIPPED: PyTorch (Debian python3-torch) not installed"
  exit 77
fi
[[ -x $CUVAE ]] || { echo "FAIL: cuvae binary '$CUVAE' not found or not executable"; exit 1; }
DATA=$SRC/data/mnist
[[ -d $DATA ]] || { echo "FAIL: no MNIST data in $DATA (run scripts/fetch-data)"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cuvae-torch-parity.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

echo "== training a small model with $CUVAE"
"$CUVAE" train-vae --dataset mnist --data "$DATA" --epochs 1 --train-limit 6400 --test-limit 1000 \
  --no-progress --out "$TMP/run"
CKPT=$TMP/run/model.safetensors

echo "== cuvae eval-vae"
"$CUVAE" eval-vae --checkpoint "$CKPT" --dataset mnist --data "$DATA" --limit 2000 | tail -n 1 >"$TMP/cuvae.json"
cat "$TMP/cuvae.json"

echo "== PyTorch reference (bench/torch_ref.py check)"
"$PY" "$SRC/bench/torch_ref.py" check --checkpoint "$CKPT" --dataset mnist --data "$DATA" --limit 2000 \
  | tail -n 1 >"$TMP/torch.json"
cat "$TMP/torch.json"

"$PY" - "$TMP/cuvae.json" "$TMP/torch.json" "$TOL" <<'EOF'
import json, sys
cu = json.load(open(sys.argv[1]))
th = json.load(open(sys.argv[2]))
tol = float(sys.argv[3])
ok = True
if th.get("strict_load") is not True:
    print("FAIL: PyTorch load_state_dict(strict=True) did not succeed")
    ok = False
if cu.get("n", th["n"]) != th["n"]:
    print(f"FAIL: cuvae evaluated {cu.get('n')} images, PyTorch {th['n']}")
    ok = False
for key in ("recon", "kl", "loss"):
    ref, got = float(th[key]), float(cu[key])
    rel = abs(got - ref) / max(abs(ref), 1e-12)
    f32 = th.get("float32", {}).get(key)
    status = "ok" if rel <= tol else "FAIL"
    print(f"{key:6s} cuvae {got:.6f}  torch-f64 {ref:.6f}  torch-f32 {f32}  rel {rel:.2e}  {status}")
    ok = ok and rel <= tol
print("PASS" if ok else f"FAIL: cuvae and PyTorch disagree (tolerance {tol} relative)")
sys.exit(0 if ok else 1)
EOF

# Trains a `--model $1` (with `--arch $2`, default conv; run folder $TMP/$3, default $1) for one
# epoch and evaluates its checkpoint in cuvae and in PyTorch, into $TMP/cuvae-$3.json and
# $TMP/torch-$3.json.
train_and_evaluate() {
  local kind=$1 arch=${2:-conv} name=${3:-$1}
  "$CUVAE" train-vae --model "$kind" --arch "$arch" --dataset mnist --data "$DATA" --epochs 1 --train-limit 3200 \
    --test-limit 500 --no-progress --out "$TMP/$name" >/dev/null
  local model=$name
  "$CUVAE" eval-vae --checkpoint "$TMP/$model/model.safetensors" --data "$DATA" --limit 1000 | tail -n 1 >"$TMP/cuvae-$model.json"
  "$PY" "$SRC/bench/torch_ref.py" check --checkpoint "$TMP/$model/model.safetensors" --data "$DATA" --limit 1000 \
    | tail -n 1 >"$TMP/torch-$model.json"
  cat "$TMP/cuvae-$model.json" "$TMP/torch-$model.json"
}

echo "== plain autoencoder: cuvae train-vae --model ae, then both evaluations"
train_and_evaluate ae

echo "== conditional VAE: cuvae train-vae --model cvae, then both evaluations with the true labels"
train_and_evaluate cvae

echo "== residual VAE and CVAE: cuvae train-vae --arch resnet, loaded strictly into the ResBlock modules"
train_and_evaluate vae resnet resnet-vae
train_and_evaluate cvae resnet resnet-cvae

echo "== NLL: cuvae eval-vae --nll 50 and torch_ref.py nll --k 50 (200 test images)"
"$CUVAE" eval-vae --checkpoint "$CKPT" --data "$DATA" --limit 200 --nll 50 --no-progress | tail -n 1 >"$TMP/cuvae-nll.json"
"$PY" "$SRC/bench/torch_ref.py" nll --checkpoint "$CKPT" --data "$DATA" --limit 200 --k 50 | tail -n 1 >"$TMP/torch-nll.json"
cat "$TMP/cuvae-nll.json" "$TMP/torch-nll.json"

echo "== round trip: each checkpoint into PyTorch, state_dict() saved as PyTorch users do, back into cuvae"
for kind in vae ae cvae resnet-vae resnet-cvae; do
  case $kind in vae) ck=$CKPT; lim=2000; ref=$TMP/cuvae.json ;; *) ck=$TMP/$kind/model.safetensors; lim=1000; ref=$TMP/cuvae-$kind.json ;; esac
  fmt=(); [[ $kind == ae ]] && fmt=(--format-pt)  # both layouts: no __metadata__, and {"format": "pt"} only
  "$PY" "$SRC/bench/torch_ref.py" export --checkpoint "$ck" --out "$TMP/torch-$kind.safetensors" "${fmt[@]}" >/dev/null
  "$CUVAE" eval-vae --checkpoint "$TMP/torch-$kind.safetensors" --dataset mnist --data "$DATA" --limit $lim \
    | tail -n 1 >"$TMP/roundtrip-$kind.json"
  cp "$ref" "$TMP/original-$kind.json"
done

"$PY" - "$TMP" "$TOL" <<'EOF'
import json, sys
d, tol = sys.argv[1], float(sys.argv[2])
ok = True
for kind in ("vae", "ae", "cvae", "resnet-vae", "resnet-cvae"):
    a, b = json.load(open(f"{d}/original-{kind}.json")), json.load(open(f"{d}/roundtrip-{kind}.json"))
    same = all(a.get(k) == b.get(k) for k in ("model", "recon", "kl", "loss", "n"))
    print(f"round trip {kind}: cuvae {a['loss']!r}, after PyTorch save_file {b['loss']!r}: {'same' if same else 'DIFFERENT'}")
    ok = ok and same
cu, th = json.load(open(f"{d}/cuvae-ae.json")), json.load(open(f"{d}/torch-ae.json"))
if th.get("strict_load") is not True or th.get("model") != "ae" or cu.get("model") != "ae" or "kl" in cu:
    print("FAIL: the AE checkpoint did not load strictly as an AE, or eval-vae reported a KL"); ok = False
rel = abs(cu["recon"] - th["recon"]) / abs(th["recon"])
print(f"AE recon cuvae {cu['recon']:.6f} torch-f64 {th['recon']:.6f} rel {rel:.2e}")
ok = ok and rel <= tol
cu, th = json.load(open(f"{d}/cuvae-cvae.json")), json.load(open(f"{d}/torch-cvae.json"))
if th.get("strict_load") is not True or th.get("model") != "cvae" or cu.get("model") != "cvae":
    print("FAIL: the CVAE checkpoint did not load strictly as a CVAE"); ok = False
for key in ("recon", "kl", "loss"):
    rel = abs(cu[key] - th[key]) / max(abs(th[key]), 1e-12)
    print(f"CVAE {key} cuvae {cu[key]:.6f} torch-f64 {th[key]:.6f} rel {rel:.2e}")
    ok = ok and rel <= tol
for kind, want in (("resnet-vae", "vae"), ("resnet-cvae", "cvae")):
    cu, th = json.load(open(f"{d}/cuvae-{kind}.json")), json.load(open(f"{d}/torch-{kind}.json"))
    if th.get("strict_load") is not True or th.get("model") != want or th.get("arch") != "resnet":
        print(f"FAIL: the {kind} checkpoint did not load strictly as a residual {want}"); ok = False
    for key in ("recon", "kl", "loss"):
        rel = abs(cu[key] - th[key]) / max(abs(th[key]), 1e-12)
        print(f"{kind} {key} cuvae {cu[key]:.6f} torch-f64 {th[key]:.6f} rel {rel:.2e}")
        ok = ok and rel <= tol
cn, tn = json.load(open(f"{d}/cuvae-nll.json")), json.load(open(f"{d}/torch-nll.json"))
diff = abs(cn["nll"] - tn["nll"])
print(f"NLL cuvae {cn['nll']:.3f} +- {cn['nll_stderr']:.3f}, torch {tn['nll']:.3f} +- {tn['nll_stderr']:.3f}, diff {diff:.3f}")
if not (cn["nll"] > 0 and diff <= cn["nll_stderr"]):
    print("FAIL: the NLL estimates disagree by more than the standard error"); ok = False
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
EOF
