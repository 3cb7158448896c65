// End to end on real MNIST: a short CPU training run must bring the test ELBO well below
// its value at initialisation. Needs the data from scripts/fetch-data.
#include <gtest/gtest.h>

#include <sstream>

#include "io/dataset.h"
#include "io/fs.h"
#include "jobs/vae_trainer.h"
#include "synthetic_data.h"
#include "temp_dir.h"

using namespace cuvae;

TEST(EndToEnd, TrainingOnRealMnistLowersTheTestLoss) {
  const std::string data = std::string(CUVAE_SOURCE_DIR) + "/data/mnist";
  if (!file_exists(data + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "no MNIST under " << data << ": run scripts/fetch-data";
  cuvae::testing::ScopedTempDir tmp;

  // The loss of the untrained model (PyTorch-default init): about 784·ln 2 ≈ 543 nats.
  Context ctx(DeviceRequest::CPU);
  Dataset test = load_dataset("mnist", data, false);
  ConvVAE fresh(VaeConfig{}, Device::CPU);
  fresh.init(0);
  const VaeEval before = evaluate_vae(ctx, fresh, test, 500, 2000);
  EXPECT_GT(before.loss, 450.0);

  VaeTrainOptions o = cuvae::test::tiny_vae_options(data, tmp.file("run"), 2, 32, 0);
  o.batch = 128;
  o.images = true;
  o.train_limit = 12800;
  o.test_limit = 2000;
  std::ostringstream log;
  const std::vector<VaeEpochRecord> r = train_vae(o, log);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_LT(r[1].test_loss, r[0].test_loss);
  EXPECT_LT(r[1].test_loss, 0.4 * before.loss) << "before " << before.loss << ", after " << r[1].test_loss;
  EXPECT_LT(r[1].test_loss, 200.0);
  EXPECT_GT(r[1].test_kl, 5.0);  // the latent code is in use (no posterior collapse)
  EXPECT_TRUE(file_exists(o.out + "/traversal.png"));
}
