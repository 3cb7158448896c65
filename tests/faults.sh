#!/usr/bin/env bash
# Faults a user can cause, each checked on the real cuvae binary (CPU, real MNIST):
#   1. SIGKILL at random moments during training, then --resume: the final weights equal an
#      uninterrupted run's, bit for bit (VAE and classifier), and no partial file is left;
#   2. the file-size limit (ulimit -f) reached while the training state is written: a clear
#      error, the previous checkpoint intact and loadable, and a later --resume still exact;
#   3. an --out that cannot be created or written, a data folder that is missing or empty: a
#      clear error before any training;
#   4. a --batch that cannot fit in memory (ulimit -v): a clear error, not an abort.
# Usage: tests/faults.sh CUVAE_BINARY SOURCE_DIR
set -u
bin="$1"; src="$2"
m="$src/data/mnist"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
# Messages for users: one line, no crash, no source location.
clean_error() {  # clean_error STDERR_FILE WORD
  grep -q "cuvae: error: .*$2" "$1" || { bad "message lacks '$2': $(cat "$1")"; return 1; }
  if grep -qiE "segmentation|core dumped|terminate called|abort|failed at " "$1"; then bad "crash or internal message: $(cat "$1")"; return 1; fi
  return 0
}

vae_args=(train-vae --data "$m" --train-limit 512 --test-limit 64 --batch 64 --latent 8 --seed 5 --no-progress --device cpu)
clf_args=(train-classifier --data "$m" --train-limit 256 --test-limit 64 --batch 32 --width 2 --seed 5 --no-progress --device cpu)

# ---- 1. SIGKILL, then --resume ---------------------------------------------------------
# kill_loop OUT KILLS ARGS...: start the run and kill -9 it, then resume and kill again, KILLS
# times in all; then resume to the end. The first kill comes before any epoch ends (a fresh
# start follows); each later one 0-0.3 s after this process finished an epoch, which lands in
# the checkpoint writes that follow the metrics row or early in the next epoch.
rows() {  # data rows of OUT/metrics.csv (0 without the file)
  local n=0
  [ -f "$1/metrics.csv" ] && n="$(grep -c . "$1/metrics.csv")"
  echo $((n > 0 ? n - 1 : 0))
}
kill_loop() {
  local out="$1" kills="$2"; shift 2
  local k resume=() start pid
  RANDOM=7
  for ((k = 0; k < kills; k++)); do
    resume=(); [ -f "$out/optim.safetensors" ] && resume=(--resume)
    start="$(rows "$out")"
    "$bin" "$@" --out "$out" "${resume[@]}" >>"$tmp/kill.log" 2>&1 &
    pid=$!
    if [ $k -eq 0 ]; then
      sleep 0.2
    else
      while kill -0 "$pid" 2>/dev/null && [ "$(rows "$out")" -le "$start" ]; do sleep 0.02; done
      sleep "0.$((RANDOM % 30))"
    fi
    kill -9 "$pid" 2>/dev/null && kills_done=$((kills_done + 1))
    wait "$pid" 2>/dev/null
  done
  resume=(); [ -f "$out/optim.safetensors" ] && resume=(--resume)
  "$bin" "$@" --out "$out" "${resume[@]}" >>"$tmp/kill.log" 2>&1 || { bad "the final run into $out failed: $(tail -n 3 "$tmp/kill.log")"; return; }
}
kills_done=0
"$bin" "${vae_args[@]}" --epochs 4 --out "$tmp/vae-a" >/dev/null 2>&1 || bad "uninterrupted VAE run failed"
kill_loop "$tmp/vae-b" 4 "${vae_args[@]}" --epochs 4
resumed="$(grep -c "^resuming" "$tmp/kill.log")"
[ "$resumed" -ge 2 ] || bad "only $resumed of the VAE's restarts resumed from a saved epoch"
if cmp -s "$tmp/vae-a/model.safetensors" "$tmp/vae-b/model.safetensors"; then
  ok "VAE killed $kills_done times with SIGKILL ($resumed restarts from saved epochs): model.safetensors equals the uninterrupted run's"
else
  bad "VAE after SIGKILL + --resume differs from the uninterrupted run"
fi
[ "$(rows "$tmp/vae-b")" = 4 ] || bad "metrics.csv after kills has $(rows "$tmp/vae-b") rows, expected 4"
"$bin" "${clf_args[@]}" --epochs 2 --out "$tmp/clf-a" >/dev/null 2>&1 || bad "uninterrupted classifier run failed"
kills_done=0
kill_loop "$tmp/clf-b" 3 "${clf_args[@]}" --epochs 2
if cmp -s "$tmp/clf-a/model.safetensors" "$tmp/clf-b/model.safetensors"; then
  ok "classifier killed $kills_done times with SIGKILL and resumed: model.safetensors equals the uninterrupted run's"
else
  bad "classifier after SIGKILL + --resume differs from the uninterrupted run"
fi
if ls "$tmp"/vae-b/*.tmp.* "$tmp"/clf-b/*.tmp.* >/dev/null 2>&1; then bad "partial files left: $(ls "$tmp"/*/*.tmp.*)"; fi

# ---- 2. file-size limit while the state is written --------------------------------------
"$bin" "${vae_args[@]}" --epochs 1 --out "$tmp/vae-c" >/dev/null 2>&1 || bad "one-epoch VAE run failed"
cp "$tmp/vae-c/model.safetensors" "$tmp/epoch1.safetensors"
# 1 MiB: config.json and metrics.csv fit; the 20 MB training state does not.
(ulimit -f 1024; "$bin" "${vae_args[@]}" --epochs 4 --resume --out "$tmp/vae-c" >"$tmp/fsize.out" 2>"$tmp/fsize.err"); rc=$?
if [ $rc -eq 1 ] && clean_error "$tmp/fsize.err" "optim.safetensors.*File too large"; then
  ok "ulimit -f: $(head -n1 "$tmp/fsize.err")"
else
  bad "ulimit -f: exit $rc, stderr: $(cat "$tmp/fsize.err")"
fi
cmp -s "$tmp/epoch1.safetensors" "$tmp/vae-c/model.safetensors" || bad "the previous checkpoint changed after the failed write"
"$bin" eval-vae --checkpoint "$tmp/vae-c/model.safetensors" --data "$m" --limit 64 --device cpu >/dev/null 2>&1 \
  || bad "the previous checkpoint does not load after the failed write"
ls "$tmp"/vae-c/*.tmp.* >/dev/null 2>&1 && bad "the failed write left a partial file"
"$bin" "${vae_args[@]}" --epochs 4 --resume --out "$tmp/vae-c" >/dev/null 2>&1 || bad "resume after the full disk failed"
if cmp -s "$tmp/vae-a/model.safetensors" "$tmp/vae-c/model.safetensors"; then
  ok "after the failed write, --resume still equals the uninterrupted run"
else
  bad "resume after the failed write differs from the uninterrupted run"
fi

# ---- 3. folders that cannot be written or read ----------------------------------------
touch "$tmp/a-file"
for cmd in vae clf; do
  if [ $cmd = vae ]; then args=("${vae_args[@]}" --epochs 1); else args=("${clf_args[@]}" --epochs 1); fi
  "$bin" "${args[@]}" --out "$tmp/a-file/run" >"$tmp/o.out" 2>"$tmp/o.err"; rc=$?
  if [ $rc -eq 1 ] && clean_error "$tmp/o.err" "--out $tmp/a-file/run cannot be written" && ! grep -q "epoch 1" "$tmp/o.out"; then
    ok "$cmd: $(head -n1 "$tmp/o.err")"
  else
    bad "$cmd with an unwritable --out: exit $rc, $(cat "$tmp/o.err")"
  fi
done
if [ "$(id -u)" != 0 ]; then  # root writes anywhere: a read-only folder is tested as a user only
  mkdir -p "$tmp/ro" && chmod 555 "$tmp/ro"
  "$bin" "${vae_args[@]}" --epochs 1 --out "$tmp/ro" >/dev/null 2>"$tmp/o.err"
  clean_error "$tmp/o.err" "cannot be written" && ok "read-only --out: $(head -n1 "$tmp/o.err")"
  chmod 755 "$tmp/ro"
fi
mkdir -p "$tmp/empty-data"
"$bin" train-vae --data "$tmp/empty-data" --epochs 1 --no-progress --device cpu --out "$tmp/d1" >/dev/null 2>"$tmp/d.err"; rc=$?
[ $rc -eq 1 ] && clean_error "$tmp/d.err" "empty-data" && ok "empty data folder: $(head -n1 "$tmp/d.err")" || bad "empty data folder: exit $rc"
rmdir "$tmp/empty-data"
"$bin" train-vae --data "$tmp/empty-data" --epochs 1 --no-progress --device cpu --out "$tmp/d2" >/dev/null 2>"$tmp/d.err"; rc=$?
[ $rc -eq 1 ] && clean_error "$tmp/d.err" "fetch-data" && ok "vanished data folder: $(head -n1 "$tmp/d.err")" || bad "vanished data folder: exit $rc"
[ -e "$tmp/d1" ] || [ -e "$tmp/d2" ] && bad "a run folder was created for a run that could not start"

# ---- 4. sizes that cannot fit -------------------------------------------------------------
# AddressSanitizer reserves terabytes of address space, so a virtual-memory limit cannot be set
# under it; the check_host_allocation unit test covers that build.
if [ -n "${ASAN_OPTIONS:-}" ]; then
  echo "skip: ulimit -v cases under AddressSanitizer"
else
  (ulimit -v 4000000; "$bin" train-classifier --data "$m" --batch 60000 --width 64 --epochs 1 --no-progress --device cpu \
     --out "$tmp/big" >/dev/null 2>"$tmp/big.err"); rc=$?
  [ $rc -eq 1 ] && clean_error "$tmp/big.err" "memory" && ok "--batch 60000 --width 64 in 4 GB: $(head -n1 "$tmp/big.err")" \
    || bad "absurd --batch: exit $rc, $(cat "$tmp/big.err")"
  (ulimit -v 3000000; "$bin" train-vae --data "$m" --batch 60000 --epochs 1 --no-progress --device cpu \
     --out "$tmp/big2" >/dev/null 2>"$tmp/big2.err"); rc=$?
  [ $rc -eq 1 ] && clean_error "$tmp/big2.err" "memory" && ok "train-vae --batch 60000 in 3 GB: $(head -n1 "$tmp/big2.err")" \
    || bad "absurd VAE --batch: exit $rc, $(cat "$tmp/big2.err")"
fi
exit $fail
