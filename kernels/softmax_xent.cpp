// The Tensor-level softmax_xent op: checks shapes and devices, then picks the CPU reference
// (softmax_xent_cpu.cpp), the CUDA kernels (softmax_xent.cu) or the emulated device (detail::dispatch).
#include "kernels/softmax_xent.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void softmax_xent(Context& ctx, const Tensor& logits, const IntBuffer& label_buffer, Tensor& loss,
                  Tensor* mean_loss, Tensor* dlogits, Tensor* probs) {
  const char* op = "softmax_xent";
  CUVAE_CHECK(logits.ndim() == 2, op << ": logits must be [n, k], got " << logits.shape_str());
  const int64_t n = logits.dim(0), k = logits.dim(1);
  detail::require_buffer(ctx, label_buffer, n, op, "labels");
  const int32_t* labels = label_buffer.data();
  detail::require_numel(loss, n, op, "loss");
  if (mean_loss != nullptr) detail::require_numel(*mean_loss, 1, op, "mean_loss");
  if (dlogits != nullptr) detail::require_numel(*dlogits, n * k, op, "dlogits");
  if (probs != nullptr) detail::require_numel(*probs, n * k, op, "probs");
  detail::require_device(ctx, logits, op, "logits");
  detail::require_device(ctx, loss, op, "loss");
  if (mean_loss != nullptr) detail::require_device(ctx, *mean_loss, op, "mean_loss");
  if (dlogits != nullptr) detail::require_device(ctx, *dlogits, op, "dlogits");
  if (probs != nullptr) detail::require_device(ctx, *probs, op, "probs");
  float* ml = mean_loss != nullptr ? mean_loss->data() : nullptr;
  float* dl = dlogits != nullptr ? dlogits->data() : nullptr;
  float* pr = probs != nullptr ? probs->data() : nullptr;
  detail::dispatch(
      ctx, op,
      [&] {
        softmax_xent_cpu(logits.data(), labels, n, k, loss.data(), ml, dl, pr);
      },
      [&](auto s) {
        softmax_xent_cuda(logits.data(), labels, n, k, loss.data(), ml, dl, pr, s);
      });
}

}  // namespace cuvae
