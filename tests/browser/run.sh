#!/usr/bin/env bash
# Real-browser test of the `cuvae serve` dashboard.
#
#   tests/browser/run.sh CUVAE_BINARY SOURCE_DIR BUILD_DIR [VAE_CHECKPOINT CLASSIFIER_CHECKPOINT]
#
# Trains a tiny VAE and classifier on MNIST (unless both checkpoints are given), starts
# `cuvae serve` on a free loopback port, runs tests/browser/dashboard.test.mjs in headless Chromium
# (playwright-core from SOURCE_DIR/node_modules, the browser from /usr/bin/chromium) and returns its
# exit status. Screenshots go to BUILD_DIR/browser-screenshots. Exits 77 (CTest: skipped) when
# Chromium, node or playwright-core is missing. Set CUVAE_BROWSER_EMBEDDING=DIR to also serve the
# latent map of an `embed` output folder.
set -euo pipefail

if [[ $# -ne 3 && $# -ne 5 ]]; then
  echo "usage: $0 CUVAE_BINARY SOURCE_DIR BUILD_DIR [VAE_CHECKPOINT CLASSIFIER_CHECKPOINT]" >&2
  exit 2
fi
bin=$(realpath "$1")
src=$(realpath "$2")
build=$(realpath "$3")
chromium=${CHROMIUM:-/usr/bin/chromium}

if [[ ! -x $chromium ]]; then
  echo "SKIPPED: $chromium not found (install Debian's chromium package)"
  exit 77
fi
if ! command -v node >/dev/null; then
  echo "SKIPPED: node not found"
  exit 77
fi
if [[ ! -d $src/node_modules/playwright-core ]]; then
  echo "SKIPPED: $src/node_modules/playwright-core missing (run npm ci in $src)"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cuvae-browser.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ $# -eq 5 ]]; then
  vae=$(realpath "$4")
  clf=$(realpath "$5")
  run_dir=$(dirname "$vae")
else
  echo "training a tiny VAE and classifier in $tmp"
  "$bin" train-vae --data "$src/data/mnist" --epochs 1 --train-limit 2048 --test-limit 256 --batch 64 \
    --no-progress --out "$tmp/vae" >"$tmp/train-vae.log" 2>&1 || { cat "$tmp/train-vae.log"; exit 1; }
  "$bin" train-classifier --data "$src/data/mnist" --epochs 1 --width 4 --train-limit 1024 --test-limit 256 \
    --batch 64 --no-progress --out "$tmp/clf" >"$tmp/train-clf.log" 2>&1 || { cat "$tmp/train-clf.log"; exit 1; }
  vae=$tmp/vae/model.safetensors
  clf=$tmp/clf/model.safetensors
  run_dir=$tmp/vae
fi
# The class statistics of mu that /api/anchor uses, kept beside the checkpoint.
"$bin" anchor --vae "$vae" --class 0 --n 1 --out "$tmp/a" --no-progress >"$tmp/anchor.log" 2>&1 \
  || { cat "$tmp/anchor.log"; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
args=(serve --vae "$vae" --classifier "$clf" --run "$run_dir" --data "$src/data/mnist" --device cpu
      --host 127.0.0.1 --port "$port")
if [[ -n ${CUVAE_BROWSER_EMBEDDING:-} ]]; then args+=(--embedding "$CUVAE_BROWSER_EMBEDDING"); fi
"$bin" "${args[@]}" >"$tmp/serve.log" 2>&1 &
server_pid=$!

base=http://127.0.0.1:$port
up=0
for _ in $(seq 1 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "FAIL cuvae serve exited before answering:"
    cat "$tmp/serve.log"
    server_pid=""
    exit 1
  fi
  if python3 -c "import urllib.request, sys; urllib.request.urlopen('$base/api/info', timeout=2)" 2>/dev/null; then
    up=1
    break
  fi
  sleep 0.2
done
if [[ $up -ne 1 ]]; then
  echo "FAIL cuvae serve did not answer $base/api/info within 60 s:"
  cat "$tmp/serve.log"
  exit 1
fi
echo "cuvae serve is up at $base"

status=0
(cd "$src" && CHROMIUM=$chromium node tests/browser/dashboard.test.mjs "$base" "$build/browser-screenshots") || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- cuvae serve log (last 40 lines)"
  tail -n 40 "$tmp/serve.log"
fi
exit $status
