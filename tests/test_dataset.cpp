#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "core/check.h"
#include "io/dataset.h"
#include "io/fs.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::testing::ScopedTempDir;
using cuvae::test::error_of;

namespace {



#define EXPECT_STARTS_WITH(hay, prefix)                                                \
  EXPECT_EQ(std::string(hay).rfind(prefix, 0), 0u)                                     \
      << "message: '" << (hay) << "'\n does not start with: '" << (prefix) << "'"

void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
                       const std::vector<uint8_t>& px) {
  std::string s;
  put_be32(s, magic);
  put_be32(s, n);
  put_be32(s, rows);
  put_be32(s, cols);
  s.append(px.begin(), px.end());
  return s;
}

std::string idx_labels(uint32_t magic, uint32_t n, const std::vector<uint8_t>& labels) {
  std::string s;
  put_be32(s, magic);
  put_be32(s, n);
  s.append(labels.begin(), labels.end());
  return s;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb9");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// 3 images of 2×3 pixels with pixel value 10·i + j, labels 0, 9, 4.
struct Small {
  std::vector<uint8_t> px, labels{0, 9, 4};
  Small() {
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 6; ++j) px.push_back(static_cast<uint8_t>(10 * i + j));
  }
  std::string images() const { return idx_images(0x803, 3, 2, 3, px); }
  std::string label_file() const { return idx_labels(0x801, 3, labels); }
};

void expect_small(const Dataset& ds, const Small& s) {
  EXPECT_EQ(ds.n, 3);
  EXPECT_EQ(ds.c, 1);
  EXPECT_EQ(ds.h, 2);
  EXPECT_EQ(ds.w, 3);
  EXPECT_EQ(ds.pixels(), 6);
  EXPECT_EQ(ds.num_classes, 10);
  EXPECT_EQ(ds.images, s.px);
  EXPECT_EQ(ds.labels, s.labels);
}

}  // namespace

TEST(Idx, RoundTripRaw) {
  ScopedTempDir dir;
  Small s;
  write_file_atomic(dir.file("img"), s.images());
  write_file_atomic(dir.file("lab"), s.label_file());
  const Dataset ds = read_idx(dir.file("img"), dir.file("lab"));
  expect_small(ds, s);
  EXPECT_EQ(ds.images[2 * 6 + 5], 25);  // image 2, row 1, col 2
}

TEST(Idx, RoundTripGzip) {
  ScopedTempDir dir;
  Small s;
  write_gz(dir.file("img.gz"), s.images());
  write_gz(dir.file("lab.gz"), s.label_file());
  // The plain names do not exist: ".gz" is appended.
  expect_small(read_idx(dir.file("img"), dir.file("lab")), s);
  expect_small(read_idx(dir.file("img.gz"), dir.file("lab.gz")), s);
  // Gzip is recognised by its magic bytes, not by the name.
  write_gz(dir.file("gz-without-suffix"), s.images());
  write_file_atomic(dir.file("lab-raw"), s.label_file());
  expect_small(read_idx(dir.file("gz-without-suffix"), dir.file("lab-raw")), s);
}

TEST(Idx, CustomNumClasses) {
  ScopedTempDir dir;
  Small s;
  write_file_atomic(dir.file("img"), s.images());
  write_file_atomic(dir.file("lab"), s.label_file());
  const std::string msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab"), 5); });
  EXPECT_STARTS_WITH(msg, dir.file("lab") + ":");
  EXPECT_CONTAINS(msg, "label 9 at index 1 out of range, expected < 5");
  EXPECT_THROW(read_idx(dir.file("img"), dir.file("lab"), 0), Error);
}

TEST(Idx, WrongMagic) {
  ScopedTempDir dir;
  Small s;
  write_file_atomic(dir.file("img"), idx_images(0x801, 3, 2, 3, s.px));
  write_file_atomic(dir.file("lab"), s.label_file());
  std::string msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("img") + ": wrong magic 0x00000801, expected 0x00000803");

  write_file_atomic(dir.file("img"), s.images());
  write_file_atomic(dir.file("lab"), idx_labels(0x803, 3, s.labels));
  msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("lab") + ": wrong magic 0x00000803, expected 0x00000801");

  // A float IDX file (type byte 0x0d) is not accepted either.
  write_file_atomic(dir.file("img"), idx_images(0xd03, 3, 2, 3, s.px));
  msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_CONTAINS(msg, "wrong magic 0x00000d03");
}

TEST(Idx, TruncatedHeader) {
  ScopedTempDir dir;
  Small s;
  write_file_atomic(dir.file("img"), s.images().substr(0, 10));
  write_file_atomic(dir.file("lab"), s.label_file());
  const std::string msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("img") + ": truncated IDX header: expected 16 bytes, found 10");
  write_file_atomic(dir.file("img"), "");
  EXPECT_CONTAINS(error_of([&] { read_idx(dir.file("img"), dir.file("lab")); }), "found 0");
}

TEST(Idx, TruncatedPixels) {
  ScopedTempDir dir;
  Small s;
  std::string img = s.images();
  img.pop_back();
  write_file_atomic(dir.file("img"), img);
  write_file_atomic(dir.file("lab"), s.label_file());
  std::string msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("img") + ": truncated: expected 18 bytes of pixel data, found 17");
  // The same inside a well-formed gzip stream.
  write_gz(dir.file("img.gz"), img);
  msg = error_of([&] { read_idx(dir.file("img.gz"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("img.gz") + ": truncated: expected 18 bytes of pixel data, found 17");
  // A gzip header promising more than deflate could expand its file to (10 × 4096 × 4096 pixels from
  // a few bytes) takes the path that grows with the data, and fails the same way.
  write_gz(dir.file("big.gz"), idx_images(0x803, 10, 4096, 4096, s.px));
  write_file_atomic(dir.file("lab10"), idx_labels(0x801, 10, std::vector<uint8_t>(10, 1)));
  msg = error_of([&] { read_idx(dir.file("big.gz"), dir.file("lab10")); });
  EXPECT_STARTS_WITH(msg, dir.file("big.gz") + ": truncated: expected 167772160 bytes of pixel data, found 18");
  // A large gzip file within the bound is read whole: 40 images of 100 × 100 zeros (about 400 KB from a
  // few hundred bytes).
  {
    const std::vector<uint8_t> zeros(40 * 100 * 100, 0);
    write_gz(dir.file("zeros.gz"), idx_images(0x803, 40, 100, 100, zeros));
    write_file_atomic(dir.file("lab40"), idx_labels(0x801, 40, std::vector<uint8_t>(40, 3)));
    const Dataset z = read_idx(dir.file("zeros.gz"), dir.file("lab40"));
    EXPECT_EQ(z.n, 40);
    EXPECT_EQ(z.images, zeros);
  }
  // Labels.
  std::string lab = s.label_file();
  lab.pop_back();
  write_file_atomic(dir.file("img"), s.images());
  write_file_atomic(dir.file("lab"), lab);
  msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("lab") + ": truncated: expected 3 bytes of label data, found 2");
}

TEST(Idx, TrailingBytes) {
  ScopedTempDir dir;
  Small s;
  write_file_atomic(dir.file("img"), s.images() + "xy");
  write_file_atomic(dir.file("lab"), s.label_file());
  std::string msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("img") + ": 2 trailing bytes");
  write_gz(dir.file("img.gz"), s.images() + "xyz");
  msg = error_of([&] { read_idx(dir.file("img.gz"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("img.gz") + ": 3 trailing bytes");
  write_file_atomic(dir.file("img"), s.images());
  write_file_atomic(dir.file("lab"), s.label_file() + "q");
  msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("lab") + ": 1 trailing bytes");
}

TEST(Idx, CountMismatch) {
  ScopedTempDir dir;
  Small s;
  write_file_atomic(dir.file("img"), s.images());
  write_file_atomic(dir.file("lab"), idx_labels(0x801, 2, {1, 2}));
  const std::string msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("lab") + ": count mismatch: 2 labels");
  EXPECT_CONTAINS(msg, "has 3 images");
}

TEST(Idx, LabelOutOfRange) {
  ScopedTempDir dir;
  Small s;
  write_file_atomic(dir.file("img"), s.images());
  write_file_atomic(dir.file("lab"), idx_labels(0x801, 3, {1, 2, 10}));
  const std::string msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("lab") + ": label 10 at index 2 out of range, expected < 10");
}

TEST(Idx, ZeroOrHugeDims) {
  ScopedTempDir dir;
  Small s;
  write_file_atomic(dir.file("lab"), idx_labels(0x801, 0, {}));
  write_file_atomic(dir.file("img"), idx_images(0x803, 0, 2, 3, {}));
  std::string msg = error_of([&] { read_idx(dir.file("img"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("img") + ": image count 0 out of range");
  EXPECT_CONTAINS(msg, "zero or implausible dims");

  write_file_atomic(dir.file("lab"), s.label_file());
  write_file_atomic(dir.file("img"), idx_images(0x803, 3, 0, 3, {}));
  EXPECT_CONTAINS(error_of([&] { read_idx(dir.file("img"), dir.file("lab")); }),
                  "image rows 0 out of range");
  write_file_atomic(dir.file("img"), idx_images(0x803, 3, 2, 5000, {}));
  EXPECT_CONTAINS(error_of([&] { read_idx(dir.file("img"), dir.file("lab")); }),
                  "image cols 5000 out of range, expected 1..4096");
  // A huge count is rejected from the header alone (no attempt to allocate).
  write_file_atomic(dir.file("img"), idx_images(0x803, 0xffffffffu, 4096, 4096, {}));
  EXPECT_CONTAINS(error_of([&] { read_idx(dir.file("img"), dir.file("lab")); }),
                  "image count 4294967295 out of range, expected 1..10000000");
}

TEST(Idx, MissingFile) {
  ScopedTempDir dir;
  Small s;
  write_file_atomic(dir.file("lab"), s.label_file());
  std::string msg = error_of([&] { read_idx(dir.file("nope"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("nope") + ": cannot open: No such file or directory");
  write_file_atomic(dir.file("img"), s.images());
  msg = error_of([&] { read_idx(dir.file("img"), dir.file("nolab")); });
  EXPECT_STARTS_WITH(msg, dir.file("nolab") + ": cannot open");
  msg = error_of([&] { read_idx(dir.path(), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.path() + ": cannot open: is a folder");
}

TEST(Idx, CorruptGzip) {
  ScopedTempDir dir;
  Small s;
  write_gz(dir.file("img.gz"), s.images());
  write_file_atomic(dir.file("lab"), s.label_file());
  std::string gz = read_file(dir.file("img.gz"));
  write_file_atomic(dir.file("cut.gz"), gz.substr(0, gz.size() / 2));
  std::string msg = error_of([&] { read_idx(dir.file("cut.gz"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("cut.gz") + ":");
  EXPECT_CONTAINS(msg, "truncated");
  std::string bad = gz;
  for (size_t i = 10; i < bad.size() - 8; ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5a);
  write_file_atomic(dir.file("bad.gz"), bad);
  msg = error_of([&] { read_idx(dir.file("bad.gz"), dir.file("lab")); });
  EXPECT_STARTS_WITH(msg, dir.file("bad.gz") + ":");
}

// ---- CIFAR-10 ----------------------------------------------------------------------------

namespace {

// Record r: label `labels[r]`, plane ch pixel p = (50·ch + 7·r + p) mod 256.
std::string cifar_file(const std::vector<uint8_t>& labels, int first_record = 0) {
  std::string s;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int r = first_record + static_cast<int>(i);
    s.push_back(static_cast<char>(labels[i]));
    for (int ch = 0; ch < 3; ++ch)
      for (int p = 0; p < 1024; ++p) s.push_back(static_cast<char>((50 * ch + 7 * r + p) & 0xff));
  }
  return s;
}

}  // namespace

TEST(Cifar10, RoundTripAndPlanes) {
  ScopedTempDir dir;
  write_file_atomic(dir.file("a.bin"), cifar_file({3, 9}, 0));
  write_file_atomic(dir.file("b.bin"), cifar_file({0}, 2));
  const Dataset ds = read_cifar10({dir.file("a.bin"), dir.file("b.bin")});
  EXPECT_EQ(ds.name, "cifar10");
  EXPECT_EQ(ds.n, 3);
  EXPECT_EQ(ds.c, 3);
  EXPECT_EQ(ds.h, 32);
  EXPECT_EQ(ds.w, 32);
  EXPECT_EQ(ds.num_classes, 10);
  EXPECT_EQ(ds.labels, (std::vector<uint8_t>{3, 9, 0}));
  ASSERT_EQ(ds.images.size(), 3u * 3072u);
  for (int r = 0; r < 3; ++r)
    for (int ch = 0; ch < 3; ++ch)
      for (int p : {0, 31, 32, 555, 1023})
        ASSERT_EQ(ds.images[(r * 3 + ch) * 1024 + p], (50 * ch + 7 * r + p) & 0xff)
            << "record " << r << " channel " << ch << " pixel " << p;
  // Pixel (y=1, x=2) of the green plane of record 1 sits at [1][1][1][2].
  EXPECT_EQ(ds.images[((1 * 3 + 1) * 32 + 1) * 32 + 2], (50 + 7 + 34) & 0xff);
}

TEST(DatasetRows, CopiesTheImagesAndLabelsOfTheRange) {
  ScopedTempDir dir;
  write_file_atomic(dir.file("a.bin"), cifar_file({3, 9, 1, 7}, 0));
  const Dataset ds = read_cifar10({dir.file("a.bin")});
  const Dataset mid = dataset_rows(ds, 1, 3);
  EXPECT_EQ(mid.n, 2);
  EXPECT_EQ(mid.name, ds.name);
  EXPECT_EQ(mid.c * mid.h * mid.w, 3072);
  EXPECT_EQ(mid.num_classes, 10);
  EXPECT_EQ(mid.labels, (std::vector<uint8_t>{9, 1}));
  EXPECT_TRUE(std::equal(mid.images.begin(), mid.images.end(), ds.images.begin() + 3072));
  EXPECT_EQ(mid.images.size(), 2u * 3072u);
  EXPECT_EQ(dataset_rows(ds, 4, 4).n, 0);
  EXPECT_THROW(dataset_rows(ds, 3, 5), Error);
  EXPECT_THROW(dataset_rows(ds, 2, 1), Error);
  EXPECT_THROW(dataset_rows(ds, -1, 2), Error);
}

TEST(Cifar10, Rejects) {
  ScopedTempDir dir;
  write_file_atomic(dir.file("short.bin"), cifar_file({1}).substr(0, 3000));
  std::string msg = error_of([&] { read_cifar10({dir.file("short.bin")}); });
  EXPECT_STARTS_WITH(msg, dir.file("short.bin") + ": size 3000 bytes is not a positive multiple of 3073");
  write_file_atomic(dir.file("long.bin"), cifar_file({1, 2}) + "z");
  EXPECT_CONTAINS(error_of([&] { read_cifar10({dir.file("long.bin")}); }), "size 6147 bytes");
  write_file_atomic(dir.file("empty.bin"), "");
  EXPECT_CONTAINS(error_of([&] { read_cifar10({dir.file("empty.bin")}); }), "size 0 bytes");
  write_file_atomic(dir.file("label.bin"), cifar_file({1, 10}));
  msg = error_of([&] { read_cifar10({dir.file("label.bin")}); });
  EXPECT_STARTS_WITH(msg, dir.file("label.bin") + ": label 10 of record 1 out of range, expected < 10");
  msg = error_of([&] { read_cifar10({dir.file("missing.bin")}); });
  EXPECT_STARTS_WITH(msg, dir.file("missing.bin") + ": cannot open");
}

// ---- load_dataset / default_data_dir --------------------------------------------------

TEST(LoadDataset, UnknownName) {
  const std::string msg = error_of([] { load_dataset("svhn", "/nonexistent", true); });
  EXPECT_CONTAINS(msg, "unknown data set 'svhn'");
  EXPECT_CONTAINS(msg, "mnist, fashion-mnist, cifar10");
  EXPECT_CONTAINS(error_of([] { default_data_dir("imagenet"); }), "unknown data set 'imagenet'");
}

TEST(LoadDataset, MissingDataSaysHowToGetIt) {
  ScopedTempDir dir;
  std::string msg = error_of([&] { load_dataset("mnist", dir.file("none"), true); });
  EXPECT_CONTAINS(msg, dir.file("none"));
  EXPECT_CONTAINS(msg, "scripts/fetch-data");
  msg = error_of([&] { load_dataset("fashion-mnist", dir.path(), false); });
  EXPECT_CONTAINS(msg, dir.file("t10k-images-idx3-ubyte"));
  EXPECT_CONTAINS(msg, "scripts/fetch-data");
  msg = error_of([&] { load_dataset("cifar10", dir.path(), true); });
  EXPECT_CONTAINS(msg, "data_batch_1.bin not found");
  EXPECT_CONTAINS(msg, dir.file("cifar-10-batches-bin"));
}

TEST(LoadDataset, FindsFilesByConvention) {
  ScopedTempDir dir;
  Small s;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), s.images());
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), s.label_file());
  write_file_atomic(dir.file("t10k-images-idx3-ubyte"), idx_images(0x803, 1, 2, 3, {1, 2, 3, 4, 5, 6}));
  write_file_atomic(dir.file("t10k-labels-idx1-ubyte"), idx_labels(0x801, 1, {7}));
  const Dataset tr = load_dataset("mnist", dir.path(), true);
  EXPECT_EQ(tr.name, "mnist");
  expect_small(tr, s);
  const Dataset te = load_dataset("fashion-mnist", dir.path(), false);
  EXPECT_EQ(te.name, "fashion-mnist");
  EXPECT_EQ(te.n, 1);
  EXPECT_EQ(te.labels, std::vector<uint8_t>{7});

  const std::string sub = dir.file("cifar-10-batches-bin");
  ensure_dir(sub);
  for (int i = 1; i <= 5; ++i)
    write_file_atomic(sub + "/data_batch_" + std::to_string(i) + ".bin", cifar_file({static_cast<uint8_t>(i)}, i));
  write_file_atomic(sub + "/test_batch.bin", cifar_file({8, 9}));
  const Dataset c = load_dataset("cifar10", dir.path(), true);
  EXPECT_EQ(c.n, 5);
  EXPECT_EQ(c.labels, (std::vector<uint8_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(c.images[4 * 3072], (7 * 5) & 0xff);  // record 5's first red pixel
  EXPECT_EQ(load_dataset("cifar10", sub, false).labels, (std::vector<uint8_t>{8, 9}));
  std::filesystem::remove(sub + "/data_batch_4.bin");
  EXPECT_CONTAINS(error_of([&] { load_dataset("cifar10", dir.path(), true); }), "data_batch_4.bin: not found");
}

TEST(LoadDataset, DefaultDataDir) {
  const char* old = std::getenv("CUVAE_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("CUVAE_DATA_DIR", "/some/where", 1);
  EXPECT_EQ(default_data_dir("mnist"), "/some/where/mnist");
  EXPECT_EQ(default_data_dir("cifar10"), "/some/where/cifar10");
  ::unsetenv("CUVAE_DATA_DIR");
  const std::string d = default_data_dir("fashion-mnist");
  if (std::filesystem::is_directory("data/fashion-mnist"))
    EXPECT_EQ(d, "data/fashion-mnist");
  else
    EXPECT_EQ(d, std::string(CUVAE_SOURCE_DIR) + "/data/fashion-mnist");
  if (old) ::setenv("CUVAE_DATA_DIR", saved.c_str(), 1);
}

// ---- the real data sets (present after scripts/fetch-data) -----------------------------

namespace {

void check_real(const std::string& name, const std::vector<int64_t>& train_counts,
                const std::vector<int64_t>& test_counts) {
  const std::string dir = std::string(CUVAE_SOURCE_DIR) + "/data/" + name;
  if (!std::filesystem::is_directory(dir))
    GTEST_SKIP() << dir << " not present: run scripts/fetch-data to test on the real " << name;
  for (bool train : {true, false}) {
    const Dataset ds = load_dataset(name, dir, train);
    const auto& want = train ? train_counts : test_counts;
    EXPECT_EQ(ds.n, train ? 60000 : 10000);
    EXPECT_EQ(ds.c, 1);
    EXPECT_EQ(ds.h, 28);
    EXPECT_EQ(ds.w, 28);
    ASSERT_EQ(ds.images.size(), static_cast<size_t>(ds.n) * 784u);
    std::vector<int64_t> counts(10, 0);
    for (uint8_t l : ds.labels) ++counts.at(l);
    EXPECT_EQ(counts, want) << name << (train ? " train" : " test");
    const uint8_t mx = *std::max_element(ds.images.begin(), ds.images.end());
    EXPECT_EQ(mx, 255);
  }
}

}  // namespace

TEST(RealData, Mnist) {
  check_real("mnist", {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949},
             {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
}

TEST(RealData, FashionMnist) {
  check_real("fashion-mnist", std::vector<int64_t>(10, 6000), std::vector<int64_t>(10, 1000));
}
