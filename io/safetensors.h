// safetensors files: the checkpoint format (8-byte little-endian header length N, N bytes
// of JSON header padded with spaces, then the raw little-endian tensor data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cuvae {

/// Size in bytes of one element of a safetensors dtype ("F64", "F32", "F16", "BF16",
/// "I64", "I32", "I16", "I8", "U8", "BOOL"); 0 for any other string.
size_t safetensors_dtype_size(const std::string& dtype);

/// Collects named tensors and string metadata, then writes them as one safetensors file.
///
/// The header is a JSON object: "__metadata__" first (only when metadata was set), then
/// one entry per tensor in insertion order, `{"dtype": .., "shape": [..], "data_offsets":
/// [begin, end]}` with offsets relative to the data section; the data follows in the same
/// order with no gaps. Throws cuvae::Error (naming the tensor) on a duplicate or reserved
/// name, an unknown dtype or a byte count that does not match the shape.
class SafetensorsWriter {
 public:
  /// Adds tensor `name` of `dtype` and `shape`, copying `bytes` bytes of little-endian
  /// data from `data`; `bytes` must equal product(shape) × dtype size.
  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
           const void* data, size_t bytes);
  /// Adds a float32 tensor with `t`'s shape and values (copied to the host if on a GPU).
  void add_f32(const std::string& name, const Tensor& t);
  /// Adds a float32 tensor of `shape` from `values` (size = product(shape)).
  void add_f32(const std::string& name, std::vector<int64_t> shape,
               const std::vector<float>& values);
  /// Adds an int64 tensor of `shape` from `values` (size = product(shape)).
  void add_i64(const std::string& name, std::vector<int64_t> shape,
               const std::vector<int64_t>& values);
  /// Sets `__metadata__[key] = value` (replacing an earlier value for `key`).
  void set_metadata(const std::string& key, const std::string& value);
  /// With `on` (the default) serialize() adds `__metadata__["sha256"]`: the SHA-256 of the
  /// whole data section (every byte after the header), as 64 lowercase hex digits, which
  /// parse_safetensors verifies. Off: no checksum (the layout PyTorch's writers produce).
  void set_checksum(bool on) { checksum_ = on; }
  /// The complete file contents: length, padded header, data.
  std::string serialize() const;
  /// Writes serialize() to `path` atomically (write_file_atomic); throws naming `path`.
  void write(const std::string& path) const;

 private:
  struct Item {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::vector<Item> items_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  bool checksum_ = true;
};

/// One tensor read from a safetensors file: dtype string, shape and raw little-endian bytes.
struct SafetensorsEntry {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// A whole safetensors file read into memory and validated (see read_safetensors).
struct SafetensorsFile {
  /// The path it was read from (used as the prefix of every error message).
  std::string path;
  /// `__metadata__` (empty when absent).
  std::map<std::string, std::string> metadata;
  /// Tensors by name.
  std::map<std::string, SafetensorsEntry> tensors;

  /// True when a tensor called `name` exists.
  bool has(const std::string& name) const;
  /// Tensor `name`; throws cuvae::Error "<path>: no tensor '<name>'".
  const SafetensorsEntry& at(const std::string& name) const;
  /// Tensor `name` as float32 values (F32, or F16 / BF16 widened exactly: weights stored at half
  /// size); throws cuvae::Error "<path>: tensor '<name>' has shape [..], expected [..]" or "... has
  /// dtype X, expected F32".
  std::vector<float> f32(const std::string& name,
                         const std::vector<int64_t>& expected_shape) const;
  /// Tensor `name` as int64 values, checked as f32() is but for dtype I64.
  std::vector<int64_t> i64(const std::string& name,
                           const std::vector<int64_t>& expected_shape) const;
};

/// Parses safetensors bytes `bytes` (read from `path`, which only names errors) and
/// validates them as the format's reference reader does: at least 8 bytes; header length
/// ≤ 100 MB and ≤ size − 8; the header a JSON object with no duplicate keys; each tensor
/// entry with a known dtype, a shape of non-negative integers and data_offsets [b, e] with
/// b ≤ e and e − b = product(shape) × dtype size; sorted by b the entries are contiguous
/// from 0 with no gaps or overlaps and the last e equals the data section's size exactly;
/// `__metadata__`, if present, an object of strings; when it has "sha256" (as SafetensorsWriter
/// writes), that must be the SHA-256 of the data section (files without it, such as PyTorch's,
/// are not checked; nor are they in a build without OpenSSL). Throws cuvae::Error, one line starting
/// with `path` and naming the tensor and the problem. Never crashes on malformed input.
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& path);

/// Reads and validates the safetensors file at `path` (see parse_safetensors).
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace cuvae
