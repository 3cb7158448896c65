// The exact t-SNE gradient kernel past the op table's tsne row (at most 500 points, one
// shared-memory tile) against its CPU reference, |gpu − ref| ≤ 1e-4·max|ref| + 1e-4·|ref|, and
// repeated bit for bit; and a small exact-cuda t-SNE run. Skipped, with the reason printed, where
// no GPU is usable.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/tsne.h"
#include "numerics/embed.h"
#include "tests/synthetic_data.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::random_values;
using cuvae::test::to_device;
using cuvae::test::to_host;

namespace {


void grad_gpu_vs_cpu(int64_t n, float exaggeration, double spread) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " exaggeration=" << exaggeration);
  const auto P = cuvae::test::random_joint_p<float>(n, static_cast<uint64_t>(n) * 7 + 1);
  const auto Y = random_values<float>(static_cast<size_t>(2 * n), -spread, spread, n + 3);
  std::vector<double> Pd(P.begin(), P.end()), Yd(Y.begin(), Y.end()), ref(2 * n);
  tsne_grad_exact_cpu<double>(Pd.data(), Yd.data(), n, exaggeration, ref.data(), nullptr);
  double gmax = 0;
  for (double v : ref) gmax = std::max(gmax, std::fabs(v));

  Context ctx(DeviceRequest::CUDA);
  Tensor dP = to_device(P, {n, n}), dY = to_device(Y, {n, 2}), dG({n, 2}, Device::CUDA);
  tsne_grad_exact(ctx, dP, dY, exaggeration, dG);
  const auto got = to_host(dG);
  EXPECT_TRUE(all_close(got, ref, 1e-4 * gmax, 1e-4));
  // Deterministic: a second launch gives the same bits.
  tsne_grad_exact(ctx, dP, dY, exaggeration, dG);
  EXPECT_EQ(to_host(dG), got);
}

}  // namespace

TEST(GpuTsne, ExactGradientPastOneTileMatchesCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): t-SNE gradient kernel vs CPU reference skipped";
  grad_gpu_vs_cpu(1025, 12.0f, 1e-3);  // two shared-memory tiles, a tiny early map
  grad_gpu_vs_cpu(2500, 1.0f, 50.0);   // three tiles, a wide map
}

TEST(GpuTsne, ExactCudaRunSeparatesClusters) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): exact-cuda t-SNE run skipped";
  const int64_t n = 600, d = 8;
  std::mt19937_64 gen(5);
  std::normal_distribution<double> N(0, 1);
  std::vector<float> x(static_cast<size_t>(n * d));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 3;
    for (int64_t k = 0; k < d; ++k)
      x[i * d + k] = static_cast<float>((k == labels[i] ? 10.0 : 0.0) + N(gen));
  }
  Context ctx(DeviceRequest::CUDA);
  TsneOptions o;
  o.perplexity = 20;
  o.iters = 500;
  const TsneResult a = tsne_2d(ctx, x.data(), n, d, o);
  EXPECT_EQ(a.method, "exact-cuda");
  EXPECT_TRUE(std::isfinite(a.kl) && a.kl > 0) << a.kl;
  EXPECT_GE(knn_accuracy(a.y.data(), n, 2, labels.data(), 5), 0.99);
  const TsneResult b = tsne_2d(ctx, x.data(), n, d, o);
  EXPECT_EQ(a.y, b.y) << "two exact-cuda runs differ";
}
