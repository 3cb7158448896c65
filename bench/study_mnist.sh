#!/usr/bin/env bash
# The MNIST studies quoted in the README, on the CPU: AE vs VAE (10 epochs each, seed 0), the
# importance-sampled NLL of a VAE trained on dynamically binarized MNIST, and a sweep over
# latent size and beta. Logs go to bench/results/; run folders to runs/study/.
#   bench/study_mnist.sh [CLASSIFIER]   (default runs/clf-mnist/model.safetensors)
# Environment: NLL_K (largest K for the binarized NLL, default 500), SWEEP_EPOCHS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
CLF=${1:-runs/clf-mnist/model.safetensors}
NLL_K=${NLL_K:-500}
SWEEP_EPOCHS=${SWEEP_EPOCHS:-3}
B=build/cuvae
R=bench/results
D=$(date +%Y-%m-%d)
mkdir -p runs/study "$R"
[ -f "$CLF" ] || $B train-classifier --dataset mnist --width 16 --epochs 1 --batch 256 --out "$(dirname "$CLF")" --no-progress
run() { echo "+ $*"; /usr/bin/time -f "(%e s wall)" "$@"; }
{
  run $B train-vae --dataset mnist --model ae  --epochs 10 --seed 0 --out runs/study/ae  --no-progress
  run $B train-vae --dataset mnist --model vae --epochs 10 --seed 0 --out runs/study/vae --no-progress
  run $B compare --runs runs/study/ae runs/study/vae --classifier "$CLF" --nll 100 --out runs/study/compare --no-progress
  cp runs/study/compare/compare.md "$R/ae-vs-vae-mnist-cpu-$D.md"
  cp runs/study/compare/compare.png "$R/ae-vs-vae-mnist-cpu-$D.png"
} 2>&1 | tee "$R/ae-vs-vae-mnist-cpu-$D.log"
{
  run $B train-vae --dataset mnist --binarize --epochs 10 --seed 0 --out runs/study/vae-bin --no-progress
  run $B eval-vae --checkpoint runs/study/vae-bin/model.safetensors --binarize --nll 1 --no-progress
  run $B eval-vae --checkpoint runs/study/vae-bin/model.safetensors --binarize --nll 100 --no-progress
  run $B eval-vae --checkpoint runs/study/vae-bin/model.safetensors --binarize --nll "$NLL_K" --no-progress
} 2>&1 | tee "$R/nll-binarized-mnist-cpu-$D.log"
{
  run $B sweep --dataset mnist --latent 2,8,32 --beta 0.5,1,4 --epochs "$SWEEP_EPOCHS" --classifier "$CLF" \
      --limit 2000 --nll 100 --out runs/study/sweep --no-progress
  for f in sweep.md sweep.csv sweep_recon_kl.png sweep_rate_distortion.png sweep_samples.png; do
    cp "runs/study/sweep/$f" "$R/sweep-mnist-cpu-$D-$f"
  done
} 2>&1 | tee "$R/sweep-mnist-cpu-$D.log"
