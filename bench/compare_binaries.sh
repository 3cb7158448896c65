#!/usr/bin/env bash
# Two cuvae binaries on the same CPU jobs, alternated in one run (old, new, old, new, ...): one
# MNIST epoch of the VAE (batch 128) and a width-16 ResNet-18 epoch on 7,680 MNIST images (batch
# 256). Prints each measurement (training images/s from the run's metrics.csv) and the medians,
# to show a change did not make the CPU path slower.
#   bench/compare_binaries.sh OLD_CUVAE NEW_CUVAE [ROUNDS=3]
set -euo pipefail
if [ $# -lt 2 ] || [ "$1" = "--help" ]; then sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
old="$1" new="$2" rounds="${3:-3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ips() { tail -n 1 "$1/metrics.csv" | awk -F, -v c="$2" '{print $c}'; }
declare -A res
for r in $(seq "$rounds"); do
  for side in old new; do
    bin="${!side}"
    "$bin" train-vae --dataset mnist --data "$root/data/mnist" --epochs 1 --test-limit 1000 --no-progress \
      --out "$tmp/vae-$side-$r" >/dev/null
    # metrics.csv: epoch,train_loss,test_recon,test_kl,test_loss,seconds,images_per_s,beta
    v=$(ips "$tmp/vae-$side-$r" 7)
    "$bin" train-classifier --dataset mnist --data "$root/data/mnist" --epochs 1 --width 16 --batch 256 \
      --train-limit 7680 --test-limit 1000 --no-progress --out "$tmp/clf-$side-$r" >/dev/null
    # epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s
    c=$(ips "$tmp/clf-$side-$r" 8)
    echo "round $r $side: vae $v images/s, resnet18-w16 $c images/s"
    res[vae-$side]+="$v "
    res[clf-$side]+="$c "
  done
done
median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for job in vae clf; do
  o=$(median "${res[$job-old]}") n=$(median "${res[$job-new]}")
  echo "$job: median old $o, new $n images/s (new/old $(awk -v a="$n" -v b="$o" 'BEGIN {printf "%.3f", a / b}'))"
done
