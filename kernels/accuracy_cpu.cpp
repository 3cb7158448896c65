#include "kernels/accuracy.h"

#include "core/check.h"

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

}  // namespace cuvae
