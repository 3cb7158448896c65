// GPU tests of the classifier kernels beyond the op table (tests/gpu_op_table.cpp compares every
// kernel with the CPU on every shape of its row): more rows or classes than one block or grid
// pass, unaligned views, in-place calls, exact sums, repeats bit for bit, bad labels,
// non-square augmentation, and a CUDA graph capture of all of them. Skipped with a reason where
// no GPU is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "core/tensor.h"
#include "kernels/augment.h"
#include "kernels/pool.h"
#include "kernels/residual.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::random_values;
using cuvae::test::to_device;
using cuvae::test::to_host;

namespace {

constexpr double kElemAtol = 1e-5, kElemRtol = 1e-4;  // elementwise outputs
constexpr double kRedAtol = 1e-4, kRedRtol = 1e-4;    // reductions (sums, means)

// A typed CUDA buffer holding `v` (int32 labels and indices, uint8 images).
template <typename T>
Buffer<T> upload(const std::vector<T>& v) {
  return Buffer<T>::from_vector(v, Device::CUDA);
}

std::vector<int32_t> random_labels(int64_t n, int64_t k, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int32_t> v(n);
  for (auto& e : v) e = static_cast<int32_t>(gen() % static_cast<uint64_t>(k));
  return v;
}

// ---- softmax cross-entropy --------------------------------------------------------------

void softmax_xent_gpu_vs_cpu(int64_t n, int64_t k) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " k=" << k);
  const uint64_t s = static_cast<uint64_t>(n * 131 + k);
  const auto logits = random_values<float>(n * k, -8, 8, s);
  const auto labels = random_labels(n, k, s + 1);
  std::vector<float> loss(n), dl(n * k), probs(n * k);
  float mean = 0;
  softmax_xent_cpu<float>(logits.data(), labels.data(), n, k, loss.data(), &mean, dl.data(),
                          probs.data());

  Context ctx(DeviceRequest::CUDA);
  Tensor tl = to_device(logits, {n, k});
  const IntBuffer dlab = upload(labels);
  Tensor tloss({n}, Device::CUDA), tmean({1}, Device::CUDA), tdl({n, k}, Device::CUDA),
      tprobs({n, k}, Device::CUDA);
  softmax_xent(ctx, tl, dlab, tloss, &tmean, &tdl, &tprobs);
  const std::vector<float> gmean = to_host(tmean);
  EXPECT_TRUE(all_close(gmean, std::vector<float>{mean}, 1e-6, 1e-5)) << "mean_loss";
  EXPECT_TRUE(all_close(to_host(tloss), loss, 1e-6, 1e-5)) << "loss";
  EXPECT_TRUE(all_close(to_host(tdl), dl, 1e-6 / n, 1e-5)) << "dlogits";
  EXPECT_TRUE(all_close(to_host(tprobs), probs, 1e-7, 1e-5)) << "probs";

  // A repeat is bitwise the same (fixed-order sums); loss only; dlogits over the logits.
  Tensor tmean2({1}, Device::CUDA);
  softmax_xent(ctx, tl, dlab, tloss, &tmean2, nullptr, nullptr);
  EXPECT_EQ(to_host(tmean2), gmean);
  softmax_xent(ctx, tl, dlab, tloss, nullptr, &tl, nullptr);
  EXPECT_EQ(to_host(tl), to_host(tdl)) << "dlogits written over the logits";
}

// The op table's softmax_xent row covers the training shapes; here the sizes at the kernel's
// limits, each with a repeat, the loss alone, and dlogits written over the logits.
TEST(GpuSoftmaxXent, SizesAtTheLimitsRepeatAndInPlace) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): softmax cross-entropy kernel vs CPU reference skipped";
  softmax_xent_gpu_vs_cpu(3, 33);       // one more class than lanes
  softmax_xent_gpu_vs_cpu(1000, 1024);  // the largest k; more rows than the mean block
  softmax_xent_gpu_vs_cpu(70000, 10);   // more rows than one grid pass (8192 blocks x 8)
}

TEST(GpuSoftmaxXent, BadLabelGivesNanLossAndLargeLogitsStayFinite) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): softmax cross-entropy label/overflow checks skipped";
  Context ctx(DeviceRequest::CUDA);
  Tensor tl = to_device({1000.0f, -1000.0f, 0.0f, -1000.0f, 1000.0f, 1000.0f}, {2, 3});
  const std::vector<int32_t> labels = {1, 2}, bad = {1, 3};
  const IntBuffer tlab = upload(labels), tbad = upload(bad);
  Tensor tloss({2}, Device::CUDA), tmean({1}, Device::CUDA), tdl({2, 3}, Device::CUDA);
  softmax_xent(ctx, tl, tlab, tloss, &tmean, &tdl, nullptr);
  const auto loss = to_host(tloss), dl = to_host(tdl);
  EXPECT_EQ(loss[0], 2000.0f);
  EXPECT_NEAR(loss[1], std::log(2.0f), 1e-6f);
  for (float v : dl) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(dl[0], 0.5f, 1e-7f);
  EXPECT_NEAR(dl[1], -0.5f, 1e-7f);
  softmax_xent(ctx, tl, tbad, tloss, &tmean, nullptr, nullptr);
  const auto bad_loss = to_host(tloss);
  EXPECT_EQ(bad_loss[0], 2000.0f);
  EXPECT_TRUE(std::isnan(bad_loss[1])) << "label 3 of 3 classes";
  EXPECT_TRUE(std::isnan(to_host(tmean)[0]));
  Tensor wide({2, 1025}, Device::CUDA), wide_loss({2}, Device::CUDA);
  EXPECT_THROW(softmax_xent(ctx, wide, tlab, wide_loss, nullptr, nullptr, nullptr), Error);
  // Labels in host memory on a CUDA context: refused before any kernel reads them.
  const IntBuffer host_labels = IntBuffer::from_vector(labels);
  EXPECT_THROW(softmax_xent(ctx, tl, host_labels, tloss, &tmean, nullptr, nullptr), Error);
}

// ---- SGD --------------------------------------------------------------------------------

// Three SGD steps on n parameters; `skew` shifts every GPU array by that many floats so the
// arrays are not 16-byte aligned (the scalar kernel) when skew % 4 != 0.
void sgd_gpu_vs_cpu(int64_t n, int64_t skew, float mu, float wd, bool nesterov) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " skew=" << skew << " mu=" << mu << " wd=" << wd
                                    << " nesterov=" << nesterov);
  std::vector<float> p = random_values<float>(n, -1, 1, n), buf(n, 0.0f);
  Context ctx(DeviceRequest::CUDA);
  std::vector<float> padded(n + skew, 0.0f);
  std::copy(p.begin(), p.end(), padded.begin() + skew);
  Tensor bp = to_device(padded, {n + skew}), bg({n + skew}, Device::CUDA),
         bb({n + skew}, Device::CUDA);
  Tensor tp = bp.rows(skew, n + skew), tg = bg.rows(skew, n + skew), tb = bb.rows(skew, n + skew);
  SgdConfig cfg;
  cfg.lr = 0.05f;
  cfg.momentum = mu;
  cfg.weight_decay = wd;
  cfg.nesterov = nesterov;
  for (int t = 1; t <= 3; ++t) {
    const auto g = random_values<float>(n, -1, 1, n + 10 * t);
    sgd_step_cpu<float>(p.data(), g.data(), buf.data(), n, cfg);
    Tensor src = to_device(g, {n});
    tg.copy_from(src, ctx.stream());
    sgd_step(ctx, tp, tg, tb, cfg);
  }
  EXPECT_TRUE(all_close(to_host(tp), p, kElemAtol, kElemRtol)) << "param";
  EXPECT_TRUE(all_close(to_host(tb), buf, kElemAtol, kElemRtol)) << "buf";
  if (skew > 0) {  // the element before the view is untouched
    EXPECT_EQ(to_host(bp)[skew - 1], 0.0f);
  }
}

// The op table's sgd_step row covers aligned arrays with the default momentum and weight decay;
// here views off a 16-byte boundary (the scalar path, leaving the element before them alone), no
// momentum, and other momentum and decay.
TEST(GpuSgd, UnalignedViewsAndNoMomentumMatchCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): SGD kernel vs CPU reference skipped";
  sgd_gpu_vs_cpu(1000003, 1, 0.9f, 5e-4f, true);   // unaligned: scalar path
  sgd_gpu_vs_cpu(1000003, 0, 0.0f, 1e-2f, false);  // no momentum: buf stays zero
  sgd_gpu_vs_cpu(3, 0, 0.5f, 0.5f, false);
  sgd_gpu_vs_cpu(7 * 13, 2, 0.9f, 5e-4f, true);
}

// ---- residual add -----------------------------------------------------------------------

// Forward, backward (also in place) and accumulate on n elements offset by `skew` floats.
// Sums and masks are exact in float, so the GPU must agree with the CPU bit for bit.
void residual_gpu_vs_cpu(int64_t n, int64_t skew, bool relu) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " skew=" << skew << " relu=" << relu);
  const auto a = random_values<float>(n, -1, 1, n), b = random_values<float>(n, -1, 1, n + 1),
             dy = random_values<float>(n, -1, 1, n + 2), acc0 = random_values<float>(n, -1, 1, 3);
  std::vector<float> y(n), d(n), acc = acc0;
  residual_add_cpu<float>(a.data(), b.data(), y.data(), n, relu);
  residual_add_backward_cpu<float>(y.data(), dy.data(), d.data(), n, relu);
  accumulate_cpu<float>(acc.data(), d.data(), n);

  Context ctx(DeviceRequest::CUDA);
  auto padded = [&](const std::vector<float>& v) {
    std::vector<float> out(n + skew, 0.0f);
    std::copy(v.begin(), v.end(), out.begin() + skew);
    return to_device(out, {n + skew});
  };
  Tensor ba = padded(a), bb = padded(b), bdy = padded(dy), bacc = padded(acc0);
  Tensor by({n + skew}, Device::CUDA), bd({n + skew}, Device::CUDA);
  Tensor ta = ba.rows(skew, n + skew), tb = bb.rows(skew, n + skew), tdy = bdy.rows(skew, n + skew),
         tacc = bacc.rows(skew, n + skew), ty = by.rows(skew, n + skew),
         td = bd.rows(skew, n + skew);
  residual_add(ctx, ta, tb, ty, relu);
  residual_add_backward(ctx, ty, tdy, td, relu);
  accumulate(ctx, tacc, td);
  EXPECT_TRUE(all_close(to_host(ty), y, 0.0, 0.0)) << "residual_add";
  EXPECT_TRUE(all_close(to_host(td), d, 0.0, 0.0)) << "residual_add_backward";
  EXPECT_TRUE(all_close(to_host(tacc), acc, 0.0, 0.0)) << "accumulate";
  // In place: y over a, d over dy.
  residual_add(ctx, ta, tb, ta, relu);
  residual_add_backward(ctx, ta, tdy, tdy, relu);
  EXPECT_TRUE(all_close(to_host(ta), y, 0.0, 0.0)) << "residual_add in place";
  EXPECT_TRUE(all_close(to_host(tdy), d, 0.0, 0.0)) << "residual_add_backward in place";
}

TEST(GpuResidual, MatchesCpuReference) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): residual add/backward/accumulate kernels vs CPU skipped";
  for (bool relu : {true, false}) {
    residual_gpu_vs_cpu(128 * 64 * 14 * 14 + 3, 0, relu);  // float4 path with a tail
    residual_gpu_vs_cpu(128 * 64 * 14 * 14 + 3, 1, relu);  // unaligned: scalar path
    residual_gpu_vs_cpu(7 * 13, 2, relu);
    residual_gpu_vs_cpu(1, 0, relu);
  }
}

// ---- global average pooling -------------------------------------------------------------

void pool_gpu_vs_cpu(int64_t n, int64_t c, int64_t h, int64_t w) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " c=" << c << " h=" << h << " w=" << w);
  const int64_t hw = h * w;
  const auto x = random_values<float>(n * c * hw, -2, 2, n + c + hw);
  const auto dy = random_values<float>(n * c, -1, 1, n * c);
  std::vector<float> y(n * c), dx(n * c * hw);
  global_avg_pool_cpu<float>(x.data(), y.data(), n, c, hw);
  global_avg_pool_backward_cpu<float>(dy.data(), dx.data(), n, c, hw);
  Context ctx(DeviceRequest::CUDA);
  Tensor tx = to_device(x, {n, c, h, w}), tdy = to_device(dy, {n, c});
  Tensor ty({n, c}, Device::CUDA), tdx({n, c, h, w}, Device::CUDA);
  global_avg_pool(ctx, tx, ty);
  global_avg_pool_backward(ctx, tdy, tdx);
  const auto gy = to_host(ty);
  EXPECT_TRUE(all_close(gy, y, kRedAtol, kRedRtol)) << "forward";
  EXPECT_TRUE(all_close(to_host(tdx), dx, 0.0, 0.0)) << "backward";  // one division each
  global_avg_pool(ctx, tx, ty);
  EXPECT_EQ(to_host(ty), gy) << "a repeat differs";
}

// The op table's global_avg_pool row covers the training shapes; here more rows than one grid
// pass and rows much longer than a warp, with the backward exact and the forward repeated.
TEST(GpuPool, PastOneGridPassExactBackwardAndRepeat) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): global average pooling kernels vs CPU reference skipped";
  pool_gpu_vs_cpu(2, 3, 33, 33);     // rows longer than a warp
  pool_gpu_vs_cpu(1000, 100, 2, 2);  // more rows than one grid pass
}

// ---- batch augmentation -----------------------------------------------------------------

void augment_gpu_vs_cpu(int64_t num, int64_t n, int64_t c, int64_t h, int64_t w, int pad,
                        bool flip) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " c=" << c << " h=" << h << " w=" << w
                                    << " pad=" << pad << " flip=" << flip);
#ifdef CUVAE_HAS_CUDA
  std::mt19937_64 gen(static_cast<uint64_t>(num + n + pad));
  std::vector<uint8_t> images(num * c * h * w), labels(num);
  for (auto& p : images) p = static_cast<uint8_t>(gen() & 0xff);
  for (auto& l : labels) l = static_cast<uint8_t>(gen() % 10);
  std::vector<int32_t> idx(n);
  for (auto& i : idx) i = static_cast<int32_t>(gen() % static_cast<uint64_t>(num));
  idx[0] = 0;
  idx[n - 1] = static_cast<int32_t>(num - 1);
  AugmentConfig cfg;
  cfg.pad = pad;
  cfg.flip = flip;
  const uint64_t seed = 0xa11ce + static_cast<uint64_t>(n), offset = 12;
  std::vector<float> ref(n * c * h * w);
  std::vector<int32_t> ref_labels(n);
  augment_batch_cpu(images.data(), labels.data(), idx.data(), n, c, h, w, cfg, seed, offset,
                    ref.data(), ref_labels.data());

  Context ctx(DeviceRequest::CUDA);
  const Buffer<uint8_t> timg = upload(images), tlab = upload(labels);
  const IntBuffer tidx = upload(idx);
  Tensor out({n, c, h, w}, Device::CUDA);
  IntBuffer tlab_out(n, Device::CUDA);
  augment_batch_cuda(timg.data(), tlab.data(), tidx.data(), n, c, h, w, cfg, seed, offset, out.data(),
                     tlab_out.data(), ctx.stream());
  EXPECT_TRUE(all_close(to_host(out), ref, 0.0, 0.0)) << "images";
  EXPECT_EQ(tlab_out.download(n), ref_labels) << "labels";
#endif
}

// The op table's gather_batch / augment_batch row covers square images (MNIST and CIFAR-style);
// here random images and indices with the first and last image, no crop at 28x28, non-square
// images, and a pad wider than the image, bit for bit.
TEST(GpuAugment, NonSquareAndWidePadBitIdenticalToCpu) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): batch augmentation kernel vs CPU reference skipped";
  augment_gpu_vs_cpu(1000, 129, 1, 28, 28, 0, false);  // a plain gather
  augment_gpu_vs_cpu(20, 7, 3, 5, 9, 3, true);         // non-square
  augment_gpu_vs_cpu(1, 1, 1, 1, 1, 1, true);          // pad wider than the image
}

// ---- CUDA graph capture -----------------------------------------------------------------

// A classifier training step's kernels neither allocate nor synchronise, so they can be
// captured into a CUDA graph; the replayed graph must give the eager results.
TEST(GpuClassifierGraph, KernelsCaptureAndReplay) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): CUDA graph capture of the kernels skipped";
#ifdef CUVAE_HAS_CUDA
  const int64_t num = 64, n = 16, c = 10, h = 6, w = 6, k = c;  // pooled features as logits
  std::mt19937_64 gen(5);
  std::vector<uint8_t> images(num * h * w), labels(num);
  for (auto& p : images) p = static_cast<uint8_t>(gen() & 0xff);
  for (auto& l : labels) l = static_cast<uint8_t>(gen() % k);
  std::vector<int32_t> idx(n);
  for (auto& i : idx) i = static_cast<int32_t>(gen() % num);
  Context ctx(DeviceRequest::CUDA);
  const Buffer<uint8_t> timg = upload(images), tlab = upload(labels);
  const IntBuffer tidx = upload(idx);
  Tensor x({n, 1, h, w}, Device::CUDA);
  IntBuffer ylab(n, Device::CUDA);
  Tensor feat = to_device(random_values<float>(n * c * h * w, -1, 1, 1), {n, c, h, w});
  Tensor skip = to_device(random_values<float>(n * c * h * w, -1, 1, 2), {n, c, h, w});
  Tensor weight = to_device(random_values<float>(c * k, -1, 1, 3), {c * k});
  Tensor act({n, c, h, w}, Device::CUDA), dact({n, c, h, w}, Device::CUDA),
      pooled({n, c}, Device::CUDA), loss({n}, Device::CUDA), mean({1}, Device::CUDA),
      dlogits({n, k}, Device::CUDA), buf({c * k}, Device::CUDA), dfeat({n, c, h, w}, Device::CUDA);
  AugmentConfig acfg;
  acfg.pad = 2;
  SgdConfig scfg;
  auto step = [&] {
    augment_batch_cuda(timg.data(), tlab.data(), tidx.data(), n, 1, h, w, acfg, 7, 1, x.data(), ylab.data(),
                       ctx.stream());
    residual_add(ctx, feat, skip, act, true);
    global_avg_pool(ctx, act, pooled);
    softmax_xent(ctx, pooled, ylab, loss, &mean, &dlogits, nullptr);
    global_avg_pool_backward(ctx, pooled, dact);
    residual_add_backward(ctx, act, dact, dfeat, true);
    accumulate(ctx, dfeat, skip);
    Tensor grad = dfeat.reshaped({n * c * h * w}).rows(0, c * k);
    sgd_step(ctx, weight, grad, buf, scfg);
  };
  Tensor weight0 = weight.clone();
  cuvae::test::device_sync();
  step();
  const auto eager_x = to_host(x), eager_mean = to_host(mean), eager_w = to_host(weight),
             eager_dfeat = to_host(dfeat);

  weight.copy_from(weight0, ctx.stream());
  buf.zero(ctx.stream());
  ctx.synchronize();
  test::replay_once(static_cast<cudaStream_t>(ctx.stream()), step);
  EXPECT_EQ(to_host(x), eager_x);
  EXPECT_EQ(to_host(mean), eager_mean);
  EXPECT_EQ(to_host(weight), eager_w);
  EXPECT_EQ(to_host(dfeat), eager_dfeat);
#endif
}

}  // namespace
