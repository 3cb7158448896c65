// End to end on real MNIST: a short CPU run of the classifier must classify most test images,
// and the VAE → anchored samples → classifier → validation chain must work on real models.
// Needs the data from scripts/fetch-data.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cstdio>
#include <sstream>

#include "io/dataset.h"
#include "io/fs.h"
#include "jobs/classifier_trainer.h"
#include "jobs/vae_trainer.h"
#include "jobs/validate.h"
#include "synthetic_data.h"
#include "temp_dir.h"

using namespace cuvae;

TEST(EndToEnd, ClassifierLearnsAndAnchoredSamplesKeepTheirClass) {
  const std::string data = std::string(CUVAE_SOURCE_DIR) + "/data/mnist";
  if (!file_exists(data + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "no MNIST under " << data << ": run scripts/fetch-data";
  cuvae::testing::ScopedTempDir tmp;
  std::ostringstream log;

  ClassifierTrainOptions c = cuvae::test::tiny_classifier_options(data, tmp.file("clf"), 2, 8, 0);
  c.batch = 128;
  c.train_limit = 12800;
  c.test_limit = 1000;
  const std::vector<ClassifierEpochRecord> r = train_classifier(c, log);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_GT(r[1].test_acc, 0.9) << log.str();
  EXPECT_LT(r[1].test_loss, 0.4);
  EXPECT_TRUE(file_exists(c.out + "/confusion.png"));
  EXPECT_TRUE(file_exists(c.out + "/per_class.csv"));

  VaeTrainOptions v = cuvae::test::tiny_vae_options(data, tmp.file("vae"), 3, 32, 0);
  v.batch = 128;
  v.train_limit = 30000;
  v.test_limit = 500;
  train_vae(v, log);

  ValidateOptions o;
  o.vae = v.out + "/model.safetensors";
  o.classifier = c.out + "/model.safetensors";
  o.out = tmp.file("validate");
  o.data_dir = data;
  o.per_class = 20;
  o.noise = 0.5;
  o.prior = 100;
  o.recon = 200;
  o.reference = 200;
  o.device = DeviceRequest::CPU;
  o.progress = false;
  const nlohmann::json j = validate_generation(o, log);
  std::printf("classifier test accuracy %.4f; anchored samples %.3f, reconstructions %.3f, originals %.3f\n",
              r[1].test_acc, j["anchored"]["accuracy"].get<double>(), j["reconstructions"]["accuracy"].get<double>(),
              j["reconstructions"]["originals_accuracy"].get<double>());
  EXPECT_GT(j["anchored"]["accuracy"].get<double>(), 0.75) << j.dump(2);
  EXPECT_GT(j["reconstructions"]["accuracy"].get<double>(), 0.75);
  EXPECT_GT(j["anchored"]["frechet"].get<double>(), 0.0);
  int64_t hist = 0;
  for (const auto& h : j["prior"]["histogram"]) hist += h.get<int64_t>();
  EXPECT_EQ(hist, 100);
  // Per class: the counts add up to the reconstructed images and the accuracies to the totals.
  const auto& rec = j["reconstructions"];
  ASSERT_EQ(rec["per_class_n"].size(), 10u);
  int64_t n_all = 0;
  double right = 0, right_o = 0;
  for (size_t k = 0; k < 10; ++k) {
    const int64_t n_k = rec["per_class_n"][k].get<int64_t>();
    n_all += n_k;
    right += static_cast<double>(n_k) * rec["per_class_accuracy"][k].get<double>();
    right_o += static_cast<double>(n_k) * rec["per_class_originals_accuracy"][k].get<double>();
  }
  EXPECT_EQ(n_all, 200);
  EXPECT_NEAR(right / 200, rec["accuracy"].get<double>(), 1e-9);
  EXPECT_NEAR(right_o / 200, rec["originals_accuracy"].get<double>(), 1e-9);
  EXPECT_TRUE(file_exists(o.out + "/validation.md"));
  EXPECT_TRUE(file_exists(v.out + "/model.anchors.safetensors")) << "class statistics kept beside the VAE";
}
