#!/usr/bin/env bash
# The FashionMNIST part of bench/study_arch.sh on a bare GPU host, in one call: the conv and the
# residual CVAE and beta = 0.1 VAE, EPOCHS each (default 40: about 6 minutes on an H200), judged by
# the committed width-32 ResNet-18, with the programs of build-carry/ (scripts/gpu-bundle, run
# here first). Copy build-carry/ and data/fashion-mnist along (61 MiB with the checkout). Writes to
# OUT_DIR: study.log, results.tgz (the per-class tables, validation folders and run metrics) and
# the four models as models.tar.part-aa, -ab, ... (15 MB pieces: `cat models.tar.part-* | tar x`
# restores runs/arch/).
#   bench/study_arch_gpu.sh OUT_DIR          TAG (default h200) names the result files
set -uo pipefail
if [ $# -ne 1 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -eq 1 ] && exit 0 || exit 2
fi
out="$(mkdir -p "$1" && cd "$1" && pwd)"
cd "$(dirname "$0")/.."
. scripts/gpu-env 2>"$out/gpu-env.log"
CUVAE="${CUVAE:-build-carry/cuvae}"
[ -x "$CUVAE" ] || { echo "study_arch_gpu.sh: $CUVAE missing (scripts/gpu-bundle here, then copy build-carry/ along)" >&2; exit 1; }
[ -f data/fashion-mnist/train-images-idx3-ubyte.gz ] || { echo "study_arch_gpu.sh: data/fashion-mnist missing (copy it along)" >&2; exit 1; }
CUVAE="$CUVAE" TAG="${TAG:-h200}" EPOCHS="${EPOCHS:-40}" bench/study_arch.sh fashion >"$out/study.log" 2>&1
rc=$?
tar czf "$out/results.tgz" bench/results/arch-fashion-*"${TAG:-h200}"* runs/arch/validate-*fashion* \
  runs/arch/*fashion*/metrics.csv runs/arch/*fashion*/config.json 2>>"$out/study.log"
tar cf - runs/arch/*fashion*/model.safetensors 2>>"$out/study.log" | split -b 15M - "$out/models.tar.part-"
tail -n 25 "$out/study.log"
echo "study_arch_gpu.sh: exit $rc; $(ls "$out" | tr '\n' ' ')"
exit $rc
