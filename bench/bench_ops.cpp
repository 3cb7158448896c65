// Perf mode of the op table (tests/op_table.h), in the manner of ggml's test-backend-ops: every
// row and every case the correctness tests check, staged on a backend and timed. For each case:
// warm-up calls, then repetitions of a number of calls; the median time per call, the bytes the
// call must move (each op of the case reads its inputs and writes its outputs once) in GB/s and,
// for the rows that count them, GFLOP/s, beside the copy bandwidth measured in the same run.
//   CPU:  steady_clock around the calls (the context's synchronize() after them).
//   CUDA: events on the context's stream around the calls, then an event synchronize; by default
//         the L2 cache is flushed (256 MiB zeroed) before each repetition and a repetition is
//         one call, so inputs come from memory and not from the last call's cache.
//   build/bench/cuvae_bench_ops --backend cpu --filter elbo
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/context.h"
#include "tests/op_table.h"

#ifdef CUVAE_HAS_CUDA
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#endif

using namespace cuvae;
using namespace cuvae::test::ops;

namespace {

const char* kUsage = R"(Usage: cuvae_bench_ops [options]

Times every row of the op table (tests/op_table.h): the same staged ops the correctness tests
run, on each backend asked for. Per case: --warmup untimed calls, then --reps repetitions of
--iters calls; reports the median time per call, the bytes one call must move (every op of the
case reads its inputs and writes its outputs once) as GB/s and as a share of the copy bandwidth
measured in the same run, and GFLOP/s for the rows that count FLOPs (Linear, Conv2d,
ConvTranspose2d). Speeds are reported, never asserted.

Options:
  --backend LIST  comma-separated: cpu (the CPU default: oneDNN when built, else the
                  reference), reference, onednn, cuda. Default: cpu, and cuda when a GPU is
                  usable. (The emulated device is for correctness, not speed.)
  --filter LIST   only the rows whose op name contains one of these comma-separated texts
                  (e.g. --filter elbo,Conv2d)
  --case TEXT     only the cases whose shape contains TEXT (e.g. --case n=128)
  --iters N       calls per repetition; 0 (default) chooses: on CUDA with the flush 1, else
                  enough calls for a repetition to last --min-ms
  --reps R        repetitions, the median reported (default 5 on the CPU, 10 on CUDA)
  --warmup W      untimed calls before timing (default 2)
  --min-ms MS     the length a chosen --iters aims at (default 20)
  --no-flush      CUDA: leave the L2 cache warm between repetitions
  --csv           one CSV line per case on stdout
  --json          one JSON document on stdout
  --out FILE      write the results to FILE (JSON, or CSV with --csv) and the text table to
                  stdout
  --list          print the rows and their cases; time nothing
  --help          this text
)";

// The parsed command line.
struct Options {
  std::vector<std::string> backends;
  std::vector<std::string> filters;
  std::string case_filter;
  int iters = 0;
  int reps = 0;
  int warmup = 2;
  double min_ms = 20;
  bool flush = true;
  enum class Format { Text, Csv, Json } format = Format::Text;
  std::string out;  // where the JSON or CSV goes; empty: stdout, instead of the text
  bool list = false;
  std::string command;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// A non-negative integer flag value; throws std::invalid_argument naming the flag.
int parse_count(const std::string& flag, const std::string& v, int lo) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < lo || x > 1000000)
    throw std::invalid_argument(flag + ": expected an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return static_cast<int>(x);
}

Options parse(int argc, char** argv) {
  Options o;
  o.command = "cuvae_bench_ops";
  for (int i = 1; i < argc; ++i) o.command += std::string(" ") + argv[i];
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + ": needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (a == "--backend") {
      o.backends = split(value());
    } else if (a == "--filter") {
      o.filters = split(value());
    } else if (a == "--case") {
      o.case_filter = value();
    } else if (a == "--iters") {
      o.iters = parse_count(a, value(), 0);
    } else if (a == "--reps") {
      o.reps = parse_count(a, value(), 1);
    } else if (a == "--warmup") {
      o.warmup = parse_count(a, value(), 0);
    } else if (a == "--min-ms") {
      o.min_ms = parse_count(a, value(), 1);
    } else if (a == "--no-flush") {
      o.flush = false;
    } else if (a == "--csv") {
      o.format = Options::Format::Csv;
    } else if (a == "--json") {
      o.format = Options::Format::Json;
    } else if (a == "--out") {
      o.out = value();
    } else if (a == "--list") {
      o.list = true;
    } else {
      throw std::invalid_argument("unknown option '" + a + "' (see --help)");
    }
  }
  for (const std::string& b : o.backends)
    if (b != "cpu" && b != "reference" && b != "onednn" && b != "cuda")
      throw std::invalid_argument("--backend: '" + b + "' is not one of cpu, reference, onednn, cuda" +
                                  (b == "emu" ? " (the emulated device is for correctness, not speed)" : ""));
  if (!o.out.empty() && o.format == Options::Format::Text) o.format = Options::Format::Json;
  if (o.backends.empty()) {
    o.backends = {"cpu"};
    if (cuda_available()) o.backends.push_back("cuda");
  }
  return o;
}

bool row_selected(const Options& o, const OpRow& row) {
  if (o.filters.empty()) return true;
  for (const std::string& f : o.filters)
    if (row.op.find(f) != std::string::npos) return true;
  return false;
}

// Times back-to-back calls on a context's device. On CUDA with `flush`, a 256 MiB buffer is
// zeroed before each timed span (outside it), so every span starts with a cold L2 cache.
class Timer {
 public:
  Timer(Context& ctx, bool flush) : ctx_(ctx) {
#ifdef CUVAE_HAS_CUDA
    if (ctx_.is_cuda()) {
      CUDA_CHECK(cudaEventCreate(&e0_));
      CUDA_CHECK(cudaEventCreate(&e1_));
      if (flush) flush_ = Tensor({int64_t{64} << 20}, Device::CUDA);  // 256 MiB: more than any L2
    }
#else
    (void)flush;
#endif
  }
  ~Timer() {
#ifdef CUVAE_HAS_CUDA
    if (e0_ != nullptr) cudaEventDestroy(e0_);
    if (e1_ != nullptr) cudaEventDestroy(e1_);
#endif
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Whether each repetition starts from a flushed cache.
  bool flushes() const { return !flush_.empty(); }

  // Seconds for `calls` back-to-back runs of `fn`, waiting for the device at the end.
  double time(const std::function<void()>& fn, int calls) {
#ifdef CUVAE_HAS_CUDA
    if (ctx_.is_cuda()) {
      const cudaStream_t s = static_cast<cudaStream_t>(ctx_.stream());
      if (!flush_.empty()) flush_.zero(ctx_.stream());
      CUDA_CHECK(cudaEventRecord(e0_, s));
      for (int i = 0; i < calls; ++i) fn();
      CUDA_CHECK(cudaEventRecord(e1_, s));
      CUDA_CHECK(cudaEventSynchronize(e1_));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, e0_, e1_));
      return ms / 1e3;
    }
#endif
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) fn();
    ctx_.synchronize();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  Context& ctx_;
  Tensor flush_;
#ifdef CUVAE_HAS_CUDA
  cudaEvent_t e0_ = nullptr, e1_ = nullptr;
#endif
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The calls per repetition and the median and fastest time per call of `fn`.
struct Timing {
  int iters = 0, reps = 0;
  double median_s = 0, min_s = 0;
};

Timing time_op(const Options& o, Context& ctx, Timer& timer, const std::function<void()>& fn) {
  for (int i = 0; i < o.warmup; ++i) fn();
  ctx.synchronize();
  Timing t;
  t.reps = o.reps > 0 ? o.reps : (ctx.is_cuda() ? 10 : 5);
  t.iters = o.iters;
  if (t.iters == 0) {
    if (timer.flushes()) {
      t.iters = 1;
    } else {
      const double one = std::max(timer.time(fn, 1), 1e-7);
      t.iters = static_cast<int>(std::clamp(std::ceil(o.min_ms * 1e-3 / one), 1.0, 100000.0));
    }
  }
  std::vector<double> per_call;
  for (int r = 0; r < t.reps; ++r) per_call.push_back(timer.time(fn, t.iters) / t.iters);
  t.median_s = median(per_call);
  t.min_s = *std::min_element(per_call.begin(), per_call.end());
  return t;
}

// The copy bandwidth of `ctx`'s device in GB/s (bytes read + written per second): a 64 MiB
// memcpy on the CPU, a 256 MiB device-to-device copy on CUDA; median of 5.
double copy_gbs(Context& ctx, Timer& timer) {
  const int64_t n = ctx.is_cuda() ? (int64_t{64} << 20) : (int64_t{16} << 20);
  Tensor a({n}, ctx.device()), b({n}, ctx.device());
  a.copy_from(Tensor::from_vector(std::vector<float>(static_cast<size_t>(n), 1.0f), {n}));
  std::function<void()> fn = [&] {
    if (ctx.is_cuda()) {
      b.copy_from(a, ctx.stream());
    } else {
      std::memcpy(b.data(), a.data(), a.bytes());
    }
  };
  Options o;
  o.reps = 5;
  o.warmup = 1;
  o.iters = ctx.is_cuda() ? 1 : 3;
  const Timing t = time_op(o, ctx, timer, fn);
  return 2.0 * static_cast<double>(a.bytes()) / t.median_s / 1e9;
}

// One timed case.
struct Result {
  std::string backend, device, row, shape, error;
  Timing t;
  double bytes = 0, flops = 0, copy_gbs = 0;
  double gbs() const { return t.median_s > 0 ? bytes / t.median_s / 1e9 : 0; }
  double gflops() const { return t.median_s > 0 && flops > 0 ? flops / t.median_s / 1e9 : 0; }
};

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

std::string csv_str(const std::string& s) {
  if (s.find_first_of(",\"") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string today_utc() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

void print_text_header(std::FILE* f, const std::string& backend, const std::string& device, double copy) {
  std::fprintf(f, "\n## %s: %s; copy %.1f GB/s\n", backend.c_str(), device.c_str(), copy);
  std::fprintf(f, "%-28s %-50s %7s %4s %12s %11s %9s %6s %9s\n", "row", "case", "calls", "reps", "us/call", "MB/call",
               "GB/s", "%copy", "GFLOP/s");
}

void print_text(std::FILE* f, const Result& r) {
  if (!r.error.empty()) {
    std::fprintf(f, "%-28s %-50s error: %s\n", r.row.c_str(), r.shape.c_str(), r.error.c_str());
    return;
  }
  char gflops[32] = "-";
  if (r.flops > 0) std::snprintf(gflops, sizeof gflops, "%.2f", r.gflops());
  std::fprintf(f, "%-28s %-50s %7d %4d %12.2f %11.4f %9.3f %6.1f %9s\n", r.row.c_str(), r.shape.c_str(), r.t.iters,
               r.t.reps, r.t.median_s * 1e6, r.bytes / 1e6, r.gbs(), 100.0 * r.gbs() / r.copy_gbs, gflops);
}

void print_csv(std::FILE* f, const Result& r) {
  std::fprintf(f, "%s,%s,%s,%d,%d,%.4f,%.4f,%.0f,%.4f,%.1f,%.0f,%.4f,%s\n", csv_str(r.backend).c_str(),
               csv_str(r.row).c_str(), csv_str(r.shape).c_str(), r.t.iters, r.t.reps, r.t.median_s * 1e6, r.t.min_s * 1e6,
               r.bytes, r.gbs(), r.copy_gbs > 0 ? 100.0 * r.gbs() / r.copy_gbs : 0.0, r.flops, r.gflops(),
               csv_str(r.error).c_str());
}

std::string json_result(const Result& r) {
  std::ostringstream os;
  os.precision(6);
  os << "{\"backend\": " << json_str(r.backend) << ", \"row\": " << json_str(r.row) << ", \"case\": " << json_str(r.shape);
  if (!r.error.empty()) return os.str() + ", \"error\": " + json_str(r.error) + "}";
  os << ", \"iters\": " << r.t.iters << ", \"reps\": " << r.t.reps << ", \"us_per_call\": " << r.t.median_s * 1e6
     << ", \"us_min\": " << r.t.min_s * 1e6 << ", \"bytes\": " << r.bytes << ", \"gb_per_s\": " << r.gbs()
     << ", \"pct_copy\": " << (r.copy_gbs > 0 ? 100.0 * r.gbs() / r.copy_gbs : 0.0)
     << ", \"flops\": " << r.flops << ", \"gflop_per_s\": " << r.gflops() << "}";
  return os.str();
}

// The device and CPU backend of a --backend name.
DeviceRequest request_of(const std::string& b) { return b == "cuda" ? DeviceRequest::CUDA : DeviceRequest::CPU; }
CpuBackend cpu_backend_of(const std::string& b) {
  if (b == "reference") return CpuBackend::Reference;
  if (b == "onednn") return CpuBackend::OneDNN;
  return default_cpu_backend();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuvae_bench_ops: %s\n", e.what());
    return 2;
  }
  const std::vector<OpRow> table = op_table();
  if (o.list) {
    for (const OpRow& row : table) {
      if (!row_selected(o, row)) continue;
      std::printf("%s\n", row.op.c_str());
      for (const OpCase& c : row.cases)
        if (c.shape.find(o.case_filter) != std::string::npos) std::printf("  %s\n", c.shape.c_str());
    }
    return 0;
  }
  int selected = 0;
  for (const OpRow& row : table) selected += row_selected(o, row) ? 1 : 0;
  if (selected == 0) {
    std::fprintf(stderr, "cuvae_bench_ops: no row matches --filter (see --list)\n");
    return 2;
  }

  // The text table goes to stdout unless stdout carries the JSON or CSV; those go to --out or stdout.
  std::FILE* text = o.format == Options::Format::Text || !o.out.empty() ? stdout : nullptr;
  std::FILE* data = nullptr;
  if (o.format != Options::Format::Text) {
    data = o.out.empty() ? stdout : std::fopen(o.out.c_str(), "w");
    if (data == nullptr) {
      std::fprintf(stderr, "cuvae_bench_ops: --out %s: cannot write: %s\n", o.out.c_str(), std::strerror(errno));
      return 2;
    }
  }
  if (text != nullptr) {
    std::fprintf(text, "# %s\n", o.command.c_str());
    std::fprintf(text, "# %s; %d of %zu op-table rows. Time per call: median of the repetitions after the warm-up;\n",
                 today_utc().c_str(), selected, table.size());
    std::fprintf(text, "# MB/call: bytes one call must move (each op of the case reads its inputs and writes its\n"
                       "# outputs once); %%copy: GB/s against the copy bandwidth measured in the same run. On the\n"
                       "# CPU the caches stay warm between calls (a case that fits in them can pass the copy); on\n"
                       "# CUDA the L2 cache is flushed before each repetition unless --no-flush.\n");
  }
  if (o.format == Options::Format::Csv)
    std::fprintf(data, "backend,row,case,iters,reps,us_per_call,us_min,bytes,gb_per_s,pct_copy,flops,gflop_per_s,error\n");
  std::vector<std::string> json_backends, json_results;
  int failures = 0;
  for (const std::string& b : o.backends) {
    if (b == "cuda" && !cuda_available()) {
      std::fprintf(stderr, "cuvae_bench_ops: --backend cuda: no CUDA GPU (%s); skipped\n", cuda_unavailable_reason().c_str());
      ++failures;
      continue;
    }
    if (b == "onednn" && !onednn_built()) {
      std::fprintf(stderr, "cuvae_bench_ops: --backend onednn: this build has no oneDNN; skipped\n");
      ++failures;
      continue;
    }
    Context ctx(request_of(b), cpu_backend_of(b));
    Timer timer(ctx, o.flush);
    const double copy = copy_gbs(ctx, timer);
    if (text != nullptr) print_text_header(text, b, ctx.description(), copy);
    std::ostringstream jb;
    jb << "{\"backend\": " << json_str(b) << ", \"device\": " << json_str(ctx.description())
       << ", \"copy_gb_per_s\": " << copy << ", \"l2_flushed\": " << (timer.flushes() ? "true" : "false") << "}";
    json_backends.push_back(jb.str());
    for (const OpRow& row : table) {
      if (!row_selected(o, row)) continue;
      for (const OpCase& c : row.cases) {
        if (c.shape.find(o.case_filter) == std::string::npos) continue;
        Result r;
        r.backend = b;
        r.device = ctx.description();
        r.row = row.op;
        r.shape = c.shape;
        r.copy_gbs = copy;
        try {
          Staged s = c.stage(ctx);
          r.bytes = s.bytes;
          r.flops = s.flops;
          r.t = time_op(o, ctx, timer, s.op);
        } catch (const std::exception& e) {
          r.error = e.what();
          ++failures;
        }
        if (text != nullptr) print_text(text, r);
        if (o.format == Options::Format::Csv) print_csv(data, r);
        if (o.format == Options::Format::Json) json_results.push_back(json_result(r));
        std::fflush(stdout);
      }
    }
  }
  if (o.format == Options::Format::Json) {
    std::fprintf(data, "{\"command\": %s,\n \"date\": %s,\n \"warmup\": %d,\n \"backends\": [",
                 json_str(o.command).c_str(), json_str(today_utc()).c_str(), o.warmup);
    for (size_t i = 0; i < json_backends.size(); ++i) std::fprintf(data, "%s%s", i ? ", " : "", json_backends[i].c_str());
    std::fprintf(data, "],\n \"results\": [\n");
    for (size_t i = 0; i < json_results.size(); ++i)
      std::fprintf(data, "  %s%s\n", json_results[i].c_str(), i + 1 < json_results.size() ? "," : "");
    std::fprintf(data, " ]}\n");
  }
  if (data != nullptr && data != stdout) std::fclose(data);
  return failures == 0 ? 0 : 1;
}
