// Helpers shared by the kernel test suites: seeded random inputs, host<->device copies and
// an all-close comparison that prints the first mismatches (index, got, ref).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/tensor.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

namespace cuvae::test {

/// The message of the cuvae::Error that `f` throws as the command line shows it (the options it
/// names as flags: Error::message(FieldStyle::Flag)); "" and a test failure if it throws nothing
/// or another exception type. Use `what_of` for what() itself (options by their field names).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message(FieldStyle::Flag);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-cuvae exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no cuvae::Error thrown";
  return "";
}

/// what() of the cuvae::Error that `f` throws (options by their field names); "" and a test
/// failure if it throws nothing or another exception type.
template <typename F>
std::string what_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-cuvae exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no cuvae::Error thrown";
  return "";
}

/// `n` values uniform in [lo, hi) from a fixed-seed Mersenne Twister.
template <typename T = float>
inline std::vector<T> random_values(size_t n, double lo, double hi, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(dist(gen));
  return v;
}

/// `n` integers uniform in [lo, hi] as floats (sums of their products are exact in float), from
/// a fixed-seed Mersenne Twister.
inline std::vector<float> small_ints(size_t n, uint32_t seed, int lo = -3, int hi = 3) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(d(g));
  return v;
}

/// Element-wise conversion between float and double vectors.
template <typename To, typename From>
inline std::vector<To> convert(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

/// Passes when |got[i] - ref[i]| <= atol + rtol*|ref[i]| for every i (and the sizes agree);
/// otherwise fails listing the number of mismatches and the first `show` of them.
template <typename A, typename B>
inline ::testing::AssertionResult all_close(const std::vector<A>& got, const std::vector<B>& ref,
                                            double atol, double rtol, int show = 5) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure()
           << "size " << got.size() << " vs reference size " << ref.size();
  std::ostringstream os;
  os.precision(9);
  size_t bad = 0;
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    const double err = std::fabs(g - r);
    const bool ok = err <= atol + rtol * std::fabs(r);  // false for NaN
    if (!ok) {
      if (static_cast<int>(bad) < show)
        os << "\n  [" << i << "] got " << g << " ref " << r << " (|diff| " << err << ")";
      ++bad;
      worst = std::max(worst, err);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " elements differ (atol " << atol << ", rtol " << rtol
         << ", worst |diff| " << worst << "):" << os.str();
}

/// Central-difference gradient check in double (PyTorch gradcheck's eps 1e-6, atol 1e-5, rtol
/// 1e-3 by default): perturbs each x[i] by ±h, evaluates f() and expects
/// |(f(x+h) − f(x−h))/2h − analytic[i]| <= atol + rtol·|analytic[i]|. `skip(i)` leaves out points
/// at a kink (e.g. ReLU at 0); at least one point must be checked. x is restored.
inline void check_gradient(std::vector<double>& x, const std::vector<double>& analytic,
                           const std::function<double()>& f, const char* what, double atol = 1e-5,
                           double rtol = 1e-3, const std::function<bool(size_t)>& skip = nullptr,
                           double h = 1e-6) {
  ASSERT_EQ(x.size(), analytic.size());
  int checked = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (skip && skip(i)) continue;
    const double keep = x[i];
    x[i] = keep + h;
    const double fp = f();
    x[i] = keep - h;
    const double fm = f();
    x[i] = keep;
    const double num = (fp - fm) / (2 * h);
    EXPECT_LE(std::fabs(num - analytic[i]), atol + rtol * std::fabs(analytic[i]))
        << what << "[" << i << "]: numeric " << num << " analytic " << analytic[i];
    ++checked;
  }
  EXPECT_GT(checked, 0) << what << ": every point was skipped";
}

/// Normwise relative error ‖a − b‖ / ‖b‖ of each parameter tensor of `ps` (a ParamStore of either
/// device; `a` and `b` are two flat vectors laid out as ps.flat_values()), failing a gtest
/// expectation for every tensor above `bound`. Every tensor is checked: no fraction exempt.
template <typename Store>
void expect_each_tensor_close(const Store& ps, const std::vector<float>& a, const std::vector<float>& b, double bound,
                              const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& info : ps.params()) {
    double num = 0, den = 0;
    for (int64_t i = info.offset; i < info.offset + info.numel; ++i) {
      const double d = static_cast<double>(a[static_cast<size_t>(i)]) - b[static_cast<size_t>(i)];
      num += d * d;
      den += static_cast<double>(b[static_cast<size_t>(i)]) * b[static_cast<size_t>(i)];
    }
    const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    EXPECT_LE(rel, bound) << what << " " << info.name << ": relative error " << rel;
  }
}

/// The whole contents of the file at `path` ("" when it cannot be read).
inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Waits for all device work (uploads on the legacy stream included); no-op without CUDA.
inline void device_sync() {
#ifdef CUVAE_HAS_CUDA
  CUDA_CHECK(cudaDeviceSynchronize());
#endif
}

#ifdef CUVAE_HAS_CUDA
/// The work `step` enqueues on stream `s`, captured as a CUDA graph (global capture mode) after
/// the stream has drained. If `step` throws, the capture is ended and its graph discarded before
/// the exception goes on, so one failing test does not leave the stream capturing for every
/// later test in the process. The caller destroys the returned graph.
inline cudaGraph_t capture_graph(cudaStream_t s, const std::function<void()>& step) {
  CUDA_CHECK(cudaStreamSynchronize(s));
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  try {
    step();
  } catch (...) {
    cudaGraph_t abandoned = nullptr;
    if (cudaStreamEndCapture(s, &abandoned) == cudaSuccess && abandoned != nullptr) cudaGraphDestroy(abandoned);
    cudaGetLastError();
    throw;
  }
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  return graph;
}

/// Captures `step` on `s` (capture_graph), launches the graph once and waits for it; the graph
/// and its executable are destroyed whatever fails.
inline void replay_once(cudaStream_t s, const std::function<void()>& step) {
  cudaGraph_t graph = capture_graph(s, step);
  cudaGraphExec_t exec = nullptr;
  cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  if (err == cudaSuccess) err = cudaGraphLaunch(exec, s);
  if (err == cudaSuccess) err = cudaStreamSynchronize(s);
  if (exec != nullptr) cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  CUDA_CHECK(err);
}
#endif

/// A CUDA tensor holding `values` with `shape` (waits until the upload is complete).
inline Tensor to_device(const std::vector<float>& values, std::vector<int64_t> shape) {
  Tensor t = Tensor::from_vector(values, std::move(shape), Device::CUDA);
  device_sync();
  return t;
}

/// Host copy of a tensor after all device work has finished.
inline std::vector<float> to_host(const Tensor& t) {
  device_sync();
  return t.to_vector();
}

/// Overwrites a model's flat parameter values (a CPU model) with `w`, for finite differences.
template <typename Model>
void set_param_values(Model& m, const std::vector<float>& w) {
  memcpy_any(m.params().flat_values().data(), Device::CPU, w.data(), Device::CPU, w.size() * sizeof(float));
}

}  // namespace cuvae::test

/// Expects the string `hay` to contain `needle`, printing both otherwise.
#define EXPECT_CONTAINS(hay, needle)                                                   \
  EXPECT_NE(std::string(hay).find(needle), std::string::npos)                          \
      << "message: '" << (hay) << "'\n does not contain: '" << (needle) << "'"
