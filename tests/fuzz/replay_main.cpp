// Replays fuzz inputs without libFuzzer: `fuzz_replay_<name> PATH...` runs the target's
// LLVMFuzzerTestOneInput once on every regular file under each PATH (a folder, searched
// recursively in sorted order, or a file) and prints how many it ran. A PATH that does not
// exist is skipped with a note (tests/fuzz/regressions/<name> is optional); replaying no file
// at all is a failure, so an emptied or misplaced corpus cannot pass. A crash, an uncaught
// exception or an abort inside the target fails the run and names the input.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  size_t count = 0;
  for (int a = 1; a < argc; ++a) {
    const fs::path root = argv[a];
    std::error_code ec;
    if (!fs::exists(root, ec)) {
      std::printf("%s: absent, skipped\n", argv[a]);
      continue;
    }
    std::vector<fs::path> files;
    if (fs::is_directory(root, ec)) {
      for (const auto& e : fs::recursive_directory_iterator(root, ec))
        if (e.is_regular_file()) files.push_back(e.path());
      if (ec) {
        std::fprintf(stderr, "%s: cannot list: %s\n", argv[a], ec.message().c_str());
        return 1;
      }
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(root);
    }
    size_t here = 0;
    for (const fs::path& p : files) {
      std::ifstream f(p, std::ios::binary);
      if (!f) {
        std::fprintf(stderr, "%s: cannot open\n", p.c_str());
        return 1;
      }
      const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      // An exact-size heap copy, so that a read past the end is a real overrun (as in libFuzzer).
      std::unique_ptr<uint8_t[]> buf(new uint8_t[bytes.size() + (bytes.empty() ? 1 : 0)]);
      std::copy(bytes.begin(), bytes.end(), buf.get());
      std::fprintf(stderr, "replaying %s\n", p.c_str());
      LLVMFuzzerTestOneInput(buf.get(), bytes.size());
      ++here;
    }
    std::printf("%s: %zu inputs\n", argv[a], here);
    count += here;
  }
  std::printf("replayed %zu inputs\n", count);
  if (count == 0) {
    std::fprintf(stderr, "no inputs replayed: the corpus is missing or empty\n");
    return 1;
  }
  return 0;
}
