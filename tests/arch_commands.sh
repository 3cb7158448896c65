#!/usr/bin/env bash
# Every command that takes a VAE works with the residual network (train-vae --arch resnet), on the
# real cuvae binary (CPU, the first MNIST images): trains a small residual VAE, AE and CVAE and a
# width-4 classifier, then runs eval-vae (with --nll), anchor, sample, validate (VAE, and CVAE
# against the anchored VAE), interpolate, arithmetic, traverse, embed, gradcam --vae, compare,
# --resume and the dashboard's API (serve: /api/info, /api/decode, /api/anchor, /api/encode). Each
# must succeed and write its files, and every checkpoint must record "arch": "resnet".
# Usage: tests/arch_commands.sh CUVAE_BINARY SOURCE_DIR
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
[[ $# -eq 2 ]] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
bin=$1; src=$2
data=$src/data/mnist
[[ -d $data ]] || { echo "FAIL: no MNIST data in $data (run scripts/fetch-data)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cuvae-arch.XXXXXX")
serve_pid=
trap '[[ -n $serve_pid ]] && kill $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT

step() { echo "== $*"; }
need() { for f in "$@"; do [[ -s $f ]] || { echo "FAIL: $f was not written"; exit 1; }; done; }
common=(--data "$data" --device cpu --no-progress)

step "train-vae --arch resnet: VAE, AE and CVAE (1 epoch on 1024 images), and a classifier"
for kind in vae ae cvae; do
  "$bin" train-vae --model $kind --arch resnet --train-limit 1024 --test-limit 256 --epochs 1 --batch 64 \
    --seed 3 --out "$tmp/$kind" "${common[@]}" | tail -n 2
  need "$tmp/$kind/model.safetensors" "$tmp/$kind/samples.png"
  grep -q '"arch":"resnet"' "$tmp/$kind/config.json" ||
    grep -q '"arch": "resnet"' "$tmp/$kind/config.json" || { echo "FAIL: $kind/config.json does not record the arch"; exit 1; }
  head -c 8192 "$tmp/$kind/model.safetensors" | grep -a 'arch\\":\\"resnet' >/dev/null ||
    { echo "FAIL: $kind/model.safetensors does not record the arch"; exit 1; }
done
"$bin" train-classifier --width 4 --train-limit 1024 --test-limit 256 --epochs 1 --batch 64 --seed 3 --out "$tmp/clf" \
  "${common[@]}" | tail -n 1
vae=$tmp/vae/model.safetensors cvae=$tmp/cvae/model.safetensors clf=$tmp/clf/model.safetensors

step "--resume continues the residual run"
"$bin" train-vae --arch resnet --train-limit 1024 --test-limit 256 --epochs 2 --batch 64 --seed 3 --out "$tmp/vae" \
  --resume "${common[@]}" | grep "epoch 2" >/dev/null || { echo "FAIL: --resume did not train epoch 2"; exit 1; }

step "eval-vae with --nll"
"$bin" eval-vae --checkpoint "$vae" --limit 64 --nll 5 "${common[@]}" | tail -n 1 | grep '"nll"' >/dev/null ||
  { echo "FAIL: eval-vae --nll printed no nll"; exit 1; }
"$bin" eval-vae --checkpoint "$cvae" --limit 64 "${common[@]}" | tail -n 1 | grep '"model":"cvae"' >/dev/null

step "anchor, sample (VAE and CVAE)"
"$bin" anchor --vae "$vae" --class 3 --n 8 --out "$tmp/anchor" "${common[@]}" >/dev/null
need "$tmp/anchor/anchor_class3.png"
"$bin" sample --vae "$cvae" --class 5 --n 8 --out "$tmp/sample-cvae" "${common[@]}" >/dev/null
"$bin" sample --vae "$vae" --n 8 --out "$tmp/sample-vae" "${common[@]}" >/dev/null
need "$tmp/sample-cvae/samples.png" "$tmp/sample-vae/samples.png"

step "validate: the residual VAE, and the residual CVAE beside it"
"$bin" validate --vae "$vae" --classifier "$clf" --n 4 --recon 64 --out "$tmp/validate" "${common[@]}" >/dev/null
"$bin" validate --vae "$cvae" --compare-vae "$vae" --classifier "$clf" --n 4 --out "$tmp/validate-cvae" "${common[@]}" >/dev/null
need "$tmp/validate/validation.json" "$tmp/validate-cvae/validation.md"

step "interpolate, arithmetic, traverse, embed"
"$bin" interpolate --vae "$vae" --pairs 0:1 --out "$tmp/interp" "${common[@]}" >/dev/null
"$bin" arithmetic --vae "$vae" --index 0 1 --from-class 1 --to-class 7 --out "$tmp/arith" "${common[@]}" >/dev/null
"$bin" traverse --vae "$vae" --out "$tmp/trav" "${common[@]}" >/dev/null
"$bin" embed --vae "$vae" --n 300 --out "$tmp/embed" "${common[@]}" >/dev/null
need "$tmp/interp/interpolation.png" "$tmp/arith/arithmetic.png" "$tmp/trav/traversal.png" "$tmp/embed/embedding.png"

step "gradcam on anchored samples of the residual VAE; compare the residual VAE and AE runs"
"$bin" gradcam --classifier "$clf" --vae "$vae" --anchor 2 --n 2 --out "$tmp/gradcam" --data "$data" --device cpu >/dev/null
need "$tmp/gradcam/gradcam.json"
"$bin" compare --runs "$tmp/vae" "$tmp/ae" --limit 128 --out "$tmp/compare" "${common[@]}" >/dev/null
need "$tmp/compare/compare.md"

step "serve: the dashboard's API on the residual VAE"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --vae "$vae" --classifier "$clf" --data "$data" --device cpu --host 127.0.0.1 --port "$port" \
  >"$tmp/serve.log" 2>&1 &
serve_pid=$!
python3 - "$port" "$tmp/serve.log" <<'EOF'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
def call(path, body=None):
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=60))
for _ in range(120):
    try:
        info = call("/api/info")
        break
    except OSError:
        time.sleep(0.5)
else:
    print("FAIL: cuvae serve did not answer:\n" + open(sys.argv[2]).read()); sys.exit(1)
assert info["vae"]["arch"] == "resnet", info["vae"]
assert len(call("/api/decode", {"z": [[0.0] * info["vae"]["latent"]] * 2})["images"]) == 2
a = call("/api/anchor", {"class": 4, "n": 3})
assert len(a["images"]) == 3 and len(a["predictions"]) == 3, a.keys()
assert len(call("/api/encode", {"index": 0})["mu"]) == info["vae"]["latent"]
print("serve: info, decode, anchor and encode answered for the residual VAE")
EOF
echo "PASS"
