#!/usr/bin/env bash
# Data-parallel training over MPI (ctest label mpi), on the real cuvae binary, CPU, real MNIST,
# with `mpirun --oversubscribe -np 2` (and --allow-run-as-root where this runs as root):
#   1. two ranks equal one process: after one VAE step of the global batch the test loss agrees to
#      1e-6 and every parameter to 1e-3 (max-norm relative, per tensor; the wrong ε for half the
#      batch moves them by 0.57), so the ranks draw exactly the batch and the ε of the one
#      process; after 10 epochs over 6,400 images the test losses agree to 1%, and one process
#      with --accumulate 2 (the ranks' shares as micro-batches) equals the 2 ranks bit for bit;
#   2. with the same seed and the same N the weights are bit-identical from run to run;
#   3. the classifier trains on 2 ranks, and the test set evaluated in shards over the ranks gives
#      what one process measures on the written model (VAE and classifier);
#   3a. eval-vae --nll and eval-classifier under mpirun print one line, the numbers of one process;
#   3b. with --sync-batchnorm the classifier's step on 2 ranks equals one process's (to the
#      rounding between the reference and the oneDNN backend);
#   3c. without it, one process with --accumulate 2 trains the 2 ranks' weights bit for bit;
#   4. faults: a batch that does not split over the ranks and ranks with another seed are refused
#      before the first step; a rank killed with SIGKILL stops the run within 60 s, naming it, the
#      last checkpoint stays intact and --resume with one process continues from it.
# Skipped (exit 77) without mpirun or /usr/bin/python3 with numpy (the weight comparison).
# Usage: tests/mpi.sh CUVAE_BINARY SOURCE_DIR MPIEXEC
set -u
bin="$1"; src="$2"; mpiexec="${3:-mpirun}"
m="$src/data/mnist"
command -v "$mpiexec" >/dev/null 2>&1 || { echo "SKIPPED: no $mpiexec"; exit 77; }
/usr/bin/python3 -c "import numpy" 2>/dev/null || { echo "SKIPPED: /usr/bin/python3 has no numpy"; exit 77; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
root_flag=()
[ "$(id -u)" = 0 ] && root_flag=(--allow-run-as-root)
mpi() { "$mpiexec" "${root_flag[@]}" --oversubscribe -np "$1" -x OMP_NUM_THREADS=1 "${@:2}"; }
export OMP_NUM_THREADS=1

# max over tensors of max|a − b| / max|a|: the checkpoints' largest relative difference (with a
# third argument "conv_fc": over the convolution and fc tensors only, not batch norm's).
max_rel_diff() { /usr/bin/python3 "$src/tests/max_rel_diff.py" "$1" "$2" "${3:-all}"; }
# rel X Y: |X − Y| / |X|
rel() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; if (a < 0) a = -a; printf "%.3g", d / a }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
test_loss() { tail -n 1 "$1/metrics.csv" | cut -d, -f5; }

vae=(train-vae --data "$m" --device cpu --no-progress --seed 3)

# ---- 1. two ranks equal one process ------------------------------------------------------
# Adam's first update is lr · g / (|g| + ε) per weight, so where a gradient is near 0 the last bits
# of its sum (which the summation order sets) decide the step: one process on 1 thread and on 2
# threads already differ there (reported), and two ranks' sums of 64 rows added by the allreduce
# round otherwise than oneDNN's SGEMM over 128 rows (1.5e-4 measured). The weights must agree to
# 1e-3, which the wrong ε for half the batch (0.57) is far from; the test loss after the step,
# which such weights barely move, must agree to 1e-6, which the wrong ε or the wrong rows for
# half the batch would not.
for seed in 3 5; do
  one=(train-vae --data "$m" --device cpu --no-progress --seed "$seed" --train-limit 128 --test-limit 256 --batch 128)
  "$bin" "${one[@]}" --out "$tmp/one$seed" >/dev/null 2>&1
  OMP_NUM_THREADS=2 "$bin" "${one[@]}" --out "$tmp/threads$seed" >/dev/null 2>&1
  mpi 2 "$bin" "${one[@]}" --out "$tmp/two$seed" >"$tmp/two$seed.log" 2>&1
  floor=$(max_rel_diff "$tmp/one$seed/model.safetensors" "$tmp/threads$seed/model.safetensors")
  d=$(max_rel_diff "$tmp/one$seed/model.safetensors" "$tmp/two$seed/model.safetensors")
  l1=$(test_loss "$tmp/one$seed"); l2=$(test_loss "$tmp/two$seed"); r=$(rel "$l1" "$l2")
  if le "$r" 1e-6 && le "$d" 1e-3; then
    ok "seed $seed, one VAE step: 2 ranks = 1 process (test loss $l1 vs $l2, relative $r; weights $d, 1 vs 2 threads $floor)"
  else
    bad "seed $seed, one VAE step: test loss $l1 vs $l2 (relative $r), weights $d (1 vs 2 threads: $floor)"
  fi
done
grep -q "ranks: 2 (rank 0 writes)" "$tmp/two3.log" && ok "the run says it has 2 ranks" || bad "no 'ranks: 2' line: $(head -3 "$tmp/two3.log")"

# Ten epochs over 6,400 images (1,000 steps): the same training, though the rounding differences
# above grow with every step (reported; the test losses must agree to 1%).
"$bin" "${vae[@]}" --train-limit 6400 --test-limit 500 --batch 64 --out "$tmp/one" >/dev/null 2>&1
mpi 2 "$bin" "${vae[@]}" --train-limit 6400 --test-limit 500 --batch 64 --out "$tmp/two" >/dev/null 2>&1
l1=$(test_loss "$tmp/one"); l2=$(test_loss "$tmp/two"); r=$(rel "$l1" "$l2")
d=$(max_rel_diff "$tmp/one/model.safetensors" "$tmp/two/model.safetensors")
le "$r" 1e-2 && ok "1,000 steps over 6,400 images: test loss $l1 (1 process) vs $l2 (2 ranks), relative $r; weights differ by $d" \
  || bad "1,000 steps: test loss $l1 vs $l2 (relative $r), weights $d"
# The same run in one process with --accumulate 2: its two micro-batches of 32 are the ranks'
# shares, and their gradients are summed and halved as the allreduce sums and halves them, so
# every weight (and the test loss) is the 2 ranks' bit for bit.
"$bin" "${vae[@]}" --train-limit 6400 --test-limit 500 --batch 64 --accumulate 2 --out "$tmp/acc" >"$tmp/acc.log" 2>&1
d=$(max_rel_diff "$tmp/acc/model.safetensors" "$tmp/two/model.safetensors")
if cmp -s "$tmp/acc/model.safetensors" "$tmp/two/model.safetensors" && [ "$(test_loss "$tmp/acc")" = "$l2" ] \
   && grep -q "gradient accumulation: 2 micro-batches of 32 images per step" "$tmp/acc.log"; then
  ok "1,000 steps over 6,400 images: 1 process with --accumulate 2 = 2 ranks, bit for bit (test loss $l2)"
else
  bad "1,000 steps, 1 process with --accumulate 2 vs 2 ranks: weights differ by $d, test loss $(test_loss "$tmp/acc") vs $l2"
fi

# ---- 2. bit-identical from run to run ----------------------------------------------------
mpi 2 "$bin" "${vae[@]}" --train-limit 1280 --test-limit 64 --batch 128 --out "$tmp/rep1" >/dev/null 2>&1
mpi 2 "$bin" "${vae[@]}" --train-limit 1280 --test-limit 64 --batch 128 --out "$tmp/rep2" >/dev/null 2>&1
cmp -s "$tmp/rep1/model.safetensors" "$tmp/rep2/model.safetensors" && ok "same seed, same N: bit-identical weights" \
  || bad "two 2-rank runs with the same seed differ"

# ---- 3. the classifier, and evaluation sharded over the ranks -----------------------------
# Each rank evaluates its half of the 701 test images (rank 0's BatchNorm statistics); the
# reduced numbers must be what one process measures on the model rank 0 wrote.
json_field() { /usr/bin/python3 -c "import json,sys; print(repr(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1']))"; }
mpi 2 "$bin" train-classifier --data "$m" --device cpu --no-progress --epochs 2 --train-limit 1280 --test-limit 701 \
  --batch 64 --width 4 --out "$tmp/clf" >"$tmp/clf.log" 2>&1
if [ -f "$tmp/clf/model.safetensors" ] && [ "$(grep -c '^epoch [12]:' "$tmp/clf.log")" = 2 ]; then
  ok "the classifier trains on 2 ranks: $(grep '^epoch 2:' "$tmp/clf.log")"
  sharded=$(tail -n 1 "$tmp/clf/metrics.csv" | cut -d, -f5,6)
  one=$("$bin" eval-classifier --checkpoint "$tmp/clf/model.safetensors" --data "$m" --limit 701 --device cpu 2>/dev/null)
  acc=$(echo "$one" | json_field accuracy); loss=$(echo "$one" | json_field loss)
  if le "$(rel "$(echo "$sharded" | cut -d, -f2)" "$acc")" 1e-8 && le "$(rel "$(echo "$sharded" | cut -d, -f1)" "$loss")" 1e-7; then
    ok "sharded evaluation = one process's: classifier test loss, accuracy $sharded vs $loss, $acc"
  else
    bad "sharded classifier evaluation $sharded vs one process $loss, $acc"
  fi
else
  bad "classifier on 2 ranks: $(tail -3 "$tmp/clf.log")"
fi
mpi 2 "$bin" "${vae[@]}" --train-limit 1280 --test-limit 701 --batch 128 --out "$tmp/vae701" >/dev/null 2>&1
sharded=$(test_loss "$tmp/vae701")
loss=$("$bin" eval-vae --checkpoint "$tmp/vae701/model.safetensors" --data "$m" --limit 701 --device cpu 2>/dev/null | json_field loss)
le "$(rel "$sharded" "$loss")" 1e-7 && ok "sharded evaluation = one process's: VAE test loss $sharded vs $loss" \
  || bad "sharded VAE evaluation $sharded vs one process $loss"

# ---- 3a. eval-vae (with --nll) and eval-classifier under mpirun ---------------------------
# Each rank evaluates its share of the images and prints nothing; rank 0 prints the reduced
# numbers once. The importance samples of image g are drawn from its global index, so the
# sharded NLL is one process's (the two differ only by the rounding of other batch sizes).
one=$("$bin" eval-vae --checkpoint "$tmp/vae701/model.safetensors" --data "$m" --limit 701 --nll 30 --device cpu --no-progress 2>/dev/null)
two=$(mpi 2 "$bin" eval-vae --checkpoint "$tmp/vae701/model.safetensors" --data "$m" --limit 701 --nll 30 --device cpu --no-progress 2>/dev/null)
n1=$(echo "$one" | json_field nll); n2=$(echo "$two" | json_field nll)
l1=$(echo "$one" | json_field loss); l2=$(echo "$two" | json_field loss)
if [ "$(echo "$two" | grep -c '^{')" = 1 ] && [ "$(echo "$two" | json_field ranks)" = 2 ] && le "$(rel "$n1" "$n2")" 1e-6 \
   && le "$(rel "$l1" "$l2")" 1e-7; then
  ok "eval-vae --nll 30 on 2 ranks = 1 process: NLL $n2 vs $n1, loss $l2 vs $l1, printed once"
else
  bad "eval-vae on 2 ranks: NLL $n2 vs $n1, loss $l2 vs $l1; output: $two"
fi
if [ -f "$tmp/clf/model.safetensors" ]; then
  one=$("$bin" eval-classifier --checkpoint "$tmp/clf/model.safetensors" --data "$m" --limit 701 --device cpu 2>/dev/null)
  two=$(mpi 2 "$bin" eval-classifier --checkpoint "$tmp/clf/model.safetensors" --data "$m" --limit 701 --device cpu 2>/dev/null)
  a1=$(echo "$one" | json_field accuracy); a2=$(echo "$two" | json_field accuracy)
  l1=$(echo "$one" | json_field loss); l2=$(echo "$two" | json_field loss)
  if [ "$(echo "$two" | grep -c '^{')" = 1 ] && [ "$a1" = "$a2" ] && le "$(rel "$l1" "$l2")" 1e-7; then
    ok "eval-classifier on 2 ranks = 1 process: accuracy $a2 vs $a1, loss $l2 vs $l1, printed once"
  else
    bad "eval-classifier on 2 ranks: accuracy $a2 vs $a1, loss $l2 vs $l1; output: $two"
  fi
fi

# ---- 3b. --sync-batchnorm: the classifier's batch norm over the global batch -------------
# One SGD step (lr 0.05): 2 ranks with --sync-batchnorm against one process. The reference and
# the oneDNN backend of one process differ by rounding; the ranks must stay within twice that
# (or 1e-5) on the convolution and fc weights, and the test loss (through the running
# statistics of the global batch) must agree to 1e-5.
conv_fc_diff() { max_rel_diff "$1" "$2" conv_fc; }
for seed in 1 2; do
  clf=(train-classifier --data "$m" --device cpu --no-progress --epochs 1 --train-limit 64 --test-limit 500 --batch 64
       --width 4 --schedule constant --lr 0.05 --seed "$seed")
  "$bin" "${clf[@]}" --out "$tmp/c1_$seed" >/dev/null 2>&1
  "$bin" "${clf[@]}" --cpu-backend reference --out "$tmp/cref_$seed" >/dev/null 2>&1
  mpi 2 "$bin" "${clf[@]}" --sync-batchnorm --out "$tmp/csync_$seed" >/dev/null 2>&1
  floor=$(conv_fc_diff "$tmp/c1_$seed/model.safetensors" "$tmp/cref_$seed/model.safetensors")
  d=$(conv_fc_diff "$tmp/c1_$seed/model.safetensors" "$tmp/csync_$seed/model.safetensors")
  l1=$(test_loss "$tmp/c1_$seed"); l2=$(test_loss "$tmp/csync_$seed"); r=$(rel "$l1" "$l2")
  limit=$(awk -v f="$floor" 'BEGIN { l = 2 * f; if (l < 1e-5) l = 1e-5; print l }')
  if le "$d" "$limit" && le "$r" 1e-5; then
    ok "seed $seed, --sync-batchnorm: 2 ranks = 1 process after a step (weights $d, reference vs oneDNN $floor; test loss $l1 vs $l2)"
  else
    bad "seed $seed, --sync-batchnorm: weights $d (reference vs oneDNN $floor), test loss $l1 vs $l2 (relative $r)"
  fi
done

# ---- 3c. the classifier with --accumulate 2 in one process = 2 ranks -------------------------
# Without --sync-batchnorm each rank normalises its 32 images as each micro-batch of 32 is
# normalised, so the convolution and fc weights after 20 steps are the 2 ranks' bit for bit (the
# running statistics differ: one process updates them from both micro-batches, rank 0 from its own).
clf=(train-classifier --data "$m" --device cpu --no-progress --epochs 1 --train-limit 1280 --test-limit 64 --batch 64
     --width 4 --seed 2)
"$bin" "${clf[@]}" --accumulate 2 --out "$tmp/cacc" >/dev/null 2>&1
mpi 2 "$bin" "${clf[@]}" --out "$tmp/ctwo" >/dev/null 2>&1
d=$(conv_fc_diff "$tmp/cacc/model.safetensors" "$tmp/ctwo/model.safetensors")
[ "$d" = 0 ] && ok "classifier, 20 steps: 1 process with --accumulate 2 = 2 ranks (convolution and fc weights bit for bit)" \
  || bad "classifier, 1 process with --accumulate 2 vs 2 ranks: convolution and fc weights differ by $d"

# ---- 4. faults ---------------------------------------------------------------------------
mpi 3 "$bin" "${vae[@]}" --train-limit 1280 --batch 128 --out "$tmp/three" >"$tmp/three.log" 2>&1
grep -q "batch 128 does not split over 3 ranks" "$tmp/three.log" && ok "a batch that does not split over the ranks is refused" \
  || bad "batch 128 over 3 ranks: $(grep error "$tmp/three.log" | head -1)"
[ -e "$tmp/three/model.safetensors" ] && bad "the refused run wrote a model"
mpi 2 bash -c 'exec "$0" "$@" --seed $((OMPI_COMM_WORLD_RANK * 7))' "$bin" train-vae --data "$m" --device cpu --no-progress \
  --train-limit 1280 --batch 128 --out "$tmp/seeds" >"$tmp/seeds.log" 2>&1
grep -q "rank 1 has another configuration" "$tmp/seeds.log" && ok "ranks with another --seed are refused before the first step" \
  || bad "different seeds: $(grep error "$tmp/seeds.log" | head -1)"

mpi 2 "$bin" "${vae[@]}" --epochs 50 --train-limit 3200 --test-limit 64 --batch 128 --out "$tmp/kill" >"$tmp/kill.log" 2>&1 &
run=$!
for _ in $(seq 600); do grep -q "^epoch 1:" "$tmp/kill.log" && break; sleep 0.1; done
victim=$(pgrep -f -- "--out $tmp/kill" | grep -v "^$run$" | while read -r p; do
  [ "$(ps -o comm= -p "$p")" != "mpirun" ] && echo "$p"; done | tail -n 1)
if [ -z "$victim" ]; then
  bad "no rank process to kill"; kill "$run" 2>/dev/null
else
  t0=$SECONDS
  kill -9 "$victim"
  wait "$run"; rc=$?
  took=$((SECONDS - t0))
  if [ "$rc" != 0 ] && [ "$took" -le 60 ]; then ok "a killed rank stops the run in $took s (mpirun exit $rc)"; else bad "after kill -9: exit $rc in $took s"; fi
  epochs=$(($(wc -l <"$tmp/kill/metrics.csv") - 1))
  if "$bin" "${vae[@]}" --epochs $((epochs + 2)) --train-limit 3200 --test-limit 64 --batch 128 --out "$tmp/kill" --resume \
       >"$tmp/resume.log" 2>&1 && grep -q "resuming $tmp/kill after epoch [0-9]" "$tmp/resume.log"; then
    ok "the last checkpoint is intact: one process resumes from it ($(grep -o 'after epoch [0-9]*' "$tmp/resume.log"))"
  else
    bad "resume after the kill: $(tail -2 "$tmp/resume.log")"
  fi
fi

exit $fail
