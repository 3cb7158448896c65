// What the oneDNN layers share: the CPU engine and stream, and the cache of arguments reordered
// between the layers' plain NCHW tensors and the layouts oneDNN's primitives choose.
#pragma once

#include "core/tensor.h"

#ifdef CUVAE_HAS_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <deque>
#endif

namespace cuvae {
namespace onednn {

/// Throws cuvae::Error saying this build has no oneDNN and how to get it.
[[noreturn]] void fail_unavailable();

/// Copies the values of the 4-D CPU tensor `src` into `dst` (same shape) in dst.layout(), through
/// a oneDNN reorder. Throws cuvae::Error on a shape or device mismatch, or without oneDNN when
/// the layouts differ.
void reorder(const Tensor& src, Tensor& dst);
/// `t` itself when it is in layout `want`; else its values reordered into `view` (a view of
/// `store`, grown as needed: Layer buffers), which is returned. Throws as reorder() does.
const Tensor& as_layout(const Tensor& t, Layout want, Tensor& store, Tensor& view);

#ifdef CUVAE_HAS_ONEDNN
/// The process's CPU engine (created on first use).
const dnnl::engine& engine();

/// The descriptor of a float tensor [n, c, h, w] (`dims`) in layout `l`.
dnnl::memory::desc md_of(const dnnl::memory::dims& dims, Layout l);
/// The Layout whose descriptor for `dims` equals `md` (Plain, Blocked8c or Blocked16c, the
/// blocked ones only when c is a multiple of the block, so that numel values fill the memory);
/// Plain with `found` false when it is none of them.
Layout layout_of(const dnnl::memory::desc& md, const dnnl::memory::dims& dims, bool* found = nullptr);

/// gemm_cpu's contract through oneDNN's SGEMM (dnnl_sgemm, row-major, OpenMP threads):
/// y [rows, cols] = alpha·op(a)·op(b) + beta·y, with a stored [inner, rows] when `ta` and b stored
/// [cols, inner] when `tb`. The GEMM of the oneDNN backend's fully connected layers. Throws
/// cuvae::Error if oneDNN reports a failure.
void sgemm(bool ta, bool tb, int64_t rows, int64_t cols, int64_t inner, float alpha, const float* a, const float* b,
           float beta, float* y);
/// This thread's stream on engine() (in-order; oneDNN's OpenMP runtime runs each primitive to
/// completion on the calling thread's OpenMP team).
dnnl::stream& stream();

/// Roles of a primitive's arguments: inputs X, W, Y (x, weights, y or dy) and outputs.
enum class Slot { X, W, Y, XOut, WOut, YOut, Count };

/// An output argument: the user's buffer itself when the primitive writes the plain layout, else
/// an internal buffer that finish() reorders into the user's.
class Output {
 public:
  Output(const dnnl::memory* mem, const dnnl::reorder* reorder, const dnnl::memory* user)
      : mem_(mem), reorder_(reorder), user_(user) {}
  /// The memory to pass to the primitive.
  const dnnl::memory& mem() const { return *mem_; }
  /// Copies an internal result into the user's buffer (no-op when written in place).
  void finish(dnnl::stream& s) const {
    if (reorder_ != nullptr) reorder_->execute(s, const_cast<dnnl::memory&>(*mem_), const_cast<dnnl::memory&>(*user_));
  }

 private:
  const dnnl::memory* mem_;
  const dnnl::reorder* reorder_;
  const dnnl::memory* user_;
};

/// Per slot and per wanted layout: an internal buffer, the reorder into (or out of) it and, for
/// inputs, which user pointer it holds a copy of in the current pass. Buffers and reorders are
/// made once and reused; nothing is allocated in a steady state.
class ArgCache {
 public:
  /// Forgets every input copy (their sources may change before the next pass).
  void new_pass();
  /// The memory holding input `ptr` (plain layout `user_md`) in layout `want`: the user's buffer
  /// when the layouts match, else a copy made by a reorder, or reused when this pass already
  /// made it from the same pointer.
  const dnnl::memory& input(dnnl::stream& s, Slot slot, const dnnl::memory::desc& user_md,
                            const dnnl::memory::desc& want, const float* ptr);
  /// The memory a primitive writes output `ptr` (plain layout `user_md`) to in layout `have`.
  Output output(Slot slot, const dnnl::memory::desc& user_md, const dnnl::memory::desc& have, float* ptr);

 private:
  struct Entry {
    dnnl::memory::desc want;
    dnnl::memory internal;
    dnnl::reorder reorder;
    const float* source = nullptr;  // inputs: the pointer copied in this pass (nullptr: none)
  };
  struct SlotState {
    dnnl::memory user;  // wraps the caller's pointer
    std::deque<Entry> entries;  // deque: references stay valid as it grows
  };
  std::array<SlotState, static_cast<int>(Slot::Count)> slots_;
  Entry& entry(Slot slot, const dnnl::memory::desc& user_md, const dnnl::memory::desc& want, bool input);
  dnnl::memory& user(Slot slot, const dnnl::memory::desc& user_md, const float* ptr);
};
#endif

}  // namespace onednn
}  // namespace cuvae
