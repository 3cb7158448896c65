#include "io/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/check.h"
#include "io/fs.h"

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

// The whole file at `path`, with errors in the readers' "<path>: cannot open: ..." form.
std::string read_data_file(const std::string& path, const char* expected) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    CUVAE_FAIL(path << ": cannot open: is a folder, expected " << expected);
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) CUVAE_FAIL(path << ": cannot open: " << (errno ? std::strerror(errno) : "out of memory"));
  std::string bytes;
  std::error_code size_ec;
  const auto size = std::filesystem::file_size(path, size_ec);
  if (!size_ec && size < (uint64_t{1} << 36)) bytes.reserve(static_cast<size_t>(size));
  char buf[1 << 16];
  for (;;) {
    const size_t r = std::fread(buf, 1, sizeof buf, f);
    bytes.append(buf, r);
    if (r < sizeof buf) break;
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) CUVAE_FAIL(path << ": cannot read: " << std::strerror(err));
  return bytes;
}

// Raw or gzip-compressed bytes in memory, read sequentially. Gzip is recognised by its
// 1f 8b magic; like zlib's gzread, a member that ends is followed by the next one when
// another gzip header comes, and whatever else follows the last member is ignored.
class IdxStream {
 public:
  IdxStream(const std::string& bytes, const std::string& what) : bytes_(bytes), what_(what) {
    gzip_ = bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
            static_cast<unsigned char>(bytes[1]) == 0x8b;
    if (!gzip_) return;
    // zlib takes at most 4 GiB of input at a time; IDX files are far smaller.
    if (bytes.size() > 0xffffffffu) CUVAE_FAIL(what_ << ": gzip file larger than 4 GiB");
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    zs_.avail_in = static_cast<uInt>(bytes.size());
    if (inflateInit2(&zs_, 15 + 16) != Z_OK)  // 15: largest window; +16: gzip wrapper only
      CUVAE_FAIL(what_ << ": cannot start gzip decoding (out of memory)");
    inflating_ = true;
  }
  ~IdxStream() {
    if (inflating_) inflateEnd(&zs_);
  }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;

  const std::string& what() const { return what_; }
  bool raw() const { return !gzip_; }
  // Bytes not yet read of raw data (for raw data only: known without reading it).
  uint64_t raw_left() const { return bytes_.size() - pos_; }
  // Size of the data as stored (compressed, for gzip).
  uint64_t stored_size() const { return bytes_.size(); }

  // Reads up to `n` bytes; fewer only at the end of the data. Throws on corrupt gzip.
  uint64_t read(void* dst, uint64_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    if (!gzip_) {
      const uint64_t k = std::min<uint64_t>(n, bytes_.size() - pos_);
      if (k > 0) std::memcpy(out, bytes_.data() + pos_, k);
      pos_ += k;
      return k;
    }
    uint64_t got = 0;
    while (got < n && !ended_) {
      const uInt want = static_cast<uInt>(std::min<uint64_t>(n - got, 1u << 30));
      zs_.next_out = out + got;
      zs_.avail_out = want;
      const int r = inflate(&zs_, Z_NO_FLUSH);
      got += want - zs_.avail_out;
      if (r == Z_STREAM_END) {
        if (zs_.avail_in >= 2 && zs_.next_in[0] == 0x1f && zs_.next_in[1] == 0x8b) {
          inflateReset(&zs_);  // another member follows
        } else {
          ended_ = true;
        }
      } else if (r == Z_BUF_ERROR) {  // no progress possible: the input ended inside a member
        CUVAE_FAIL(what_ << ": gzip data is truncated (unexpected end of file)");
      } else if (r != Z_OK) {
        CUVAE_FAIL(what_ << ": corrupt gzip data (" << (zs_.msg ? zs_.msg : zError(r)) << ")");
      }
    }
    return got;
  }

  // Number of bytes left after what has been read so far (gzip: decoded and counted in a
  // small buffer, never held).
  uint64_t remaining() {
    if (!gzip_) return raw_left();
    uint64_t extra = 0;
    std::vector<unsigned char> buf(1 << 16);
    for (;;) {
      const uint64_t r = read(buf.data(), buf.size());
      extra += r;
      if (r < buf.size()) break;
    }
    return extra;
  }

 private:
  const std::string& bytes_;
  const std::string what_;
  bool gzip_ = false, inflating_ = false, ended_ = false;
  z_stream zs_{};
  uint64_t pos_ = 0;  // raw data: bytes read so far
};

void read_header(IdxStream& f, unsigned char* hdr, uint64_t bytes, uint32_t magic,
                 const char* what) {
  const uint64_t got = f.read(hdr, bytes);
  if (got >= 4 && be32(hdr) != magic)
    CUVAE_FAIL(f.what() << ": wrong magic " << hex32(be32(hdr)) << ", expected " << hex32(magic)
                        << " (" << what << ")");
  if (got < bytes)
    CUVAE_FAIL(f.what() << ": truncated IDX header: expected " << bytes << " bytes, found "
                        << got);
}

int64_t checked_dim(const IdxStream& f, uint32_t v, int64_t max, const char* what) {
  if (v == 0 || static_cast<int64_t>(v) > max)
    CUVAE_FAIL(f.what() << ": " << what << " " << v << " out of range, expected 1.." << max
                        << " (zero or implausible dims)");
  return static_cast<int64_t>(v);
}

// Reads exactly `bytes` payload bytes into `dst` and insists nothing follows them. Raw data
// is checked against its known size before allocating; gzip output is buffered as it
// arrives (growing geometrically), so memory follows the data, not the header's promise.
void read_payload(IdxStream& f, std::vector<uint8_t>& dst, uint64_t bytes, uint64_t header,
                  const char* what) {
  uint64_t got = 0;
  if (f.raw()) {
    if (f.raw_left() >= bytes) {
      dst.resize(bytes);
      got = f.read(dst.data(), bytes);
    } else {
      got = f.raw_left();
    }
  } else if (bytes <= 1032 * f.stored_size() + (1 << 16) && bytes <= (uint64_t{1} << 30)) {
    // Deflate expands at most 1032-fold, so a header that promises no more than that gets its
    // buffer at once: one allocation, each page touched once (growing it doubled the memory
    // the process touched, and on a VM each new page is slow).
    dst.resize(bytes);
    got = f.read(dst.data(), bytes);
  } else {
    // A header promising more than the file can hold (or over 1 GiB): grow as the data comes,
    // so a forged header cannot make us allocate it, and report the truncation below.
    dst.clear();
    while (got < bytes) {
      const uint64_t step = std::min<uint64_t>(bytes - got, std::max<uint64_t>(got, 1 << 16));
      dst.resize(got + step);
      const uint64_t r = f.read(dst.data() + got, step);
      got += r;
      if (r < step) break;
    }
  }
  if (got < bytes)
    CUVAE_FAIL(f.what() << ": truncated: expected " << bytes << " bytes of " << what
                        << " data, found " << got);
  const uint64_t extra = f.remaining();
  if (extra > 0)
    CUVAE_FAIL(f.what() << ": " << extra << " trailing bytes after the " << header
                        << "-byte header and " << bytes << " bytes of " << what
                        << " data (expected the file to end there)");
}

// A CIFAR-10 batch of `size` bytes: the number of records, or an error naming `what`.
int64_t cifar_records(uint64_t size, const std::string& what) {
  if (size == 0 || size % kCifarRecord != 0)
    CUVAE_FAIL(what << ": size " << size << " bytes is not a positive multiple of "
                    << kCifarRecord << " (CIFAR-10 record: 1 label byte + 3072 pixel bytes)");
  const uint64_t records = size / kCifarRecord;
  if (records > static_cast<uint64_t>(kMaxItems))
    CUVAE_FAIL(what << ": too many records (" << records << "), expected at most " << kMaxItems);
  return static_cast<int64_t>(records);
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

Dataset parse_idx(const std::string& image_bytes, const std::string& label_bytes,
                  int num_classes, const std::string& images_what,
                  const std::string& labels_what) {
  CUVAE_CHECK(num_classes >= 1 && num_classes <= 256,
              "parse_idx: num_classes " << num_classes << " out of range, expected 1..256");
  Dataset ds;
  ds.name = images_what;
  ds.num_classes = num_classes;
  ds.c = 1;

  IdxStream img(image_bytes, images_what);
  unsigned char hdr[16];
  read_header(img, hdr, 16, kIdxImagesMagic, "IDX images: unsigned bytes, 3 dims");
  ds.n = checked_dim(img, be32(hdr + 4), kMaxItems, "image count");
  ds.h = checked_dim(img, be32(hdr + 8), kMaxSide, "image rows");
  ds.w = checked_dim(img, be32(hdr + 12), kMaxSide, "image cols");
  const uint64_t pix = static_cast<uint64_t>(ds.n) * static_cast<uint64_t>(ds.pixels());

  // Check the label header before the (large) pixel read so a mismatch fails fast.
  IdxStream lab(label_bytes, labels_what);
  unsigned char lhdr[8];
  read_header(lab, lhdr, 8, kIdxLabelsMagic, "IDX labels: unsigned bytes, 1 dim");
  const int64_t nl = checked_dim(lab, be32(lhdr + 4), kMaxItems, "label count");
  if (nl != ds.n)
    CUVAE_FAIL(lab.what() << ": count mismatch: " << nl << " labels, but " << img.what()
                          << " has " << ds.n << " images");

  read_payload(img, ds.images, pix, 16, "pixel");
  read_payload(lab, ds.labels, static_cast<uint64_t>(ds.n), 8, "label");
  for (int64_t i = 0; i < ds.n; ++i)
    if (ds.labels[i] >= num_classes)
      CUVAE_FAIL(lab.what() << ": label " << int{ds.labels[i]} << " at index " << i
                            << " out of range, expected < " << num_classes);
  return ds;
}

Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 int num_classes) {
  CUVAE_CHECK(num_classes >= 1 && num_classes <= 256,
              "read_idx: num_classes " << num_classes << " out of range, expected 1..256");
  const std::string ip = resolve_gz(images_path), lp = resolve_gz(labels_path);
  const std::string images = read_data_file(ip, "an IDX file");
  const std::string labels = read_data_file(lp, "an IDX file");
  Dataset ds = parse_idx(images, labels, num_classes, ip, lp);
  ds.name = images_path;
  return ds;
}

Dataset parse_cifar10_batch(const std::string& bytes, const std::string& what) {
  const int64_t records = cifar_records(bytes.size(), what);
  Dataset ds;
  ds.name = "cifar10";
  ds.n = records;
  ds.c = 3;
  ds.h = 32;
  ds.w = 32;
  ds.num_classes = 10;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  ds.images.resize(static_cast<size_t>(records * kCifarPixels));
  ds.labels.resize(static_cast<size_t>(records));
  for (int64_t r = 0; r < records; ++r) {
    const uint8_t* rec = p + r * kCifarRecord;
    if (rec[0] >= 10)
      CUVAE_FAIL(what << ": label " << int{rec[0]} << " of record " << r
                      << " out of range, expected < 10");
    ds.labels[static_cast<size_t>(r)] = rec[0];
    std::memcpy(ds.images.data() + r * kCifarPixels, rec + 1, kCifarPixels);
  }
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
    // The size is checked before reading, so a wrong (huge) file is not read at all.
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) CUVAE_FAIL(path << ": cannot read size: " << ec.message());
    const int64_t records = cifar_records(size, path);
    if (ds.n + records > kMaxItems)
      CUVAE_FAIL(path << ": too many records in total (" << ds.n + records << "), expected at most "
                      << kMaxItems);
    const std::string bytes = read_file(path);
    if (bytes.size() != size)
      CUVAE_FAIL(path << ": size changed while reading (" << size << " then " << bytes.size()
                      << " bytes)");
    const Dataset batch = parse_cifar10_batch(bytes, path);
    ds.images.insert(ds.images.end(), batch.images.begin(), batch.images.end());
    ds.labels.insert(ds.labels.end(), batch.labels.begin(), batch.labels.end());
    ds.n += batch.n;
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

Dataset dataset_rows(const Dataset& d, int64_t first, int64_t last) {
  CUVAE_CHECK(0 <= first && first <= last && last <= d.n,
              "dataset_rows: rows [" << first << ", " << last << ") outside data set '" << d.name << "' of " << d.n);
  Dataset s;
  s.name = d.name;
  s.n = last - first;
  s.c = d.c;
  s.h = d.h;
  s.w = d.w;
  s.num_classes = d.num_classes;
  const int64_t P = d.pixels();
  s.images.assign(d.images.begin() + first * P, d.images.begin() + last * P);
  s.labels.assign(d.labels.begin() + first, d.labels.begin() + last);
  return s;
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
