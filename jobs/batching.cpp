#include "jobs/batching.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <utility>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

DeviceDataset::DeviceDataset(const Dataset& d, Device dev) : data_(d), dev_(dev), order_(d.n, dev) {
  if (dev == Device::CUDA) {
    images_ = Buffer<uint8_t>(static_cast<int64_t>(d.images.size()), Device::CUDA);
    images_.upload(d.images);
    labels_ = Buffer<uint8_t>(static_cast<int64_t>(d.labels.size()), Device::CUDA);
    labels_.upload(d.labels);
  }
  order_.upload(iota_order(d.n));
}

DeviceDataset::~DeviceDataset() = default;

void DeviceDataset::set_order(const std::vector<int32_t>& order) {
  for (int32_t i : order)
    CUVAE_CHECK(i >= 0 && i < data_.n, "DeviceDataset: index " << i << " outside the " << data_.n << " images");
  order_.upload(order);
}

void DeviceDataset::batch(Context& ctx, int64_t first, const AugmentConfig& aug, uint64_t seed,
                          uint64_t offset, Tensor& x, IntBuffer* labels, const StepState* step_state) const {
  const char* op = "DeviceDataset::batch";
  CUVAE_CHECK(ctx.device() == dev_, op << ": the context runs on " << device_name(ctx.device())
                                       << " but the data set was uploaded to " << device_name(dev_));
  detail::require_device(ctx, x, op, "x");
  const int64_t n = x.ndim() >= 1 ? x.dim(0) : 0;
  if (labels != nullptr) detail::require_buffer(ctx, *labels, n, op, "labels");
  int32_t* y = labels != nullptr ? labels->data() : nullptr;
  int64_t row_base = 0;  // the batch's first row within a data-parallel global batch
  if (step_state != nullptr && dev_ == Device::CPU) {  // this step's values, host memory on the CPU
    first = step_state->batch_first + step_state->row_base;
    offset += step_state->philox_offset;
    row_base = step_state->row_base;
    step_state = nullptr;
  }
  if (step_state != nullptr) first = 0;  // the kernel adds batch_first (checked by the trainers)
  CUVAE_CHECK(x.ndim() == 4 && x.dim(1) == data_.c && x.dim(2) == data_.h && x.dim(3) == data_.w,
              "DeviceDataset::batch: x " << x.shape_str() << " does not match images of " << data_.c << "x"
                                         << data_.h << "x" << data_.w);
  CUVAE_CHECK(first >= 0 && first + n <= order_.size(),
              "DeviceDataset::batch: rows " << first << ".." << first + n << " outside the order of " << order_.size());
  detail::dispatch(
      ctx, op,
      [&] {
        augment_batch_cpu(data_.images.data(), data_.labels.data(), order_.data() + first, n, data_.c, data_.h,
                          data_.w, aug, seed, offset, x.data(), y, row_base);
      },
      [&](auto s) {
        // The data set's bytes: uploaded on a GPU, the host copy on the emulated device.
        const bool host = dev_ == Device::CPU;
        augment_batch_cuda(host ? data_.images.data() : images_.data(), host ? data_.labels.data() : labels_.data(),
                           order_.data() + first, n, data_.c, data_.h, data_.w, aug,
                           seed, offset, x.data(), y, s, step_state);
      });
}

void for_each_batch(Context& ctx, const DeviceDataset& dd, int64_t batch, int64_t limit,
                    const std::function<void(const Batch&)>& f) {
  CUVAE_CHECK(batch >= 1, "for_each_batch: the batch size must be at least 1, got " << batch);
  CUVAE_CHECK(limit >= 0, "for_each_batch: the row limit must be >= 0, got " << limit);
  const Dataset& d = dd.data();
  const int64_t n = limit > 0 && limit < d.n ? limit : d.n;
  if (n == 0) return;
  const int64_t cap = std::min(batch, n);
  Tensor xbuf({cap, d.c, d.h, d.w}, ctx.device());
  IntBuffer labels(cap, ctx.device());
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t b = std::min(batch, n - first);
    Tensor x = xbuf.rows(0, b);
    dd.batch(ctx, first, AugmentConfig{}, 0, 0, x, &labels);
    f(Batch{first, b, x, labels});
  }
}

Tensor device_images(Context& ctx, const DeviceDataset& dd, int64_t limit) {
  CUVAE_CHECK(limit >= 0, "device_images: the row limit must be >= 0, got " << limit);
  const Dataset& d = dd.data();
  const int64_t n = limit > 0 && limit < d.n ? limit : d.n;
  Tensor x({n, d.c, d.h, d.w}, ctx.device());
  if (n > 0) dd.batch(ctx, 0, AugmentConfig{}, 0, 0, x, nullptr);
  return x;
}

std::vector<float> images_of_rows(Context& ctx, const Dataset& d, const std::vector<int64_t>& rows) {
  const int64_t P = d.pixels();
  Dataset picked;  // only the rows asked for, so that only their bytes go to the device
  picked.name = d.name;
  picked.n = static_cast<int64_t>(rows.size());
  picked.c = d.c;
  picked.h = d.h;
  picked.w = d.w;
  picked.num_classes = d.num_classes;
  picked.images.reserve(rows.size() * static_cast<size_t>(P));
  for (int64_t i : rows) {
    CUVAE_CHECK(i >= 0 && i < d.n, "images_of_rows: row " << i << " outside the " << d.n << " images of " << d.name);
    const auto src = d.images.begin() + i * P;
    picked.images.insert(picked.images.end(), src, src + P);
    picked.labels.push_back(d.labels[static_cast<size_t>(i)]);
  }
  std::vector<float> out;
  out.reserve(picked.images.size());
  const DeviceDataset dd(picked, ctx.device());
  for_each_batch(ctx, dd, 500, 0, [&](const Batch& b) {
    const std::vector<float> h = b.x.to_vector();
    out.insert(out.end(), h.begin(), h.end());
  });
  return out;
}

std::vector<int32_t> iota_order(int64_t n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

std::vector<int32_t> shuffled_order(int64_t n, uint64_t seed, int epoch) {
  std::vector<int32_t> v = iota_order(n);
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) + 1);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

Dataset subset(Dataset d, int64_t limit) {
  if (limit > 0 && limit < d.n) {
    d.n = limit;
    d.images.resize(static_cast<size_t>(limit * d.pixels()));
    d.labels.resize(static_cast<size_t>(limit));
  }
  return d;
}

TrainTestData load_train_test(const std::string& name, const std::string& data_dir, int64_t train_limit,
                              int64_t test_limit, int64_t batch) {
  TrainTestData d;
  d.dir = data_dir.empty() ? default_data_dir(name) : data_dir;
  d.train = subset(load_dataset(name, d.dir, true), train_limit);
  d.test = subset(load_dataset(name, d.dir, false), test_limit);
  if (d.train.n < batch) CUVAE_FAIL(option("batch") << " " << batch << " is larger than the " << d.train.n << " training images");
  return d;
}

void log_device(const Context& ctx, std::ostream& log) {
  log << "device: " << ctx.description();
  if (!ctx.fallback_reason().empty()) log << " (" << ctx.fallback_reason() << ")";
  log << std::endl;
}

}  // namespace cuvae
