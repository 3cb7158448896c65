// safetensors files: the checkpoint format (8-byte little-endian header length N, N bytes
// of JSON header padded with spaces, then the raw little-endian tensor data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cuvae {

/// Size in bytes of one element of a safetensors dtype ("F64", "F32", "F16", "BF16",
/// "I64", "I32", "I16", "I8", "U8", "BOOL"); 0 for any other string.
size_t safetensors_dtype_size(const std::string& dtype);

/// Collects named tensors and string metadata, then writes them as one safetensors file.
///
/// add() and the add_f32/add_i64 overloads copy their data; the add_*_view calls borrow it, so a
/// checkpoint of a model's flat parameter block is streamed from that block to the file without
/// a copy (write() builds no in-memory image of the file: on a VM whose page faults are slow, each
/// 45 MB copy of a ResNet-18 costs a tenth of a second or more).
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
  /// Like add(), but borrows `data` instead of copying it: `data` must stay valid and unchanged
  /// until the last serialize() or write(), which `keep` (held by the writer) or the caller
  /// guarantees.
  void add_view(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                const void* data, size_t bytes, std::shared_ptr<const void> keep = nullptr);
  /// Adds a float32 tensor with `t`'s shape and values (copied to the host if on a GPU).
  void add_f32(const std::string& name, const Tensor& t);
  /// Adds a float32 tensor with `t`'s shape and values (its raw elements, as to_vector() gives
  /// them), borrowing `t`'s memory when it is a host tensor (`t` must then outlive the write and
  /// not change before it) and holding a host copy of a GPU tensor.
  void add_f32_view(const std::string& name, const Tensor& t);
  /// A temporary cannot be borrowed.
  void add_f32_view(const std::string& name, const Tensor&& t) = delete;
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
  /// Writes the bytes serialize() returns to `path` atomically (write_file_atomic), streaming each
  /// tensor's data from where it lies; throws naming `path`.
  void write(const std::string& path) const;

 private:
  struct Item {
    std::string name, dtype;
    std::vector<int64_t> shape;
    const char* data = nullptr;
    size_t size = 0;
    std::shared_ptr<const void> keep;  // owns `data` for copies and held host copies
  };
  /// The 8-byte length and the padded JSON header (with the checksum when on).
  std::string prefix() const;
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
