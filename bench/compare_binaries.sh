#!/usr/bin/env bash
# Two cuvae binaries on the same CPU jobs, alternated in one run (old, new, old, new, ...): one
# MNIST epoch of the VAE (batch 128) and a width-16 ResNet-18 epoch on 7,680 MNIST images (batch
# 256), each also as a whole process (wall seconds and peak resident memory), and the 30-step
# width-64 ResNet-18 process of bench/resnet_cpu.sh. Prints each measurement (training images/s
# from the run's metrics.csv; seconds; MB) and the medians, to show a change did not make the CPU
# path slower.
#   bench/compare_binaries.sh OLD_CUVAE NEW_CUVAE [ROUNDS=3]
set -euo pipefail
if [ $# -lt 2 ] || [ "$1" = "--help" ]; then sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
old="$1" new="$2" rounds="${3:-3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ips() { tail -n 1 "$1/metrics.csv" | awk -F, -v c="$2" '{print $c}'; }
# run NAME CMD...: runs CMD, sets $secs (wall seconds) and $mb (peak resident MB; "?" without GNU time).
run() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f %M -o "$tmp/$name.rss" "$@" >/dev/null
    mb=$(awk '{printf "%.0f", $1 / 1024}' "$tmp/$name.rss")
  else
    "$@" >/dev/null
    mb="?"
  fi
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
}
declare -A res
for r in $(seq "$rounds"); do
  for side in old new; do
    bin="${!side}"
    run "vae-$side-$r" "$bin" train-vae --dataset mnist --data "$root/data/mnist" --epochs 1 --test-limit 1000 \
      --no-progress --out "$tmp/vae-$side-$r"
    # metrics.csv: epoch,train_loss,test_recon,test_kl,test_loss,seconds,images_per_s,beta
    v=$(ips "$tmp/vae-$side-$r" 7) vs=$secs vm=$mb
    run "clf-$side-$r" "$bin" train-classifier --dataset mnist --data "$root/data/mnist" --epochs 1 --width 16 \
      --batch 256 --train-limit 7680 --test-limit 1000 --no-progress --out "$tmp/clf-$side-$r"
    # epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s
    c=$(ips "$tmp/clf-$side-$r" 8) cs=$secs cm=$mb
    run "proc-$side-$r" "$bin" train-classifier --dataset mnist --data "$root/data/mnist" --width 64 --epochs 1 \
      --batch 64 --train-limit 1920 --test-limit 64 --device cpu --no-progress --out "$tmp/proc-$side-$r"
    echo "round $r $side: vae $v images/s ($vs s, $vm MB), resnet18-w16 $c images/s ($cs s, $cm MB)," \
      "resnet18-w64 30 steps $secs s ($mb MB)"
    res[vae-$side]+="$v " res[vae_s-$side]+="$vs " res[vae_mb-$side]+="$vm "
    res[clf-$side]+="$c " res[clf_s-$side]+="$cs " res[clf_mb-$side]+="$cm "
    res[w64_s-$side]+="$secs " res[w64_mb-$side]+="$mb "
    rm -rf "$tmp/vae-$side-$r" "$tmp/clf-$side-$r" "$tmp/proc-$side-$r"
  done
done
median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for job in vae clf vae_s clf_s w64_s vae_mb clf_mb w64_mb; do
  case $job in *_s) unit="s (whole process)" ;; *_mb) unit="MB peak resident" ;; *) unit="images/s" ;; esac
  o=$(median "${res[$job-old]}") n=$(median "${res[$job-new]}")
  echo "$job: median old $o, new $n $unit (new/old $(awk -v a="$n" -v b="$o" 'BEGIN {if (b + 0 == 0) print "?"; else printf "%.3f", a / b}'))"
done
