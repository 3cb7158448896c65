// Labelled data sets on the compute device and batch assembly from them (gather, augmentation,
// labels), shared by the trainers, evaluation, validation, anchoring, sampling, Grad-CAM and the
// analyses: for_each_batch is the one loop that turns a data set's bytes into model inputs.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "io/dataset.h"
#include "kernels/augment.h"

namespace cuvae {

/// A data set's images, labels and an index order held on the compute device (the whole set is
/// uploaded once, so batch assembly on a GPU makes no host transfer).
class DeviceDataset {
 public:
  /// Uploads `d` (which must outlive this object) to `dev`; the order starts as 0..n−1.
  DeviceDataset(const Dataset& d, Device dev);
  ~DeviceDataset();
  DeviceDataset(const DeviceDataset&) = delete;
  DeviceDataset& operator=(const DeviceDataset&) = delete;

  /// Sets the order batches are drawn in (a permutation of 0..n−1, or a prefix of one;
  /// synchronous upload, call between epochs). Throws cuvae::Error on an index out of range.
  void set_order(const std::vector<int32_t>& order);
  /// x [n, C, H, W] ← images order[first .. first + n) / 255 with augmentation `aug`
  /// (Philox seed, offset), and the first n values of `labels` ← their classes (or null: no
  /// labels). Enqueued on the context's stream: no allocation, no synchronisation. Throws
  /// cuvae::Error when the context, x or labels are not on the data set's device, when labels
  /// holds fewer than n values, or when the rows fall outside the order. With `step_state` (on the context's
  /// device) `first` is its batch_first and the Philox offset offset + philox_offset, read when
  /// the batch is made (so a captured training step gathers the next batch when replayed).
  void batch(Context& ctx, int64_t first, const AugmentConfig& aug, uint64_t seed, uint64_t offset,
             Tensor& x, IntBuffer* labels, const StepState* step_state = nullptr) const;
  const Dataset& data() const { return data_; }

 private:
  const Dataset& data_;
  Device dev_;
  Buffer<uint8_t> images_, labels_;  // device copies (CUDA only)
  IntBuffer order_;
};

/// One batch handed to for_each_batch's callback: rows [first, first + size) of a DeviceDataset's
/// order (the data set's own row numbers unless set_order changed it).
struct Batch {
  int64_t first;      ///< the position of the batch's first row
  int64_t size;       ///< b, the rows in this batch (the last batch may be smaller than the others)
  Tensor& x;          ///< [b, C, H, W] float32 on the context's device: each pixel byte / 255, in [0, 1]
  IntBuffer& labels;  ///< the rows' classes in its first b values, on the context's device (it may hold more)
};

/// Calls f(batch) once per batch, in order, over the first `limit` rows of `dd`'s order
/// (0, or more than the data set holds: all dd.data().n rows) in batches of `batch` rows, the
/// last one smaller when `batch` does not divide them. Each batch is made by DeviceDataset::batch
/// without augmentation, so x holds the images / 255 exactly as the trainers see them unaugmented.
/// x and labels are allocated once, for min(batch, rows) rows, and overwritten by the next batch:
/// a callback that keeps values copies them. Makes no call when there are no rows. Throws
/// cuvae::Error when batch < 1 or limit < 0, whatever DeviceDataset::batch throws (a context on
/// another device than `dd`), and whatever f throws (the loop stops there).
void for_each_batch(Context& ctx, const DeviceDataset& dd, int64_t batch, int64_t limit,
                    const std::function<void(const Batch&)>& f);

/// The first `limit` rows of `dd`'s order (0, or more than it holds: all) as one tensor
/// [n, C, H, W] on the context's device, each pixel byte / 255, no augmentation. Throws
/// cuvae::Error when limit < 0 or the context is on another device than `dd`.
Tensor device_images(Context& ctx, const DeviceDataset& dd, int64_t limit = 0);

/// The images of rows `rows` of `d` (in that order, repeats allowed) as host floats
/// [rows.size(), C, H, W], each pixel byte / 255, made by for_each_batch on the context's device
/// (only those rows are uploaded). Throws cuvae::Error on a row outside [0, d.n).
std::vector<float> images_of_rows(Context& ctx, const Dataset& d, const std::vector<int64_t>& rows);

/// 0, 1, …, n−1.
std::vector<int32_t> iota_order(int64_t n);
/// A permutation of 0..n−1 drawn from (seed, epoch) with std::mt19937_64.
std::vector<int32_t> shuffled_order(int64_t n, uint64_t seed, int epoch);
/// The first `limit` images of `d` (all when limit is 0 or ≥ d.n).
Dataset subset(Dataset d, int64_t limit);

/// A trainer's data: both splits of one data set, each cut to its limit (0 = all).
struct TrainTestData {
  std::string dir;  ///< the folder they were read from
  Dataset train, test;
};

/// Loads data set `name` from `data_dir` (default_data_dir(name) when empty) for a trainer with
/// batch size `batch`. Throws cuvae::Error as load_dataset, or when `batch` exceeds the training
/// images.
TrainTestData load_train_test(const std::string& name, const std::string& data_dir, int64_t train_limit,
                              int64_t test_limit, int64_t batch);

/// Writes "device: <description> (<why Auto fell back to the CPU>)" and a newline to `log`.
void log_device(const Context& ctx, std::ostream& log);

}  // namespace cuvae
