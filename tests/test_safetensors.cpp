#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/tensor.h"
#include "io/fs.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::testing::ScopedTempDir;
using cuvae::test::error_of;

namespace {



// 8-byte little-endian `n` followed by `header` and `data`.
std::string raw_file(uint64_t n, const std::string& header, const std::string& data = "") {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return s + header + data;
}

std::string file_of(const std::string& header, const std::string& data = "") {
  return raw_file(header.size(), header, data);
}

// The error message parse_safetensors gives for `bytes` (named "f.st").
std::string parse_error(const std::string& bytes) {
  return error_of([&] { parse_safetensors(bytes, "f.st"); });
}

std::string f32_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  if (!v.empty()) std::memcpy(&s[0], v.data(), s.size());
  return s;
}

// The layout of PyTorch's own writers: no checksum.
SafetensorsWriter small_writer() {
  SafetensorsWriter w;
  w.set_checksum(false);
  w.set_metadata("format", "pt");
  w.add_f32("w", {2}, {1.0f, -2.0f});
  return w;
}

}  // namespace

TEST(Safetensors, ByteExactSmallFile) {
  const std::string json =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(json.size(), 85u);
  std::string expected("\x58\0\0\0\0\0\0\0", 8);  // 88 = 85 + 3 spaces
  expected += json + "   ";
  expected += std::string("\x00\x00\x80\x3f", 4);  // 1.0f
  expected += std::string("\x00\x00\x00\xc0", 4);  // -2.0f
  EXPECT_EQ(small_writer().serialize(), expected);

  ScopedTempDir dir;
  small_writer().write(dir.file("m.safetensors"));
  EXPECT_EQ(read_file(dir.file("m.safetensors")), expected);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.safetensors"});  // no temp file left
}

TEST(Safetensors, ViewsAreBorrowedAndWrittenAsSerializeGives) {
  std::vector<float> block = {1.0f, 2.0f, 3.0f};
  Tensor t({2, 2}, Device::CPU);
  for (int i = 0; i < 4; ++i) t.data()[i] = 0.5f * static_cast<float>(i);
  SafetensorsWriter w;
  w.add_view("block", "F32", {3}, block.data(), block.size() * sizeof(float));
  w.add_f32_view("t", t);
  w.add_f32("copy", {3}, block);
  auto held = std::make_shared<std::vector<float>>(std::vector<float>{7.0f});
  w.add_view("held", "F32", {1}, held->data(), sizeof(float), held);
  held.reset();  // the writer keeps it alive
  // Borrowed data is read when the file is written, copies when they were added.
  block[0] = -1.0f;
  t.data()[3] = 9.0f;
  const std::string bytes = w.serialize();
  const SafetensorsFile f = parse_safetensors(bytes, "v.st");
  EXPECT_EQ(f.f32("block", {3}), (std::vector<float>{-1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(f.f32("t", {2, 2}), (std::vector<float>{0.0f, 0.5f, 1.0f, 9.0f}));
  EXPECT_EQ(f.f32("copy", {3}), (std::vector<float>{1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(f.f32("held", {1}), std::vector<float>{7.0f});
  // write() streams the same bytes, checksum included, with no temporary file left behind.
  ScopedTempDir dir;
  w.write(dir.file("v.safetensors"));
  EXPECT_EQ(read_file(dir.file("v.safetensors")), bytes);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"v.safetensors"});
  // add_view checks its arguments as add() does.
  EXPECT_CONTAINS(error_of([&] { w.add_view("short", "F32", {2}, block.data(), 4); }), "needs 8 bytes, got 4");
}

TEST(Fs, WriteFileAtomicConcatenatesPieces) {
  ScopedTempDir dir;
  const std::string a = "head", b, c(100000, 'x');
  write_file_atomic(dir.file("p"), std::vector<ByteSpan>{{a.data(), a.size()}, {b.data(), 0}, {c.data(), c.size()}});
  EXPECT_EQ(read_file(dir.file("p")), a + c);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"p"});
  // A folder that does not exist: nothing written, the error names the path.
  EXPECT_CONTAINS(error_of([&] { write_file_atomic(dir.file("no/p"), std::vector<ByteSpan>{{a.data(), a.size()}}); }),
                  "cannot write " + dir.file("no/p"));
}

TEST(Safetensors, HeaderPaddedToMultipleOf8) {
  for (int len = 1; len <= 9; ++len) {
    SafetensorsWriter w;
    const std::vector<uint8_t> v(3, 7);
    w.add(std::string(static_cast<size_t>(len), 'a'), "U8", {3}, v.data(), v.size());
    const std::string s = w.serialize();
    uint64_t n = 0;
    std::memcpy(&n, s.data(), 8);
    EXPECT_EQ(n % 8, 0u);
    EXPECT_EQ(s.size(), 8 + n + 3);
    EXPECT_EQ(parse_safetensors(s, "x").at(std::string(static_cast<size_t>(len), 'a')).bytes, v);
  }
}

TEST(Safetensors, RoundTrip) {
  ScopedTempDir dir;
  const std::string path = dir.file("model.safetensors");
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  SafetensorsWriter w;
  w.add_f32("enc.conv1.weight", t);
  w.add_i64("bn1.num_batches_tracked", {}, {123456789012345LL});
  const std::vector<uint8_t> u8 = {0, 1, 254, 255};
  w.add("mask", "U8", {2, 2}, u8.data(), u8.size());
  w.add_f32("empty", {0, 3}, {});
  const uint16_t half[2] = {0x3c00, 0xc000};  // 1.0, -2.0 in F16
  w.add("half", "F16", {2}, half, sizeof half);
  w.add_f32("scalar", {}, {0.25f});
  w.set_metadata("config", R"({"latent": 32, "beta": 1.0})");
  w.set_metadata("format", "pt");
  w.set_metadata("format", "pt2");  // replaces
  w.write(path);

  const SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.path, path);
  EXPECT_EQ(f.metadata.size(), sha256_available() ? 3u : 2u);  // + "sha256"
  EXPECT_EQ(f.metadata.at("config"), R"({"latent": 32, "beta": 1.0})");
  EXPECT_EQ(f.metadata.at("format"), "pt2");
  EXPECT_EQ(f.tensors.size(), 6u);
  EXPECT_EQ(f.f32("enc.conv1.weight", {2, 3}), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(f.i64("bn1.num_batches_tracked", {}), std::vector<int64_t>{123456789012345LL});
  EXPECT_EQ(f.at("mask").dtype, "U8");
  EXPECT_EQ(f.at("mask").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(f.at("mask").bytes, u8);
  EXPECT_TRUE(f.f32("empty", {0, 3}).empty());
  EXPECT_EQ(f.at("half").bytes, (std::vector<uint8_t>{0x00, 0x3c, 0x00, 0xc0}));
  EXPECT_EQ(f.f32("scalar", {}), std::vector<float>{0.25f});
  EXPECT_TRUE(f.has("scalar"));
  EXPECT_FALSE(f.has("nope"));

  // Data lies in insertion order: the first tensor starts the data section.
  const std::string bytes = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  float first = 0;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.0f);
}

TEST(Safetensors, AccessorsNameTheTensor) {
  const SafetensorsFile f = parse_safetensors(small_writer().serialize(), "ck.st");
  std::string msg = error_of([&] { f.f32("w", {1, 2}); });
  EXPECT_EQ(msg, "ck.st: tensor 'w' has shape [2], expected [1, 2]");
  msg = error_of([&] { f.i64("w", {2}); });
  EXPECT_EQ(msg, "ck.st: tensor 'w' has dtype F32, expected I64");
  msg = error_of([&] { f.at("dec.fc1.bias"); });
  EXPECT_EQ(msg, "ck.st: no tensor 'dec.fc1.bias'");
  EXPECT_CONTAINS(error_of([&] { f.f32("x", {2}); }), "no tensor 'x'");
}

// Weights stored in half precision (F16, BF16) read back as float32, exactly: normal and
// subnormal halves, signed zero, the largest half, infinity; other dtypes are still refused.
TEST(Safetensors, HalfPrecisionTensorsWidenExactlyToFloat32) {
  cuvae::testing::ScopedTempDir tmp;
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x3800, 0x0001, 0x8000, 0x7BFF, 0x7C00, 0x3555};
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC040, 0x0000, 0x7F80};
  SafetensorsWriter w;
  w.add("h", "F16", {8}, f16.data(), f16.size() * 2);
  w.add("b", "BF16", {2, 2}, bf16.data(), bf16.size() * 2);
  w.add("i", "I64", {1}, "\1\0\0\0\0\0\0\0", 8);
  w.write(tmp.file("half.safetensors"));
  const SafetensorsFile f = read_safetensors(tmp.file("half.safetensors"));
  const std::vector<float> h = f.f32("h", {8});
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], 0.5f);
  EXPECT_EQ(h[3], std::ldexp(1.0f, -24));  // the smallest subnormal half
  EXPECT_EQ(h[4], 0.0f);
  EXPECT_TRUE(std::signbit(h[4]));
  EXPECT_EQ(h[5], 65504.0f);
  EXPECT_TRUE(std::isinf(h[6]));
  EXPECT_EQ(h[7], 0.333251953125f);  // 0x3555: 1/3 rounded to 10 mantissa bits
  EXPECT_EQ(f.f32("b", {2, 2}), (std::vector<float>{1.0f, -3.0f, 0.0f, INFINITY}));
  EXPECT_THROW(f.f32("h", {4, 2}), Error);  // shapes are still checked
  EXPECT_THROW(f.f32("i", {1}), Error);
}

TEST(Safetensors, WriterRejectsBadInput) {
  SafetensorsWriter w;
  const float v[2] = {1, 2};
  EXPECT_CONTAINS(error_of([&] { w.add("a", "F32", {3}, v, sizeof v); }), "needs 12 bytes, got 8");
  EXPECT_CONTAINS(error_of([&] { w.add("a", "F8", {2}, v, 2); }), "unknown dtype 'F8'");
  EXPECT_CONTAINS(error_of([&] { w.add("__metadata__", "F32", {2}, v, sizeof v); }), "reserved");
  w.add("a", "F32", {2}, v, sizeof v);
  EXPECT_CONTAINS(error_of([&] { w.add("a", "F32", {2}, v, sizeof v); }), "'a' added twice");
  EXPECT_CONTAINS(error_of([&] { w.add("b", "F32", {-1}, v, sizeof v); }), "invalid shape");
  ScopedTempDir dir;
  EXPECT_CONTAINS(error_of([&] { w.write(dir.file("no/such/dir/x.safetensors")); }),
                  dir.file("no/such/dir/x.safetensors"));
}

TEST(Safetensors, DtypeSizes) {
  EXPECT_EQ(safetensors_dtype_size("F64"), 8u);
  EXPECT_EQ(safetensors_dtype_size("F32"), 4u);
  EXPECT_EQ(safetensors_dtype_size("F16"), 2u);
  EXPECT_EQ(safetensors_dtype_size("BF16"), 2u);
  EXPECT_EQ(safetensors_dtype_size("I64"), 8u);
  EXPECT_EQ(safetensors_dtype_size("I32"), 4u);
  EXPECT_EQ(safetensors_dtype_size("I16"), 2u);
  EXPECT_EQ(safetensors_dtype_size("I8"), 1u);
  EXPECT_EQ(safetensors_dtype_size("U8"), 1u);
  EXPECT_EQ(safetensors_dtype_size("BOOL"), 1u);
  EXPECT_EQ(safetensors_dtype_size("f32"), 0u);
}

TEST(Safetensors, AcceptsForeignLayout) {
  // Metadata last, tensors not in offset order, extra spaces: as other writers make them.
  const std::string h =
      R"({ "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},)"
      R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"format": "pt"}}  )";
  const SafetensorsFile f = parse_safetensors(file_of(h, f32_bytes({3.0f, 4.0f})), "x");
  EXPECT_EQ(f.f32("a", {1}), std::vector<float>{3.0f});
  EXPECT_EQ(f.f32("b", {1}), std::vector<float>{4.0f});
  EXPECT_EQ(f.metadata.at("format"), "pt");
  // An empty header object is a valid file with no tensors.
  EXPECT_TRUE(parse_safetensors(file_of("{}"), "x").tensors.empty());
}

TEST(Safetensors, RejectsCorruption) {
  const std::string d8 = f32_bytes({1.0f, 2.0f});
  auto entry = [](const std::string& name, const std::string& shape, uint64_t b, uint64_t e,
                  const std::string& dtype = "F32") {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":[" + std::to_string(b) + "," + std::to_string(e) + "]}";
  };
  // Sanity: the base case parses.
  EXPECT_NO_THROW(parse_safetensors(file_of("{" + entry("a", "[2]", 0, 8) + "}", d8), "f.st"));

  EXPECT_EQ(parse_error("abc"),
            "f.st: file is 3 bytes, too short for the 8-byte header length (not a safetensors file)");
  EXPECT_CONTAINS(parse_error(raw_file(200000000, "{}")), "f.st: header length 200000000 exceeds the 100000000-byte limit");
  EXPECT_CONTAINS(parse_error(raw_file(1000, "{}")), "f.st: header length 1000 exceeds the 2 bytes");
  EXPECT_CONTAINS(parse_error(raw_file(~uint64_t{0}, "{}")), "exceeds the 100000000-byte limit");
  EXPECT_CONTAINS(parse_error(file_of("{abc")), "f.st: header is not valid JSON");
  EXPECT_CONTAINS(parse_error(file_of("[1, 2]")), "does not start with '{'");
  EXPECT_CONTAINS(parse_error(file_of("")), "does not start with '{'");
  EXPECT_CONTAINS(parse_error(file_of("{} x")), "not valid JSON");
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[2]", 0, 8, "F8") + "}", d8)),
                  "f.st: tensor 'a': unknown dtype 'F8'");
  EXPECT_CONTAINS(parse_error(file_of(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", d8)),
                  "tensor 'a': missing string field 'dtype'");
  EXPECT_CONTAINS(parse_error(file_of(R"({"a":[1]})")), "tensor 'a': entry is a array");
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[-2]", 0, 8) + "}", d8)),
                  "tensor 'a': shape entry 0 is not a non-negative integer");
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[2.0]", 0, 8) + "}", d8)),
                  "shape entry 0 is not a non-negative integer");
  EXPECT_CONTAINS(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", d8)),
                  "tensor 'a': data_offsets must be [begin, end]");
  EXPECT_CONTAINS(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.5]}})", d8)),
                  "data_offsets must be [begin, end]");
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[0]", 8, 0) + "}", d8)),
                  "tensor 'a': data_offsets [8, 0] have begin > end");
  // Gap: a [0,4], b [8,12] in a 12-byte data section.
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[1]", 0, 4) + "," + entry("b", "[1]", 8, 12) + "}",
                                      f32_bytes({1, 2, 3}))),
                  "f.st: tensor 'b': data_offsets begin at 8, expected 4 (offsets not contiguous");
  // First tensor not at 0.
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[1]", 4, 8) + "}", d8)),
                  "tensor 'a': data_offsets begin at 4, expected 0");
  // Overlap: a [0,8], b [4,8].
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[2]", 0, 8) + "," + entry("b", "[1]", 4, 8) + "}", d8)),
                  "tensor 'b': data_offsets begin at 4, expected 8 (overlapping");
  // Out of bounds: [0,8] with 4 bytes of data.
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[2]", 0, 8) + "}", f32_bytes({1}))),
                  "tensor 'a': data_offsets end 8 is out of bounds of the 4-byte data section");
  // Size mismatch with shape.
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[3]", 0, 8) + "}", d8)),
                  "tensor 'a': size mismatch: data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12");
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[4294967296,4294967296,4294967296]", 0, 8) + "}", d8)),
                  "tensor 'a': shape [4294967296, 4294967296, 4294967296] overflows");
  // Trailing data after the last tensor.
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[2]", 0, 8) + "}", d8 + "tail")),
                  "f.st: 4 trailing bytes: the data section is 12 bytes but the tensors end at 8");
  EXPECT_CONTAINS(parse_error(file_of("{}", "x")), "1 trailing bytes");
  // Metadata must be an object of strings.
  EXPECT_CONTAINS(parse_error(file_of(R"({"__metadata__":{"k":1}})")),
                  "f.st: __metadata__ value for 'k' is a number, expected a string");
  EXPECT_CONTAINS(parse_error(file_of(R"({"__metadata__":["k"]})")),
                  "__metadata__ is a array, expected an object of strings");
  // Duplicate keys.
  EXPECT_CONTAINS(parse_error(file_of("{" + entry("a", "[2]", 0, 8) + "," + entry("a", "[2]", 0, 8) + "}", d8)),
                  "header has key 'a' twice");
  // Invalid UTF-8 in the header.
  EXPECT_CONTAINS(parse_error(file_of("{\"\xff\":1}")), "not valid JSON");
}

TEST(Safetensors, MessagesAreOneLine) {
  const std::string msg = parse_error(file_of("{\"a\\nb\":[1]}"));
  EXPECT_CONTAINS(msg, "tensor 'a?b'");
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_EQ(parse_error(file_of("{\n\"a\": \n")).find('\n'), std::string::npos);
}

TEST(Safetensors, EveryTruncationThrows) {
  SafetensorsWriter w;
  w.set_metadata("k", "v");
  w.add_f32("a", {2, 2}, {1, 2, 3, 4});
  w.add_i64("b", {1}, {5});
  const std::string good = w.serialize();
  ASSERT_NO_THROW(parse_safetensors(good, "ok"));
  for (size_t len = 0; len < good.size(); ++len) {
    try {
      parse_safetensors(good.substr(0, len), "cut");
      ADD_FAILURE() << "prefix of " << len << " bytes parsed";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("cut: ", 0), 0u) << e.what();
    } catch (...) {
      ADD_FAILURE() << "prefix of " << len << " bytes threw a non-cuvae exception";
    }
  }
  // And from a file on disk.
  ScopedTempDir dir;
  write_file_atomic(dir.file("t.st"), good.substr(0, good.size() - 1));
  EXPECT_CONTAINS(error_of([&] { read_safetensors(dir.file("t.st")); }), dir.file("t.st") + ": ");
  EXPECT_CONTAINS(error_of([&] { read_safetensors(dir.file("missing.st")); }), "cannot open");
}

TEST(Safetensors, GarbageNeverCrashes) {
  std::mt19937 rng(1234);
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_f32("a", {3}, {1, 2, 3});
  w.add_f32("b", {}, {4});
  const std::string good = w.serialize();
  int parsed = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string s;
    if (iter % 2 == 0) {
      // Pure random bytes, sometimes with a plausible length prefix.
      std::uniform_int_distribution<int> len(0, 64);
      s.resize(static_cast<size_t>(len(rng)));
      for (char& ch : s) ch = static_cast<char>(rng());
      if (iter % 4 == 0 && s.size() >= 8) {
        const uint64_t n = rng() % (s.size() - 7);
        for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
      }
    } else {
      // A valid file with a few bytes flipped (mostly in the header).
      s = good;
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < flips; ++k) s[rng() % s.size()] = static_cast<char>(rng());
    }
    try {
      const SafetensorsFile f = parse_safetensors(s, "g");
      ++parsed;
      for (const auto& kv : f.tensors) {
        uint64_t need = safetensors_dtype_size(kv.second.dtype);
        for (int64_t d : kv.second.shape) need *= static_cast<uint64_t>(d);
        EXPECT_EQ(kv.second.bytes.size(), need);
      }
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("g: ", 0), 0u) << e.what();
    } catch (...) {
      ADD_FAILURE() << "iteration " << iter << " threw a non-cuvae exception";
    }
  }
  EXPECT_LT(parsed, 4000);
}

TEST(Sha256, KnownDigests) {
  if (!sha256_available()) GTEST_SKIP() << "SKIPPED: this build has no OpenSSL libcrypto";
  // FIPS 180-4 examples.
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;  // the same digest fed in pieces
  h.update("a", 1);
  h.update("bc", 2);
  EXPECT_EQ(h.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Safetensors, ChecksumCoversEveryDataByteAndIsVerified) {
  if (!sha256_available()) GTEST_SKIP() << "SKIPPED: this build has no OpenSSL libcrypto";
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_f32("a", {2, 2}, {1, 2, 3, 4});
  w.add_i64("b", {1}, {5});
  const std::string good = w.serialize();
  const SafetensorsFile f = parse_safetensors(good, "ok.st");
  // The recorded digest is that of every byte after the header.
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{static_cast<unsigned char>(good[i])} << (8 * i);
  const std::string data = good.substr(8 + n);
  ASSERT_EQ(data.size(), 24u);
  EXPECT_EQ(f.metadata.at("sha256"), sha256_hex(data.data(), data.size()));
  // Each flipped data byte is refused with one line naming the file.
  for (size_t i = 8 + n; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    const std::string msg = error_of([&] { parse_safetensors(bad, "bad.st"); });
    EXPECT_CONTAINS(msg, "bad.st: checksum mismatch");
    EXPECT_CONTAINS(msg, "damaged");
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  // A malformed recorded digest is named.
  std::string mangled = good;
  const size_t at = mangled.find(f.metadata.at("sha256"));
  ASSERT_NE(at, std::string::npos);
  mangled[at] = 'Z';
  EXPECT_CONTAINS(error_of([&] { parse_safetensors(mangled, "m.st"); }), "m.st: __metadata__ field 'sha256' is not 64");
  // A file without a checksum (PyTorch's writers) still loads; set_metadata cannot forge one.
  EXPECT_NO_THROW(parse_safetensors(small_writer().serialize(), "pt.st"));
  SafetensorsWriter forged;
  forged.set_metadata("sha256", std::string(64, '0'));
  forged.add_f32("a", {1}, {1});
  EXPECT_NO_THROW(parse_safetensors(forged.serialize(), "f.st"));
}
