#include "layers/onednn_conv.h"

#include <vector>

#include "core/check.h"
#include "layers/onednn_util.h"

namespace cuvae {

#ifdef CUVAE_HAS_ONEDNN

namespace {
using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;
}  // namespace

/// The primitives of one geometry and the internal (oneDNN-layout) copies of their arguments.
struct ConvPrims {
  ConvGeom g;
  bool bias = false, relu = false;  // fused into the forward
  Layout x_layout = Layout::Plain;  // of x and dx
  bool blocked_y = false;           // asked for y in the primitive's blocked layout
  Layout y_layout = Layout::Plain;  // of y and dy
  memory::desc x_md, w_md, y_md, b_md;  // the layer's layouts of its arguments
  memory b_mem;                         // wraps the caller's bias
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_w_pd;
  dnnl::convolution_backward_weights bwd_w;
  onednn::ArgCache cache;
};

struct OnednnConv::Impl {
  std::vector<std::unique_ptr<ConvPrims>> geoms;
  ConvPrims* cur = nullptr;
};

namespace {
bool same_geom(const ConvPrims& p, const ConvGeom& b, bool bias, bool relu, Layout x_layout, bool blocked_y) {
  const ConvGeom& a = p.g;
  return p.bias == bias && p.relu == relu && p.x_layout == x_layout && p.blocked_y == blocked_y && a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w && a.k_out == b.k_out &&
         a.kernel == b.kernel && a.stride == b.stride && a.pad == b.pad;
}

std::unique_ptr<ConvPrims> make_prims(const ConvGeom& g, bool bias, bool relu, Layout x_layout, bool blocked_y) {
  auto p = std::make_unique<ConvPrims>();
  p->g = g;
  p->bias = bias;
  p->relu = relu;
  p->x_layout = x_layout;
  p->blocked_y = blocked_y;
  const dnnl::engine& eng = onednn::engine();
  const memory::dims xd{g.n, g.c, g.h, g.w}, wd{g.k_out, g.c, g.kernel, g.kernel},
      yd{g.n, g.k_out, g.ho(), g.wo()}, strides{g.stride, g.stride}, pad{g.pad, g.pad};
  p->x_md = onednn::md_of(xd, x_layout);
  p->w_md = memory::desc(wd, dt::f32, tag::oihw);
  p->y_md = memory::desc(yd, dt::f32, tag::nchw);
  p->b_md = memory::desc({g.k_out}, dt::f32, tag::x);
  p->b_mem = memory(p->b_md, eng, DNNL_MEMORY_NONE);
  const memory::desc xa(xd, dt::f32, tag::any), wa(wd, dt::f32, tag::any), ya(yd, dt::f32, tag::any);
  try {
    const auto fd = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                           dnnl::algorithm::convolution_direct, xa, wa, p->b_md, ya,
                                                           strides, pad, pad)
                         : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                           dnnl::algorithm::convolution_direct, xa, wa, ya, strides,
                                                           pad, pad);
    dnnl::primitive_attr attr;
    if (relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    p->fwd_pd = dnnl::convolution_forward::primitive_desc(fd, attr, eng);
    p->fwd = dnnl::convolution_forward(p->fwd_pd);
    if (blocked_y) {  // keep y in the primitive's own layout when a Tensor can say it
      bool found = false;
      const Layout l = onednn::layout_of(p->fwd_pd.dst_desc(), yd, &found);
      if (found && l != Layout::Plain) {
        p->y_layout = l;
        p->y_md = p->fwd_pd.dst_desc();
      }
    }
    dnnl::convolution_backward_data::desc dd(dnnl::algorithm::convolution_direct, xa, wa, ya, strides, pad, pad);
    p->bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(dd, eng, p->fwd_pd);
    p->bwd_data = dnnl::convolution_backward_data(p->bwd_data_pd);
    dnnl::convolution_backward_weights::desc wdsc(dnnl::algorithm::convolution_direct, xa, wa, ya, strides,
                                                  pad, pad);
    p->bwd_w_pd = dnnl::convolution_backward_weights::primitive_desc(wdsc, eng, p->fwd_pd);
    p->bwd_w = dnnl::convolution_backward_weights(p->bwd_w_pd);
  } catch (const dnnl::error& e) {
    CUVAE_FAIL("oneDNN convolution [" << g.n << ", " << g.c << ", " << g.h << ", " << g.w << "] → " << g.k_out
                                      << " channels, kernel " << g.kernel << ", stride " << g.stride << ", pad "
                                      << g.pad << ": " << e.what());
  }
  return p;
}
}  // namespace

OnednnConv::OnednnConv() : impl_(std::make_unique<Impl>()) {}
OnednnConv::~OnednnConv() = default;
OnednnConv::OnednnConv(OnednnConv&&) noexcept = default;
OnednnConv& OnednnConv::operator=(OnednnConv&&) noexcept = default;
bool OnednnConv::available() { return true; }

void OnednnConv::setup(const ConvGeom& g, bool bias, bool relu, Layout x_layout, bool blocked_y) {
  Impl& m = *impl_;
  if (m.cur == nullptr || !same_geom(*m.cur, g, bias, relu, x_layout, blocked_y)) {
    m.cur = nullptr;
    for (auto& p : m.geoms)
      if (same_geom(*p, g, bias, relu, x_layout, blocked_y)) m.cur = p.get();
    if (m.cur == nullptr) {
      m.geoms.push_back(make_prims(g, bias, relu, x_layout, blocked_y));
      m.cur = m.geoms.back().get();
    }
  }
  m.cur->cache.new_pass();
}

Layout OnednnConv::y_layout() const { return impl_->cur != nullptr ? impl_->cur->y_layout : Layout::Plain; }

void OnednnConv::fwd(const float* x, const float* w, float* y, const float* b) {
  CUVAE_CHECK(impl_->cur != nullptr, "OnednnConv::fwd before setup");
  ConvPrims& p = *impl_->cur;
  CUVAE_CHECK(!p.bias || b != nullptr, "OnednnConv::fwd: set up with a bias but given none");
  onednn::ArgCache& c = p.cache;
  dnnl::stream& s = onednn::stream();
  const memory& xm = c.input(s, onednn::Slot::X, p.x_md, p.fwd_pd.src_desc(), x);
  const memory& wm = c.input(s, onednn::Slot::W, p.w_md, p.fwd_pd.weights_desc(), w);
  onednn::Output ym = c.output(onednn::Slot::YOut, p.y_md, p.fwd_pd.dst_desc(), y);
  if (p.bias) {
    p.b_mem.set_data_handle(const_cast<float*>(b));
    p.fwd.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, p.b_mem}, {DNNL_ARG_DST, ym.mem()}});
  } else {
    p.fwd.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym.mem()}});
  }
  ym.finish(s);
  s.wait();
}

void OnednnConv::bwd_data(const float* dy, const float* w, float* dx) {
  CUVAE_CHECK(impl_->cur != nullptr, "OnednnConv::bwd_data before setup");
  ConvPrims& p = *impl_->cur;
  onednn::ArgCache& c = p.cache;
  dnnl::stream& s = onednn::stream();
  const memory& dym = c.input(s, onednn::Slot::Y, p.y_md, p.bwd_data_pd.diff_dst_desc(), dy);
  const memory& wm = c.input(s, onednn::Slot::W, p.w_md, p.bwd_data_pd.weights_desc(), w);
  onednn::Output dxm = c.output(onednn::Slot::XOut, p.x_md, p.bwd_data_pd.diff_src_desc(), dx);
  p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, dxm.mem()}});
  dxm.finish(s);
  s.wait();
}

void OnednnConv::bwd_filter(const float* x, const float* dy, float* dw) {
  CUVAE_CHECK(impl_->cur != nullptr, "OnednnConv::bwd_filter before setup");
  ConvPrims& p = *impl_->cur;
  onednn::ArgCache& c = p.cache;
  dnnl::stream& s = onednn::stream();
  const memory& xm = c.input(s, onednn::Slot::X, p.x_md, p.bwd_w_pd.src_desc(), x);
  const memory& dym = c.input(s, onednn::Slot::Y, p.y_md, p.bwd_w_pd.diff_dst_desc(), dy);
  onednn::Output dwm = c.output(onednn::Slot::WOut, p.w_md, p.bwd_w_pd.diff_weights_desc(), dw);
  p.bwd_w.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_WEIGHTS, dwm.mem()}});
  dwm.finish(s);
  s.wait();
}

#else  // !CUVAE_HAS_ONEDNN

struct OnednnConv::Impl {};
OnednnConv::OnednnConv() = default;
OnednnConv::~OnednnConv() = default;
OnednnConv::OnednnConv(OnednnConv&&) noexcept = default;
OnednnConv& OnednnConv::operator=(OnednnConv&&) noexcept = default;
bool OnednnConv::available() { return false; }
void OnednnConv::setup(const ConvGeom&, bool, bool, Layout, bool) { onednn::fail_unavailable(); }
Layout OnednnConv::y_layout() const { return Layout::Plain; }
void OnednnConv::fwd(const float*, const float*, float*, const float*) { onednn::fail_unavailable(); }
void OnednnConv::bwd_data(const float*, const float*, float*) { onednn::fail_unavailable(); }
void OnednnConv::bwd_filter(const float*, const float*, float*) { onednn::fail_unavailable(); }

#endif

}  // namespace cuvae
