#!/usr/bin/env bash
# eval-vae --nll on one process of 2 threads against 2 mpirun ranks of 1 thread each (each rank
# 1/2 of the images), alternated ROUNDS times (default 2), on the same checkpoint and images.
#   bench/nll_ranks.sh CHECKPOINT [K] [LIMIT] [EVAL-VAE FLAGS...]
# K importance samples (default 1000) on the first LIMIT test images (default 2000); further
# flags go to eval-vae (e.g. --binarize). Prints each run's JSON line and wall time, then the
# median speed-up and the largest difference between the two NLLs. CUVAE names the binary
# (default build/cuvae). Output also goes to bench/results/nll-ranks-cpu-DATE.log.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help || $# -lt 1 ]]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  [[ $# -ge 1 ]] && exit 0 || exit 2
fi
cd "$(dirname "$0")/.."
ckpt=$1; K=${2:-1000}; LIM=${3:-2000}
shift $(($# < 3 ? $# : 3))
B=${CUVAE:-build/cuvae}
[ -f "$ckpt" ] || { echo "bench/nll_ranks.sh: no checkpoint $ckpt" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "bench/nll_ranks.sh: no mpirun (scripts/setup installs openmpi-bin)" >&2; exit 2; }
root=(); [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
args=(eval-vae --checkpoint "$ckpt" --nll "$K" --limit "$LIM" --device cpu --no-progress "$@")
mkdir -p bench/results
log=bench/results/nll-ranks-cpu-$(date +%Y-%m-%d).log
{
  echo "# $B ${args[*]}"
  echo "# 1 process x 2 threads (OMP_NUM_THREADS=2) against mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS=1, alternated; $(nproc) cores"
  for r in $(seq "${ROUNDS:-2}"); do
    t0=$(date +%s.%N)
    one=$(OMP_NUM_THREADS=2 "$B" "${args[@]}")
    t1=$(date +%s.%N)
    two=$(mpirun "${root[@]}" --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$B" "${args[@]}")
    t2=$(date +%s.%N)
    echo "round $r, 1 process x 2 threads: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s: $one"
    echo "round $r, 2 ranks x 1 thread:    $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }') s: $two"
  done
} | tee "$log"
python3 - "$log" <<'EOF' | tee -a "$log"
import json, re, statistics, sys
one, two, n1, n2 = [], [], [], []
for line in open(sys.argv[1]):
    m = re.match(r"round \d+, (1 process|2 ranks)[^:]*:\s+([\d.]+) s: (\{.*\})", line)
    if not m: continue
    j = json.loads(m.group(3))
    (one if m.group(1) == "1 process" else two).append(float(m.group(2)))
    (n1 if m.group(1) == "1 process" else n2).append(j["nll"])
print("median wall: 1 process x 2 threads %.1f s, 2 ranks x 1 thread %.1f s: %.2fx" %
      (statistics.median(one), statistics.median(two), statistics.median(one) / statistics.median(two)))
print("NLL: 1 process %.6f, 2 ranks %.6f nats (largest relative difference %.2g)" %
      (n1[0], n2[0], max(abs(a - b) / abs(a) for a in n1 for b in n2)))
EOF
