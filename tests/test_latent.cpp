// The latent-space jobs on the CPU: lerp/slerp, interpolation rows, latent arithmetic (A = B gives
// the reconstruction), traversals, active units on a constructed case, flag parsing, GIF and plot
// output.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "io/fs.h"
#include "io/gif.h"
#include "io/image.h"
#include "io/plot.h"
#include "jobs/analysis/latent.h"
#include "jobs/analysis/latent_io.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace cuvae;
using cuvae::test::error_of;

namespace {

// n random 28×28 grey images with labels i % 10.
Dataset tiny_dataset(int64_t n, uint32_t seed) {
  Dataset d;
  d.name = "tiny";
  d.n = n;
  d.c = 1;
  d.h = 28;
  d.w = 28;
  std::mt19937 g(seed);
  d.images.resize(static_cast<size_t>(n * 784));
  for (auto& p : d.images) p = static_cast<uint8_t>(g() % 256);
  for (int64_t i = 0; i < n; ++i) d.labels.push_back(static_cast<uint8_t>(i % 10));
  return d;
}

std::unique_ptr<ConvVAE> tiny_vae(int64_t latent = 8) {
  VaeConfig c;
  c.latent = latent;
  c.dataset = "mnist";
  auto v = std::make_unique<ConvVAE>(c, Device::CPU);
  v->init(7);
  return v;
}

// Largest |a[i] − b[i]| over n values.
double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

}  // namespace

TEST(Lerp, EndpointsAndMidpoint) {
  const std::vector<float> a = {1, 2, -3}, b = {5, -2, 1};
  EXPECT_EQ(interpolate_latent(a.data(), b.data(), 3, 0.0, InterpMode::Lerp), a);
  EXPECT_EQ(interpolate_latent(a.data(), b.data(), 3, 1.0, InterpMode::Lerp), b);
  const std::vector<float> mid = interpolate_latent(a.data(), b.data(), 3, 0.5, InterpMode::Lerp);
  EXPECT_FLOAT_EQ(mid[0], 3.0f);
  EXPECT_FLOAT_EQ(mid[1], 0.0f);
  EXPECT_FLOAT_EQ(mid[2], -1.0f);
}

TEST(Slerp, EndpointsMidpointAndParallelFallback) {
  const std::vector<float> a = {2, 0}, b = {0, 2};
  const auto s0 = interpolate_latent(a.data(), b.data(), 2, 0.0, InterpMode::Slerp);
  const auto s1 = interpolate_latent(a.data(), b.data(), 2, 1.0, InterpMode::Slerp);
  EXPECT_NEAR(s0[0], 2, 1e-6);
  EXPECT_NEAR(s0[1], 0, 1e-6);
  EXPECT_NEAR(s1[0], 0, 1e-6);
  EXPECT_NEAR(s1[1], 2, 1e-6);
  // Orthogonal vectors of equal norm: the midpoint stays on the circle of radius 2, at 45°.
  const auto m = interpolate_latent(a.data(), b.data(), 2, 0.5, InterpMode::Slerp);
  EXPECT_NEAR(m[0], std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(m[1], std::sqrt(2.0), 1e-6);
  // Lerp's midpoint is inside the circle: the two modes differ.
  const auto l = interpolate_latent(a.data(), b.data(), 2, 0.5, InterpMode::Lerp);
  EXPECT_NEAR(l[0], 1.0, 1e-6);
  // Parallel vectors (sin Ω = 0) and a zero vector fall back to lerp.
  const std::vector<float> c = {1, 1}, d = {3, 3}, z = {0, 0};
  const auto p = interpolate_latent(c.data(), d.data(), 2, 0.25, InterpMode::Slerp);
  EXPECT_NEAR(p[0], 1.5, 1e-6);
  const auto q = interpolate_latent(z.data(), d.data(), 2, 0.5, InterpMode::Slerp);
  EXPECT_NEAR(q[1], 1.5, 1e-6);
  EXPECT_EQ(parse_interp_mode("slerp"), InterpMode::Slerp);
  EXPECT_NE(error_of([] { parse_interp_mode("cubic"); }).find("--mode"), std::string::npos);
}

TEST(LatentDimStats, ActiveUnitsAndKLOnAConstructedCase) {
  // D = 3: dim 0 varies (μ = ±1, variance 1), dim 1 barely (±0.05, variance 0.0025), dim 2 is
  // constant at 0.3; logσ² = 0 everywhere, so KL_d = ½ mean(μ_d²).
  LatentCodes c;
  c.n = 4;
  c.latent = 3;
  c.mu = {1, 0.05f, 0.3f, -1, -0.05f, 0.3f, 1, 0.05f, 0.3f, -1, -0.05f, 0.3f};
  c.logvar.assign(12, 0.0f);
  const LatentDimStats s = latent_dim_stats(c);
  EXPECT_EQ(s.active_units, 1);
  EXPECT_TRUE(s.active[0]);
  EXPECT_FALSE(s.active[1]);
  EXPECT_FALSE(s.active[2]);
  EXPECT_NEAR(s.activity[0], 1.0, 1e-12);
  EXPECT_NEAR(s.activity[1], 0.0025, 1e-8);
  EXPECT_NEAR(s.activity[2], 0.0, 1e-12);
  EXPECT_NEAR(s.kl[0], 0.5, 1e-7);
  EXPECT_NEAR(s.kl[2], 0.5 * 0.09, 1e-7);
  EXPECT_EQ(s.by_kl(), (std::vector<int64_t>{0, 2, 1}));
  // A threshold below 0.0025 makes dimension 1 active too.
  EXPECT_EQ(latent_dim_stats(c, 0.001).active_units, 2);
}

TEST(Interpolate, RowsHoldTheImagesAtTheEndsAndTheDecodedPath) {
  Context ctx(DeviceRequest::CPU);
  auto vae = tiny_vae();
  const Dataset test = tiny_dataset(20, 3);
  InterpolateOptions o;
  o.pairs = {{0, 1}, {5, 9}};
  o.steps = 5;
  const InterpolateResult r = interpolate(ctx, *vae, test, o);
  ASSERT_EQ(r.grid.rows, 2);
  ASSERT_EQ(r.grid.cols, 7);
  ASSERT_EQ(r.grid.pixels.size(), size_t{2 * 7 * 784});
  EXPECT_EQ(r.t, (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  const std::vector<float> x5 = dataset_images(test, {5}, "pairs"), x9 = dataset_images(test, {9}, "pairs");
  EXPECT_TRUE(std::equal(x5.begin(), x5.end(), r.grid.pixels.begin() + 7 * 784));
  EXPECT_TRUE(std::equal(x9.begin(), x9.end(), r.grid.pixels.begin() + 13 * 784));
  // The path's first and last points are the reconstructions at μ.
  cuvae::testing::ScopedTempDir unused;
  (void)unused;
  EXPECT_NE(error_of([&] { o.steps = 1; interpolate(ctx, *vae, test, o); }).find("--steps"), std::string::npos);
  o.steps = 3;
  o.pairs = {{0, 20}};
  EXPECT_NE(error_of([&] { interpolate(ctx, *vae, test, o); }).find("--pairs 20 is out of range"), std::string::npos);
  const auto pc = pairs_from_classes(test, {{3, 7}});
  EXPECT_EQ(pc[0], (std::pair<int64_t, int64_t>{3, 7}));
  EXPECT_NE(error_of([&] { pairs_from_classes(test, {{3, 11}}); }).find("--classes 11"), std::string::npos);
  EXPECT_EQ(parse_pair("12:40", "pairs"), (std::pair<int64_t, int64_t>{12, 40}));
  EXPECT_NE(error_of([] { parse_pair("12-40", "pairs"); }).find("pairs"), std::string::npos);
  EXPECT_NE(error_of([] { parse_pair("a:1", "pairs"); }).find("pairs"), std::string::npos);
}

TEST(Arithmetic, SameClassGivesThePlainReconstructionAndTheDirectionIsTheMeanDifference) {
  Context ctx(DeviceRequest::CPU);
  auto vae = tiny_vae(4);
  const Dataset test = tiny_dataset(12, 5);
  AnchorStats s;
  s.classes = 10;
  s.latent = 4;
  s.mean.resize(40);
  for (int k = 0; k < 10; ++k)
    for (int d = 0; d < 4; ++d) s.mean[static_cast<size_t>(k * 4 + d)] = 0.1 * k - 0.3 * d;
  ArithmeticOptions o;
  o.indices = {2, 7};
  o.from_class = 3;
  o.to_class = 3;
  const ArithmeticResult same = latent_arithmetic(ctx, *vae, test, s, o);
  ASSERT_EQ(same.grid.cols, 6);
  ASSERT_EQ(same.grid.rows, 2);
  for (int64_t row = 0; row < 2; ++row) {
    const float* rec = same.grid.pixels.data() + (row * 6 + 1) * 784;
    // The same code decoded at another position of the batch: equal up to GEMM rounding.
    for (int col = 2; col < 6; ++col)
      EXPECT_LT(max_abs_diff(rec, same.grid.pixels.data() + (row * 6 + col) * 784, 784), 1e-5)
          << "row " << row << " column " << col;
  }
  o.to_class = 8;
  o.alpha = 2.0;
  const ArithmeticResult moved = latent_arithmetic(ctx, *vae, test, s, o);
  // Moving towards another class changes the images.
  EXPECT_GT(max_abs_diff(moved.grid.pixels.data() + 784, moved.grid.pixels.data() + 5 * 784, 784), 1e-3);
  EXPECT_EQ(moved.alphas, (std::vector<double>{0.5, 1.0, 1.5, 2.0}));
  for (int d = 0; d < 4; ++d) EXPECT_NEAR(moved.direction[static_cast<size_t>(d)], 0.5, 1e-6);
  // The last code of a row is μ + 2·direction: 1.0 more than the first (μ + 0.5·direction).
  for (int d = 0; d < 4; ++d) EXPECT_NEAR(moved.z[static_cast<size_t>(3 * 4 + d)] - moved.z[static_cast<size_t>(d)], 0.75, 1e-5);
  o.to_class = 10;
  EXPECT_NE(error_of([&] { latent_arithmetic(ctx, *vae, test, s, o); }).find("--to-class 10"), std::string::npos);
  o.to_class = 1;
  o.indices = {12};
  EXPECT_NE(error_of([&] { latent_arithmetic(ctx, *vae, test, s, o); }).find("--index 12"), std::string::npos);
}

TEST(Traverse, EachRowSweepsOneDimensionAndKeepsTheBase) {
  Context ctx(DeviceRequest::CPU);
  auto vae = tiny_vae(6);
  const Dataset test = tiny_dataset(30, 9);
  const LatentDimStats stats = latent_dim_stats(encode_dataset(ctx, *vae, test));
  TraverseOptions o;
  o.dims = parse_dims("4,1", 6);
  o.steps = 3;
  o.range = 2;
  const std::vector<float> base = traverse_base(ctx, *vae, test, nullptr, parse_base("index:3"));
  const TraverseResult r = traverse(ctx, *vae, stats, base, o);
  EXPECT_EQ(r.dims, (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(r.values, (std::vector<double>{-2, 0, 2}));
  ASSERT_EQ(r.grid.rows, 2);
  ASSERT_EQ(r.grid.cols, 3);
  // Row 1, column 2 is the base with z_1 = 2: decode it directly and compare.
  std::vector<float> z = base;
  z[1] = 2.0f;
  const std::vector<float> img = decode_to_host(ctx, *vae, z, 1);
  EXPECT_LT(max_abs_diff(img.data(), r.grid.pixels.data() + 5 * 784, 784), 1e-5);
  EXPECT_GT(max_abs_diff(img.data(), r.grid.pixels.data() + 4 * 784, 784), 1e-4);  // z_1 = 0 differs
  // top-kl:2 picks the two dimensions with the largest mean KL.
  o.dims = parse_dims("top-kl:2", 6);
  const TraverseResult t2 = traverse(ctx, *vae, stats, base, o);
  const std::vector<int64_t> order = stats.by_kl();
  EXPECT_EQ(t2.dims, (std::vector<int64_t>{order[0], order[1]}));
  // Bad selections name the flag.
  EXPECT_NE(error_of([] { parse_dims("3,x", 6); }).find("--dims"), std::string::npos);
  EXPECT_NE(error_of([] { parse_dims("6", 6); }).find("--dims 6 is out of range"), std::string::npos);
  EXPECT_NE(error_of([] { parse_dims("top-kl:0", 6); }).find("--dims"), std::string::npos);
  EXPECT_NE(error_of([] { parse_base("index:-1"); }).find("--base"), std::string::npos);
  EXPECT_NE(error_of([&] { traverse_base(ctx, *vae, test, nullptr, parse_base("index:30")); }).find("--base index:30"),
            std::string::npos);
  o.steps = 1;
  EXPECT_NE(error_of([&] { traverse(ctx, *vae, stats, base, o); }).find("--steps"), std::string::npos);
}

TEST(Traverse, WritesPngCsvAndGifs) {
  Context ctx(DeviceRequest::CPU);
  auto vae = tiny_vae(5);
  const Dataset test = tiny_dataset(10, 1);
  const LatentDimStats stats = latent_dim_stats(encode_dataset(ctx, *vae, test));
  TraverseOptions o;
  o.dims = parse_dims("0,3", 5);
  o.steps = 4;
  const TraverseResult r = traverse(ctx, *vae, stats, std::vector<float>(5, 0.0f), o);
  cuvae::testing::ScopedTempDir dir;
  if (!gif_available()) {
    EXPECT_NE(error_of([&] { write_traversal(dir.path() + "/t", r, stats, 1, true); }).find("giflib"), std::string::npos);
    EXPECT_FALSE(file_exists(dir.path() + "/t/traversal.png"));
    GTEST_SKIP() << "this build has no giflib";
  }
  const auto files = write_traversal(dir.path() + "/t", r, stats, 1, true);
  ASSERT_EQ(files.size(), size_t{4});
  const std::string csv = read_file(dir.path() + "/t/traversal.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "dim,kl,activity,active,row");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 6);
  EXPECT_NE(csv.find("\n3,"), std::string::npos);
  const std::string gif = read_file(dir.path() + "/t/traversal_dim3.gif");
  EXPECT_EQ(gif.substr(0, 6), "GIF89a");
  EXPECT_NE(gif.find("NETSCAPE2.0"), std::string::npos);
  EXPECT_EQ(static_cast<uint8_t>(gif.back()), 0x3b);  // trailer
  // 4 frames forwards and 2 back: 6 image descriptors (0x2c after a graphics control block).
  size_t frames = 0;
  for (size_t p = gif.find("\x21\xf9\x04"); p != std::string::npos; p = gif.find("\x21\xf9\x04", p + 1)) ++frames;
  EXPECT_EQ(frames, size_t{6});
}

TEST(Plot, ScatterIsAPngOfTheRequestedSizeWithColours) {
  cuvae::testing::ScopedTempDir dir;
  std::vector<PlotSeries> s(3);
  for (int c = 0; c < 3; ++c) {
    s[static_cast<size_t>(c)].name = "class " + std::to_string(c);
    for (int i = 0; i < 50; ++i) {
      s[static_cast<size_t>(c)].x.push_back(c * 3 + std::sin(i));
      s[static_cast<size_t>(c)].y.push_back(c + std::cos(i));
    }
  }
  const std::string path = dir.path() + "/s.png";
  if (!plot_available()) {
    EXPECT_NE(error_of([&] { scatter_plot_png(path, s, {"t", "x", "y"}); }).find("PLplot"), std::string::npos);
    GTEST_SKIP() << "this build has no PLplot";
  }
  scatter_plot_png(path, s, {"title", "x", "y"}, 400, 300);
  const std::vector<float> rgb = read_png(path, 3, 300, 400);  // throws if the size differs
  int coloured = 0;
  for (size_t p = 0; p < 300 * 400; ++p) {
    const float r = rgb[p], g = rgb[120000 + p], b = rgb[240000 + p];
    if (std::abs(r - g) > 0.2f || std::abs(g - b) > 0.2f) ++coloured;
  }
  EXPECT_GT(coloured, 200);
  EXPECT_NE(error_of([&] { scatter_plot_png(dir.path() + "/e.png", {}, {"t", "x", "y"}); }).find("nothing to plot"),
            std::string::npos);
  EXPECT_FALSE(file_exists(dir.path() + "/e.png"));
}
