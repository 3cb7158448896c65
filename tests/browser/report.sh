#!/usr/bin/env bash
# `cuvae report` in a real browser: trains a tiny VAE and classifier run, makes a report of them and
# opens it in headless Chromium (tests/browser/report.test.mjs). Exits 77 (CTest: skipped) without
# Chromium, node or playwright-core.
# Usage: tests/browser/report.sh CUVAE_BINARY SOURCE_DIR BUILD_DIR
set -euo pipefail
bin=$(realpath "$1"); src=$(realpath "$2"); build=$(realpath "$3")
[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || { echo "SKIPPED: ${CHROMIUM:-/usr/bin/chromium} not found (install Debian's chromium)"; exit 77; }
command -v node >/dev/null || { echo "SKIPPED: node not found"; exit 77; }
[[ -d $src/node_modules/playwright-core ]] || { echo "SKIPPED: $src/node_modules/playwright-core missing (npm ci)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cuvae-report.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
"$bin" train-vae --data "$src/data/mnist" --epochs 2 --train-limit 512 --test-limit 128 --batch 64 --no-progress \
  --out "$tmp/vae" >/dev/null
"$bin" train-classifier --data "$src/data/mnist" --epochs 1 --width 2 --train-limit 256 --test-limit 128 --batch 64 \
  --no-progress --out "$tmp/clf" >/dev/null
"$bin" interpolate --vae "$tmp/vae/model.safetensors" --classes 1:7 --data "$src/data/mnist" --out "$tmp/interp" >/dev/null
"$bin" report --run "$tmp/vae" --run "$tmp/clf" --run "$tmp/interp" --out "$tmp/report.html"
grep -qE "https?://" "$tmp/report.html" && { echo "FAIL: the report holds an http(s):// reference"; exit 1; }
mkdir -p "$build/browser-screenshots"
cd "$src" && node tests/browser/report.test.mjs "$tmp/report.html" "$build/browser-screenshots/report.png"
