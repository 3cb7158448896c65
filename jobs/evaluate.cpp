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

namespace {

/// This rank's share of the first n rows (all n for one process).
Dataset shard_of(const Dataset& d, int64_t n, const Communicator* comm) {
  const auto [first, last] = comm->shard(n);
  return dataset_rows(d, first, last);
}

}  // namespace

VaeEval evaluate_vae(Context& ctx, ConvVAE& model, const Dataset& data, int64_t batch, int64_t limit,
                     const Communicator* comm) {
  check_data_matches(data, model.config(), "data set '" + data.name + "'");
  const int64_t n = (limit > 0 && limit < data.n) ? limit : data.n;
  CUVAE_CHECK(n > 0 && batch > 0, "evaluate_vae: nothing to evaluate");
  const bool sharded = comm != nullptr && comm->distributed();
  const Dataset shard = sharded ? shard_of(data, n, comm) : Dataset{};  // one process: no copy
  const Dataset& rows = sharded ? shard : data;
  const int64_t count = sharded ? shard.n : n;
  const VaeConfig& c = model.config();
  double sums[2] = {0, 0};  // recon, KL summed over images
  if (count > 0) {
    const DeviceDataset dd(rows, ctx.device());
    for_each_batch(ctx, dd, batch, count, [&](const Batch& b) {
      model.forward(ctx, b.x, false, 0, 0, &b.labels);
      model.loss(ctx, b.x, false, 0, 0);
      for (float v : model.recon().to_vector()) sums[0] += v;
      for (float v : model.kl().to_vector()) sums[1] += v;
    });
  }
  if (comm != nullptr) comm->allreduce_sum(sums, 2);
  VaeEval e;
  e.n = n;
  e.recon = sums[0] / static_cast<double>(n);
  e.kl = sums[1] / static_cast<double>(n);
  e.loss = e.recon + (c.is_cvae() ? 1.0 : c.beta) * e.kl;  // a CVAE reports the plain ELBO
  return e;
}

ClassifierEval evaluate_classifier(Context& ctx, ResNet18& model, const Dataset& data, int64_t batch,
                                   int64_t limit, const Communicator* comm) {
  const ResNetConfig& c = model.config();
  check_data_matches(data, c, "data set '" + data.name + "'");
  const int64_t n = (limit > 0 && limit < data.n) ? limit : data.n;
  CUVAE_CHECK(n > 0 && batch > 0, "evaluate_classifier: nothing to evaluate");
  const int64_t K = c.classes;
  const bool sharded = comm != nullptr && comm->distributed();
  const Dataset shard = sharded ? shard_of(data, n, comm) : Dataset{};  // one process: no copy
  const Dataset& rows = sharded ? shard : data;
  const int64_t count = sharded ? shard.n : n;
  // sums[0]: cross-entropy summed over images; sums[1 + t·K + p]: images of class t predicted p
  // (counts in doubles: exact far beyond any test set, and one reduction for all).
  std::vector<double> sums(static_cast<size_t>(1 + K * K), 0.0);
  if (count > 0) {
    const DeviceDataset dd(rows, ctx.device());
    for_each_batch(ctx, dd, batch, count, [&](const Batch& b) {
      model.forward(ctx, b.x, false);
      model.loss(ctx, b.labels, false);
      const std::vector<float> l = model.loss_value().to_vector();
      const std::vector<float> logits = model.logits().to_vector();
      for (int64_t i = 0; i < b.size; ++i) {
        sums[0] += l[static_cast<size_t>(i)];
        const float* r = logits.data() + i * K;
        const int64_t pred = std::max_element(r, r + K) - r;
        const int64_t truth = rows.labels[static_cast<size_t>(b.first + i)];
        sums[static_cast<size_t>(1 + truth * K + pred)] += 1;
      }
    });
  }
  if (comm != nullptr) comm->allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  ClassifierEval e;
  e.n = n;
  e.confusion.assign(static_cast<size_t>(K * K), 0);
  int64_t right = 0;
  for (int64_t t = 0; t < K; ++t)
    for (int64_t p = 0; p < K; ++p) {
      const int64_t count = static_cast<int64_t>(sums[static_cast<size_t>(1 + t * K + p)]);
      e.confusion[static_cast<size_t>(t * K + p)] = count;
      if (t == p) right += count;
    }
  e.loss = sums[0] / static_cast<double>(n);
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
