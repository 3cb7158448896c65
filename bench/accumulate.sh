#!/usr/bin/env bash
# Gradient accumulation against data-parallel ranks on the CPU, one thread per process:
#   bench/accumulate.sh [EPOCHS]
# 1. The VAE (seed 3, batch 64, EPOCHS epochs of the first 6,400 MNIST images, default 10):
#    one process, one process on 2 threads, one process with --accumulate 2, and 2 mpirun ranks.
#    Prints each run's test loss and the largest per-tensor relative weight difference from the
#    2 ranks (0 = bit-identical).
# 2. The classifier (width 4, seed 2, batch 64, one epoch of 1,280 images): one process with
#    --accumulate 2 against 2 ranks, convolution and fc weights and the running statistics apart.
# 3. Memory: peak resident set of a VAE step of --batch 2048 with --accumulate 1, 4 and 16
#    (GNU time's maximum RSS over one epoch of 8,192 images).
# CUVAE names the binary (default build/cuvae). Output also goes to
# bench/results/accumulate-cpu-DATE.log.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/.."
EPOCHS=${1:-10}
B=${CUVAE:-build/cuvae}
command -v mpirun >/dev/null || { echo "bench/accumulate.sh: no mpirun (scripts/setup installs openmpi-bin)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/accumulate.sh: no /usr/bin/time (Debian's package time)" >&2; exit 2; }
root=(); [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
mpi() { mpirun "${root[@]}" --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$@"; }
cores=$(nproc)  # before OMP_NUM_THREADS, which nproc obeys
export OMP_NUM_THREADS=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
log=bench/results/accumulate-cpu-$(date +%Y-%m-%d).log

# max over tensors of max|a − b| / max|a| (third argument conv_fc: without batch norm's tensors;
# bn: batch norm's running statistics only).
diff_w() { /usr/bin/python3 tests/max_rel_diff.py "$1" "$2" "${3:-all}"; }
test_loss() { tail -n 1 "$1/metrics.csv" | cut -d, -f5; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

{
  echo "# $B, $cores cores, $(date -u +%Y-%m-%dT%H:%MZ)"
  vae=(train-vae --data data/mnist --device cpu --no-progress --seed 3 --epochs "$EPOCHS" --train-limit 6400 --test-limit 500 --batch 64)
  echo "## 1. VAE: ${vae[*]}"
  t0=$(date +%s.%N); mpi "$B" "${vae[@]}" --out "$tmp/two" >/dev/null; t1=$(date +%s.%N)
  echo "2 ranks x 1 thread: test loss $(test_loss "$tmp/two") nats ($(secs "$t0" "$t1") s)"
  for run in "one:1 process x 1 thread" "threads:1 process x 2 threads" "acc:1 process x 1 thread, --accumulate 2"; do
    name=${run%%:*}; what=${run#*:}
    extra=(); [ "$name" = acc ] && extra=(--accumulate 2)
    threads=1; [ "$name" = threads ] && threads=2
    t0=$(date +%s.%N); OMP_NUM_THREADS=$threads "$B" "${vae[@]}" "${extra[@]}" --out "$tmp/$name" >/dev/null; t1=$(date +%s.%N)
    same=""; cmp -s "$tmp/$name/model.safetensors" "$tmp/two/model.safetensors" && same=", model.safetensors byte-identical"
    echo "$what: test loss $(test_loss "$tmp/$name") nats ($(secs "$t0" "$t1") s); weights apart from 2 ranks: $(diff_w "$tmp/two/model.safetensors" "$tmp/$name/model.safetensors")$same"
  done

  clf=(train-classifier --data data/mnist --device cpu --no-progress --epochs 1 --train-limit 1280 --test-limit 500 --batch 64 --width 4 --seed 2)
  echo "## 2. classifier: ${clf[*]}"
  mpi "$B" "${clf[@]}" --out "$tmp/ctwo" >/dev/null
  "$B" "${clf[@]}" --accumulate 2 --out "$tmp/cacc" >/dev/null
  echo "2 ranks: test loss $(test_loss "$tmp/ctwo"); 1 process --accumulate 2: test loss $(test_loss "$tmp/cacc")"
  echo "convolution and fc weights apart: $(diff_w "$tmp/ctwo/model.safetensors" "$tmp/cacc/model.safetensors" conv_fc); running statistics apart: $(diff_w "$tmp/ctwo/model.safetensors" "$tmp/cacc/model.safetensors" bn)"

  echo "## 3. memory: train-vae --batch 2048, one epoch of 8,192 images"
  for a in 1 4 16; do
    /usr/bin/time -f "%M %e" -o "$tmp/time$a" "$B" train-vae --data data/mnist --device cpu --no-progress --epochs 1 \
      --train-limit 8192 --test-limit 500 --batch 2048 --accumulate "$a" --out "$tmp/mem$a" >/dev/null
    read -r kb s <"$tmp/time$a"
    echo "--accumulate $a (micro-batch $((2048 / a))): peak RSS $((kb / 1024)) MiB, $s s, test loss $(test_loss "$tmp/mem$a")"
  done
} 2>&1 | tee "$log"
echo "wrote $log"
