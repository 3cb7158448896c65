#!/usr/bin/env bash
# The conditional-VAE and KL-recipe studies quoted in the README, on the CPU.
#   bench/study_cvae.sh mnist     CVAE vs the anchored VAE of bench/study_mnist.sh; KL warm-up and
#                                 free bits against the plain recipe (10 epochs each)
#   bench/study_cvae.sh fashion   a FashionMNIST classifier, CVAE and a beta = 0.1 VAE, validated
# Logs go to bench/results/, run folders to runs/study/. Each part runs on one thread
# (OMP_NUM_THREADS=1) so that the two parts can share a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
B=build/cuvae
R=bench/results
D=$(date +%Y-%m-%d)
S=runs/study
mkdir -p "$S" "$R"
run() { echo "+ $*"; /usr/bin/time -f "(%e s wall)" "$@"; }
case "${1:-}" in
  mnist)
    {
      [ -f $S/vae/model.safetensors ] || run $B train-vae --dataset mnist --epochs 10 --seed 0 --out $S/vae --no-progress
      run $B train-vae --dataset mnist --model cvae --epochs 10 --seed 0 --out $S/cvae --no-progress
      run $B validate --vae $S/cvae/model.safetensors --compare-vae $S/vae/model.safetensors \
          --classifier runs/clf-mnist/model.safetensors --out $S/validate-cvae-mnist --no-progress
      run $B train-vae --dataset mnist --kl-warmup 5 --epochs 10 --seed 0 --out $S/vae-warmup --no-progress
      run $B train-vae --dataset mnist --free-bits 0.25 --epochs 10 --seed 0 --out $S/vae-freebits --no-progress
      run $B compare --runs $S/vae $S/vae-warmup $S/vae-freebits --nll 20 --out $S/compare-recipes --no-progress
      cp $S/validate-cvae-mnist/validation.md "$R/cvae-vs-anchored-mnist-cpu-$D.md"
      cp $S/compare-recipes/compare.md "$R/kl-recipes-mnist-cpu-$D.md"
    } 2>&1 | tee "$R/cvae-mnist-cpu-$D.log" ;;
  fashion)
    {
      [ -f $S/clf-fashion/model.safetensors ] || run $B train-classifier --dataset fashion-mnist --width 16 --epochs 2 \
          --batch 256 --seed 0 --out $S/clf-fashion --no-progress
      run $B train-vae --dataset fashion-mnist --model cvae --epochs 10 --seed 0 --out $S/cvae-fashion --no-progress
      run $B train-vae --dataset fashion-mnist --beta 0.1 --epochs 10 --seed 0 --out $S/vae-fashion-b0.1 --no-progress
      run $B validate --vae $S/cvae-fashion/model.safetensors --compare-vae $S/vae-fashion-b0.1/model.safetensors \
          --classifier $S/clf-fashion/model.safetensors --out $S/validate-cvae-fashion --no-progress
      cp $S/validate-cvae-fashion/validation.md "$R/cvae-vs-anchored-fashion-cpu-$D.md"
      # The CVAE's beta decides how much of the class its z carries instead of the label.
      for v in "b0.1-z32:--beta 0.1 --latent 32" "b0.1-z8:--beta 0.1 --latent 8" "b2-z32:--beta 2" "b4-z32:--beta 4"; do
        name=${v%%:*}
        run $B train-vae --dataset fashion-mnist --model cvae ${v#*:} --epochs 10 --seed 0 --out $S/cvae-fashion-$name --no-progress
        run $B validate --vae $S/cvae-fashion-$name/model.safetensors --classifier $S/clf-fashion/model.safetensors \
            --out $S/validate-cvae-fashion-$name --no-progress
        cp $S/validate-cvae-fashion-$name/validation.md "$R/cvae-fashion-$name-validation-cpu-$D.md"
      done
    } 2>&1 | tee "$R/cvae-fashion-cpu-$D.log" ;;
  *) echo "usage: bench/study_cvae.sh mnist|fashion" >&2; exit 2 ;;
esac
