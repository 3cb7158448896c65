#include "jobs/evaluate.h"

#include <algorithm>
#include <limits>
#include <sstream>

#include "core/check.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/metrics.h"
#include "io/plot.h"
#include "jobs/analysis/plots.h"
#include "jobs/batching.h"

namespace cuvae {

void check_data_matches(const Dataset& d, const VaeConfig& c, const std::string& what) {
  if (d.c != c.channels || d.h != c.height || d.w != c.width)
    CUVAE_FAIL(what << " has images of " << d.c << "x" << d.h << "x" << d.w << " but the model expects "
                    << c.channels << "x" << c.height << "x" << c.width);
  if (c.is_cvae() && d.num_classes != c.classes)
    CUVAE_FAIL(what << " has " << d.num_classes << " classes but the CVAE was trained with " << c.classes);
}

void check_data_matches(const Dataset& d, const ResNetConfig& c, const std::string& what) {
  if (d.c != c.channels || d.h != c.height || d.w != c.width)
    CUVAE_FAIL(what << " has images of " << d.c << "x" << d.h << "x" << d.w << " but the classifier expects "
                    << c.channels << "x" << c.height << "x" << c.width);
  if (d.num_classes != c.classes)
    CUVAE_FAIL(what << " has " << d.num_classes << " classes but the classifier has " << c.classes);
}

VaeEval evaluate_vae(Context& ctx, ConvVAE& model, const Dataset& data, int64_t batch, int64_t limit) {
  check_data_matches(data, model.config(), "data set '" + data.name + "'");
  const int64_t n = (limit > 0 && limit < data.n) ? limit : data.n;
  CUVAE_CHECK(n > 0 && batch > 0, "evaluate_vae: nothing to evaluate");
  const DeviceDataset dd(data, ctx.device());
  const VaeConfig& c = model.config();
  double sr = 0, sk = 0;
  for_each_batch(ctx, dd, batch, n, [&](const Batch& b) {
    model.forward(ctx, b.x, false, 0, 0, &b.labels);
    model.loss(ctx, b.x, false, 0, 0);
    for (float v : model.recon().to_vector()) sr += v;
    for (float v : model.kl().to_vector()) sk += v;
  });
  VaeEval e;
  e.n = n;
  e.recon = sr / static_cast<double>(n);
  e.kl = sk / static_cast<double>(n);
  e.loss = e.recon + (c.is_cvae() ? 1.0 : c.beta) * e.kl;  // a CVAE reports the plain ELBO
  return e;
}

ClassifierEval evaluate_classifier(Context& ctx, ResNet18& model, const Dataset& data, int64_t batch,
                                   int64_t limit) {
  const ResNetConfig& c = model.config();
  check_data_matches(data, c, "data set '" + data.name + "'");
  const int64_t n = (limit > 0 && limit < data.n) ? limit : data.n;
  CUVAE_CHECK(n > 0 && batch > 0, "evaluate_classifier: nothing to evaluate");
  const int64_t K = c.classes;
  const DeviceDataset dd(data, ctx.device());
  ClassifierEval e;
  e.n = n;
  e.confusion.assign(static_cast<size_t>(K * K), 0);
  double loss_sum = 0;
  int64_t right = 0;
  for_each_batch(ctx, dd, batch, n, [&](const Batch& b) {
    model.forward(ctx, b.x, false);
    model.loss(ctx, b.labels, false);
    const std::vector<float> l = model.loss_value().to_vector();
    const std::vector<float> logits = model.logits().to_vector();
    for (int64_t i = 0; i < b.size; ++i) {
      loss_sum += l[static_cast<size_t>(i)];
      const float* r = logits.data() + i * K;
      const int64_t pred = std::max_element(r, r + K) - r;
      const int64_t truth = data.labels[static_cast<size_t>(b.first + i)];
      e.confusion[static_cast<size_t>(truth * K + pred)] += 1;
      right += pred == truth;
    }
  });
  e.loss = loss_sum / static_cast<double>(n);
  e.accuracy = static_cast<double>(right) / static_cast<double>(n);
  for (int64_t t = 0; t < K; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < K; ++p) row += e.confusion[static_cast<size_t>(t * K + p)];
    e.per_class.push_back(row > 0 ? static_cast<double>(e.confusion[static_cast<size_t>(t * K + t)]) / row
                                  : std::numeric_limits<double>::quiet_NaN());
  }
  return e;
}


}  // namespace cuvae
