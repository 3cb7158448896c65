#include "layers/cudnn_conv.h"

#include <cstdio>
#include <algorithm>
#include <map>

#include "host/check.h"

#ifdef CUVAE_HAS_CUDA
#include "host/cuda_check.h"
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
// The fastest (cuDNN sorts by time) successful algorithm whose workspace fits.
template <typename Perf, typename Algo>
void pick_algo(const Perf* perf, int got, Algo& algo, size_t& ws, const char* what) {
  for (int i = 0; i < got; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kMaxWorkspace) {
      algo = perf[i].algo;
      ws = perf[i].memory;
      return;
    }
  CUVAE_FAIL("cuDNN found no usable " << what << " convolution algorithm");
}

}  // namespace

struct CudnnConv::Impl {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ConvGeom geom;
  bool ready = false;
  std::map<int64_t, Algos> cache;  // by batch size
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
  const bool same = s.ready && s.geom.n == g.n && s.geom.c == g.c && s.geom.h == g.h &&
                    s.geom.w == g.w && s.geom.k_out == g.k_out && s.geom.kernel == g.kernel &&
                    s.geom.stride == g.stride && s.geom.pad == g.pad;
  if (same) return;
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
  s.geom = g;
  s.ready = true;

  auto it = s.cache.find(g.n);
  if (it == s.cache.end()) {
    cudnnHandle_t hd = ctx.cudnn();
    Algos a;
    int got = 0;
    cudnnConvolutionFwdAlgoPerf_t fp[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(hd, s.x, s.w, s.conv, s.y,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, fp));
    pick_algo(fp, got, a.fwd, a.ws_fwd, "forward");
    cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(hd, s.w, s.y, s.conv, s.x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, dp));
    pick_algo(dp, got, a.bwd_data, a.ws_data, "backward-data");
    cudnnConvolutionBwdFilterAlgoPerf_t wp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(hd, s.x, s.y, s.conv, s.w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, wp));
    pick_algo(wp, got, a.bwd_filter, a.ws_filter, "backward-filter");
    it = s.cache.emplace(g.n, a).first;
  }
  s.cur = it->second;
  ctx.workspace(std::max({s.cur.ws_fwd, s.cur.ws_data, s.cur.ws_filter, size_t(1)}));
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
