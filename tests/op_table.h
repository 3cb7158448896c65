// The op table: every op of kernels/ and layers/ over a list of shapes (batch 1, odd sizes,
// lengths that are not a multiple of 4, the shapes of the real models), forward and backward,
// in the manner of ggml's test-backend-ops. Each case
//   - stages its inputs on a Context's device (CPU: the float reference or oneDNN; CUDA: the
//     kernels, cuDNN and cuBLAS) and returns the op as a repeatable callable, the reads of its
//     outputs, and the bytes (and for the GEMM-like layers the FLOPs) one call must move,
//   - and has a templated CPU reference in double on the same inputs (null for ops whose
//     results are exact, e.g. a gather of bytes).
// Correctness runs a staged case once (run_float) and compares its outputs by name:
// tests/test_op_table.cpp CPU float with double and that every op declared in kernels/ and
// layers/ has a row; tests/gpu_op_table.cpp CUDA with the CPU; tests/emu_op_table.cpp the
// emulated device with the CPU. bench/bench_ops.cpp times the same staged ops (perf mode).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"
#include "jobs/batching.h"
#include "kernels/accuracy.h"
#include "kernels/activation.h"
#include "kernels/adam.h"
#include "kernels/augment.h"
#include "kernels/batch.h"
#include "kernels/bias.h"
#include "kernels/conditional.h"
#include "kernels/dispatch_util.h"
#include "kernels/elbo.h"
#include "kernels/free_bits.h"
#include "kernels/gradcam.h"
#include "kernels/loss_monitor.h"
#include "kernels/pool.h"
#include "kernels/reparameterize.h"
#include "kernels/residual.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "kernels/step_state.h"
#include "kernels/tsne.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/conv_cpu.h"
#include "layers/linear.h"
#include "layers/param.h"
#include "layers/res_block.h"
#include "tests/test_util.h"

namespace cuvae::test::ops {

/// One named output of a run, widened to double.
struct Out {
  std::string name;
  std::vector<double> v;
  Out(std::string n, std::vector<double> values) : name(std::move(n)), v(std::move(values)) {}
  template <typename T>
  Out(std::string n, const std::vector<T>& values) : name(std::move(n)), v(values.begin(), values.end()) {}
  Out(std::string n, const Tensor& t) : name(std::move(n)) {
    const std::vector<float> f = t.to_vector();
    v.assign(f.begin(), f.end());
  }
};
using Outs = std::vector<Out>;

/// One case made ready on a context: its inputs and outputs allocated (and inputs uploaded) on
/// the context's device, the op as a callable that may be repeated (perf mode times it; values
/// drift when an op updates its inputs in place, which timing does not mind), and the reads of
/// its outputs. `op` and `outs` refer to objects this struct holds: call them only while it lives.
struct Staged {
  std::function<void()> op;    ///< the case's ops in order, queued on the context's stream
  std::function<Outs()> outs;  ///< the outputs after one op() (synchronous reads)
  /// When set, what correctness runs instead of op() then outs() (a case that reads its state
  /// between calls of op).
  std::function<Outs()> run_once;
  double bytes = 0;  ///< bytes one op() must move: each op of it reads its inputs and writes its outputs once
  double flops = 0;  ///< floating-point operations of one op() (multiply-add = 2); 0: not counted

  /// Keeps a T built from `args` alive as long as this struct and returns it (stable address).
  template <class T, class... A>
  T& make(A&&... args) {
    auto p = std::make_shared<T>(std::forward<A>(args)...);
    held_.v.push_back(p);
    return *p;
  }

 private:
  // Held objects, released last-made first (a layer before the ParamStore it registered in).
  struct Held {
    std::vector<std::shared_ptr<void>> v;
    Held() = default;
    Held(Held&&) = default;
    Held& operator=(Held&&) = default;
    ~Held() {
      while (!v.empty()) v.pop_back();
    }
  };
  Held held_;
};

/// One shape of one op.
struct OpCase {
  std::string shape;                     ///< e.g. "n=1 c=3 hw=5"
  std::function<Staged(Context&)> stage;  ///< the Tensor-level op staged on the context's device
  std::function<Outs()> run_double;      ///< CPU reference in double; null: results are exact

  /// Stages the case on `c`, runs it once and returns its outputs by name.
  Outs run_float(Context& c) const {
    Staged s = stage(c);
    if (s.run_once) return s.run_once();
    s.op();
    return s.outs();
  }
};

/// One op: its name, the test suite named after it, the declarations it exercises (every
/// `*_cpu` reference and layer class of kernels/ and layers/ must appear in some row), and its
/// cases. `float_nmse` bounds float against double on the CPU.
struct OpRow {
  std::string op;
  std::string suite;
  std::vector<std::string> covers;
  std::vector<OpCase> cases;
  double float_nmse = 1e-11;
};

/// Normalised mean squared error Σ(a − b)² / Σ b² (Σ(a − b)² when b is all zeros).
inline double nmse(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? num / den : num;
}

namespace detail {

inline std::vector<float> U(int64_t n, double lo, double hi, uint64_t seed) {
  return random_values<float>(static_cast<size_t>(n), lo, hi, seed);
}
inline std::vector<double> D(const std::vector<float>& v) { return {v.begin(), v.end()}; }
inline Tensor on(Context& c, const std::vector<float>& v, std::vector<int64_t> shape) {
  return Tensor::from_vector(v, std::move(shape), c.device());
}
inline void put(Outs& o, const std::string& name, const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  o.push_back({name, {v.begin(), v.end()}});
}
template <typename T>
void put(Outs& o, const std::string& name, const std::vector<T>& v) {
  o.push_back({name, {v.begin(), v.end()}});
}
inline std::vector<int32_t> labels_for(int64_t n, int64_t k, uint64_t seed) {
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + seed) % k);
  return y;
}
inline IntBuffer labels_on(Context& c, const std::vector<int32_t>& y) {
  IntBuffer b(static_cast<int64_t>(y.size()), c.device());
  b.upload(y);
  return b;
}
inline std::string sz(const char* a, int64_t x) { return std::string(a) + "=" + std::to_string(x); }
/// Bytes of `n` floats (or int32 labels).
inline double f32(int64_t n) { return 4.0 * static_cast<double>(n); }
/// `t`, held by `s` for as long as the staged case lives.
inline Tensor& held(Staged& s, Tensor t) { return s.make<Tensor>(std::move(t)); }

/// A finalized ParamStore holding one layer's parameters, set from `values` in declaration order.
inline void set_all(ParamStore& ps, uint64_t seed) {
  for (size_t i = 0; i < ps.params().size(); ++i) {
    Tensor& t = ps.value(static_cast<int>(i));
    t.copy_from(Tensor::from_vector(U(t.numel(), -0.5, 0.5, seed + i), t.shape()));
  }
}

/// Stages a layer with weight and bias (parameters 0 and 1 of `ps`, finalized; all held by
/// `s`): op is the forward of x, zeroed gradients, then the backward of dy; outputs y, dx, dW, db.
template <class Layer>
void stage_layer(Staged& s, Context& c, ParamStore& ps, Layer& layer, const Tensor& x, Tensor& dy) {
  auto& out = s.make<std::array<Tensor*, 2>>();  // the layer's y and dx, known after a call
  s.op = [&c, &ps, &layer, &x, &dy, &out] {
    out[0] = &layer.forward(c, x);
    ps.flat_grads().zero();
    out[1] = &layer.backward(c, dy, true);
  };
  s.outs = [&ps, &out] {
    Outs o;
    put(o, "y", *out[0]);
    put(o, "dx", *out[1]);
    put(o, "dW", ps.grad(0));
    put(o, "db", ps.grad(1));
    return o;
  };
}

/// Bytes of stage_layer's op for a layer with `x` input and `y` output values, `w` weights and
/// `b` biases: forward x, W, b → y; dW, db zeroed; backward dy, x, W → dx, dW, db.
inline double layer_bytes(int64_t x, int64_t y, int64_t w, int64_t b) {
  return f32(x + w + b + y) + f32(w + b) + f32(y + x + w + x + w + b);
}
/// FLOPs of stage_layer's op for a convolution of `geom` (or the transposed layer that is its
/// adjoint): three products (forward, data gradient, filter gradient) of
/// 2 · n · k_out · ho · wo · c · kernel² each.
inline double conv_layer_flops(const ConvGeom& geom) {
  return 3 * geom.flops();
}

}  // namespace detail

/// Every row of the table.
inline std::vector<OpRow> op_table() {
  using namespace detail;
  std::vector<OpRow> rows;

  // ---- elementwise --------------------------------------------------------------------------
  {
    OpRow r{"activation", "Activation", {"activation_forward_cpu", "activation_backward_cpu"}, {}};
    for (Activation a : {Activation::None, Activation::ReLU, Activation::Sigmoid, Activation::LeakyReLU})
      for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1001}, int64_t{128 * 256}}) {
        const uint64_t s = static_cast<uint64_t>(n) * 13 + static_cast<uint64_t>(a);
        const auto x = U(n, -4, 4, s), dy = U(n, -1, 1, s + 1);
        r.cases.push_back({std::string(activation_name(a)) + " " + sz("n", n),
                           [=](Context& c) {
                             Staged st;
                             Tensor &tx = held(st, on(c, x, {n})), &y = held(st, Tensor({n}, c.device())),
                                    &tdy = held(st, on(c, dy, {n})), &dx = held(st, Tensor({n}, c.device()));
                             st.op = [&c, &tx, &y, &tdy, &dx, a] {
                               activation_forward(c, a, tx, y, 0.01f);
                               activation_backward(c, a, y, tdy, dx, 0.01f);
                             };
                             st.outs = [&y, &dx] { return Outs{{"y", y}, {"dx", dx}}; };
                             st.bytes = f32(2 * n) + f32(3 * n);  // x → y; y, dy → dx
                             return st;
                           },
                           [=] {
                             std::vector<double> xd = D(x), y(xd.size()), dyd = D(dy), dx(xd.size());
                             activation_forward_cpu<double>(a, xd.data(), y.data(), n, 0.01f);
                             activation_backward_cpu<double>(a, y.data(), dyd.data(), dx.data(), n, 0.01f);
                             return Outs{{"y", y}, {"dx", dx}};
                           }});
      }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"residual", "Residual", {"residual_add_cpu", "residual_add_backward_cpu", "accumulate_cpu", "add_scaled_cpu"}, {}};
    // `skew` 1: every array starts one float past a 16-byte boundary (views into larger tensors),
    // so the elementwise skeleton takes its scalar path instead of float4.
    for (bool relu : {false, true})
      for (const auto& [n, skew] : std::vector<std::pair<int64_t, int64_t>>{
               {1, 0}, {5, 0}, {64 * 64 * 7 * 7 + 3, 0}, {1001, 1}}) {
        const uint64_t s = static_cast<uint64_t>(n) + relu;
        const auto a = U(n + skew, -2, 2, s), b = U(n + skew, -2, 2, s + 1), dy = U(n + skew, -1, 1, s + 2);
        const int64_t m = n;  // (structured bindings are not captured by lambdas before C++20)
        const int64_t k = skew;
        r.cases.push_back({std::string(relu ? "relu " : "") + sz("n", n) + (skew ? " unaligned" : ""),
                           [=](Context& c) {
                             Staged st;
                             Tensor &pa = held(st, on(c, a, {m + k})), &pb = held(st, on(c, b, {m + k})),
                                    &py = held(st, Tensor({m + k}, c.device())), &pdy = held(st, on(c, dy, {m + k})),
                                    &pd = held(st, Tensor({m + k}, c.device())),
                                    &ps = held(st, Tensor({m + k}, c.device()));
                             Tensor &ta = held(st, pa.rows(k, m + k)), &tb = held(st, pb.rows(k, m + k)),
                                    &y = held(st, py.rows(k, m + k)), &tdy = held(st, pdy.rows(k, m + k)),
                                    &d = held(st, pd.rows(k, m + k)), &sc = held(st, ps.rows(k, m + k));
                             st.op = [&c, &ta, &tb, &y, &tdy, &d, &sc, relu] {
                               residual_add(c, ta, tb, y, relu);
                               residual_add_backward(c, y, tdy, d, relu);
                               add_scaled(c, ta, tb, 1.0f / 3.0f, sc);
                               accumulate(c, ta, tb);
                             };
                             st.outs = [&y, &d, &ta, &sc] {
                               return Outs{{"y", y}, {"d", d}, {"a+b", ta}, {"(a+b)/3", sc}};
                             };
                             st.bytes = 4 * f32(3 * m);  // a, b → y; y, dy → d; a, b → (a+b)/3; a, b → a
                             return st;
                           },
                           [=] {
                             std::vector<double> ad = D(a), bd = D(b), dyd = D(dy);
                             ad.erase(ad.begin(), ad.begin() + k);
                             bd.erase(bd.begin(), bd.begin() + k);
                             dyd.erase(dyd.begin(), dyd.begin() + k);
                             std::vector<double> y(ad.size()), d(ad.size()), sc(ad.size());
                             residual_add_cpu<double>(ad.data(), bd.data(), y.data(), m, relu);
                             residual_add_backward_cpu<double>(y.data(), dyd.data(), d.data(), m, relu);
                             add_scaled_cpu<double>(ad.data(), bd.data(), 1.0 / 3.0, sc.data(), m);
                             accumulate_cpu<double>(ad.data(), bd.data(), m);
                             return Outs{{"y", y}, {"d", d}, {"a+b", ad}, {"(a+b)/3", sc}};
                           }});
      }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"bias", "Bias", {"add_bias_nchw_cpu", "bias_grad_nchw_cpu"}, {}};
    // hw = 1 takes the Linear kernel (70: a partial block of 32 channels); hw = 7 the scalar one, over
    // many rows per thread stride (512); hw a multiple of 4 the float4 one: 700 (175 float4s) steps
    // past whole rows per stride (1024), 8 (2 float4s) over many rows with no remainder, 784 with one
    // channel over 64 rows (the VAE's last layer).
    for (const auto& sh : std::vector<std::array<int64_t, 3>>{{1, 1, 1},
                                                              {3, 5, 7},
                                                              {128, 32, 196},
                                                              {2, 256, 1},
                                                              {33, 70, 1},
                                                              {3, 2, 700},
                                                              {37, 3, 8},
                                                              {64, 1, 784}}) {
      const int64_t n = sh[0], ch = sh[1], hw = sh[2];
      const uint64_t s = static_cast<uint64_t>(n * 31 + ch * 7 + hw);
      const auto y0 = U(n * ch * hw, -1, 1, s), b = U(ch, -1, 1, s + 1), dy = U(n * ch * hw, -1, 1, s + 2);
      r.cases.push_back({sz("n", n) + " " + sz("c", ch) + " " + sz("hw", hw),
                         [=](Context& c) {
                           Staged st;
                           Tensor &y = held(st, on(c, y0, {n, ch, hw})), &tb = held(st, on(c, b, {ch})),
                                  &tdy = held(st, on(c, dy, {n, ch, hw})), &db = held(st, Tensor({ch}, c.device()));
                           st.op = [&c, &y, &tb, &tdy, &db] {
                             add_bias_nchw(c, y, tb);
                             bias_grad_nchw(c, tdy, db);
                           };
                           st.outs = [&y, &db] { return Outs{{"y", y}, {"db", db}}; };
                           st.bytes = f32(2 * n * ch * hw + ch) + f32(n * ch * hw + ch);  // y, b → y; dy → db
                           return st;
                         },
                         [=] {
                           std::vector<double> y = D(y0), bd = D(b), dyd = D(dy), db(static_cast<size_t>(ch));
                           add_bias_nchw_cpu<double>(y.data(), bd.data(), n, ch, hw);
                           bias_grad_nchw_cpu<double>(dyd.data(), db.data(), n, ch, hw);
                           return Outs{{"y", y}, {"db", db}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"global_avg_pool", "Pool", {"global_avg_pool_cpu", "global_avg_pool_backward_cpu"}, {}};
    for (const auto& sh : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {3, 5, 7}, {64, 512, 16}, {2, 64, 49}}) {
      const int64_t n = sh[0], ch = sh[1], hw = sh[2];
      const uint64_t s = static_cast<uint64_t>(n * 31 + ch * 7 + hw);
      const auto x = U(n * ch * hw, -1, 1, s), dy = U(n * ch, -1, 1, s + 1);
      r.cases.push_back({sz("n", n) + " " + sz("c", ch) + " " + sz("hw", hw),
                         [=](Context& c) {
                           Staged st;
                           Tensor &tx = held(st, on(c, x, {n, ch, hw, 1})), &y = held(st, Tensor({n, ch}, c.device())),
                                  &tdy = held(st, on(c, dy, {n, ch})), &dx = held(st, Tensor({n, ch, hw, 1}, c.device()));
                           st.op = [&c, &tx, &y, &tdy, &dx] {
                             global_avg_pool(c, tx, y);
                             global_avg_pool_backward(c, tdy, dx);
                           };
                           st.outs = [&y, &dx] { return Outs{{"y", y}, {"dx", dx}}; };
                           st.bytes = 2 * f32(n * ch * hw + n * ch);  // x → y; dy → dx
                           return st;
                         },
                         [=] {
                           std::vector<double> xd = D(x), y(static_cast<size_t>(n * ch)), dyd = D(dy), dx(xd.size());
                           global_avg_pool_cpu<double>(xd.data(), y.data(), n, ch, hw);
                           global_avg_pool_backward_cpu<double>(dyd.data(), dx.data(), n, ch, hw);
                           return Outs{{"y", y}, {"dx", dx}};
                         }});
    }
    rows.push_back(std::move(r));
  }

  // ---- optimizers ---------------------------------------------------------------------------
  {
    OpRow r{"adam_step", "Adam", {"adam_step_cpu"}, {}};
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{4099}, int64_t{855393}})
      for (float wd : {0.0f, 1e-2f}) {
        const uint64_t s = static_cast<uint64_t>(n) + (wd > 0);
        const auto p0 = U(n, -1, 1, s), g = U(n, -1, 1, s + 1), g2 = U(n, -1, 1, s + 2);
        AdamConfig cfg;
        cfg.weight_decay = wd;
        // Two steps: the second one reads the moments the first one wrote.
        r.cases.push_back({sz("n", n) + (wd > 0 ? " wd" : ""),
                           [=](Context& c) {
                             Staged st;
                             Tensor &p = held(st, on(c, p0, {n})), &tg = held(st, on(c, g, {n})),
                                    &tg2 = held(st, on(c, g2, {n})), &m = held(st, Tensor({n}, c.device())),
                                    &v = held(st, Tensor({n}, c.device()));
                             st.op = [&c, &p, &tg, &tg2, &m, &v, cfg] {
                               AdamConfig k = cfg;
                               adam_step(c, p, tg, m, v, k);
                               k.step = 2;
                               adam_step(c, p, tg2, m, v, k);
                             };
                             st.outs = [&p, &m, &v] { return Outs{{"param", p}, {"m", m}, {"v", v}}; };
                             st.bytes = 2 * f32(7 * n);  // two steps: param, grad, m, v → param, m, v
                             return st;
                           },
                           [=] {
                             std::vector<double> p = D(p0), gd = D(g), gd2 = D(g2), m(p.size()), v(p.size());
                             AdamConfig k = cfg;
                             adam_step_cpu<double>(p.data(), gd.data(), m.data(), v.data(), n, k);
                             k.step = 2;
                             adam_step_cpu<double>(p.data(), gd2.data(), m.data(), v.data(), n, k);
                             return Outs{{"param", p}, {"m", m}, {"v", v}};
                           }});
      }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"sgd_step", "Sgd", {"sgd_step_cpu"}, {}};
    for (int64_t n : {int64_t{1}, int64_t{9}, int64_t{11173962 / 16 + 1}})
      for (bool nesterov : {false, true}) {
        const uint64_t s = static_cast<uint64_t>(n) + nesterov;
        const auto p0 = U(n, -1, 1, s), g = U(n, -1, 1, s + 1), g2 = U(n, -1, 1, s + 2);
        SgdConfig cfg;
        cfg.nesterov = nesterov;
        r.cases.push_back({sz("n", n) + (nesterov ? " nesterov" : ""),
                           [=](Context& c) {
                             Staged st;
                             Tensor &p = held(st, on(c, p0, {n})), &tg = held(st, on(c, g, {n})),
                                    &tg2 = held(st, on(c, g2, {n})), &b = held(st, Tensor({n}, c.device()));
                             st.op = [&c, &p, &tg, &tg2, &b, cfg] {
                               sgd_step(c, p, tg, b, cfg);
                               sgd_step(c, p, tg2, b, cfg);
                             };
                             st.outs = [&p, &b] { return Outs{{"param", p}, {"buf", b}}; };
                             st.bytes = 2 * f32(5 * n);  // two steps: param, grad, buf → param, buf
                             return st;
                           },
                           [=] {
                             std::vector<double> p = D(p0), gd = D(g), gd2 = D(g2), b(p.size());
                             sgd_step_cpu<double>(p.data(), gd.data(), b.data(), n, cfg);
                             sgd_step_cpu<double>(p.data(), gd2.data(), b.data(), n, cfg);
                             return Outs{{"param", p}, {"buf", b}};
                           }});
      }
    rows.push_back(std::move(r));
  }

  // ---- losses and bookkeeping ---------------------------------------------------------------
  {
    OpRow r{"elbo", "Elbo", {"elbo_cpu"}, {}};
    struct E { int64_t n, p, d; float beta; bool bin, mse; };
    for (E e : {E{1, 1, 1, 1, false, false}, E{3, 13, 5, 0.5f, true, false}, E{128, 784, 32, 1, false, false},
                E{7, 784, 2, 4, false, true}, E{128, 3072, 32, 1, true, false}}) {
      const uint64_t s = static_cast<uint64_t>(e.n * 7919 + e.p * 31 + e.d);
      const auto l = U(e.n * e.p, -6, 6, s), x = U(e.n * e.p, 0, 1, s + 1), mu = U(e.n * e.d, -2, 2, s + 2),
                 lv = U(e.n * e.d, -3, 2, s + 3);
      ElboConfig cfg;
      cfg.n = e.n;
      cfg.p = e.p;
      cfg.d = e.d;
      cfg.beta = e.beta;
      cfg.binarize = e.bin;
      cfg.mse = e.mse;
      cfg.seed = s;
      cfg.offset = 17;
      r.cases.push_back({sz("n", e.n) + " " + sz("p", e.p) + " " + sz("d", e.d) + (e.bin ? " binarize" : "") +
                             (e.mse ? " mse" : ""),
                         [=](Context& c) {
                           const int64_t n = cfg.n, p = cfg.p, d = cfg.d;
                           Staged st;
                           Tensor &tl = held(st, on(c, l, {n, p})), &tx = held(st, on(c, x, {n, p})),
                                  &tm = held(st, on(c, mu, {n, d})), &tv = held(st, on(c, lv, {n, d}));
                           Tensor &rec = held(st, Tensor({n}, c.device())), &kl = held(st, Tensor({n}, c.device())),
                                  &loss = held(st, Tensor({1}, c.device())), &dl = held(st, Tensor({n, p}, c.device())),
                                  &dm = held(st, Tensor({n, d}, c.device())), &dv = held(st, Tensor({n, d}, c.device()));
                           st.op = [&c, &tl, &tx, &tm, &tv, &rec, &kl, &loss, &dl, &dm, &dv, cfg] {
                             elbo(c, tl, tx, tm, tv, &rec, &kl, loss, &dl, &dm, &dv, cfg);
                           };
                           st.outs = [&rec, &kl, &loss, &dl, &dm, &dv] {
                             return Outs{{"recon", rec}, {"kl", kl}, {"loss", loss}, {"dlogits", dl}, {"dmu", dm}, {"dlogvar", dv}};
                           };
                           // logits, x, mu, logvar → recon, kl, loss, dlogits, dmu, dlogvar
                           st.bytes = f32(3 * n * p + 4 * n * d + 2 * n + 1);
                           return st;
                         },
                         [=] {
                           const size_t n = static_cast<size_t>(cfg.n), p = static_cast<size_t>(cfg.p), d = static_cast<size_t>(cfg.d);
                           std::vector<double> ld = D(l), xd = D(x), md = D(mu), vd = D(lv), rec(n), kl(n), loss(1),
                               dl(n * p), dm(n * d), dv(n * d);
                           elbo_cpu<double>(ld.data(), xd.data(), md.data(), vd.data(), rec.data(), kl.data(), loss.data(),
                                            dl.data(), dm.data(), dv.data(), cfg);
                           return Outs{{"recon", rec},
                                       {"kl", kl},
                                       {"loss", loss},
                                       {"dlogits", dl},
                                       {"dmu", dm},
                                       {"dlogvar", dv}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"softmax_xent", "SoftmaxXent", {"softmax_xent_cpu"}, {}};
    for (const auto& sh : std::vector<std::array<int64_t, 2>>{{1, 1}, {1, 10}, {5, 3}, {256, 10}, {33, 100}}) {
      const int64_t n = sh[0], k = sh[1];
      const uint64_t s = static_cast<uint64_t>(n * 101 + k);
      const auto l = U(n * k, -8, 8, s);
      const auto y = labels_for(n, k, s);
      r.cases.push_back({sz("n", n) + " " + sz("k", k),
                         [=](Context& c) {
                           Staged st;
                           Tensor &tl = held(st, on(c, l, {n, k})), &loss = held(st, Tensor({n}, c.device())),
                                  &mean = held(st, Tensor({1}, c.device())), &dl = held(st, Tensor({n, k}, c.device())),
                                  &pr = held(st, Tensor({n, k}, c.device()));
                           const IntBuffer& ty = st.make<IntBuffer>(labels_on(c, y));
                           st.op = [&c, &tl, &ty, &loss, &mean, &dl, &pr] { softmax_xent(c, tl, ty, loss, &mean, &dl, &pr); };
                           st.outs = [&loss, &mean, &dl, &pr] {
                             return Outs{{"loss", loss}, {"mean", mean}, {"dlogits", dl}, {"probs", pr}};
                           };
                           st.bytes = f32(3 * n * k + 2 * n + 1);  // logits, labels → loss, mean, dlogits, probs
                           return st;
                         },
                         [=] {
                           std::vector<double> ld = D(l), loss(static_cast<size_t>(n)), mean(1), dl(ld.size()), pr(ld.size());
                           softmax_xent_cpu<double>(ld.data(), y.data(), n, k, loss.data(), mean.data(), dl.data(), pr.data());
                           return Outs{{"loss", loss}, {"mean", mean}, {"dlogits", dl}, {"probs", pr}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    // Counts are exact in float: float and double must agree exactly (bound 0).
    OpRow r{"count_correct", "CountCorrect", {"count_correct_cpu"}, {}, 0.0};
    for (const auto& sh : std::vector<std::array<int64_t, 2>>{{1, 1}, {1, 10}, {7, 3}, {256, 10}, {10000, 10}}) {
      const int64_t n = sh[0], k = sh[1];
      const uint64_t s = static_cast<uint64_t>(n * 101 + k);
      const auto l = U(n * k, -3, 3, s);
      const auto y = labels_for(n, k, s);
      r.cases.push_back({sz("n", n) + " " + sz("k", k),
                         [=](Context& c) {
                           Staged st;
                           Tensor &tl = held(st, on(c, l, {n, k})), &count = held(st, Tensor({1}, c.device()));
                           const IntBuffer& ty = st.make<IntBuffer>(labels_on(c, y));
                           st.op = [&c, &tl, &ty, &count] {
                             count_correct(c, tl, ty, count);
                             count_correct(c, tl, ty, count);  // accumulates
                           };
                           st.outs = [&count] { return Outs{{"count", count}}; };
                           st.bytes = 2 * f32(n * k + n + 2);  // twice: logits, labels, count → count
                           return st;
                         },
                         [=] {
                           std::vector<double> ld = D(l), count(1);
                           count_correct_cpu<double>(ld.data(), y.data(), n, k, count.data());
                           count_correct_cpu<double>(ld.data(), y.data(), n, k, count.data());
                           return Outs{{"count", count}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    // Sums of losses in [0, 4) over at most a few steps, and step numbers: exact in float.
    OpRow r{"loss_monitor", "LossMonitor", {"loss_monitor_cpu"}, {}, 0.0};
    for (int64_t steps : {int64_t{1}, int64_t{3}, int64_t{50}})
      for (int64_t bad_at : {int64_t{-1}, steps / 2}) {
        std::vector<float> losses(static_cast<size_t>(steps));
        for (int64_t i = 0; i < steps; ++i) losses[static_cast<size_t>(i)] = static_cast<float>((i * 5) % 16) / 4.0f;
        if (bad_at >= 0) losses[static_cast<size_t>(bad_at)] = std::nanf("");
        r.cases.push_back({sz("steps", steps) + (bad_at >= 0 ? " " + sz("nan_at", bad_at) : ""),
                           [=](Context& c) {
                             Staged st;
                             Tensor &state = held(st, Tensor({kMonitorSize}, c.device())), &all = held(st, on(c, losses, {steps}));
                             auto& each = st.make<std::vector<Tensor>>();  // one [1] view per step
                             for (int64_t i = 0; i < steps; ++i) each.push_back(all.rows(i, i + 1));
                             st.op = [&c, &state, &each] {
                               for (size_t i = 0; i < each.size(); ++i) loss_monitor(c, each[i], state, 1000 + static_cast<int64_t>(i));
                             };
                             st.outs = [&state] { return Outs{{"state", state}}; };
                             st.bytes = static_cast<double>(steps) * f32(1 + 2 * kMonitorSize);  // per step: loss, state → state
                             return st;
                           },
                           [=] {
                             std::vector<double> state(kMonitorSize);
                             for (int64_t i = 0; i < steps; ++i) {
                               const double l = losses[static_cast<size_t>(i)];
                               loss_monitor_cpu<double>(&l, state.data(), 1000 + i);
                             }
                             return Outs{{"state", state}};
                           }});
      }
    rows.push_back(std::move(r));
  }

  // ---- sampling ------------------------------------------------------------------------------
  {
    OpRow r{"reparameterize", "Reparameterize",
            {"reparameterize_forward_cpu", "reparameterize_backward_cpu", "sample_normal_cpu"}, {}};
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{128 * 32}, int64_t{128 * 32 + 3}})
      for (bool acc : {false, true}) {
        const uint64_t s = static_cast<uint64_t>(n) * 3 + acc;
        const auto mu = U(n, -2, 2, s), lv = U(n, -3, 2, s + 1), dz = U(n, -1, 1, s + 2), base = U(n, -1, 1, s + 3);
        r.cases.push_back({sz("n", n) + (acc ? " accumulate" : ""),
                           [=](Context& c) {
                             Staged st;
                             Tensor &tm = held(st, on(c, mu, {n})), &tv = held(st, on(c, lv, {n})),
                                    &eps = held(st, Tensor({n}, c.device())), &z = held(st, Tensor({n}, c.device())),
                                    &tdz = held(st, on(c, dz, {n})), &dm = held(st, on(c, base, {n})),
                                    &dv = held(st, on(c, base, {n})), &prior = held(st, Tensor({n}, c.device()));
                             st.op = [&c, &tm, &tv, &eps, &z, &tdz, &dm, &dv, &prior, s, acc] {
                               reparameterize_forward(c, tm, tv, eps, z, s, 2 * s + 1);
                               reparameterize_backward(c, tdz, eps, tv, dm, dv, acc);
                               sample_normal(c, prior, s, 5);
                             };
                             st.outs = [&eps, &z, &dm, &dv, &prior] {
                               return Outs{{"eps", eps}, {"z", z}, {"dmu", dm}, {"dlogvar", dv}, {"prior", prior}};
                             };
                             // mu, logvar → eps, z; dz, eps, logvar (and dmu, dlogvar when accumulating) →
                             // dmu, dlogvar; → prior
                             st.bytes = f32(4 * n) + f32((acc ? 7 : 5) * n) + f32(n);
                             return st;
                           },
                           [=] {
                             std::vector<double> md = D(mu), vd = D(lv), eps(md.size()), z(md.size()), dzd = D(dz),
                                 dm = D(base), dv = D(base), prior(md.size());
                             reparameterize_forward_cpu<double>(md.data(), vd.data(), eps.data(), z.data(), n, s, 2 * s + 1);
                             reparameterize_backward_cpu<double>(dzd.data(), eps.data(), vd.data(), dm.data(), dv.data(), n, acc);
                             sample_normal_cpu<double>(prior.data(), n, s, 5);
                             return Outs{{"eps", eps}, {"z", z}, {"dmu", dm}, {"dlogvar", dv}, {"prior", prior}};
                           }});
      }
    rows.push_back(std::move(r));
  }

  // ---- the conditional VAE ---------------------------------------------------------------------
  {
    OpRow r{"concat_onehot / take_columns", "ConcatOnehot", {"concat_onehot_cpu", "take_columns_cpu"}, {}};
    for (const auto& sh : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {3, 5, 10}, {128, 3136, 10}, {7, 32, 10}}) {
      const int64_t n = sh[0], f = sh[1], k = sh[2];
      const uint64_t s = static_cast<uint64_t>(n * 17 + f + k);
      const auto feat = U(n * f, -1, 1, s), g = U(n * (f + k), -1, 1, s + 1);
      const auto y = labels_for(n, k, s);
      r.cases.push_back({sz("n", n) + " " + sz("f", f) + " " + sz("k", k),
                         [=](Context& c) {
                           Staged st;
                           Tensor &tf = held(st, on(c, feat, {n, f})), &out = held(st, Tensor({n, f + k}, c.device())),
                                  &tg = held(st, on(c, g, {n, f + k})), &dst = held(st, Tensor({n, f}, c.device()));
                           const IntBuffer& ty = st.make<IntBuffer>(labels_on(c, y));
                           st.op = [&c, &tf, &ty, &out, &tg, &dst, k] {
                             concat_onehot(c, tf, ty, k, out);
                             take_columns(c, tg, k, dst);
                           };
                           st.outs = [&out, &dst] { return Outs{{"out", out}, {"dst", dst}}; };
                           st.bytes = f32(n * f + n + n * (f + k)) + f32(2 * n * f);  // feat, labels → out; g's columns → dst
                           return st;
                         },
                         [=] {
                           std::vector<double> fd = D(feat), out(static_cast<size_t>(n * (f + k))), gd = D(g),
                               dst(static_cast<size_t>(n * f));
                           concat_onehot_cpu<double>(fd.data(), y.data(), n, f, k, out.data());
                           take_columns_cpu<double>(gd.data(), n, f, k, dst.data());
                           return Outs{{"out", out}, {"dst", dst}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"free_bits", "FreeBits", {"free_bits_cpu"}, {}};
    for (const auto& sh : std::vector<std::array<int64_t, 2>>{{1, 1}, {5, 3}, {128, 32}, {9, 7}}) {
      const int64_t n = sh[0], d = sh[1];
      for (float lambda : {0.0f, 0.25f, 2.0f}) {
        const uint64_t s = static_cast<uint64_t>(n * 13 + d) + static_cast<uint64_t>(lambda * 4);
        const auto mu = U(n * d, -1.5, 1.5, s), lv = U(n * d, -2, 1, s + 1), dm0 = U(n * d, -1, 1, s + 2),
                   dv0 = U(n * d, -1, 1, s + 3);
        r.cases.push_back({sz("n", n) + " " + sz("d", d) + " lambda=" + std::to_string(lambda),
                           [=](Context& c) {
                             Staged st;
                             Tensor &tm = held(st, on(c, mu, {n, d})), &tv = held(st, on(c, lv, {n, d})),
                                    &dm = held(st, on(c, dm0, {n, d})), &dv = held(st, on(c, dv0, {n, d})),
                                    &kd = held(st, Tensor({d}, c.device())), &loss = held(st, on(c, {1.5f}, {1}));
                             st.op = [&c, &tm, &tv, &dm, &dv, &kd, &loss, lambda] {
                               free_bits(c, tm, tv, lambda, 0.5f, dm, dv, kd, loss);
                             };
                             st.outs = [&dm, &dv, &kd, &loss] {
                               return Outs{{"dmu", dm}, {"dlogvar", dv}, {"kl_dim", kd}, {"loss", loss}};
                             };
                             st.bytes = f32(6 * n * d + d + 2);  // mu, logvar, dmu, dlogvar, loss → dmu, dlogvar, kl_dim, loss
                             return st;
                           },
                           [=] {
                             std::vector<double> md = D(mu), vd = D(lv), dm = D(dm0), dv = D(dv0), kd(static_cast<size_t>(d)),
                                 loss = {1.5};
                             free_bits_cpu<double>(md.data(), vd.data(), n, d, lambda, 0.5f, dm.data(), dv.data(), kd.data(),
                                                   loss.data());
                             return Outs{{"dmu", dm}, {"dlogvar", dv}, {"kl_dim", kd}, {"loss", loss}};
                           }});
      }
    }
    rows.push_back(std::move(r));
  }

  // ---- explanation and embedding -------------------------------------------------------------
  {
    OpRow r{"gradcam", "GradcamCpu", {"gradcam_cpu"}, {}};
    for (const auto& sh : std::vector<std::array<int64_t, 4>>{{1, 1, 1, 1}, {2, 3, 5, 11}, {4, 512, 4, 32}, {3, 64, 7, 28}}) {
      const int64_t n = sh[0], k = sh[1], h = sh[2], H = sh[3];
      const uint64_t s = static_cast<uint64_t>(n * 7 + k * 3 + h + H);
      const auto A = U(n * k * h * h, 0, 2, s), dA = U(n * k * h * h, -1, 1.5, s + 1);
      r.cases.push_back({sz("n", n) + " " + sz("k", k) + " " + sz("h", h) + " " + sz("H", H),
                         [=](Context& c) {
                           Staged st;
                           Tensor &ta = held(st, on(c, A, {n, k, h, h})), &td = held(st, on(c, dA, {n, k, h, h})),
                                  &heat = held(st, Tensor({n, H, H}, c.device())), &cam = held(st, Tensor({n, h, h}, c.device()));
                           st.op = [&c, &ta, &td, &heat, &cam, H] { gradcam(c, ta, td, H, H, heat, &cam); };
                           st.outs = [&heat, &cam] { return Outs{{"heat", heat}, {"cam", cam}}; };
                           st.bytes = f32(2 * n * k * h * h + n * H * H + n * h * h);  // A, dA → heat, cam
                           return st;
                         },
                         [=] {
                           std::vector<double> ad = D(A), dd = D(dA), heat(static_cast<size_t>(n * H * H)),
                               cam(static_cast<size_t>(n * h * h));
                           gradcam_cpu<double>(ad.data(), dd.data(), n, k, h, h, H, H, heat.data(), cam.data());
                           return Outs{{"heat", heat}, {"cam", cam}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"tsne", "TsneGrad", {"tsne_grad_exact_cpu", "tsne_update_cpu"}, {}};
    for (int64_t n : {int64_t{2}, int64_t{3}, int64_t{37}, int64_t{500}}) {
      const uint64_t s = static_cast<uint64_t>(n);
      // A symmetric P with zero diagonal summing to 1.
      std::vector<float> P = U(n * n, 0, 1, s);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          float& a = P[static_cast<size_t>(i * n + j)];
          a = i == j ? 0.0f : (i < j ? a : P[static_cast<size_t>(j * n + i)]);
          sum += a;
        }
      for (float& a : P) a = static_cast<float>(a / sum);
      const auto Y = U(n * 2, -3, 3, s + 1), up0 = U(n * 2, -0.1, 0.1, s + 2), gains0 = U(n * 2, 0.5, 1.5, s + 3);
      r.cases.push_back({sz("n", n),
                         [=](Context& c) {
                           Staged st;
                           Tensor &tp = held(st, on(c, P, {n, n})), &ty = held(st, on(c, Y, {n, 2})),
                                  &g = held(st, Tensor({n, 2}, c.device())), &up = held(st, on(c, up0, {n, 2})),
                                  &gains = held(st, on(c, gains0, {n, 2}));
                           st.op = [&c, &tp, &ty, &g, &up, &gains] {
                             tsne_grad_exact(c, tp, ty, 12.0f, g);
                             tsne_update(c, ty, g, up, gains, 0.5f, 200.0f, 0.01f);
                           };
                           st.outs = [&g, &ty, &gains] { return Outs{{"grad", g}, {"y", ty}, {"gains", gains}}; };
                           // P, Y → grad; Y, grad, update, gains → Y, update, gains
                           st.bytes = f32(n * n + 4 * n) + f32(14 * n);
                           return st;
                         },
                         [=] {
                           std::vector<double> pd = D(P), yd = D(Y), g(yd.size()), up = D(up0), gains = D(gains0);
                           tsne_grad_exact_cpu<double>(pd.data(), yd.data(), n, 12.0, g.data(), nullptr);
                           tsne_update_cpu<double>(yd.data(), g.data(), up.data(), gains.data(), 2 * n, 0.5, 200.0, 0.01);
                           return Outs{{"grad", g}, {"y", yd}, {"gains", gains}};
                         }});
    }
    rows.push_back(std::move(r));
  }

  // ---- the training loops' step state (exact: integers and copies of table rows) -------------
  {
    OpRow r{"step_state_advance", "StepState", {"step_state_advance_cpu", "step_state_set_row_base_cpu", "StepStateBuffer"}, {}, 0.0};
    for (const auto& sh : std::vector<std::array<int64_t, 3>>{{1, 1, 0}, {7, 3, 4}, {1000, 469, 1000}}) {
      const int64_t steps = sh[0], spe = sh[1], nrows = sh[2];
      r.cases.push_back({sz("advances", steps) + " " + sz("steps_per_epoch", spe) + " " + sz("table_rows", nrows),
                         [=](Context& c) {
                           std::vector<StepScalars> table(static_cast<size_t>(nrows));
                           for (int64_t i = 0; i < nrows; ++i)
                             table[static_cast<size_t>(i)] = {0.5f / static_cast<float>(i + 1), static_cast<float>(i % 7),
                                                              static_cast<float>(i) * 0.25f, 1.0f - 1.0f / static_cast<float>(i + 2)};
                           StepAdvance a;
                           a.batch = 128;
                           a.steps_per_epoch = spe;
                           a.epoch_origin = 5;
                           a.philox_per_step = 2;
                           a.table_first = 5;
                           a.table_rows = nrows;
                           a.forwards_per_step = spe;  // gradient accumulation: spe micro-batches per step
                           StepState init;
                           init.step = 5;
                           init.philox_offset = 10;
                           Staged sg;
                           StepStateBuffer& s = sg.make<StepStateBuffer>(c, init, table, a);
                           // Perf mode times one advance; correctness reads the state after each of the
                           // first 8 advances and the last.
                           sg.op = [&c, &s] { s.advance(c); };
                           sg.outs = nullptr;
                           sg.run_once = [op = sg.op, &c, &s, steps] {
                             Outs o;
                             std::vector<double> trace;
                             for (int64_t k = 0; k < steps; ++k) {
                               op();
                               s.set_row_base(c, (k % 3) * 64);  // the next micro-batch's rows
                               if (k < 8 || k + 1 == steps) {
                                 const StepState st = s.read();
                                 for (double v : {static_cast<double>(st.step), static_cast<double>(st.batch_first),
                                                  static_cast<double>(st.row_base),
                                                  static_cast<double>(st.num_batches_tracked), static_cast<double>(st.philox_offset),
                                                  static_cast<double>(st.lr), static_cast<double>(st.kl_weight),
                                                  static_cast<double>(st.adam_step_size), static_cast<double>(st.adam_bc2_sqrt)})
                                   trace.push_back(v);
                               }
                             }
                             put(o, "trace", trace);
                             return o;
                           };
                           sg.bytes = 2.0 * sizeof(StepState) + sizeof(StepScalars);  // state, a table row → state
                           return sg;
                         },
                         nullptr});
    }
    rows.push_back(std::move(r));
  }

  // ---- batches of bytes (exact: no double reference) -----------------------------------------
  {
    OpRow r{"gather_batch / augment_batch", "Augment", {"gather_batch_cpu", "augment_batch_cpu"}, {}, 0.0};
    for (const auto& sh : std::vector<std::array<int64_t, 5>>{
             {1, 1, 1, 1, 0}, {5, 3, 1, 7, 2}, {300, 128, 1, 28, 2}, {40, 9, 3, 32, 4}}) {
      const int64_t num = sh[0], n = sh[1], ch = sh[2], h = sh[3], pad = sh[4];
      const int64_t px = ch * h * h;
      std::vector<uint8_t> images(static_cast<size_t>(num * px)), labels(static_cast<size_t>(num));
      for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>((i * 37 + i / 7) % 256);
      for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<uint8_t>(i % 10);
      std::vector<int32_t> idx(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = static_cast<int32_t>((i * 11 + 3) % num);
      AugmentConfig cfg;
      cfg.pad = static_cast<int>(pad);
      cfg.flip = ch == 3;
      r.cases.push_back({sz("images", num) + " " + sz("n", n) + " " + sz("c", ch) + " " + sz("hw", h) + " " + sz("pad", pad),
                         [=](Context& c) {
                           Staged st;
                           Tensor &gathered = held(st, Tensor({n, ch, h, h}, c.device())),
                                  &aug = held(st, Tensor({n, ch, h, h}, c.device()));
                           IntBuffer &ti = st.make<IntBuffer>(labels_on(c, idx)), &ly = st.make<IntBuffer>(n, c.device());
                           const Buffer<uint8_t>& timg = st.make<Buffer<uint8_t>>(Buffer<uint8_t>::from_vector(images, c.device()));
                           const Buffer<uint8_t>& tlab = st.make<Buffer<uint8_t>>(Buffer<uint8_t>::from_vector(labels, c.device()));
                           st.op = [&c, &gathered, &aug, &ti, &ly, &timg, &tlab, n, ch, h, px, cfg] {
                             cuvae::detail::dispatch(
                                 c, "gather_batch / augment_batch",
                                 [&] {
                                   gather_batch_cpu(timg.data(), ti.data(), n, px, gathered.data());
                                   augment_batch_cpu(timg.data(), tlab.data(), ti.data(), n, ch, h, h, cfg, 7, 9, aug.data(),
                                                     ly.data());
                                 },
                                 [&](auto s) {
                                   gather_batch_cuda(timg.data(), ti.data(), n, px, gathered.data(), s);
                                   augment_batch_cuda(timg.data(), tlab.data(), ti.data(), n, ch, h, h, cfg, 7, 9, aug.data(),
                                                      ly.data(), s);
                                 });
                           };
                           st.outs = [&gathered, &aug, &ly, n] {
                             Outs o;
                             put(o, "gathered", gathered);
                             put(o, "augmented", aug);
                             put(o, "labels", ly.download(n));
                             return o;
                           };
                           // indices, n images' bytes → floats (gather); indices, images' bytes, labels →
                           // floats, int32 labels (augment)
                           st.bytes = (f32(n) + static_cast<double>(n * px) + f32(n * px)) +
                                      (f32(n) + static_cast<double>(n * px + n) + f32(n * px + n));
                           return st;
                         },
                         nullptr});
    }
    rows.push_back(std::move(r));
  }

  // ---- layers --------------------------------------------------------------------------------
  {
    OpRow r{"Linear", "LinearLayer", {"Linear", "linear_fwd_cpu", "linear_bwd_cpu", "gemm_cpu"}, {}};
    for (const auto& sh : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {3, 5, 7}, {128, 3136, 256}, {128, 256, 32},
                                                                 {1, 42, 256}}) {
      const int64_t n = sh[0], in = sh[1], out = sh[2];
      const uint64_t s = static_cast<uint64_t>(n * 7 + in * 3 + out);
      const auto x = U(n * in, -1, 1, s), dy = U(n * out, -1, 1, s + 1);
      r.cases.push_back({sz("n", n) + " " + sz("in", in) + " " + sz("out", out),
                         [=](Context& c) {
                           Staged st;
                           ParamStore& ps = st.make<ParamStore>();
                           Linear& lin = st.make<Linear>(ps, "fc", in, out);
                           ps.finalize(c.device());
                           set_all(ps, s + 2);
                           Tensor &tx = held(st, on(c, x, {n, in})), &tdy = held(st, on(c, dy, {n, out}));
                           stage_layer(st, c, ps, lin, tx, tdy);
                           st.bytes = layer_bytes(n * in, n * out, in * out, out);
                           st.flops = 3 * 2.0 * static_cast<double>(n * in * out);  // y, dx and dW: one GEMM each
                           return st;
                         },
                         [=] {
                           const auto W = D(U(out * in, -0.5, 0.5, s + 2)), b = D(U(out, -0.5, 0.5, s + 3));
                           std::vector<double> xd = D(x), dyd = D(dy), y(static_cast<size_t>(n * out)), dx(xd.size()),
                               dW(W.size()), db(b.size());
                           linear_fwd_cpu<double>(xd.data(), W.data(), b.data(), y.data(), n, in, out);
                           linear_bwd_cpu<double>(xd.data(), W.data(), dyd.data(), dx.data(), dW.data(), db.data(), n, in, out,
                                                  false);
                           return Outs{{"y", y}, {"dx", dx}, {"dW", dW}, {"db", db}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"Conv2d", "Conv2dLayer", {"Conv2d", "conv_fwd_cpu", "conv_bwd_data_cpu", "conv_bwd_filter_cpu", "conv_bwd_cpu"}, {}};
    struct G { int64_t n, c, h, w, k, kernel, stride, pad; };
    for (G g : {G{1, 1, 1, 1, 1, 1, 1, 0}, G{2, 3, 7, 5, 4, 3, 1, 1}, G{128, 1, 28, 28, 32, 4, 2, 1}, G{3, 32, 14, 14, 64, 4, 2, 1},
                G{2, 64, 8, 8, 128, 1, 2, 0}, G{1, 64, 32, 32, 64, 3, 1, 1}, G{5, 3, 9, 6, 2, 2, 2, 1}}) {
      ConvGeom geom;
      geom.n = g.n; geom.c = g.c; geom.h = g.h; geom.w = g.w; geom.k_out = g.k;
      geom.kernel = g.kernel; geom.stride = g.stride; geom.pad = g.pad;
      const uint64_t s = static_cast<uint64_t>(g.n * 7 + g.c * 5 + g.h * 3 + g.k + g.kernel);
      const auto x = U(geom.x_numel(), -1, 1, s), dy = U(geom.y_numel(), -1, 1, s + 1);
      r.cases.push_back({"x=[" + std::to_string(g.n) + "," + std::to_string(g.c) + "," + std::to_string(g.h) + "," +
                             std::to_string(g.w) + "] " + sz("out", g.k) + " " + sz("kernel", g.kernel) + " " +
                             sz("stride", g.stride) + " " + sz("pad", g.pad),
                         [=](Context& c) {
                           Staged st;
                           ParamStore& ps = st.make<ParamStore>();
                           Conv2d& conv = st.make<Conv2d>(ps, "conv", geom.c, geom.k_out, geom.kernel, geom.stride, geom.pad);
                           ps.finalize(c.device());
                           set_all(ps, s + 2);
                           Tensor &tx = held(st, on(c, x, {geom.n, geom.c, geom.h, geom.w})),
                                  &tdy = held(st, on(c, dy, {geom.n, geom.k_out, geom.ho(), geom.wo()}));
                           stage_layer(st, c, ps, conv, tx, tdy);
                           st.bytes = layer_bytes(geom.x_numel(), geom.y_numel(), geom.w_numel(), geom.k_out);
                           st.flops = conv_layer_flops(geom);
                           return st;
                         },
                         [=] {
                           const auto W = D(U(geom.w_numel(), -0.5, 0.5, s + 2)), b = D(U(geom.k_out, -0.5, 0.5, s + 3));
                           std::vector<double> xd = D(x), dyd = D(dy), y(static_cast<size_t>(geom.y_numel())), dx(xd.size()),
                               dW(W.size()), db(b.size()), scratch(static_cast<size_t>(geom.scratch_numel()));
                           conv_fwd_cpu<double>(geom, xd.data(), W.data(), y.data(), scratch.data());
                           add_bias_nchw_cpu<double>(y.data(), b.data(), geom.n, geom.k_out, geom.ho() * geom.wo());
                           // The two separate passes here; the float layer's reference uses the fused
                           // conv_bwd_cpu, so the comparison checks one against the other.
                           conv_bwd_data_cpu<double>(geom, dyd.data(), W.data(), dx.data(), scratch.data());
                           conv_bwd_filter_cpu<double>(geom, xd.data(), dyd.data(), dW.data(), scratch.data());
                           bias_grad_nchw_cpu<double>(dyd.data(), db.data(), geom.n, geom.k_out, geom.ho() * geom.wo());
                           return Outs{{"y", y}, {"dx", dx}, {"dW", dW}, {"db", db}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"ResBlock", "ResBlockLayer", {"ResBlock"}, {}};
    // (n, c, h, w): a single pixel, odd sizes, and the residual VAE's three blocks (28², 14², 7²).
    struct G { int64_t n, c, h, w; };
    for (G g : {G{1, 1, 1, 1}, G{2, 3, 5, 4}, G{4, 32, 28, 28}, G{3, 64, 14, 14}, G{2, 128, 7, 7}}) {
      ConvGeom geom;
      geom.n = g.n; geom.c = g.c; geom.h = g.h; geom.w = g.w; geom.k_out = g.c;
      geom.kernel = 3; geom.stride = 1; geom.pad = 1;
      const uint64_t s = static_cast<uint64_t>(g.n * 7 + g.c * 5 + g.h * 3 + g.w);
      const auto x = U(geom.x_numel(), -1, 1, s), dy = U(geom.x_numel(), -1, 1, s + 1);
      r.cases.push_back({"x=[" + std::to_string(g.n) + "," + std::to_string(g.c) + "," + std::to_string(g.h) + "," +
                             std::to_string(g.w) + "]",
                         [=](Context& c) {
                           Staged st;
                           ParamStore& ps = st.make<ParamStore>();
                           ResBlock& block = st.make<ResBlock>(ps, "res", g.c);
                           ps.finalize(c.device());
                           set_all(ps, s + 2);
                           Tensor &tx = held(st, on(c, x, {g.n, g.c, g.h, g.w})), &tdy = held(st, on(c, dy, {g.n, g.c, g.h, g.w}));
                           auto& out = st.make<std::array<Tensor*, 2>>();
                           st.op = [&c, &ps, &block, &tx, &tdy, &out] {
                             out[0] = &block.forward(c, tx);
                             ps.flat_grads().zero();
                             out[1] = &block.backward(c, tdy, true);
                           };
                           st.outs = [&ps, &out] {
                             Outs o;
                             put(o, "y", *out[0]);
                             put(o, "dx", *out[1]);
                             put(o, "dW1", ps.grad(0));
                             put(o, "db1", ps.grad(1));
                             put(o, "dW2", ps.grad(2));
                             put(o, "db2", ps.grad(3));
                             return o;
                           };
                           // Two convolution layers, then the add (reads 2, writes 1) and its backward
                           // (reads 2, writes 1) and the shortcut's accumulation (reads 2, writes 1).
                           st.bytes = 2 * layer_bytes(geom.x_numel(), geom.x_numel(), geom.w_numel(), g.c) + 9 * f32(geom.x_numel());
                           st.flops = 2 * conv_layer_flops(geom);
                           return st;
                         },
                         [=] {
                           // y = ReLU(x + conv2(ReLU(conv1(x) + b1)) + b2), and its backward, in double.
                           const auto W1 = D(U(geom.w_numel(), -0.5, 0.5, s + 2)), b1 = D(U(g.c, -0.5, 0.5, s + 3)),
                                      W2 = D(U(geom.w_numel(), -0.5, 0.5, s + 4)), b2 = D(U(g.c, -0.5, 0.5, s + 5));
                           const int64_t m = geom.x_numel(), hw = g.h * g.w;
                           std::vector<double> xd = D(x), dyd = D(dy), a1(static_cast<size_t>(m)), y(a1.size()), d(a1.size()),
                               da1(a1.size()), dx(a1.size()), dW1(W1.size()), db1(b1.size()), dW2(W2.size()), db2(b2.size()),
                               scratch(static_cast<size_t>(geom.scratch_numel()));
                           conv_fwd_cpu<double>(geom, xd.data(), W1.data(), a1.data(), scratch.data());
                           add_bias_nchw_cpu<double>(a1.data(), b1.data(), g.n, g.c, hw);
                           for (double& v : a1) v = std::max(v, 0.0);
                           conv_fwd_cpu<double>(geom, a1.data(), W2.data(), y.data(), scratch.data());
                           add_bias_nchw_cpu<double>(y.data(), b2.data(), g.n, g.c, hw);
                           for (size_t i = 0; i < y.size(); ++i) y[i] = std::max(y[i] + xd[i], 0.0);
                           for (size_t i = 0; i < y.size(); ++i) d[i] = y[i] > 0 ? dyd[i] : 0.0;
                           bias_grad_nchw_cpu<double>(d.data(), db2.data(), g.n, g.c, hw);
                           conv_bwd_filter_cpu<double>(geom, a1.data(), d.data(), dW2.data(), scratch.data());
                           conv_bwd_data_cpu<double>(geom, d.data(), W2.data(), da1.data(), scratch.data());
                           for (size_t i = 0; i < da1.size(); ++i) da1[i] = a1[i] > 0 ? da1[i] : 0.0;
                           bias_grad_nchw_cpu<double>(da1.data(), db1.data(), g.n, g.c, hw);
                           conv_bwd_filter_cpu<double>(geom, xd.data(), da1.data(), dW1.data(), scratch.data());
                           conv_bwd_data_cpu<double>(geom, da1.data(), W1.data(), dx.data(), scratch.data());
                           for (size_t i = 0; i < dx.size(); ++i) dx[i] += d[i];
                           return Outs{{"y", y}, {"dx", dx}, {"dW1", dW1}, {"db1", db1}, {"dW2", dW2}, {"db2", db2}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"ConvTranspose2d", "ConvTranspose2dLayer", {"ConvTranspose2d", "conv_transpose_bwd_cpu"}, {}};
    // (n, in, h, w, out, kernel, stride, pad): the decoder's two layers, stride 1, non-square, odd.
    struct G { int64_t n, in, h, w, out, kernel, stride, pad; };
    for (G g : {G{1, 1, 1, 1, 1, 1, 1, 0}, G{128, 64, 7, 7, 32, 4, 2, 1}, G{2, 32, 14, 14, 1, 4, 2, 1}, G{3, 4, 5, 9, 3, 3, 1, 1},
                G{2, 3, 6, 4, 5, 3, 2, 0}}) {
      // The transposed layer is the adjoint of a convolution from its output [n, out, H, W] to its
      // input [n, in, h, w].
      ConvGeom geom;
      geom.n = g.n; geom.c = g.out; geom.k_out = g.in;
      geom.h = (g.h - 1) * g.stride - 2 * g.pad + g.kernel;
      geom.w = (g.w - 1) * g.stride - 2 * g.pad + g.kernel;
      geom.kernel = g.kernel; geom.stride = g.stride; geom.pad = g.pad;
      const uint64_t s = static_cast<uint64_t>(g.n * 7 + g.in * 5 + g.h * 3 + g.out + g.kernel);
      const auto x = U(geom.y_numel(), -1, 1, s), dy = U(geom.x_numel(), -1, 1, s + 1);
      r.cases.push_back({"x=[" + std::to_string(g.n) + "," + std::to_string(g.in) + "," + std::to_string(g.h) + "," +
                             std::to_string(g.w) + "] " + sz("out", g.out) + " " + sz("kernel", g.kernel) + " " +
                             sz("stride", g.stride) + " " + sz("pad", g.pad),
                         [=](Context& c) {
                           Staged st;
                           ParamStore& ps = st.make<ParamStore>();
                           ConvTranspose2d& conv = st.make<ConvTranspose2d>(ps, "deconv", g.in, g.out, g.kernel, g.stride, g.pad);
                           ps.finalize(c.device());
                           set_all(ps, s + 2);
                           Tensor &tx = held(st, on(c, x, {g.n, g.in, g.h, g.w})),
                                  &tdy = held(st, on(c, dy, {g.n, g.out, geom.h, geom.w}));
                           stage_layer(st, c, ps, conv, tx, tdy);
                           // The layer's input is its adjoint convolution's y, its output that convolution's x.
                           st.bytes = layer_bytes(geom.y_numel(), geom.x_numel(), geom.w_numel(), g.out);
                           st.flops = conv_layer_flops(geom);
                           return st;
                         },
                         [=] {
                           // PyTorch's [in, out, k, k] weight is the convolution's [k_out = in, c = out, k, k].
                           const auto W = D(U(geom.w_numel(), -0.5, 0.5, s + 2)), b = D(U(g.out, -0.5, 0.5, s + 3));
                           std::vector<double> xd = D(x), dyd = D(dy), y(static_cast<size_t>(geom.x_numel())), dx(xd.size()),
                               dW(W.size()), db(b.size()), scratch(static_cast<size_t>(geom.scratch_numel()));
                           conv_bwd_data_cpu<double>(geom, xd.data(), W.data(), y.data(), scratch.data());
                           add_bias_nchw_cpu<double>(y.data(), b.data(), g.n, g.out, geom.h * geom.w);
                           conv_transpose_bwd_cpu<double>(geom, dyd.data(), xd.data(), W.data(), dx.data(), dW.data(),
                                                          scratch.data());
                           bias_grad_nchw_cpu<double>(dyd.data(), db.data(), g.n, g.out, geom.h * geom.w);
                           return Outs{{"y", y}, {"dx", dx}, {"dW", dW}, {"db", db}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  {
    OpRow r{"BatchNorm2d", "BatchNormCpu",
            {"BatchNorm2d", "batchnorm_forward_train_cpu", "batchnorm_forward_eval_cpu", "batchnorm_backward_cpu"}, {}};
    for (const auto& sh : std::vector<std::array<int64_t, 3>>{{1, 1, 3}, {3, 5, 7}, {64, 64, 1024}, {64, 512, 16}, {3, 2, 1}}) {
      const int64_t n = sh[0], ch = sh[1], hw = sh[2];
      // (m = n·hw = 2 would make dx zero in exact arithmetic: rounding noise against nothing.)
      const uint64_t s = static_cast<uint64_t>(n * 7 + ch * 3 + hw);
      const auto x = U(n * ch * hw, -2, 3, s), dy = U(n * ch * hw, -1, 1, s + 1);
      r.cases.push_back({sz("n", n) + " " + sz("c", ch) + " " + sz("hw", hw),
                         [=](Context& c) {
                           Staged st;
                           ParamStore &ps = st.make<ParamStore>(), &buf = st.make<ParamStore>();
                           BatchNorm2d& bn = st.make<BatchNorm2d>(ps, buf, "bn", ch);
                           ps.finalize(c.device());
                           buf.finalize(c.device());
                           bn.reset();  // running_mean 0, running_var 1
                           set_all(ps, s + 2);
                           Tensor &tx = held(st, on(c, x, {n, ch, hw, 1})), &tdy = held(st, on(c, dy, {n, ch, hw, 1}));
                           auto& out = st.make<std::array<Tensor*, 2>>();  // the layer's y and dx, known after a call
                           // Perf mode times a training forward and backward; the evaluation forward runs
                           // when the outputs are read.
                           st.op = [&c, &ps, &bn, &tx, &tdy, &out] {
                             out[0] = &bn.forward(c, tx, true);
                             ps.flat_grads().zero();
                             out[1] = &bn.backward(c, tdy, true);
                           };
                           st.outs = [&c, &ps, &buf, &bn, &tx, &out] {
                             Outs o;
                             put(o, "y", *out[0]);
                             put(o, "dx", *out[1]);
                             put(o, "dgamma", ps.grad(0));
                             put(o, "dbeta", ps.grad(1));
                             put(o, "running_mean", buf.value(0));
                             put(o, "running_var", buf.value(1));
                             put(o, "y_eval", bn.forward(c, tx, false));
                             return o;
                           };
                           // forward: x, gamma, beta, running stats → y, running stats, saved mean and
                           // inverse std; zeroed dgamma, dbeta; backward: x, dy, gamma, saved → dx,
                           // dgamma, dbeta
                           const int64_t m = n * ch * hw;
                           st.bytes = f32(2 * m + 8 * ch) + f32(2 * ch) + f32(3 * m + 6 * ch);
                           return st;
                         },
                         [=] {
                           const auto gamma = D(U(ch, -0.5, 0.5, s + 2)), beta = D(U(ch, -0.5, 0.5, s + 3));
                           std::vector<double> xd = D(x), dyd = D(dy), y(xd.size()), dx(xd.size()), sm(gamma.size()),
                               si(gamma.size()), rm(gamma.size(), 0.0), rv(gamma.size(), 1.0), dg(gamma.size()),
                               db(gamma.size()), ye(xd.size());
                           batchnorm_forward_train_cpu<double>(xd.data(), gamma.data(), beta.data(), n, ch, hw, 1e-5, 0.1,
                                                               y.data(), sm.data(), si.data(), rm.data(), rv.data());
                           batchnorm_backward_cpu<double>(xd.data(), dyd.data(), gamma.data(), sm.data(), si.data(), n, ch, hw,
                                                          dx.data(), dg.data(), db.data());
                           batchnorm_forward_eval_cpu<double>(xd.data(), gamma.data(), beta.data(), rm.data(), rv.data(), n,
                                                              ch, hw, 1e-5, ye.data());
                           return Outs{{"y", y},
                                       {"dx", dx},
                                       {"dgamma", dg},
                                       {"dbeta", db},
                                       {"running_mean", rm},
                                       {"running_var", rv},
                                       {"y_eval", ye}};
                         }});
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace cuvae::test::ops
