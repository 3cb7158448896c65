#include "layers/onednn_util.h"

#include <cstring>

#include "core/check.h"

namespace cuvae {
namespace onednn {

void fail_unavailable() {
  CUVAE_FAIL("--cpu-backend onednn: this build has no oneDNN (install libdnnl-dev, e.g. with scripts/setup, "
             "and rebuild), use --cpu-backend reference");
}

#ifdef CUVAE_HAS_ONEDNN
const dnnl::engine& engine() {
  static const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

void sgemm(bool ta, bool tb, int64_t rows, int64_t cols, int64_t inner, float alpha, const float* a, const float* b,
           float beta, float* y) {
  const dnnl::status st = dnnl::sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', rows, cols, inner, alpha, a, ta ? rows : inner, b,
                                      tb ? inner : cols, beta, y, cols);
  CUVAE_CHECK(st == dnnl::status::success, "oneDNN sgemm (" << rows << "x" << cols << "x" << inner << ") failed");
}

dnnl::memory::desc md_of(const dnnl::memory::dims& dims, Layout l) {
  using tag = dnnl::memory::format_tag;
  const tag t = l == Layout::Blocked16c ? tag::nChw16c : l == Layout::Blocked8c ? tag::nChw8c : tag::nchw;
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, t);
}

Layout layout_of(const dnnl::memory::desc& md, const dnnl::memory::dims& dims, bool* found) {
  if (found) *found = true;
  if (md == md_of(dims, Layout::Plain)) return Layout::Plain;
  for (Layout l : {Layout::Blocked16c, Layout::Blocked8c}) {
    const int64_t block = l == Layout::Blocked16c ? 16 : 8;
    if (dims.size() == 4 && dims[1] % block == 0 && md == md_of(dims, l)) return l;
  }
  if (found) *found = false;
  return Layout::Plain;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

void ArgCache::new_pass() {
  for (SlotState& st : slots_)
    for (Entry& e : st.entries) e.source = nullptr;
}

dnnl::memory& ArgCache::user(Slot slot, const dnnl::memory::desc& user_md, const float* ptr) {
  SlotState& st = slots_[static_cast<int>(slot)];
  if (!st.user || st.user.get_desc() != user_md) st.user = dnnl::memory(user_md, engine(), DNNL_MEMORY_NONE);
  st.user.set_data_handle(const_cast<float*>(ptr));
  return st.user;
}

ArgCache::Entry& ArgCache::entry(Slot slot, const dnnl::memory::desc& user_md, const dnnl::memory::desc& want,
                                 bool input) {
  SlotState& st = slots_[static_cast<int>(slot)];
  for (Entry& e : st.entries)
    if (e.want == want) return e;
  Entry e;
  e.want = want;
  e.internal = dnnl::memory(want, engine());
  e.reorder = input ? dnnl::reorder(dnnl::reorder::primitive_desc(engine(), user_md, engine(), want))
                    : dnnl::reorder(dnnl::reorder::primitive_desc(engine(), want, engine(), user_md));
  st.entries.push_back(std::move(e));
  return st.entries.back();
}

const dnnl::memory& ArgCache::input(dnnl::stream& s, Slot slot, const dnnl::memory::desc& user_md,
                                    const dnnl::memory::desc& want, const float* ptr) {
  dnnl::memory& u = user(slot, user_md, ptr);
  if (want == user_md) return u;
  Entry& e = entry(slot, user_md, want, true);
  if (e.source != ptr) {
    e.reorder.execute(s, u, e.internal);
    e.source = ptr;
  }
  return e.internal;
}

Output ArgCache::output(Slot slot, const dnnl::memory::desc& user_md, const dnnl::memory::desc& have, float* ptr) {
  dnnl::memory& u = user(slot, user_md, ptr);
  if (have == user_md) return Output(&u, nullptr, &u);
  Entry& e = entry(slot, user_md, have, false);
  return Output(&e.internal, &e.reorder, &u);
}
#endif

void reorder(const Tensor& src, Tensor& dst) {
  CUVAE_CHECK(src.ndim() == 4 && src.shape() == dst.shape(),
              "oneDNN reorder: " << src.shape_str() << " into " << dst.shape_str() << " (expected two equal 4-D shapes)");
  CUVAE_CHECK(src.device() == Device::CPU && dst.device() == Device::CPU, "oneDNN reorder: CPU tensors only");
  if (src.layout() == dst.layout()) {
    std::memcpy(dst.data(), src.data(), src.bytes());
    return;
  }
#ifdef CUVAE_HAS_ONEDNN
  const dnnl::memory::dims dims(src.shape().begin(), src.shape().end());
  dnnl::memory a(md_of(dims, src.layout()), engine(), const_cast<float*>(src.data()));
  dnnl::memory b(md_of(dims, dst.layout()), engine(), dst.data());
  dnnl::stream& s = stream();
  dnnl::reorder(a, b).execute(s, a, b);
  s.wait();
#else
  fail_unavailable();
#endif
}

const Tensor& as_layout(const Tensor& t, Layout want, Tensor& store, Tensor& view) {
  if (t.layout() == want) return t;
  grow_view(store, view, t.shape(), t.device());
  view.set_layout(want);
  reorder(t, view);
  return view;
}

}  // namespace onednn
}  // namespace cuvae
