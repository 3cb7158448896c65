// `cuvae eval-classifier`: a classifier checkpoint's accuracy and loss on a test set.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/context.h"

namespace cuvae {

/// Everything `cuvae eval-classifier` takes.
struct EvalClassifierJob {
  std::string checkpoint;  ///< model.safetensors written by train-classifier
  std::string dataset;     ///< test split of this data set (empty: the one the classifier was trained on)
  std::string data;        ///< its folder (empty: default_data_dir(dataset))
  DeviceRequest device = DeviceRequest::Auto;
  int64_t batch = 500;     ///< images per evaluation batch
  int64_t limit = 0;       ///< first N test images (0 = all)
};

/// Evaluates the classifier (see evaluate_classifier) and returns the JSON object the command
/// prints: accuracy, loss (mean cross-entropy, nats per image), n, dataset, per_class (accuracy of
/// each true class) and device. Throws cuvae::Error on a missing, damaged or non-classifier
/// checkpoint and when the data's image shape or class count differs from the model's.
nlohmann::json eval_classifier_job(const EvalClassifierJob& job);

}  // namespace cuvae
