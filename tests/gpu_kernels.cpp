// GPU tests of kernels/ beyond the op table (tests/gpu_op_table.cpp compares every kernel with
// the CPU on every shape of its row): sizes past one block or one grid pass, unaligned views,
// in-place calls, exact sums, evaluation passes repeated bit for bit, CUDA graph capture and
// stream order; |gpu - ref| <= atol + rtol*|ref| against the CPU reference. Skipped with a reason
// where no GPU is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/adam.h"
#include "kernels/bias.h"
#include "kernels/elbo.h"
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

// The op table's elbo row covers the training shapes; here sizes past one block, binarized
// input with the MSE loss, and each time the evaluation pass (no gradients) repeated.
TEST(GpuElbo, PastOneBlockAndEvalPassRepeatsBitForBit) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): ELBO kernel vs CPU reference skipped";
  elbo_gpu_vs_cpu(3, 3 * 32 * 32, 300, 1.0f, true);  // p and d larger than one block
  elbo_gpu_vs_cpu(1000, 10, 2, 0.0f, false);         // n larger than the mean block
  elbo_gpu_vs_cpu(5, 3072, 3, 0.0f, true, true);     // binarized input, MSE loss
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

// The op table's reparameterize row covers the training sizes; here more elements than one
// grid pass.
TEST(GpuReparameterize, MoreElementsThanOneGridPass) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): reparameterize/sample_normal kernels vs CPU reference skipped";
  reparameterize_gpu_vs_cpu(3 * 1000 * 1000 + 1);
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

// The op table's adam_step row covers aligned arrays (the float4 path and its tails); here views
// that start off a 16-byte boundary (the scalar path), leaving the element before them alone.
TEST(GpuAdam, UnalignedViewsMatchCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): Adam kernel vs CPU reference skipped";
  adam_gpu_vs_cpu(1000003, 1, 1e-2f);
  adam_gpu_vs_cpu(7 * 13, 2, 0.0f);
}

// ---- activations ------------------------------------------------------------------------

// The op table's activation row covers separate input and output; here y written over x and dx
// over dy.
TEST(GpuActivation, InPlaceMatchesCpuReference) {
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
      activation_forward(ctx, a, tx, tx, slope);
      activation_backward(ctx, a, tx, tdy, tdy, slope);
      EXPECT_TRUE(all_close(to_host(tx), y, kElemAtol, kElemRtol)) << "forward in place";
      EXPECT_TRUE(all_close(to_host(tdy), dx, kElemAtol, kElemRtol)) << "backward in place";
    }
  }
}

// ---- bias -------------------------------------------------------------------------------

// Adds a bias of small integers to small integers and takes the bias gradient over a buffer
// holding 123s: every sum is exact, so GPU and CPU must agree exactly.
void bias_gpu_vs_cpu(int64_t n, int64_t c, int64_t hw) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " c=" << c << " hw=" << hw);
  auto y = random_values<float>(n * c * hw, -1, 1, n + c + hw);
  auto bias = random_values<float>(c, -1, 1, c);
  for (auto& e : y) e = std::round(e * 8);
  for (auto& e : bias) e = std::round(e * 8);
  Context ctx(DeviceRequest::CUDA);
  Tensor ty = to_device(y, {n, c, hw}), tb = to_device(bias, {c});
  Tensor tdb = to_device(std::vector<float>(c, 123.0f), {c});
  add_bias_nchw(ctx, ty, tb);
  add_bias_nchw_cpu<float>(y.data(), bias.data(), n, c, hw);
  std::vector<float> db(c);
  bias_grad_nchw_cpu<float>(y.data(), db.data(), n, c, hw);
  bias_grad_nchw(ctx, ty, tdb);
  EXPECT_TRUE(all_close(to_host(ty), y, 0.0, 0.0)) << "add_bias";
  EXPECT_TRUE(all_close(to_host(tdb), db, 0.0, 0.0)) << "bias_grad";
}

// The op table's bias row covers random floats; here small integers, whose sums are exact in
// any order, so GPU and CPU must agree exactly, and a gradient written over a non-zero buffer.
TEST(GpuBias, SmallIntegersAgreeExactly) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): bias add/grad kernels vs CPU reference skipped";
  bias_gpu_vs_cpu(128, 32, 14 * 14);
  bias_gpu_vs_cpu(7, 13, 3);
  bias_gpu_vs_cpu(128, 256, 1);  // Linear layer
  bias_gpu_vs_cpu(1, 1, 1);
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
