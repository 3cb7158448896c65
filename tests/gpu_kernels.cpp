// GPU tests of kernels/: every CUDA kernel (float) against its CPU reference on the same
// inputs, |gpu - ref| <= atol + rtol*|ref|, forward and backward, with sizes that exercise
// tails (odd sizes, n % 4 != 0, unaligned views). Skipped with a reason where no GPU is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include "core/context.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "jobs/batching.h"
#include "kernels/activation.h"
#include "kernels/adam.h"
#include "kernels/batch.h"
#include "kernels/bias.h"
#include "kernels/conditional.h"
#include "kernels/elbo.h"
#include "kernels/free_bits.h"
#include "kernels/reparameterize.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::random_values;
using cuvae::test::to_device;
using cuvae::test::to_host;

namespace {

constexpr double kElemAtol = 1e-5, kElemRtol = 1e-4;  // elementwise outputs
constexpr double kRedAtol = 1e-4, kRedRtol = 1e-4;    // reductions (sums, means)

// ---- ELBO -------------------------------------------------------------------------------

void elbo_gpu_vs_cpu(int64_t n, int64_t p, int64_t d, float beta, bool binarize, bool mse = false) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " p=" << p << " d=" << d << " beta=" << beta
                                    << " binarize=" << binarize << " mse=" << mse);
  const uint64_t s = static_cast<uint64_t>(n * 7919 + p * 31 + d);
  const auto logits = random_values<float>(n * p, -6, 6, s);
  const auto x = random_values<float>(n * p, 0, 1, s + 1);
  const auto mu = random_values<float>(n * d, -2, 2, s + 2);
  const auto logvar = random_values<float>(n * d, -3, 2, s + 3);
  ElboConfig cfg;
  cfg.n = n;
  cfg.p = p;
  cfg.d = d;
  cfg.beta = beta;
  cfg.binarize = binarize;
  cfg.mse = mse;
  cfg.seed = 0x5eed + s;
  cfg.offset = 17;
  std::vector<float> recon(n), kl(n), dl(n * p), dm(n * d), dv(n * d);
  float loss = 0;
  elbo_cpu<float>(logits.data(), x.data(), mu.data(), logvar.data(), recon.data(), kl.data(), &loss,
                  dl.data(), dm.data(), dv.data(), cfg);

  Context ctx(DeviceRequest::CUDA);
  Tensor tl = to_device(logits, {n, p}), tx = to_device(x, {n, p});
  Tensor tm = to_device(mu, {n, d}), tv = to_device(logvar, {n, d});
  Tensor trec({n}, Device::CUDA), tkl({n}, Device::CUDA), tloss({1}, Device::CUDA);
  Tensor tdl({n, p}, Device::CUDA), tdm({n, d}, Device::CUDA), tdv({n, d}, Device::CUDA);
  elbo(ctx, tl, tx, tm, tv, &trec, &tkl, tloss, &tdl, &tdm, &tdv, cfg);
  const std::vector<float> gloss = to_host(tloss);
  EXPECT_TRUE(all_close(gloss, std::vector<float>{loss}, kRedAtol, kRedRtol)) << "loss";
  EXPECT_TRUE(all_close(to_host(trec), recon, kRedAtol, kRedRtol)) << "recon";
  EXPECT_TRUE(all_close(to_host(tkl), kl, kRedAtol, kRedRtol)) << "kl";
  EXPECT_TRUE(all_close(to_host(tdl), dl, kElemAtol, kElemRtol)) << "dlogits";
  EXPECT_TRUE(all_close(to_host(tdm), dm, kElemAtol, kElemRtol)) << "dmu";
  EXPECT_TRUE(all_close(to_host(tdv), dv, kElemAtol, kElemRtol)) << "dlogvar";

  // Eval mode (no gradients) and a repeat: the loss is bitwise the same (fixed-order sums).
  Tensor tloss2({1}, Device::CUDA);
  elbo(ctx, tl, tx, tm, tv, &trec, &tkl, tloss2, nullptr, nullptr, nullptr, cfg);
  EXPECT_EQ(to_host(tloss2), gloss);
}

TEST(GpuElbo, AutoencoderMseMatchesCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): ELBO (MSE) kernel vs CPU reference skipped";
  elbo_gpu_vs_cpu(1, 1, 1, 0.0f, false, true);
  elbo_gpu_vs_cpu(7, 784, 32, 0.0f, false, true);
  elbo_gpu_vs_cpu(5, 3072, 3, 0.0f, true, true);
}

TEST(GpuElbo, MatchesCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): ELBO kernel vs CPU reference skipped";
  elbo_gpu_vs_cpu(128, 784, 32, 1.0f, false);
  elbo_gpu_vs_cpu(128, 784, 32, 4.0f, true);
  elbo_gpu_vs_cpu(7, 13, 5, 0.5f, false);
  elbo_gpu_vs_cpu(7, 13, 5, 0.5f, true);
  elbo_gpu_vs_cpu(1, 1, 1, 2.0f, false);
  elbo_gpu_vs_cpu(3, 3 * 32 * 32, 300, 1.0f, true);  // p and d larger than one block
  elbo_gpu_vs_cpu(1000, 10, 2, 0.0f, false);         // n larger than the mean block
}

// ---- reparameterize ---------------------------------------------------------------------

void reparameterize_gpu_vs_cpu(int64_t n) {
  SCOPED_TRACE(::testing::Message() << "n=" << n);
  const auto mu = random_values<float>(n, -2, 2, n);
  const auto lv = random_values<float>(n, -4, 2, n + 1);
  const auto dz = random_values<float>(n, -1, 1, n + 2);
  const auto prior = random_values<float>(n, -1, 1, n + 3);  // what the ELBO left in dmu/dlogvar
  std::vector<float> eps(n), z(n), dm(n), dv(n), dm_acc = prior, dv_acc = prior, smp(n);
  reparameterize_forward_cpu<float>(mu.data(), lv.data(), eps.data(), z.data(), n, 77, 5);
  reparameterize_backward_cpu<float>(dz.data(), eps.data(), lv.data(), dm.data(), dv.data(), n,
                                     false);
  reparameterize_backward_cpu<float>(dz.data(), eps.data(), lv.data(), dm_acc.data(), dv_acc.data(),
                                     n, true);
  sample_normal_cpu<float>(smp.data(), n, 78, 6);

  Context ctx(DeviceRequest::CUDA);
  Tensor tmu = to_device(mu, {n}), tlv = to_device(lv, {n}), tdz = to_device(dz, {n});
  Tensor teps({n}, Device::CUDA), tz({n}, Device::CUDA), tdm({n}, Device::CUDA),
      tdv({n}, Device::CUDA), tsmp({n}, Device::CUDA);
  Tensor tdm_acc = to_device(prior, {n}), tdv_acc = to_device(prior, {n});
  reparameterize_forward(ctx, tmu, tlv, teps, tz, 77, 5);
  reparameterize_backward(ctx, tdz, teps, tlv, tdm, tdv, false);
  reparameterize_backward(ctx, tdz, teps, tlv, tdm_acc, tdv_acc, true);
  sample_normal(ctx, tsmp, 78, 6);
  EXPECT_TRUE(all_close(to_host(teps), eps, kElemAtol, kElemRtol)) << "eps";
  EXPECT_TRUE(all_close(to_host(tz), z, kElemAtol, kElemRtol)) << "z";
  EXPECT_TRUE(all_close(to_host(tdm), dm, kElemAtol, kElemRtol)) << "dmu";
  EXPECT_TRUE(all_close(to_host(tdv), dv, kElemAtol, kElemRtol)) << "dlogvar";
  EXPECT_TRUE(all_close(to_host(tdm_acc), dm_acc, kElemAtol, kElemRtol)) << "dmu (accumulate)";
  EXPECT_TRUE(all_close(to_host(tdv_acc), dv_acc, kElemAtol, kElemRtol)) << "dlogvar (accumulate)";
  EXPECT_TRUE(all_close(to_host(tsmp), smp, kElemAtol, kElemRtol)) << "sample_normal";
}

TEST(GpuReparameterize, MatchesCpuReference) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): reparameterize/sample_normal kernels vs CPU reference skipped";
  reparameterize_gpu_vs_cpu(128 * 32);
  reparameterize_gpu_vs_cpu(7 * 13);
  reparameterize_gpu_vs_cpu(1);
  reparameterize_gpu_vs_cpu(3 * 1000 * 1000 + 1);  // more elements than one grid pass
}

// ---- Adam -------------------------------------------------------------------------------

// Three Adam steps on n parameters; `skew` shifts every GPU array by that many floats so the
// arrays are not 16-byte aligned (the scalar kernel) when skew % 4 != 0.
void adam_gpu_vs_cpu(int64_t n, int64_t skew, float wd) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " skew=" << skew << " wd=" << wd);
  std::vector<float> p = random_values<float>(n, -1, 1, n), m(n, 0.0f), v(n, 0.0f);
  Context ctx(DeviceRequest::CUDA);
  std::vector<float> padded(n + skew, 0.0f);
  std::copy(p.begin(), p.end(), padded.begin() + skew);
  Tensor bp = to_device(padded, {n + skew}), bg({n + skew}, Device::CUDA),
         bm({n + skew}, Device::CUDA), bv({n + skew}, Device::CUDA);
  Tensor tp = bp.rows(skew, n + skew), tg = bg.rows(skew, n + skew), tm = bm.rows(skew, n + skew),
         tv = bv.rows(skew, n + skew);
  AdamConfig cfg;
  cfg.lr = 3e-3f;
  cfg.weight_decay = wd;
  for (int64_t t = 1; t <= 3; ++t) {
    const auto g = random_values<float>(n, -1, 1, n + 10 * t);
    cfg.step = t;
    adam_step_cpu<float>(p.data(), g.data(), m.data(), v.data(), n, cfg);
    Tensor src = to_device(g, {n});
    tg.copy_from(src, ctx.stream());
    adam_step(ctx, tp, tg, tm, tv, cfg);
  }
  EXPECT_TRUE(all_close(to_host(tp), p, kElemAtol, kElemRtol)) << "param";
  EXPECT_TRUE(all_close(to_host(tm), m, kElemAtol, kElemRtol)) << "m";
  EXPECT_TRUE(all_close(to_host(tv), v, kElemAtol, kElemRtol)) << "v";
  if (skew > 0) {  // the element before the view is untouched
    EXPECT_EQ(to_host(bp)[skew - 1], 0.0f);
  }
}

TEST(GpuAdam, MatchesCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): Adam kernel vs CPU reference skipped";
  adam_gpu_vs_cpu(1000003, 0, 0.0f);  // float4 path with a 3-element tail
  adam_gpu_vs_cpu(1000003, 0, 1e-2f);
  adam_gpu_vs_cpu(1000003, 1, 1e-2f);  // unaligned: scalar path
  adam_gpu_vs_cpu(1, 0, 0.0f);
  adam_gpu_vs_cpu(3, 0, 0.0f);
  adam_gpu_vs_cpu(5, 0, 0.5f);
  adam_gpu_vs_cpu(7 * 13, 2, 0.0f);
}

// ---- activations ------------------------------------------------------------------------

TEST(GpuActivation, MatchesCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): activation kernels vs CPU reference skipped";
  Context ctx(DeviceRequest::CUDA);
  for (int64_t n : {int64_t{128 * 784 + 7}, int64_t{7 * 13}, int64_t{1}}) {
    const auto x = random_values<float>(n, -8, 8, n);
    const auto dy = random_values<float>(n, -1, 1, n + 1);
    for (Activation a :
         {Activation::None, Activation::ReLU, Activation::Sigmoid, Activation::LeakyReLU}) {
      SCOPED_TRACE(::testing::Message() << activation_name(a) << " n=" << n);
      const float slope = 0.05f;
      std::vector<float> y(n), dx(n);
      activation_forward_cpu<float>(a, x.data(), y.data(), n, slope);
      activation_backward_cpu<float>(a, y.data(), dy.data(), dx.data(), n, slope);
      Tensor tx = to_device(x, {n}), tdy = to_device(dy, {n});
      Tensor ty({n}, Device::CUDA), tdx({n}, Device::CUDA);
      activation_forward(ctx, a, tx, ty, slope);
      activation_backward(ctx, a, ty, tdy, tdx, slope);
      EXPECT_TRUE(all_close(to_host(ty), y, kElemAtol, kElemRtol)) << "forward";
      EXPECT_TRUE(all_close(to_host(tdx), dx, kElemAtol, kElemRtol)) << "backward";
      // In place: y over x, dx over dy.
      activation_forward(ctx, a, tx, tx, slope);
      activation_backward(ctx, a, tx, tdy, tdy, slope);
      EXPECT_TRUE(all_close(to_host(tx), y, kElemAtol, kElemRtol)) << "forward in place";
      EXPECT_TRUE(all_close(to_host(tdy), dx, kElemAtol, kElemRtol)) << "backward in place";
    }
  }
}

// ---- bias -------------------------------------------------------------------------------

void bias_gpu_vs_cpu(int64_t n, int64_t c, int64_t hw, bool integers) {
  SCOPED_TRACE(::testing::Message()
               << "n=" << n << " c=" << c << " hw=" << hw << " integers=" << integers);
  auto y = random_values<float>(n * c * hw, -1, 1, n + c + hw);
  auto bias = random_values<float>(c, -1, 1, c);
  if (integers) {  // small integers: every sum is exact, so GPU and CPU must agree exactly
    for (auto& e : y) e = std::round(e * 8);
    for (auto& e : bias) e = std::round(e * 8);
  }
  Context ctx(DeviceRequest::CUDA);
  Tensor ty = to_device(y, {n, c, hw}), tb = to_device(bias, {c});
  Tensor tdb = to_device(std::vector<float>(c, 123.0f), {c});
  add_bias_nchw(ctx, ty, tb);
  add_bias_nchw_cpu<float>(y.data(), bias.data(), n, c, hw);
  std::vector<float> db(c);
  bias_grad_nchw_cpu<float>(y.data(), db.data(), n, c, hw);
  bias_grad_nchw(ctx, ty, tdb);
  const double atol = integers ? 0.0 : kElemAtol, rtol = integers ? 0.0 : kElemRtol;
  EXPECT_TRUE(all_close(to_host(ty), y, atol, rtol)) << "add_bias";
  EXPECT_TRUE(all_close(to_host(tdb), db, integers ? 0.0 : kRedAtol, integers ? 0.0 : kRedRtol))
      << "bias_grad";
}

TEST(GpuBias, MatchesCpuReference) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): bias add/grad kernels vs CPU reference skipped";
  for (bool integers : {true, false}) {
    bias_gpu_vs_cpu(128, 32, 14 * 14, integers);
    bias_gpu_vs_cpu(7, 13, 3, integers);
    bias_gpu_vs_cpu(128, 256, 1, integers);  // Linear layer
    bias_gpu_vs_cpu(1, 1, 1, integers);
  }
}

// ---- batch gather -----------------------------------------------------------------------

TEST(GpuBatch, GatherMatchesCpuExactly) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): gather_batch kernel vs CPU reference skipped";
#ifdef CUVAE_HAS_CUDA
  const int64_t num = 1000, pixels = 784, n = 129;
  std::mt19937 gen(3);
  std::vector<uint8_t> images(num * pixels);
  for (auto& b : images) b = static_cast<uint8_t>(gen() & 0xff);
  std::vector<int32_t> idx(n);
  for (auto& i : idx) i = static_cast<int32_t>(gen() % num);
  idx[0] = 0;
  idx[n - 1] = static_cast<int32_t>(num - 1);
  std::vector<float> ref(n * pixels);
  gather_batch_cpu(images.data(), idx.data(), n, pixels, ref.data());

  Context ctx(DeviceRequest::CUDA);
  void* dimg = device_malloc(images.size());
  void* didx = device_malloc(idx.size() * sizeof(int32_t));
  Tensor out({n, pixels}, Device::CUDA);
  memcpy_any(dimg, Device::CUDA, images.data(), Device::CPU, images.size());
  memcpy_any(didx, Device::CUDA, idx.data(), Device::CPU, idx.size() * sizeof(int32_t));
  cuvae::test::device_sync();
  gather_batch_cuda(static_cast<const uint8_t*>(dimg), static_cast<const int32_t*>(didx), n, pixels,
                    out.data(), ctx.stream());
  const auto got = to_host(out);
  device_free(dimg);
  device_free(didx);
  EXPECT_TRUE(all_close(got, ref, 0.0, 0.0));
#endif
}

// ---- CUDA graph capture -----------------------------------------------------------------

// The kernels of a training step must neither allocate nor synchronise, so they can be
// captured into a CUDA graph; the replayed graph must give the eager results.
TEST(GpuGraph, TrainingStepKernelsCaptureAndReplay) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): CUDA graph capture of the kernels skipped";
#ifdef CUVAE_HAS_CUDA
  const int64_t n = 16, p = 49, d = 8;
  Context ctx(DeviceRequest::CUDA);
  Tensor logits = to_device(random_values<float>(n * p, -3, 3, 1), {n, p});
  Tensor x = to_device(random_values<float>(n * p, 0, 1, 2), {n, p});
  Tensor mu = to_device(random_values<float>(n * d, -1, 1, 3), {n, d});
  Tensor lv = to_device(random_values<float>(n * d, -1, 1, 4), {n, d});
  Tensor bias = to_device(random_values<float>(p, -1, 1, 5), {p});
  Tensor eps({n, d}, Device::CUDA), z({n, d}, Device::CUDA), recon({n}, Device::CUDA),
      kl({n}, Device::CUDA), loss({1}, Device::CUDA), dl({n, p}, Device::CUDA),
      dm({n, d}, Device::CUDA), dv({n, d}, Device::CUDA), db({p}, Device::CUDA),
      m({p}, Device::CUDA), v({p}, Device::CUDA), act({n, p}, Device::CUDA);
  ElboConfig cfg;
  cfg.binarize = true;
  cfg.seed = 9;
  AdamConfig acfg;
  auto step = [&] {
    reparameterize_forward(ctx, mu, lv, eps, z, 9, 1);
    activation_forward(ctx, Activation::Sigmoid, logits, act);
    add_bias_nchw(ctx, act, bias);
    elbo(ctx, act, x, mu, lv, &recon, &kl, loss, &dl, &dm, &dv, cfg);
    reparameterize_backward(ctx, z, eps, lv, dm, dv, true);
    bias_grad_nchw(ctx, dl, db);
    adam_step(ctx, bias, db, m, v, acfg);
  };
  Tensor bias0 = bias.clone();
  cuvae::test::device_sync();
  step();
  const auto eager_loss = to_host(loss), eager_bias = to_host(bias), eager_dv = to_host(dv);

  bias.copy_from(bias0, ctx.stream());
  m.zero(ctx.stream());
  v.zero(ctx.stream());
  ctx.synchronize();
  test::replay_once(static_cast<cudaStream_t>(ctx.stream()), step);
  EXPECT_EQ(to_host(loss), eager_loss);
  EXPECT_EQ(to_host(bias), eager_bias);
  EXPECT_EQ(to_host(dv), eager_dv);
#endif
}

}  // namespace

// ---- CVAE one-hot concatenation and free bits ------------------------------------------

TEST(GpuConditional, ConcatTakeColumnsAndFreeBitsMatchCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): concat_onehot/take_columns/free_bits vs CPU reference skipped";
  Context ctx(DeviceRequest::CUDA);
  for (auto [n, f, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 2}, {7, 3136, 10}, {5, 33, 3}}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n << " f=" << f << " k=" << k);
    const auto feat = random_values<float>(n * f, -1, 1, static_cast<uint64_t>(n + f));
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7) % k);
    std::vector<float> out(static_cast<size_t>(n * (f + k))), back(static_cast<size_t>(n * f));
    concat_onehot_cpu<float>(feat.data(), labels.data(), n, f, k, out.data());
    take_columns_cpu<float>(out.data(), n, f, k, back.data());
    IntBuffer y(n, Device::CUDA);
    y.upload(labels);
    Tensor tf = to_device(feat, {n, f}), to({n, f + k}, Device::CUDA), tb({n, f}, Device::CUDA);
    concat_onehot(ctx, tf, y, k, to);
    take_columns(ctx, to, k, tb);
    EXPECT_EQ(to_host(to), out);
    EXPECT_EQ(to_host(tb), back);
  }
  for (auto [n, d] : {std::pair<int64_t, int64_t>{1, 1}, {128, 32}, {300, 7}}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n << " d=" << d);
    const auto mu = random_values<float>(n * d, -1.5, 1.5, static_cast<uint64_t>(n * 3 + d));
    const auto lv = random_values<float>(n * d, -2, 1, static_cast<uint64_t>(n * 5 + d));
    auto dm = random_values<float>(n * d, -1, 1, 7), dv = random_values<float>(n * d, -1, 1, 8);
    std::vector<float> kl(static_cast<size_t>(d));
    float loss = 3.0f;
    Tensor tm = to_device(mu, {n, d}), tv = to_device(lv, {n, d}), tdm = to_device(dm, {n, d}),
           tdv = to_device(dv, {n, d}), tkl({d}, Device::CUDA), tl = to_device(std::vector<float>{3.0f}, {1});
    free_bits_cpu<float>(mu.data(), lv.data(), n, d, 0.6f, 2.0f, dm.data(), dv.data(), kl.data(), &loss);
    free_bits(ctx, tm, tv, 0.6f, 2.0f, tdm, tdv, tkl, tl);
    EXPECT_TRUE(all_close(to_host(tkl), kl, kRedAtol, kRedRtol)) << "kl_dim";
    EXPECT_TRUE(all_close(to_host(tdm), dm, 0, 0)) << "dmu";
    EXPECT_TRUE(all_close(to_host(tdv), dv, 0, 0)) << "dlogvar";
    EXPECT_TRUE(all_close(to_host(tl), std::vector<float>{loss}, kRedAtol, kRedRtol)) << "loss";
  }
}

// ---- stream order -------------------------------------------------------------------------

// The context's stream is non-blocking and every CUDA file uses the per-thread default stream,
// so a host read is ordered after the kernels only because memcpy_any queues it on the context's
// stream. 200 Adam steps on 4M parameters keep the GPU busy long enough that a read on any
// other stream would see an early state.
TEST(GpuStreamOrder, HostReadsFollowQueuedKernels) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): host reads after queued kernels skipped";
  Context ctx(DeviceRequest::CUDA);
  ASSERT_EQ(current_stream(), ctx.stream());
  const int64_t n = int64_t{1} << 22;
  Tensor p({n}, Device::CUDA), g({n}, Device::CUDA), m({n}, Device::CUDA), v({n}, Device::CUDA);
  g.copy_from(Tensor::from_vector(std::vector<float>(static_cast<size_t>(n), 1.0f), {n}));
  AdamConfig cfg;
  cfg.lr = 1e-3f;
  for (int t = 1; t <= 200; ++t) {
    cfg.step = t;
    adam_step(ctx, p, g, m, v, cfg);
  }
  // A constant gradient moves every parameter by lr per step (bias-corrected m/sqrt(v) = 1).
  const std::vector<float> host = p.to_vector();
  EXPECT_NEAR(host.front(), -0.2f, 1e-4f);
  EXPECT_NEAR(host.back(), -0.2f, 1e-4f);
  Tensor fresh({n}, Device::CUDA);  // zeroed on the context's stream, read back after it
  const std::vector<float> z = fresh.to_vector();
  EXPECT_EQ(*std::max_element(z.begin(), z.end()), 0.0f);
  EXPECT_EQ(*std::min_element(z.begin(), z.end()), 0.0f);
}
