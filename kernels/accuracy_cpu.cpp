#include "kernels/accuracy.h"

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

template <typename T>
void count_correct_cpu(const T* logits, const int32_t* labels, int64_t n, int64_t k, T* count) {
  CUVAE_CHECK(n >= 0 && k >= 1, "count_correct: bad size n=" << n << " k=" << k);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* row = logits + i * k;
    int64_t best = 0;
    bool nan = row[0] != row[0];
    for (int64_t j = 1; j < k; ++j) {
      if (row[j] != row[j]) nan = true;
      if (row[j] > row[best]) best = j;
    }
    if (!nan && best == labels[i]) ++correct;
  }
  *count += static_cast<T>(correct);
}

template void count_correct_cpu<float>(const float*, const int32_t*, int64_t, int64_t, float*);
template void count_correct_cpu<double>(const double*, const int32_t*, int64_t, int64_t, double*);

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
