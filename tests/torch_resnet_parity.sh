#!/usr/bin/env bash
# torch_resnet_parity.sh — checks that a cuvae classifier checkpoint is torchvision's resnet18.
#
# Trains a standard-width ResNet18 briefly with `cuvae train-classifier` (1 epoch on 256 MNIST
# images, so the BatchNorm running statistics are non-trivial), evaluates it with
# `cuvae eval-classifier` and with bench/torch_ref.py resnet-check (torchvision.models.resnet18
# with the small-image stem, load_state_dict(strict=True), float64) on the first 200 test images,
# and fails unless the mean cross-entropy agrees to 1e-3 relative and the accuracy exactly. Then the
# round trip: torchvision's state_dict() saved as PyTorch users do (no cuvae config) must evaluate
# in cuvae (input size from --dataset) to the very same numbers.
# Exits 77 (CTest: skipped) when Debian's /usr/bin/python3 cannot import torch and torchvision.
#
# Usage: tests/torch_resnet_parity.sh CUVAE_BINARY SOURCE_DIR
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then usage; exit 0; fi
if [[ $# -ne 2 ]]; then usage >&2; exit 2; fi

CUVAE=$1
SRC=$2
PY=${CUVAE_TORCH_PYTHON:-/usr/bin/python3}
TOL=1e-3
if ! "$PY" -c 'import torch, torchvision, numpy' >/dev/null 2>&1; then
  echo "SKIPPED: PyTorch and torchvision (Debian python3-torch, python3-torchvision) not installed"
  exit 77
fi
DATA=$SRC/data/mnist
[[ -d $DATA ]] || { echo "FAIL: no MNIST data in $DATA (run scripts/fetch-data)"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cuvae-torch-resnet.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

echo "== training a standard-width ResNet18 briefly with $CUVAE"
"$CUVAE" train-classifier --dataset mnist --data "$DATA" --epochs 1 --width 64 --batch 64 --train-limit 256 \
  --test-limit 100 --no-progress --out "$TMP/run"
CKPT=$TMP/run/model.safetensors
echo "== cuvae eval-classifier"
"$CUVAE" eval-classifier --checkpoint "$CKPT" --data "$DATA" --limit 200 | tail -n 1 >"$TMP/cuvae.json"
cat "$TMP/cuvae.json"
echo "== torchvision (bench/torch_ref.py resnet-check)"
"$PY" "$SRC/bench/torch_ref.py" resnet-check --checkpoint "$CKPT" --data "$DATA" --limit 200 | tail -n 1 >"$TMP/torch.json"
cat "$TMP/torch.json"

echo "== round trip: into torchvision, state_dict() saved as PyTorch users do, back into cuvae eval-classifier"
"$PY" "$SRC/bench/torch_ref.py" export --checkpoint "$CKPT" --out "$TMP/torchvision.safetensors" >/dev/null
"$CUVAE" eval-classifier --checkpoint "$TMP/torchvision.safetensors" --dataset mnist --data "$DATA" --limit 200 \
  | tail -n 1 >"$TMP/roundtrip.json"
cat "$TMP/roundtrip.json"

"$PY" - "$TMP/cuvae.json" "$TMP/torch.json" "$TOL" "$TMP/roundtrip.json" <<'PYEOF'
import json, sys
cu, th, tol = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
rt = json.load(open(sys.argv[4]))
same = all(rt[k] == cu[k] for k in ("loss", "accuracy", "n", "per_class"))
print(f"round trip: loss {rt['loss']!r} vs {cu['loss']!r}: {'same' if same else 'DIFFERENT'}")
ok = same and th.get("strict_load") is True and cu["n"] == th["n"]
rel = abs(cu["loss"] - th["loss"]) / max(abs(th["loss"]), 1e-12)
print(f"loss     cuvae {cu['loss']:.6f}  torchvision-f64 {th['loss']:.6f}  f32 {th['float32']['loss']:.6f}  rel {rel:.2e}")
print(f"accuracy cuvae {cu['accuracy']:.4f}  torchvision-f64 {th['accuracy']:.4f}")
ok = ok and rel <= tol and abs(cu["accuracy"] - th["accuracy"]) < 1e-9
print("PASS" if ok else "FAIL: cuvae and torchvision disagree")
sys.exit(0 if ok else 1)
PYEOF
