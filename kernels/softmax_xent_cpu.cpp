#include "kernels/softmax_xent.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace cuvae {

template <typename T>
void softmax_xent_cpu(const T* logits, const int32_t* labels, int64_t n, int64_t k, T* loss,
                      T* mean_loss, T* dlogits, T* probs) {
  CUVAE_CHECK(n >= 1 && k >= 1, "softmax_xent: sizes must be positive, got n=" << n << " k=" << k);
  CUVAE_CHECK(loss != nullptr, "softmax_xent: loss must not be null");
  // All labels are checked before anything is written.
  for (int64_t i = 0; i < n; ++i) {
    const int32_t y = labels[i];
    CUVAE_CHECK(y >= 0 && y < k,
                "softmax_xent: label " << y << " of row " << i << " is outside [0, " << k << ")");
  }
  const double nd = static_cast<double>(n);
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const T* l = logits + i * k;
    const int64_t y = labels[i];
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < k; ++j) m = std::max(m, static_cast<double>(l[j]));
    double sum = 0.0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(l[j]) - m);
    const double li = (m - static_cast<double>(l[y])) + std::log(sum);  // log-sum-exp - l[y]
    loss[i] = static_cast<T>(li);
    total += li;
    // l[j] is read before dlogits[i, j] is written, so dlogits may alias logits.
    for (int64_t j = 0; j < k; ++j) {
      const double p = std::exp(static_cast<double>(l[j]) - m) / sum;
      if (dlogits != nullptr) dlogits[i * k + j] = static_cast<T>((p - (j == y ? 1.0 : 0.0)) / nd);
      if (probs != nullptr) probs[i * k + j] = static_cast<T>(p);
    }
  }
  if (mean_loss != nullptr) *mean_loss = static_cast<T>(total / nd);
}

template void softmax_xent_cpu<float>(const float*, const int32_t*, int64_t, int64_t, float*,
                                      float*, float*, float*);
template void softmax_xent_cpu<double>(const double*, const int32_t*, int64_t, int64_t, double*,
                                       double*, double*, double*);

}  // namespace cuvae
