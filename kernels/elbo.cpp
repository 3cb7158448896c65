// The Tensor-level elbo op: checks shapes and devices, then picks the CPU reference
// (elbo_cpu.cpp), the CUDA kernels (elbo.cu) or the emulated device (detail::dispatch).
#include "kernels/elbo.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void elbo(Context& ctx, const Tensor& logits, const Tensor& x, const Tensor& mu,
          const Tensor& logvar, Tensor* recon, Tensor* kl, Tensor& loss, Tensor* dlogits,
          Tensor* dmu, Tensor* dlogvar, const ElboConfig& cfg) {
  const char* op = "elbo";
  CUVAE_CHECK(logits.ndim() >= 1 && logits.dim(0) >= 1,
              "elbo: logits " << logits.shape_str() << " must have a non-empty batch dimension");
  const int64_t n = logits.dim(0);
  const int64_t p = logits.numel() / n;
  const int64_t d = mu.numel() / n;
  CUVAE_CHECK(cfg.n == 0 || cfg.n == n,
              "elbo: cfg.n=" << cfg.n << " but logits has " << n << " images");
  CUVAE_CHECK(cfg.p == 0 || cfg.p == p,
              "elbo: cfg.p=" << cfg.p << " but logits has " << p << " pixels per image");
  CUVAE_CHECK(cfg.d == 0 || cfg.d == d,
              "elbo: cfg.d=" << cfg.d << " but mu has " << d << " latents per image");
  CUVAE_CHECK(recon != nullptr && kl != nullptr, "elbo: recon and kl outputs are required");
  detail::require_numel(x, n * p, op, "x");
  detail::require_numel(mu, n * d, op, "mu");
  detail::require_numel(logvar, n * d, op, "logvar");
  detail::require_numel(*recon, n, op, "recon");
  detail::require_numel(*kl, n, op, "kl");
  detail::require_numel(loss, 1, op, "loss");
  if (dlogits != nullptr) detail::require_numel(*dlogits, n * p, op, "dlogits");
  if (dmu != nullptr) detail::require_numel(*dmu, n * d, op, "dmu");
  if (dlogvar != nullptr) detail::require_numel(*dlogvar, n * d, op, "dlogvar");
  detail::require_device(ctx, logits, op, "logits");
  detail::require_device(ctx, x, op, "x");
  detail::require_device(ctx, mu, op, "mu");
  detail::require_device(ctx, logvar, op, "logvar");
  detail::require_device(ctx, *recon, op, "recon");
  detail::require_device(ctx, *kl, op, "kl");
  detail::require_device(ctx, loss, op, "loss");
  if (dlogits != nullptr) detail::require_device(ctx, *dlogits, op, "dlogits");
  if (dmu != nullptr) detail::require_device(ctx, *dmu, op, "dmu");
  if (dlogvar != nullptr) detail::require_device(ctx, *dlogvar, op, "dlogvar");

  ElboConfig c = cfg;
  c.n = n;
  c.p = p;
  c.d = d;
  float* dl = dlogits != nullptr ? dlogits->data() : nullptr;
  float* dm = dmu != nullptr ? dmu->data() : nullptr;
  float* dv = dlogvar != nullptr ? dlogvar->data() : nullptr;
  detail::dispatch(
      ctx, op,
      [&] {
        elbo_cpu(logits.data(), x.data(), mu.data(), logvar.data(), recon->data(), kl->data(),
                 loss.data(), dl, dm, dv, c);
      },
      [&](auto s) {
        elbo_cuda(logits.data(), x.data(), mu.data(), logvar.data(), recon->data(), kl->data(),
                  loss.data(), dl, dm, dv, c, s);
      });
}

}  // namespace cuvae
