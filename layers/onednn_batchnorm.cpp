#include "layers/onednn_batchnorm.h"

#include <vector>

#include "core/check.h"
#include "layers/onednn_util.h"

namespace cuvae {

#ifdef CUVAE_HAS_ONEDNN

namespace {
using dnnl::memory;
using dnnl::normalization_flags;
using dt = memory::data_type;
using tag = memory::format_tag;

// The primitives of one shape and epsilon, and memories wrapping the caller's pointers.
struct BnPrims {
  int64_t n, c, h, w;
  double eps;
  Layout layout;  // of x, y, dy and dx
  memory::desc x_md, stat_md;
  dnnl::batch_normalization_forward::primitive_desc train_pd, eval_pd;
  dnnl::batch_normalization_forward train, eval;
  dnnl::batch_normalization_backward::primitive_desc bwd_pd;
  dnnl::batch_normalization_backward bwd;
  memory src, dst, diff_dst, diff_src, scale, shift, mean, var, diff_scale, diff_shift;
};

memory wrap(const memory::desc& md, const float* p) {
  return memory(md, onednn::engine(), const_cast<float*>(p));
}
}  // namespace

struct OnednnBatchNorm::Impl {
  std::vector<std::unique_ptr<BnPrims>> shapes;
  BnPrims* cur = nullptr;
  Layout layout = Layout::Plain;  // set_layout()

  BnPrims& get(int64_t n, int64_t c, int64_t h, int64_t w, double eps) {
    auto same = [&](const BnPrims& p) {
      return p.n == n && p.c == c && p.h == h && p.w == w && p.eps == eps && p.layout == layout;
    };
    if (cur != nullptr && same(*cur)) return *cur;
    for (auto& p : shapes)
      if (same(*p)) return *(cur = p.get());
    auto p = std::make_unique<BnPrims>();
    p->n = n, p->c = c, p->h = h, p->w = w, p->eps = eps, p->layout = layout;
    p->x_md = onednn::md_of({n, c, h, w}, layout);
    p->stat_md = memory::desc({c}, dt::f32, tag::a);
    const auto flags = normalization_flags::use_scale | normalization_flags::use_shift;
    const dnnl::engine& eng = onednn::engine();
    const float e = static_cast<float>(eps);
    try {
      p->train_pd = dnnl::batch_normalization_forward::primitive_desc(
          dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, p->x_md, e, flags), eng);
      p->train = dnnl::batch_normalization_forward(p->train_pd);
      p->eval_pd = dnnl::batch_normalization_forward::primitive_desc(
          dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_inference, p->x_md, e,
                                                  flags | normalization_flags::use_global_stats),
          eng);
      p->eval = dnnl::batch_normalization_forward(p->eval_pd);
      p->bwd_pd = dnnl::batch_normalization_backward::primitive_desc(
          dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, p->x_md, p->x_md, e, flags), eng,
          p->train_pd);
      p->bwd = dnnl::batch_normalization_backward(p->bwd_pd);
    } catch (const dnnl::error& err) {
      CUVAE_FAIL("oneDNN batch norm [" << n << ", " << c << ", " << h << ", " << w << "]: " << err.what());
    }
    CUVAE_CHECK(p->train_pd.workspace_desc().get_size() == 0, "oneDNN batch norm: unexpected workspace");
    for (memory* m : {&p->src, &p->dst, &p->diff_dst, &p->diff_src}) *m = wrap(p->x_md, nullptr);
    for (memory* m : {&p->scale, &p->shift, &p->mean, &p->var, &p->diff_scale, &p->diff_shift})
      *m = wrap(p->stat_md, nullptr);
    shapes.push_back(std::move(p));
    return *(cur = shapes.back().get());
  }
};

namespace {
void set(memory& m, const float* p) { m.set_data_handle(const_cast<float*>(p)); }
}  // namespace

OnednnBatchNorm::OnednnBatchNorm() : impl_(std::make_unique<Impl>()) {}
OnednnBatchNorm::~OnednnBatchNorm() = default;
OnednnBatchNorm::OnednnBatchNorm(OnednnBatchNorm&&) noexcept = default;
OnednnBatchNorm& OnednnBatchNorm::operator=(OnednnBatchNorm&&) noexcept = default;
void OnednnBatchNorm::set_layout(Layout l) { impl_->layout = l; }

namespace {
// Both forwards take the same arguments: statistics written (training) or read (evaluation).
void run_forward(BnPrims& p, const dnnl::batch_normalization_forward& prim, const float* x, const float* gamma,
                 const float* beta, const float* mean, const float* var, float* y) {
  set(p.src, x), set(p.dst, y), set(p.scale, gamma), set(p.shift, beta), set(p.mean, mean), set(p.var, var);
  dnnl::stream& s = onednn::stream();
  prim.execute(s, {{DNNL_ARG_SRC, p.src},
                   {DNNL_ARG_DST, p.dst},
                   {DNNL_ARG_SCALE, p.scale},
                   {DNNL_ARG_SHIFT, p.shift},
                   {DNNL_ARG_MEAN, p.mean},
                   {DNNL_ARG_VARIANCE, p.var}});
  s.wait();
}
}  // namespace

void OnednnBatchNorm::forward_train(int64_t n, int64_t c, int64_t h, int64_t w, double eps, const float* x,
                                    const float* gamma, const float* beta, float* y, float* mean, float* var) {
  BnPrims& p = impl_->get(n, c, h, w, eps);
  run_forward(p, p.train, x, gamma, beta, mean, var, y);
}

void OnednnBatchNorm::forward_eval(int64_t n, int64_t c, int64_t h, int64_t w, double eps, const float* x,
                                   const float* gamma, const float* beta, const float* mean, const float* var,
                                   float* y) {
  BnPrims& p = impl_->get(n, c, h, w, eps);
  run_forward(p, p.eval, x, gamma, beta, mean, var, y);
}

void OnednnBatchNorm::backward(int64_t n, int64_t c, int64_t h, int64_t w, double eps, const float* x,
                               const float* dy, const float* gamma, const float* mean, const float* var,
                               float* dx, float* dgamma, float* dbeta) {
  BnPrims& p = impl_->get(n, c, h, w, eps);
  set(p.src, x), set(p.diff_dst, dy), set(p.scale, gamma), set(p.shift, nullptr), set(p.mean, mean), set(p.var, var);
  set(p.diff_src, dx), set(p.diff_scale, dgamma), set(p.diff_shift, dbeta);
  dnnl::stream& s = onednn::stream();
  p.bwd.execute(s, {{DNNL_ARG_SRC, p.src},
                    {DNNL_ARG_MEAN, p.mean},
                    {DNNL_ARG_VARIANCE, p.var},
                    {DNNL_ARG_DIFF_DST, p.diff_dst},
                    {DNNL_ARG_SCALE, p.scale},
                    {DNNL_ARG_SHIFT, p.shift},
                    {DNNL_ARG_DIFF_SRC, p.diff_src},
                    {DNNL_ARG_DIFF_SCALE, p.diff_scale},
                    {DNNL_ARG_DIFF_SHIFT, p.diff_shift}});
  s.wait();
}

#else  // !CUVAE_HAS_ONEDNN

struct OnednnBatchNorm::Impl {};
OnednnBatchNorm::OnednnBatchNorm() = default;
OnednnBatchNorm::~OnednnBatchNorm() = default;
OnednnBatchNorm::OnednnBatchNorm(OnednnBatchNorm&&) noexcept = default;
OnednnBatchNorm& OnednnBatchNorm::operator=(OnednnBatchNorm&&) noexcept = default;
void OnednnBatchNorm::set_layout(Layout) { onednn::fail_unavailable(); }
void OnednnBatchNorm::forward_train(int64_t, int64_t, int64_t, int64_t, double, const float*, const float*,
                                    const float*, float*, float*, float*) {
  onednn::fail_unavailable();
}
void OnednnBatchNorm::forward_eval(int64_t, int64_t, int64_t, int64_t, double, const float*, const float*,
                                   const float*, const float*, const float*, float*) {
  onednn::fail_unavailable();
}
void OnednnBatchNorm::backward(int64_t, int64_t, int64_t, int64_t, double, const float*, const float*,
                               const float*, const float*, const float*, float*, float*, float*) {
  onednn::fail_unavailable();
}

#endif

}  // namespace cuvae
