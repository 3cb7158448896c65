// PNG grids, the metrics CSV, the progress bar and the file helpers.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/tensor.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/metrics.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

using namespace cuvae;
using cuvae::testing::ScopedTempDir;
using cuvae::test::error_of;

namespace {



uint32_t be32_at(const std::string& s, size_t off) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + off);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// A decoded PNG: width, height, channels and packed pixels.
struct Png {
  int w = 0, h = 0, c = 0;
  std::vector<uint8_t> px;
  int at(int x, int y, int ch = 0) const { return px[(static_cast<size_t>(y) * w + x) * c + ch]; }
};

Png decode(const std::string& bytes) {
  Png p;
  unsigned char* data =
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                            static_cast<int>(bytes.size()), &p.w, &p.h, &p.c, 0);
  if (!data) {
    ADD_FAILURE() << "PNG does not decode: " << stbi_failure_reason();
    return p;
  }
  p.px.assign(data, data + static_cast<size_t>(p.w) * p.h * p.c);
  stbi_image_free(data);
  return p;
}

}  // namespace

// ---- PNG grids ---------------------------------------------------------------------------

TEST(PngGrid, TwoGreyImagesSideBySide) {
  ScopedTempDir dir;
  // Image 0: [[0, 1], [0.5, -3]] (clamped), image 1: all 0.25.
  const std::vector<float> img = {0.0f, 1.0f, 0.5f, -3.0f, 0.25f, 0.25f, 0.25f, 0.25f};
  const std::string path = dir.file("grid.png");
  write_png_grid(path, img.data(), 2, 1, 2, 2, /*cols=*/2, /*pad=*/2, /*scale=*/1);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"grid.png"});  // no .tmp left behind

  const std::string png = read_file(path);
  ASSERT_GE(png.size(), 33u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(be32_at(png, 16), 6u);  // 2 tiles of 2 + 2 pad
  EXPECT_EQ(be32_at(png, 20), 2u);
  EXPECT_EQ(static_cast<int>(png[24]), 8);  // bit depth
  EXPECT_EQ(static_cast<int>(png[25]), 0);  // greyscale

  const Png p = decode(png);
  ASSERT_EQ(p.w, 6);
  ASSERT_EQ(p.h, 2);
  ASSERT_EQ(p.c, 1);
  const std::vector<uint8_t> want = {0,   255, 255, 255, 64, 64,   // row 0
                                     128, 0,   255, 255, 64, 64};  // row 1
  EXPECT_EQ(p.px, want);
}

TEST(PngGrid, ScaleRowsAndRgb) {
  ScopedTempDir dir;
  // 3 RGB images of 1×1: red, green, blue; 2 columns → 2 rows, last tile empty (white).
  const std::vector<float> img = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  Tensor t = Tensor::from_vector(img, {3, 3, 1, 1});
  const std::string path = dir.file("rgb.png");
  write_png_grid(path, t, /*cols=*/2, /*pad=*/1, /*scale=*/3);
  const std::string png = read_file(path);
  EXPECT_EQ(be32_at(png, 16), 7u);  // 2·3 + 1
  EXPECT_EQ(be32_at(png, 20), 7u);
  EXPECT_EQ(static_cast<int>(png[25]), 2);  // RGB
  const Png p = decode(png);
  ASSERT_EQ(p.c, 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 3; ++x) {
      EXPECT_EQ(p.at(x, y, 0), 255);  // red tile, top left
      EXPECT_EQ(p.at(x, y, 1), 0);
      EXPECT_EQ(p.at(x + 4, y, 1), 255);  // green tile, top right
      EXPECT_EQ(p.at(x + 4, y, 0), 0);
      EXPECT_EQ(p.at(x, y + 4, 2), 255);  // blue tile, bottom left
      EXPECT_EQ(p.at(x, y + 4, 0), 0);
      EXPECT_EQ(p.at(x + 4, y + 4, 1), 255);  // no fourth image: white
    }
  EXPECT_EQ(p.at(3, 0, 1), 255);  // padding column is white
  EXPECT_EQ(p.at(0, 3, 2), 255);  // padding row is white

  // More columns than images: the grid is only as wide as the images.
  const GridSize g = png_grid_size(3, 28, 28, 10, 2, 2);
  EXPECT_EQ(g.width, 3 * 56 + 2 * 2);
  EXPECT_EQ(g.height, 56);
  const GridSize g2 = png_grid_size(64, 28, 28, 8, 2, 1);
  EXPECT_EQ(g2.width, 8 * 28 + 7 * 2);
  EXPECT_EQ(g2.height, 8 * 28 + 7 * 2);
}

TEST(PngGrid, BadInputAndMissingFolder) {
  ScopedTempDir dir;
  const std::vector<float> img(8, 0.5f);
  const std::string bad = dir.file("no/such/folder/x.png");
  EXPECT_CONTAINS(error_of([&] { write_png_grid(bad, img.data(), 2, 1, 2, 2, 2); }), bad);
  EXPECT_TRUE(dir.entries().empty());
  EXPECT_FALSE(std::filesystem::exists(dir.file("no")));

  const std::string p = dir.file("x.png");
  EXPECT_CONTAINS(error_of([&] { write_png_grid(p, img.data(), 2, 2, 2, 1, 2); }),
                  "needs 1 (grey) or 3 (RGB) channels, got 2");
  EXPECT_CONTAINS(error_of([&] { write_png_grid(p, img.data(), 0, 1, 2, 2, 2); }), p + ": ");
  EXPECT_CONTAINS(error_of([&] { write_png_grid(p, img.data(), 2, 1, 2, 2, 0); }), "cols must be > 0");
  EXPECT_CONTAINS(error_of([&] { write_png_grid(p, img.data(), 2, 1, 2, 2, 2, 2, 100000); }),
                  "exceeds 32768");
  Tensor t({2, 8});
  EXPECT_CONTAINS(error_of([&] { write_png_grid(p, t, 2); }), "needs a tensor [n, c, h, w], got [2, 8]");
  EXPECT_TRUE(dir.entries().empty());
}

// ---- MetricsCsv ------------------------------------------------------------------------

TEST(MetricsCsv, HeaderAndRows) {
  ScopedTempDir dir;
  const std::string path = dir.file("metrics.csv");
  {
    MetricsCsv m(path, {"epoch", "loss", "kl"}, false);
    EXPECT_EQ(read_file(path), "epoch,loss,kl\n");
    m.append({1, 102.345678901, 0.5});
    m.append({2, 98.25, 1e-7});
    EXPECT_EQ(m.rows(), 2);
    EXPECT_CONTAINS(error_of([&] { m.append({3, 1}); }), "row has 2 values, expected 3");
  }
  EXPECT_EQ(read_file(path), "epoch,loss,kl\n1,102.345679,0.5\n2,98.25,1e-07\n");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"metrics.csv"});

  // Resume keeps the rows and appends after them.
  {
    MetricsCsv m(path, {"epoch", "loss", "kl"}, true);
    EXPECT_EQ(m.rows(), 2);
    m.append({3, std::nan(""), -INFINITY});
  }
  EXPECT_EQ(read_file(path), "epoch,loss,kl\n1,102.345679,0.5\n2,98.25,1e-07\n3,nan,-inf\n");

  // Without resume the file starts over.
  MetricsCsv fresh(path, {"epoch", "loss", "kl"}, false);
  EXPECT_EQ(fresh.rows(), 0);
  EXPECT_EQ(read_file(path), "epoch,loss,kl\n");
}

TEST(MetricsCsv, ResumeChecksHeader) {
  ScopedTempDir dir;
  const std::string path = dir.file("metrics.csv");
  { MetricsCsv m(path, {"epoch", "loss"}, false); m.append({1, 2.5}); }
  const std::string msg = error_of([&] { MetricsCsv m(path, {"epoch", "recon"}, true); });
  EXPECT_EQ(msg.rfind(path + ": header 'epoch,loss' does not match the expected 'epoch,recon'", 0), 0u) << msg;
  EXPECT_EQ(read_file(path), "epoch,loss\n1,2.5\n");  // untouched

  write_file_atomic(path, "epoch,loss\n1,2,3\n");
  EXPECT_CONTAINS(error_of([&] { MetricsCsv m(path, {"epoch", "loss"}, true); }),
                  "line 2 has 3 fields, expected 2");
  // Resume without a file creates it.
  MetricsCsv m(dir.file("new.csv"), {"a"}, true);
  EXPECT_EQ(read_file(dir.file("new.csv")), "a\n");
  EXPECT_CONTAINS(error_of([&] { MetricsCsv bad(dir.file("b.csv"), {"a,b"}, false); }), "bad column name 'a,b'");
}

TEST(MetricsCsv, NumberFormat) {
  EXPECT_EQ(format_metric(3), "3");
  EXPECT_EQ(format_metric(-12), "-12");
  EXPECT_EQ(format_metric(0.1), "0.1");
  EXPECT_EQ(format_metric(1.0 / 3.0), "0.333333333");
  EXPECT_EQ(format_metric(1e20), "1e+20");
}

// ---- durations and the progress bar ---------------------------------------------------

TEST(Progress, FormatDuration) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(5.9), "0:05");
  EXPECT_EQ(format_duration(65), "1:05");
  EXPECT_EQ(format_duration(3599), "59:59");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(-1), "?:??");
  EXPECT_EQ(format_duration(std::nan("")), "?:??");
}

TEST(Progress, NonTerminalPrintsTenPercentSteps) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressBar bar("epoch 1", 100, true, f);
    for (int i = 1; i <= 100; ++i) bar.update(i, "loss 1.5");
    bar.finish("loss 1.25");
    bar.update(100);  // ignored after finish
  }
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t r;
  while ((r = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, r);
  std::fclose(f);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] == '\n') {
      lines.push_back(out.substr(start, i - start));
      start = i + 1;
    }
  EXPECT_EQ(start, out.size());  // ends with a newline
  ASSERT_EQ(lines.size(), 10u);   // 10%..90% and the final line
  EXPECT_EQ(lines[0].rfind("epoch 1 [##......................] 10/100  10%  loss 1.5  elapsed 0:00  ETA 0:00", 0), 0u)
      << lines[0];
  EXPECT_EQ(lines[8].rfind("epoch 1 [#####################...] 90/100  90%", 0), 0u) << lines[8];
  EXPECT_EQ(lines[9], "epoch 1 [########################] 100/100 100%  loss 1.25  elapsed 0:00");
  EXPECT_EQ(out.find('\r'), std::string::npos);
}

TEST(Progress, DisabledPrintsNothing) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressBar bar("x", 10, false, f);
    bar.update(5);
    bar.finish();
  }
  EXPECT_EQ(std::ftell(f), 0L);
  std::fclose(f);
}

// ---- fs ----------------------------------------------------------------------------------

TEST(Fs, AtomicWriteReadEnsureDir) {
  ScopedTempDir dir;
  const std::string sub = dir.file("a/b/c");
  ensure_dir(sub);
  ensure_dir(sub);  // idempotent
  EXPECT_TRUE(std::filesystem::is_directory(sub));
  const std::string p = sub + "/f.bin";
  EXPECT_FALSE(file_exists(p));
  std::string bytes("x\0y", 3);
  write_file_atomic(p, bytes);
  EXPECT_TRUE(file_exists(p));
  EXPECT_FALSE(file_exists(sub));  // a folder is not a file
  EXPECT_EQ(read_file(p), bytes);
  write_file_atomic(p, "second");
  EXPECT_EQ(read_file(p), "second");
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(sub)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"f.bin"});

  const std::string missing = dir.file("nope/f.bin");
  EXPECT_EQ(error_of([&] { read_file(missing); }), "cannot open " + missing + ": No such file or directory");
  EXPECT_CONTAINS(error_of([&] { write_file_atomic(missing, "x"); }), "cannot write " + missing);
  // Renaming over a folder fails: the temporary file is removed and the folder kept.
  EXPECT_CONTAINS(error_of([&] { write_file_atomic(sub, "x"); }), "cannot write " + sub + ": rename");
  EXPECT_EQ(std::vector<std::string>(dir.entries()), std::vector<std::string>{"a"});
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.file("a/b")),
                          std::filesystem::directory_iterator()), 1);
  EXPECT_CONTAINS(error_of([&] { ensure_dir(p); }), "cannot create folder " + p);
}

// ---- colormap, overlay, text, reading PNGs -------------------------------------------------

TEST(Turbo, EndpointsAndMiddle) {
  float lo[3], mid[3], hi[3], nan_rgb[3];
  turbo_rgb(0.0f, lo);
  turbo_rgb(0.5f, mid);
  turbo_rgb(1.0f, hi);
  turbo_rgb(std::nanf(""), nan_rgb);
  // The published polynomial: dark blue-violet at 0, green-yellow in the middle, dark red at 1.
  EXPECT_NEAR(lo[0], 0.1357f, 1e-3f);
  EXPECT_NEAR(lo[1], 0.0914f, 1e-3f);
  EXPECT_NEAR(lo[2], 0.1067f, 1e-3f);
  EXPECT_GT(mid[1], 0.8f);
  EXPECT_GT(hi[0], 0.4f);
  EXPECT_LT(hi[1], 0.1f);
  EXPECT_LT(hi[2], 0.1f);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(nan_rgb[k], lo[k]);
  float clamped[3];
  turbo_rgb(7.0f, clamped);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(clamped[k], hi[k]);
}

TEST(Overlay, BlendsGreyAndColour) {
  const float img[3 * 2] = {0.0f, 1.0f, 0.0f, 1.0f, 0.0f, 1.0f};  // RGB planes of 1x2 pixels
  const float heat[2] = {0.0f, 1.0f};
  std::vector<float> out(6);
  overlay_heatmap(img, 3, 1, 2, heat, 0.0f, out.data());
  EXPECT_NEAR(out[0], 0.0f, 1e-6f);                   // pixel 0: R=0, G=0, B=0 → grey 0
  EXPECT_NEAR(out[1], 0.299f + 0.587f + 0.114f, 1e-6f);  // pixel 1: white
  overlay_heatmap(img, 3, 1, 2, heat, 1.0f, out.data());
  float hi[3];
  turbo_rgb(1.0f, hi);
  EXPECT_NEAR(out[1], hi[0], 1e-6f);
  EXPECT_NEAR(out[2 + 1], hi[1], 1e-6f);
  EXPECT_CONTAINS(error_of([&] { overlay_heatmap(img, 2, 1, 2, heat, 0.5f, out.data()); }), "2 channels");
  EXPECT_CONTAINS(error_of([&] { overlay_heatmap(img, 3, 1, 2, heat, 1.5f, out.data()); }), "alpha");
}

TEST(DrawText, PaintsPixelsInsideTheImage) {
  const int h = 20, w = 60;
  std::vector<float> img(3 * h * w, 1.0f);
  const float black[3] = {0, 0, 0};
  const int width = draw_text(img.data(), h, w, 2, 2, "7 99%", black, 1);
  EXPECT_GT(width, 20);
  int dark = 0;
  for (float v : img) dark += v == 0.0f;
  EXPECT_GT(dark, 30);
  // Text running off the edge is clipped, not written out of bounds.
  draw_text(img.data(), h, w, 50, 15, "clipped text", black, 3);
}

TEST(ReadPng, RoundTripAndErrors) {
  ScopedTempDir dir;
  std::vector<float> img(28 * 28);
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<float>(i % 256) / 255.0f;
  const std::string path = dir.path() + "/digit.png";
  write_png_grid(path, img.data(), 1, 1, 28, 28, 1, 0, 1);
  std::vector<float> back = read_png(path, 1, 28, 28);
  ASSERT_EQ(back.size(), img.size());
  for (size_t i = 0; i < img.size(); ++i) EXPECT_NEAR(back[i], img[i], 0.5f / 255.0f) << i;
  // Grey to RGB replicates the value in every plane.
  std::vector<float> rgb = read_png(path, 3, 28, 28);
  EXPECT_EQ(rgb[5], rgb[28 * 28 + 5]);
  EXPECT_CONTAINS(error_of([&] { read_png(path, 1, 32, 32); }), "is 28x28 pixels, the model expects 32x32");
  write_file_atomic(dir.path() + "/text.png", "hello, not a png");
  EXPECT_CONTAINS(error_of([&] { read_png(dir.path() + "/text.png", 1, 28, 28); }), "not a PNG file");
  EXPECT_CONTAINS(error_of([&] { read_png(dir.path() + "/none.png", 1, 28, 28); }), "no such file");
  // A PNG signature followed by garbage fails to decode with a clear message.
  write_file_atomic(dir.path() + "/broken.png", std::string("\x89PNG\r\n\x1a\n", 8) + "garbage");
  EXPECT_CONTAINS(error_of([&] { read_png(dir.path() + "/broken.png", 1, 28, 28); }), "cannot decode");
}

namespace {

// One PNG chunk: length, type, data, CRC-32 of type and data.
std::string png_chunk(const std::string& type, const std::string& data) {
  std::string c;
  auto be32 = [&c](uint32_t v) {
    for (int i = 3; i >= 0; --i) c.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  be32(static_cast<uint32_t>(data.size()));
  c += type + data;
  const std::string td = type + data;
  be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(td.data()), static_cast<uInt>(td.size()))));
  return c;
}

// A 28×28 8-bit grey PNG whose image data is `raw` (filtered rows), zlib-compressed.
std::string grey28_png(const std::string& raw) {
  const std::string ihdr("\0\0\0\x1c\0\0\0\x1c\x08\0\0\0\0", 13);
  uLongf n = compressBound(static_cast<uLong>(raw.size()));
  std::string z(n, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()),
                      static_cast<uLong>(raw.size()), 9),
            Z_OK);
  z.resize(n);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", z) + png_chunk("IEND", "");
}

}  // namespace

// The decoder (stb_image) trusts a chunk's declared length and grows its output to whatever the
// zlib stream holds: decode_png checks both first, so the bytes bound the memory.
TEST(DecodePng, BoundsWhatTheDecoderAllocates) {
  const std::string ok = grey28_png(std::string(28 * 29, '\0'));
  EXPECT_EQ(decode_png(ok, 1, 28, 28, "ok").size(), 28u * 28u);
  // A little extra data after the pixels is tolerated (stb accepts it; such files exist).
  EXPECT_EQ(decode_png(grey28_png(std::string(28 * 29 + 1000, '\0')), 1, 28, 28, "extra").size(), 28u * 28u);
  // An IDAT chunk claiming 2 GB in a file of a hundred bytes (found by fuzz_png).
  std::string claim = ok;
  const size_t idat = claim.find("IDAT") - 4;
  claim[idat] = 0x74;  // length 0x74......: about 1.9 GB
  std::string msg = error_of([&] { decode_png(claim, 1, 28, 28, "claim", false); });
  EXPECT_CONTAINS(msg, "claim: truncated PNG (a chunk of ");
  EXPECT_CONTAINS(msg, "runs past the end");
  // A decompression bomb: 28×28 pixels need 812 bytes; 64 MiB of zeros compress to ~64 kB.
  const std::string bomb = grey28_png(std::string(size_t(64) << 20, '\0'));
  EXPECT_LT(bomb.size(), 100000u);
  msg = error_of([&] { decode_png(bomb, 1, 28, 28, "bomb"); });
  EXPECT_CONTAINS(msg, "bomb: PNG image data inflates to more than 1049388 bytes");
  // An empty first IDAT chunk (legal; stb would copy it to a null pointer) is dropped.
  const size_t at = ok.find("IDAT") - 4;
  const std::string empty_first = ok.substr(0, at) + png_chunk("IDAT", "") + ok.substr(at);
  EXPECT_EQ(decode_png(empty_first, 1, 28, 28, "empty"), decode_png(ok, 1, 28, 28, "ok"));
  // Deflate data zlib cannot decode is refused before the decoder sees it.
  std::string bad = ok;
  const size_t data = bad.find("IDAT") + 4 + 2;  // past the zlib header
  bad[data] = static_cast<char>(0xff);           // block type 3 (reserved)
  EXPECT_CONTAINS(error_of([&] { decode_png(bad, 1, 28, 28, "bad"); }), "bad: cannot decode the PNG");
}
