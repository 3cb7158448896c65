// The Tensor-level accuracy op: checks shapes and devices, then picks the CPU reference
// (accuracy_cpu.cpp), the CUDA kernels (accuracy.cu) or the emulated device (detail::dispatch).
#include "kernels/accuracy.h"

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void count_correct(Context& ctx, const Tensor& logits, const IntBuffer& label_buffer, Tensor& count) {
  const char* op = "count_correct";
  CUVAE_CHECK(logits.ndim() == 2, op << ": logits " << logits.shape_str() << ", expected [n, k]");
  detail::require_buffer(ctx, label_buffer, logits.dim(0), op, "labels");
  const int32_t* labels = label_buffer.data();
  detail::require_numel(count, 1, op, "count");
  detail::require_device(ctx, logits, op, "logits");
  detail::require_device(ctx, count, op, "count");
  detail::dispatch(
      ctx, op,
      [&] {
        count_correct_cpu(logits.data(), labels, logits.dim(0), logits.dim(1), count.data());
      },
      [&](auto s) {
        count_correct_cuda(logits.data(), labels, logits.dim(0), logits.dim(1), count.data(), s);
      });
}

}  // namespace cuvae
