#include "host/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "host/check.h"
#include "host/fs.h"

#ifndef CUVAE_SOURCE_DIR
#define CUVAE_SOURCE_DIR "."
#endif

namespace cuvae {

namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803;  // unsigned bytes, 3 dims
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned bytes, 1 dim
constexpr int64_t kMaxItems = 10000000;
constexpr int64_t kMaxSide = 4096;
constexpr int64_t kCifarPixels = 3 * 32 * 32;
constexpr int64_t kCifarRecord = 1 + kCifarPixels;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// `path` if it exists, else `path.gz` if that exists, else `path` (so errors name it).
std::string resolve_gz(const std::string& path) {
  if (!file_exists(path) && file_exists(path + ".gz")) return path + ".gz";
  return path;
}

// A raw or gzip-compressed file read sequentially through zlib (which passes raw data
// through unchanged and detects gzip by its magic bytes).
class IdxFile {
 public:
  explicit IdxFile(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec))
      CUVAE_FAIL(path_ << ": cannot open: is a folder, expected an IDX file");
    errno = 0;
    f_ = gzopen(path_.c_str(), "rb");
    if (!f_)
      CUVAE_FAIL(path_ << ": cannot open: "
                       << (errno ? std::strerror(errno) : "out of memory"));
    gzbuffer(f_, 1 << 18);
  }
  ~IdxFile() {
    if (f_) gzclose(f_);
  }
  IdxFile(const IdxFile&) = delete;
  IdxFile& operator=(const IdxFile&) = delete;

  const std::string& path() const { return path_; }

  // Reads up to `n` bytes; fewer only at the end of the data. Throws on corrupt gzip.
  uint64_t read(void* dst, uint64_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    uint64_t got = 0;
    while (got < n) {
      const uint64_t want = std::min<uint64_t>(n - got, 1u << 30);
      const int r = gzread(f_, out + got, static_cast<unsigned>(want));
      check_stream();
      if (r <= 0) break;
      got += static_cast<uint64_t>(r);
      consumed_ += static_cast<uint64_t>(r);
    }
    return got;
  }

  // Number of bytes left after what has been read so far.
  uint64_t remaining() {
    if (gzdirect(f_)) {
      std::error_code ec;
      const uint64_t size = std::filesystem::file_size(path_, ec);
      if (!ec) return size > consumed_ ? size - consumed_ : 0;
    }
    uint64_t extra = 0;
    std::vector<unsigned char> buf(1 << 16);
    for (;;) {
      const int r = gzread(f_, buf.data(), static_cast<unsigned>(buf.size()));
      check_stream();
      if (r <= 0) break;
      extra += static_cast<uint64_t>(r);
    }
    return extra;
  }

 private:
  void check_stream() {
    int err = Z_OK;
    const char* msg = gzerror(f_, &err);
    if (err == Z_OK) return;
    if (err == Z_BUF_ERROR)
      CUVAE_FAIL(path_ << ": gzip data is truncated (" << msg << ")");
    if (err == Z_ERRNO)
      CUVAE_FAIL(path_ << ": cannot read: " << std::strerror(errno));
    CUVAE_FAIL(path_ << ": corrupt gzip data (" << msg << ")");
  }

  std::string path_;
  gzFile f_ = nullptr;
  uint64_t consumed_ = 0;
};

void read_header(IdxFile& f, unsigned char* hdr, uint64_t bytes, uint32_t magic,
                 const char* what) {
  const uint64_t got = f.read(hdr, bytes);
  if (got >= 4 && be32(hdr) != magic)
    CUVAE_FAIL(f.path() << ": wrong magic " << hex32(be32(hdr)) << ", expected " << hex32(magic)
                        << " (" << what << ")");
  if (got < bytes)
    CUVAE_FAIL(f.path() << ": truncated IDX header: expected " << bytes << " bytes, found "
                        << got);
}

int64_t checked_dim(const IdxFile& f, uint32_t v, int64_t max, const char* what) {
  if (v == 0 || static_cast<int64_t>(v) > max)
    CUVAE_FAIL(f.path() << ": " << what << " " << v << " out of range, expected 1.." << max
                        << " (zero or implausible dims)");
  return static_cast<int64_t>(v);
}

// Reads exactly `bytes` payload bytes into `dst` and insists nothing follows them.
void read_payload(IdxFile& f, uint8_t* dst, uint64_t bytes, uint64_t header,
                  const char* what) {
  const uint64_t got = f.read(dst, bytes);
  if (got < bytes)
    CUVAE_FAIL(f.path() << ": truncated: expected " << bytes << " bytes of " << what
                        << " data, found " << got);
  const uint64_t extra = f.remaining();
  if (extra > 0)
    CUVAE_FAIL(f.path() << ": " << extra << " trailing bytes after the " << header
                        << "-byte header and " << bytes << " bytes of " << what
                        << " data (expected the file to end there)");
}

std::string join_names() {
  std::string s;
  for (const auto& n : dataset_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void check_name(const std::string& name) {
  for (const auto& n : dataset_names())
    if (n == name) return;
  CUVAE_FAIL("unknown data set '" << name << "': expected one of " << join_names());
}

bool is_dir(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}

}  // namespace

std::vector<std::string> class_names(const std::string& name) {
  if (name == "fashion-mnist")
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  if (name == "cifar10")
    return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
}

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"mnist", "fashion-mnist", "cifar10"};
  return names;
}

Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 int num_classes) {
  CUVAE_CHECK(num_classes >= 1 && num_classes <= 256,
              "read_idx: num_classes " << num_classes << " out of range, expected 1..256");
  Dataset ds;
  ds.name = images_path;
  ds.num_classes = num_classes;
  ds.c = 1;

  IdxFile img(resolve_gz(images_path));
  unsigned char hdr[16];
  read_header(img, hdr, 16, kIdxImagesMagic, "IDX images: unsigned bytes, 3 dims");
  ds.n = checked_dim(img, be32(hdr + 4), kMaxItems, "image count");
  ds.h = checked_dim(img, be32(hdr + 8), kMaxSide, "image rows");
  ds.w = checked_dim(img, be32(hdr + 12), kMaxSide, "image cols");
  const uint64_t pix = static_cast<uint64_t>(ds.n) * static_cast<uint64_t>(ds.pixels());

  // Check the label header before the (large) pixel read so a mismatch fails fast.
  IdxFile lab(resolve_gz(labels_path));
  unsigned char lhdr[8];
  read_header(lab, lhdr, 8, kIdxLabelsMagic, "IDX labels: unsigned bytes, 1 dim");
  const int64_t nl = checked_dim(lab, be32(lhdr + 4), kMaxItems, "label count");
  if (nl != ds.n)
    CUVAE_FAIL(lab.path() << ": count mismatch: " << nl << " labels, but " << img.path()
                          << " has " << ds.n << " images");

  ds.images.resize(pix);
  read_payload(img, ds.images.data(), pix, 16, "pixel");
  ds.labels.resize(static_cast<size_t>(ds.n));
  read_payload(lab, ds.labels.data(), static_cast<uint64_t>(ds.n), 8, "label");
  for (int64_t i = 0; i < ds.n; ++i)
    if (ds.labels[i] >= num_classes)
      CUVAE_FAIL(lab.path() << ": label " << int{ds.labels[i]} << " at index " << i
                            << " out of range, expected < " << num_classes);
  return ds;
}

Dataset read_cifar10(const std::vector<std::string>& batch_files) {
  CUVAE_CHECK(!batch_files.empty(), "read_cifar10: no batch files given");
  Dataset ds;
  ds.name = "cifar10";
  ds.c = 3;
  ds.h = 32;
  ds.w = 32;
  ds.num_classes = 10;
  for (const auto& path : batch_files) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      CUVAE_FAIL(path << ": cannot open: " << (std::filesystem::exists(path, ec)
                                                   ? "not a regular file"
                                                   : "No such file or directory"));
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) CUVAE_FAIL(path << ": cannot read size: " << ec.message());
    if (size == 0 || size % kCifarRecord != 0)
      CUVAE_FAIL(path << ": size " << size << " bytes is not a positive multiple of "
                      << kCifarRecord
                      << " (CIFAR-10 record: 1 label byte + 3072 pixel bytes)");
    const int64_t records = static_cast<int64_t>(size / kCifarRecord);
    if (ds.n + records > kMaxItems)
      CUVAE_FAIL(path << ": too many records in total (" << ds.n + records << "), expected at most "
                      << kMaxItems);
    const std::string bytes = read_file(path);
    if (bytes.size() != size)
      CUVAE_FAIL(path << ": size changed while reading (" << size << " then " << bytes.size()
                      << " bytes)");
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t base = ds.images.size();
    ds.images.resize(base + static_cast<size_t>(records * kCifarPixels));
    ds.labels.reserve(static_cast<size_t>(ds.n + records));
    for (int64_t r = 0; r < records; ++r) {
      const uint8_t* rec = p + r * kCifarRecord;
      if (rec[0] >= 10)
        CUVAE_FAIL(path << ": label " << int{rec[0]} << " of record " << r
                        << " out of range, expected < 10");
      ds.labels.push_back(rec[0]);
      std::memcpy(ds.images.data() + base + r * kCifarPixels, rec + 1, kCifarPixels);
    }
    ds.n += records;
  }
  return ds;
}

Dataset load_dataset(const std::string& name, const std::string& dir, bool train) {
  check_name(name);
  if (name == "cifar10") {
    std::vector<std::string> names;
    if (train) {
      for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
    } else {
      names.push_back("test_batch.bin");
    }
    const std::string sub = dir + "/cifar-10-batches-bin";
    std::string base;
    if (file_exists(dir + "/" + names[0])) {
      base = dir;
    } else if (file_exists(sub + "/" + names[0])) {
      base = sub;
    } else {
      CUVAE_FAIL("cifar10: " << names[0] << " not found in " << dir << " or " << sub
                             << "; CIFAR-10 is not downloaded automatically: extract the binary "
                                "version (cifar-10-binary.tar.gz) so that "
                             << sub
                             << "/ holds data_batch_1.bin..data_batch_5.bin and test_batch.bin");
    }
    std::vector<std::string> paths;
    for (const auto& n : names) {
      const std::string p = base + "/" + n;
      if (!file_exists(p))
        CUVAE_FAIL(p << ": not found; CIFAR-10 needs data_batch_1.bin..data_batch_5.bin and "
                        "test_batch.bin together in "
                     << base);
      paths.push_back(p);
    }
    Dataset ds = read_cifar10(paths);
    ds.name = name;
    return ds;
  }

  if (!is_dir(dir))
    CUVAE_FAIL(name << ": data folder " << dir
                    << " does not exist; run scripts/fetch-data to put MNIST and FashionMNIST "
                       "under data/ (or set CUVAE_DATA_DIR)");
  const std::string prefix = train ? "train" : "t10k";
  const std::string images = dir + "/" + prefix + "-images-idx3-ubyte";
  const std::string labels = dir + "/" + prefix + "-labels-idx1-ubyte";
  for (const auto& p : {images, labels})
    if (!file_exists(p) && !file_exists(p + ".gz"))
      CUVAE_FAIL(p << "(.gz): not found; run scripts/fetch-data to download " << name);
  Dataset ds = read_idx(images, labels, 10);
  ds.name = name;
  return ds;
}

std::string default_data_dir(const std::string& name) {
  check_name(name);
  const char* env = std::getenv("CUVAE_DATA_DIR");
  if (env && *env) return std::string(env) + "/" + name;
  const std::string local = "data/" + name;
  if (is_dir(local)) return local;
  return std::string(CUVAE_SOURCE_DIR) + "/data/" + name;
}

}  // namespace cuvae
