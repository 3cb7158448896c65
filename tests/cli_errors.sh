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
  echo "ok: cuvae $* -> $(head -n1 "$tmp/err")"
}
expect_error "epochs"        train-vae --epochs abc --out "$tmp/r1"
expect_error "epochs"        train-vae --epochs 0 --out "$tmp/r1"
expect_error "dataset"       train-vae --dataset imagenet --out "$tmp/r1"
expect_error "device"        train-vae --device tpu --out "$tmp/r1"
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
for d in r1 r2 r3; do
  if [ -e "$tmp/$d" ]; then echo "FAIL: a failed command left $tmp/$d behind"; fail=1; fi
done
"$bin" --help >/dev/null || { echo "FAIL: --help"; fail=1; }
"$bin" train-vae --help | grep -q -- "--latent" || { echo "FAIL: train-vae --help lacks --latent"; fail=1; }
exit $fail
