// Image data sets in host memory: MNIST / FashionMNIST (IDX files) and CIFAR-10 (binary batches).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cuvae {

/// A labelled image data set held as raw bytes in host memory, validated on load.
struct Dataset {
  /// "mnist", "fashion-mnist", "cifar10", or a description (the file path for read_idx).
  std::string name;
  /// Number of images, channels, height and width.
  int64_t n = 0, c = 0, h = 0, w = 0;
  /// [n, c, h, w] raw pixels 0..255, NCHW (CIFAR-10 planes in order R, G, B).
  std::vector<uint8_t> images;
  /// [n] class indices, each < num_classes.
  std::vector<uint8_t> labels;
  /// Number of classes the labels index into.
  int num_classes = 10;
  /// Values per image: c·h·w.
  int64_t pixels() const { return c * h * w; }
};

/// Reads an IDX image file (magic 0x00000803: unsigned bytes, 3 dims [n, rows, cols]) and
/// its IDX label file (magic 0x00000801: unsigned bytes, 1 dim [n]) into a Dataset with
/// c = 1. Each file may be raw or gzip-compressed (detected by its 1f 8b magic bytes); when
/// a path does not exist, `path + ".gz"` is tried. Validates the magic numbers, that
/// 0 < n ≤ 1e7 and 0 < rows, cols ≤ 4096, that each file holds exactly its header plus
/// the data its dims promise (truncated or trailing bytes are errors), that both files
/// count the same items and that every label is < `num_classes` (1..256).
/// Throws cuvae::Error with a one-line message that starts with the offending file's path.
Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 int num_classes = 10);

/// parse_idx: read_idx on bytes already in memory. `image_bytes` and `label_bytes` are the
/// two files' contents, each raw or gzip (detected by the 1f 8b magic; concatenated gzip
/// members are read in turn and bytes after the last member are ignored, as zlib's gzread
/// does); `images_what` and `labels_what` start their error messages (read_idx passes the
/// paths) and `images_what` becomes Dataset::name. Same checks and messages as read_idx.
/// Memory is bounded by the data actually present: a header's dims are checked against the
/// raw size before allocating, gzip output is buffered only as it arrives and never beyond
/// the size the dims promise (more is an error), so a short file or a gzip bomb claiming
/// 10⁷ images of 4096×4096 cannot make it allocate more than about twice what it holds.
/// Throws cuvae::Error.
Dataset parse_idx(const std::string& image_bytes, const std::string& label_bytes,
                  int num_classes = 10, const std::string& images_what = "images",
                  const std::string& labels_what = "labels");

/// Reads and concatenates CIFAR-10 binary batch files (each a positive multiple of 3073
/// bytes: records of 1 label byte + 3072 pixel bytes as 1024 R, 1024 G, 1024 B, each a
/// row-major 32×32 plane) into a Dataset [n, 3, 32, 32] with 10 classes. Throws
/// cuvae::Error starting with the file's path on a missing file, a bad size or a label ≥ 10.
Dataset read_cifar10(const std::vector<std::string>& batch_files);

/// One CIFAR-10 batch file's bytes `bytes` (see read_cifar10) as a Dataset [n, 3, 32, 32]
/// with 10 classes, n = size / 3073 ≤ 10⁷. Throws cuvae::Error starting with `what` on a
/// size that is not a positive multiple of 3073 or a label ≥ 10.
Dataset parse_cifar10_batch(const std::string& bytes, const std::string& what);

/// Loads the train (`train` = true) or test split of data set `name` from folder `dir`:
///   "mnist", "fashion-mnist": train-images-idx3-ubyte, train-labels-idx1-ubyte (train) or
///     t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (test), each raw or with ".gz";
///   "cifar10": data_batch_1.bin..data_batch_5.bin (train) or test_batch.bin (test), in
///     `dir` or `dir`/cifar-10-batches-bin.
/// Throws cuvae::Error listing the valid names for an unknown `name`, and for a missing
/// folder or file one saying how to get the data (scripts/fetch-data for MNIST and
/// FashionMNIST, where to put the CIFAR-10 binary files).
Dataset load_dataset(const std::string& name, const std::string& dir, bool train);

/// Images [first, last) of `d` with their labels, as a data set of their own (same name, shape
/// and classes). Throws cuvae::Error unless 0 ≤ first ≤ last ≤ d.n.
Dataset dataset_rows(const Dataset& d, int64_t first, int64_t last);

/// The folder data set `name` is looked for in by default: `$CUVAE_DATA_DIR/<name>` when
/// that environment variable is set and non-empty, else `data/<name>` when that folder
/// exists below the current directory, else `<source dir>/data/<name>` (the repository
/// this build came from). Throws cuvae::Error listing the valid names for an unknown `name`.
std::string default_data_dir(const std::string& name);

/// Human-readable names of the 10 classes of data set `name` ("0".."9" for MNIST, "T-shirt/top",
/// "Trouser", … for FashionMNIST, "airplane", … for CIFAR-10); "0".."9" for any other name.
std::vector<std::string> class_names(const std::string& name);

/// The data set names load_dataset accepts: "mnist", "fashion-mnist", "cifar10".
const std::vector<std::string>& dataset_names();

}  // namespace cuvae
