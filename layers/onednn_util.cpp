#include "layers/onednn_util.h"

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

}  // namespace onednn
}  // namespace cuvae
