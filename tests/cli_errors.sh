#!/usr/bin/env bash
# Bad input to the cuvae command line: each case must exit non-zero with a one-line
# "cuvae: error: ..." (or a CLI usage error) that names the problem, and write nothing.
# Usage: tests/cli_errors.sh CUVAE_BINARY SOURCE_DIR
set -u
bin="$1"; src="$2"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail=0
expect_error() {  # expect_error WORD-IN-MESSAGE ARGS...
  local want="$1"; shift
  local out err rc
  out="$("$bin" "$@" 2>"$tmp/err")"; rc=$?
  err="$(cat "$tmp/err")"
  if [ $rc -eq 0 ]; then echo "FAIL (exit 0): cuvae $*"; fail=1; return; fi
  if ! grep -qi -- "$want" "$tmp/err"; then echo "FAIL (message lacks '$want'): cuvae $*"; echo "  stderr: $err"; fail=1; return; fi
  if grep -qiE "segmentation|core dumped|terminate called|abort" "$tmp/err"; then echo "FAIL (crash): cuvae $*"; fail=1; return; fi
  # Messages for users name the flag, file or field: no source paths or internal expressions.
  if grep -qE "failed at |\.(cpp|cu|h):[0-9]+" "$tmp/err"; then echo "FAIL (source location in a user error): cuvae $*"; echo "  stderr: $err"; fail=1; return; fi
  echo "ok: cuvae $* -> $(head -n1 "$tmp/err")"
}
expect_error "epochs"        train-vae --epochs abc --out "$tmp/r1"
expect_error "epochs"        train-vae --epochs 0 --out "$tmp/r1"
expect_error "dataset"       train-vae --dataset imagenet --out "$tmp/r1"
expect_error "device"        train-vae --device tpu --out "$tmp/r1"
expect_error "cpu-backend"   train-vae --cpu-backend mkl --out "$tmp/r1"
expect_error "cpu-backend"   sample --vae x.safetensors --cpu-backend gpu --out "$tmp/r1"
if ! "$bin" train-vae --help | grep -q -- "--cpu-backend"; then echo "FAIL: train-vae --help lacks --cpu-backend"; fail=1; fi
expect_error "fetch-data"    train-vae --data "$tmp/nowhere" --out "$tmp/r1"
expect_error "resume"        train-vae --resume --data "$src/data/mnist" --out "$tmp/r2"
expect_error "checkpoint"    eval-vae
expect_error "missing.safetensors" eval-vae --checkpoint "$tmp/missing.safetensors" --data "$src/data/mnist"
head -c 1000 /dev/urandom > "$tmp/garbage.safetensors"
expect_error "garbage.safetensors" eval-vae --checkpoint "$tmp/garbage.safetensors" --data "$src/data/mnist"
expect_error "subcommand"    
expect_error "not expected"  train-vae --bogus-flag
if [ -z "$(command -v nvidia-smi)" ] || ! nvidia-smi -L >/dev/null 2>&1; then
  expect_error "device cuda" train-vae --device cuda --data "$src/data/mnist" --out "$tmp/r3"
fi
# Classifier commands: checkpoints of the wrong kind, classes out of range, bad images.
expect_error "width"         train-classifier --width 0 --out "$tmp/r4"
# Gradient accumulation: micro-batches that do not split the batch; batch norm over a global batch it splits.
expect_error "accumulate 3 does not split --batch 64" train-vae --batch 64 --accumulate 3 --data "$src/data/mnist" --out "$tmp/r7"
expect_error "accumulate"    train-vae --accumulate 0 --out "$tmp/r7"
expect_error "sync-batchnorm" train-classifier --sync-batchnorm --accumulate 2 --data "$src/data/mnist" --out "$tmp/r7"
[ -e "$tmp/r7" ] && { echo "FAIL: a refused --accumulate run created its folder"; fail=1; }
expect_error "schedule"      train-classifier --schedule step --out "$tmp/r4"
"$bin" train-vae --data "$src/data/mnist" --epochs 1 --train-limit 256 --test-limit 64 --batch 64 --no-progress \
  --out "$tmp/vae" >/dev/null 2>&1 || { echo "FAIL: could not train the small VAE"; fail=1; }
"$bin" train-classifier --data "$src/data/mnist" --epochs 1 --width 2 --train-limit 256 --test-limit 64 --batch 64 \
  --no-progress --out "$tmp/clf" >/dev/null 2>&1 || { echo "FAIL: could not train the small classifier"; fail=1; }
vae="$tmp/vae/model.safetensors"; clf="$tmp/clf/model.safetensors"
expect_error "is a VAE checkpoint"        eval-classifier --checkpoint "$vae" --data "$src/data/mnist"
expect_error "is a VAE checkpoint"        gradcam --classifier "$vae" --index 0 --data "$src/data/mnist" --out "$tmp/r5"
expect_error "is a classifier checkpoint" validate --vae "$clf" --classifier "$clf" --data "$src/data/mnist" --out "$tmp/r6"
expect_error "is a VAE checkpoint"        validate --vae "$vae" --classifier "$vae" --data "$src/data/mnist" --out "$tmp/r6"
expect_error "out of range"  anchor --vae "$vae" --class 12 --data "$src/data/mnist" --out "$tmp/r7"
expect_error "components"    anchor --vae "$vae" --class 1 --components 0 --data "$src/data/mnist" --out "$tmp/r7"
expect_error "components"    validate --vae "$vae" --classifier x.safetensors --components 65 --out "$tmp/r7"
# A flipped byte inside the tensor data of a checkpoint is caught by its SHA-256.
python3 - "$vae" "$tmp/flipped.safetensors" <<'PYEOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-100] ^= 0x10; open(sys.argv[2], "wb").write(b)
PYEOF
expect_error "checksum mismatch" eval-vae --checkpoint "$tmp/flipped.safetensors" --data "$src/data/mnist"
expect_error "no optim.safetensors to resume from" train-classifier --resume --data "$src/data/mnist" --out "$tmp/r9"
expect_error "out of range"  gradcam --classifier "$clf" --index 0 --class 10 --data "$src/data/mnist" --out "$tmp/r5"
expect_error "out of range"  gradcam --classifier "$clf" --index 10000 --data "$src/data/mnist" --out "$tmp/r5"
echo "not an image" > "$tmp/text.png"
expect_error "not a PNG"     gradcam --classifier "$clf" --image "$tmp/text.png" --out "$tmp/r5"
expect_error "expects 28x28" gradcam --classifier "$clf" --image "$tmp/clf/confusion.png" --out "$tmp/r5"
expect_error "no such file"  gradcam --classifier "$clf" --image "$tmp/missing.png" --out "$tmp/r5"
expect_error "excludes"      gradcam --classifier "$clf" --index 0 --image "$tmp/text.png" --out "$tmp/r5"
# Latent-space commands: bad flags name the flag, nothing is written.
m="$src/data/mnist"
expect_error "steps"            interpolate --vae "$vae" --pairs 0:1 --steps 1 --data "$m" --out "$tmp/r8"
expect_error "--pairs 99999 is out of range" interpolate --vae "$vae" --pairs 0:99999 --data "$m" --out "$tmp/r8"
expect_error "--pairs"          interpolate --vae "$vae" --pairs 0-1 --data "$m" --out "$tmp/r8"
expect_error "--mode"           interpolate --vae "$vae" --pairs 0:1 --mode cubic --data "$m" --out "$tmp/r8"
expect_error "--pairs I:J or --classes A:B" interpolate --vae "$vae" --data "$m" --out "$tmp/r8"
expect_error "--classes 12 is out of range" interpolate --vae "$vae" --classes 1:12 --data "$m" --out "$tmp/r8"
expect_error "is a classifier checkpoint" interpolate --vae "$clf" --pairs 0:1 --data "$m" --out "$tmp/r8"
expect_error "garbage.safetensors" interpolate --vae "$tmp/garbage.safetensors" --pairs 0:1 --data "$m" --out "$tmp/r8"
expect_error "--from-class 11 is out of range" arithmetic --vae "$vae" --index 0 --from-class 11 --to-class 1 --data "$m" --out "$tmp/r9"
expect_error "--index 10000 is out of range" arithmetic --vae "$vae" --index 10000 --from-class 1 --to-class 7 --data "$m" --out "$tmp/r9"
expect_error "--dims"           traverse --vae "$vae" --dims 3,x --data "$m" --out "$tmp/r10"
expect_error "--dims 32 is out of range" traverse --vae "$vae" --dims 3,32 --data "$m" --out "$tmp/r10"
expect_error "--steps"          traverse --vae "$vae" --steps 1 --data "$m" --out "$tmp/r10"
expect_error "--base"           traverse --vae "$vae" --base index:10000 --data "$m" --out "$tmp/r10"
expect_error "--base class:12 is out of range" traverse --vae "$vae" --base class:12 --data "$m" --out "$tmp/r10"
expect_error "--n 20000 is larger than the mnist test split" embed --vae "$vae" --n 20000 --method pca --data "$m" --out "$tmp/r11"
expect_error "--n 80000 is larger than the mnist all split" embed --vae "$vae" --n 80000 --split all --method pca --data "$m" --out "$tmp/r11"
expect_error "--n must be at least 4" embed --vae "$vae" --n 0 --method pca --data "$m" --out "$tmp/r11"
expect_error "--method"         embed --vae "$vae" --method umap --data "$m" --out "$tmp/r11"
expect_error "perplexity"       embed --vae "$vae" --n 50 --perplexity 0 --data "$m" --out "$tmp/r11"
expect_error "is a classifier checkpoint" embed --vae "$clf" --method pca --data "$m" --out "$tmp/r11"
# Studies: eval-vae --nll, compare and sweep.
expect_error "--nll must be at least 1" eval-vae --checkpoint "$vae" --nll 0 --data "$m"
expect_error "--recon-loss mse is for the plain autoencoder" train-vae --recon-loss mse --data "$m" --out "$tmp/r12"
mkdir -p "$tmp/nometrics"; cp "$vae" "$tmp/nometrics/"
expect_error "no metrics.csv"   compare --runs "$tmp/nometrics" --data "$m" --out "$tmp/r13"
expect_error "--nll must be at least 1" compare --runs "$tmp/vae" --nll 0 --data "$m" --out "$tmp/r13"
mkdir -p "$tmp/fashion"; cp "$tmp/vae/"* "$tmp/fashion/"
sed -i 's/"dataset": "mnist"/"dataset": "fashion-mnist"/' "$tmp/fashion/config.json"
expect_error "mixes data sets"  compare --runs "$tmp/vae" "$tmp/fashion" --data "$m" --out "$tmp/r13"
expect_error "--latent needs at least one value" sweep --latent "" --data "$m" --out "$tmp/r14"
expect_error "--beta expects"   sweep --latent 2 --beta 1,x --data "$m" --out "$tmp/r14"
# The same commands with good input write what they promise.
expect_files() {  # expect_files DIR FILE... -- ARGS...
  local dir="$1"; shift
  local files=()
  while [ "$1" != "--" ]; do files+=("$1"); shift; done
  shift
  if ! "$bin" "$@" >"$tmp/ok.out" 2>"$tmp/ok.err"; then echo "FAIL: cuvae $* exited non-zero: $(tail -n1 "$tmp/ok.err")"; fail=1; return; fi
  for f in "${files[@]}"; do
    if [ ! -s "$dir/$f" ]; then echo "FAIL: cuvae $* did not write $dir/$f"; fail=1; return; fi
    grep -q "wrote $dir/$f" "$tmp/ok.out" || { echo "FAIL: cuvae $* did not say it wrote $dir/$f"; fail=1; return; }
  done
  echo "ok: cuvae $* -> ${files[*]}"
}
expect_files "$tmp/ok1" interpolation.png interpolation.json -- interpolate --vae "$vae" --classes 1:7 --steps 4 --mode slerp --data "$m" --out "$tmp/ok1"
expect_files "$tmp/ok2" traversal.png traversal.csv -- traverse --vae "$vae" --dims 0,5 --steps 3 --data "$m" --out "$tmp/ok2" --no-progress
expect_files "$tmp/ok3" latents.safetensors embedding.csv embed.json -- embed --vae "$vae" --n 60 --method tsne --iters 300 --perplexity 5 --data "$m" --out "$tmp/ok3" --no-progress
grep -q '"trustworthiness"' "$tmp/ok3/embed.json" || { echo "FAIL: embed.json lacks trustworthiness"; fail=1; }
[ "$(head -n1 "$tmp/ok3/embedding.csv")" = "index,label,x,y" ] || { echo "FAIL: embedding.csv header"; fail=1; }
[ "$(wc -l < "$tmp/ok3/embedding.csv")" = 61 ] || { echo "FAIL: embedding.csv should hold 60 rows"; fail=1; }
expect_files "$tmp/ok8" anchor_class3.png -- anchor --vae "$vae" --class 3 --n 8 --data "$m" --out "$tmp/ok8" --no-progress
expect_files "$tmp/ok9" arithmetic.png arithmetic.json -- arithmetic --vae "$vae" --index 0 1 --from-class 1 --to-class 7 --data "$m" --out "$tmp/ok9" --no-progress
expect_files "$tmp" report.html -- report --run "$tmp/vae" "$tmp/ok1" --out "$tmp/report.html"
"$bin" eval-classifier --checkpoint "$clf" --limit 64 --data "$m" > "$tmp/clf.json" 2>&1
grep -q '"accuracy"' "$tmp/clf.json" && grep -q '"per_class"' "$tmp/clf.json" || { echo "FAIL: eval-classifier: $(cat "$tmp/clf.json")"; fail=1; }
expect_files "$tmp/ok4" gradcam.json maps.safetensors -- gradcam --classifier "$clf" --index 0 3 --save-maps --data "$m" --out "$tmp/ok4"
"$bin" train-vae --model ae --data "$m" --epochs 1 --train-limit 256 --test-limit 64 --batch 64 --no-progress \
  --out "$tmp/ae" >/dev/null 2>&1 || { echo "FAIL: could not train the small AE"; fail=1; }
expect_error "needs a VAE checkpoint" eval-vae --checkpoint "$tmp/ae/model.safetensors" --nll 5 --data "$m"
"$bin" eval-vae --checkpoint "$tmp/ae/model.safetensors" --limit 64 --data "$m" > "$tmp/ae.json" 2>&1
grep -q '"model":"ae"' "$tmp/ae.json" && ! grep -q '"kl"' "$tmp/ae.json" || { echo "FAIL: eval-vae of an AE: $(cat "$tmp/ae.json")"; fail=1; }
"$bin" eval-vae --checkpoint "$vae" --limit 20 --nll 5 --no-progress --data "$m" > "$tmp/nll.json" 2>&1
grep -q '"nll_stderr"' "$tmp/nll.json" || { echo "FAIL: eval-vae --nll: $(cat "$tmp/nll.json")"; fail=1; }
"$bin" train-vae --model cvae --data "$m" --epochs 1 --train-limit 256 --test-limit 64 --batch 64 --no-progress \
  --out "$tmp/cvae" >/dev/null 2>&1 || { echo "FAIL: could not train the small CVAE"; fail=1; }
cv="$tmp/cvae/model.safetensors"
expect_error "--class 10 is out of range" sample --vae "$cv" --class 10 --data "$m" --out "$tmp/r15"
expect_error "--style-index 10000 is out of range" sample --vae "$cv" --style-index 10000 --data "$m" --out "$tmp/r15"
expect_error "--style-index needs a conditional VAE" sample --vae "$vae" --style-index 3 --data "$m" --out "$tmp/r15"
expect_error "conditional VAE (CVAE)" interpolate --vae "$cv" --pairs 0:1 --data "$m" --out "$tmp/r15"
expect_error "conditional VAE (CVAE)" anchor --vae "$cv" --class 1 --data "$m" --out "$tmp/r15"
expect_error "exclude each other" train-vae --kl-warmup 2 --kl-cycles 3 --data "$m" --out "$tmp/r15"
expect_error "need a model with a KL term" train-vae --model ae --free-bits 1 --data "$m" --out "$tmp/r15"
expect_files "$tmp/ok6" samples.png -- sample --vae "$cv" --class 3 --n 8 --data "$m" --out "$tmp/ok6"
expect_files "$tmp/ok7" samples.png -- sample --vae "$cv" --style-index 0 1 --data "$m" --out "$tmp/ok7"
expect_files "$tmp/ok5" compare.md compare.json -- compare --runs "$tmp/vae" "$tmp/ae" --limit 64 --nll 3 --no-progress --data "$m" --out "$tmp/ok5"
for d in r1 r2 r3 r4 r5 r6 r7 r8 r9 r10 r11 r12 r13 r14 r15; do
  if [ -e "$tmp/$d" ]; then echo "FAIL: a failed command left $tmp/$d behind"; fail=1; fi
done
"$bin" --help >/dev/null || { echo "FAIL: --help"; fail=1; }
"$bin" train-vae --help | grep -q -- "--latent" || { echo "FAIL: train-vae --help lacks --latent"; fail=1; }
for c in train-classifier eval-classifier anchor validate gradcam interpolate arithmetic traverse embed compare sweep sample; do
  "$bin" $c --help >/dev/null || { echo "FAIL: $c --help"; fail=1; }
done
exit $fail
