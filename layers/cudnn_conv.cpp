#include "layers/cudnn_conv.h"

#include <cstdio>
#include <algorithm>
#include <map>
#include <tuple>

#include "core/check.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

namespace cuvae {

#ifdef CUVAE_HAS_CUDA

namespace {
constexpr size_t kMaxWorkspace = size_t(512) << 20;

struct Algos {
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t ws_fwd = 0, ws_data = 0, ws_filter = 0;
};
// The first successful algorithm in cuDNN's ranking (by time from cudnnFind, by its heuristics
// from the _v7 queries) whose workspace fits and, when `deterministic`, whose results do not
// depend on the run (cuDNN's CUDNN_DETERMINISTIC: no
// atomics in the reductions, e.g. not backward-filter ALGO_0/3 or backward-data ALGO_0).
template <typename Perf, typename Algo>
void pick_algo(const Perf* perf, int got, bool deterministic, Algo& algo, size_t& ws, const char* what) {
  for (int i = 0; i < got; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kMaxWorkspace &&
        (!deterministic || perf[i].determinism == CUDNN_DETERMINISTIC)) {
      algo = perf[i].algo;
      ws = perf[i].memory;
      return;
    }
  CUVAE_FAIL("cuDNN found no usable " << (deterministic ? "deterministic " : "") << what
                                      << " convolution algorithm" << (deterministic ? " (try --nondeterministic)" : ""));
}

// What the algorithms are chosen for: the whole geometry and the determinism asked for.
using AlgoKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;
AlgoKey algo_key(const ConvGeom& g, bool deterministic) {
  return {g.n, g.c, g.h, g.w, g.k_out, g.kernel, g.stride, g.pad, deterministic};
}

}  // namespace

struct CudnnConv::Impl {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ConvGeom geom;
  bool deterministic = true;
  bool ready = false;              // descriptors and cur match geom (set only once all succeeded)
  std::map<AlgoKey, Algos> cache;  // by full geometry and determinism
  Algos cur;

  Impl() {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
  }
  ~Impl() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

CudnnConv::CudnnConv() : impl_(std::make_unique<Impl>()) {}
CudnnConv::~CudnnConv() = default;

void CudnnConv::setup(Context& ctx, const ConvGeom& g) {
  CUVAE_CHECK(ctx.is_cuda(), "CudnnConv used with a CPU context");
  g.validate();
  Impl& s = *impl_;
  const bool deterministic = ctx.deterministic();
  if (s.ready && algo_key(s.geom, s.deterministic) == algo_key(g, deterministic)) {
    // The same geometry, maybe on another context: that context's workspace must fit too.
    ctx.workspace(std::max({s.cur.ws_fwd, s.cur.ws_data, s.cur.ws_filter, size_t(1)}));
    return;
  }
  s.ready = false;  // until the descriptors and the algorithms all match g
  const int n = static_cast<int>(g.n), c = static_cast<int>(g.c), h = static_cast<int>(g.h),
            w = static_cast<int>(g.w), k = static_cast<int>(g.k_out), ks = static_cast<int>(g.kernel);
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(s.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(s.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, ks, ks));
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(s.conv, static_cast<int>(g.pad), static_cast<int>(g.pad),
                                              static_cast<int>(g.stride), static_cast<int>(g.stride), 1, 1,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CUDNN_CHECK(cudnnSetConvolutionMathType(s.conv, CUDNN_FMA_MATH));
  int on = 0, oc = 0, oh = 0, ow = 0;
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(s.conv, s.x, s.w, &on, &oc, &oh, &ow));
  CUVAE_CHECK(on == n && oc == k && oh == g.ho() && ow == g.wo(),
              "cuDNN output shape disagrees with the convolution geometry");
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(s.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, k, oh, ow));

  const AlgoKey key = algo_key(g, deterministic);
  auto it = s.cache.find(key);
  if (it == s.cache.end()) {
    // Deterministic mode ranks the algorithms with cuDNN's heuristics (the _v7 queries run no
    // kernels, so the choice is the same in every run on a given GPU and cuDNN: a second run, or
    // a --resume in a new process, uses the same algorithms and rounds the same way). Timing them
    // (cudnnFind) could pick a different one of several equally fast algorithms each run.
    // --nondeterministic times them and takes the fastest.
    cudnnHandle_t hd = ctx.cudnn();
    Algos a;
    int got = 0;
    cudnnConvolutionFwdAlgoPerf_t fp[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    if (deterministic)
      CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(hd, s.x, s.w, s.conv, s.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                         &got, fp));
    else
      CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(hd, s.x, s.w, s.conv, s.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                       &got, fp));
    pick_algo(fp, got, deterministic, a.fwd, a.ws_fwd, "forward");
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(hd, s.x, s.w, s.conv, s.y, a.fwd, &a.ws_fwd));
    cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    if (deterministic)
      CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(hd, s.w, s.y, s.conv, s.x,
                                                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, dp));
    else
      CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(hd, s.w, s.y, s.conv, s.x,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, dp));
    pick_algo(dp, got, deterministic, a.bwd_data, a.ws_data, "backward-data");
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(hd, s.w, s.y, s.conv, s.x, a.bwd_data, &a.ws_data));
    cudnnConvolutionBwdFilterAlgoPerf_t wp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    if (deterministic)
      CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(hd, s.x, s.y, s.conv, s.w,
                                                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, wp));
    else
      CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(hd, s.x, s.y, s.conv, s.w,
                                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, wp));
    pick_algo(wp, got, deterministic, a.bwd_filter, a.ws_filter, "backward-filter");
    CUDNN_CHECK(
        cudnnGetConvolutionBackwardFilterWorkspaceSize(hd, s.x, s.y, s.conv, s.w, a.bwd_filter, &a.ws_filter));
    it = s.cache.emplace(key, a).first;
  }
  s.cur = it->second;
  ctx.workspace(std::max({s.cur.ws_fwd, s.cur.ws_data, s.cur.ws_filter, size_t(1)}));
  s.geom = g;
  s.deterministic = deterministic;
  s.ready = true;
}

void CudnnConv::fwd(Context& ctx, const float* x, const float* w, float* y) {
  Impl& s = *impl_;
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionForward(ctx.cudnn(), &one, s.x, x, s.w, w, s.conv, s.cur.fwd,
                                      ctx.workspace(0), ctx.workspace_size(), &zero, s.y, y));
}

void CudnnConv::bwd_data(Context& ctx, const float* dy, const float* w, float* dx) {
  Impl& s = *impl_;
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.cudnn(), &one, s.w, w, s.y, dy, s.conv, s.cur.bwd_data,
                                           ctx.workspace(0), ctx.workspace_size(), &zero, s.x, dx));
}

void CudnnConv::bwd_filter(Context& ctx, const float* x, const float* dy, float* dw) {
  Impl& s = *impl_;
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn(), &one, s.x, x, s.y, dy, s.conv, s.cur.bwd_filter,
                                             ctx.workspace(0), ctx.workspace_size(), &zero, s.w, dw));
}

#else  // no CUDA backend

struct CudnnConv::Impl {};
CudnnConv::CudnnConv() = default;
CudnnConv::~CudnnConv() = default;
static void no_cuda() { CUVAE_FAIL("this build of cuvae has no CUDA backend"); }
void CudnnConv::setup(Context&, const ConvGeom&) { no_cuda(); }
void CudnnConv::fwd(Context&, const float*, const float*, float*) { no_cuda(); }
void CudnnConv::bwd_data(Context&, const float*, const float*, float*) { no_cuda(); }
void CudnnConv::bwd_filter(Context&, const float*, const float*, float*) { no_cuda(); }

#endif

}  // namespace cuvae
