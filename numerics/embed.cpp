#include "numerics/embed.h"

// GCC 12 reports false "maybe-uninitialized" warnings from inside its own AVX-512 intrinsics
// when Eigen's GEMM kernels are inlined (as for layers/conv_cpu.cpp); they are not in our code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/tensor.h"
#include "io/metrics.h"
#include "kernels/tsne.h"

namespace cuvae {
namespace {

using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Largest n for which the dense methods are allowed, and Auto's choices.
constexpr int64_t kExactMax = 20000;
constexpr int64_t kAutoExactCpu = 1000;
constexpr int64_t kAutoExactCuda = 10000;
// Most elements of one task's block of squared distances (rows × n): 512 Ki, 2 MiB of floats,
// so that a block stays in cache between the GEMM that writes it and the scan that reads it.
constexpr int64_t kTaskElems = int64_t(1) << 19;

// x [n, d] minus its column means (means in double), as a row-major float matrix.
RowMatF centred_float(const float* x, int64_t n, int64_t d) {
  RowMatF c = Eigen::Map<const RowMatF>(x, n, d);
  const Eigen::RowVectorXf mean = c.cast<double>().colwise().mean().cast<float>();
  c.rowwise() -= mean;
  return c;
}

// Calls fn(i, row, state) for every i in [0, n), row = the squared Euclidean distances of
// point i to all n points (row[i] ≈ 0 is the point itself; callers skip it), computed by
// ‖a‖² + ‖b‖² − 2a·b and clamped at 0. Tasks of a fixed number of rows run in parallel (OpenMP),
// each with its own single-threaded Eigen GEMM (Eigen does not spawn threads inside a parallel
// region) into a small per-thread block; `state` is one default-constructed State per thread.
// The tasks do not depend on the thread count, so neither do the distances. Memory
// O(threads · kTaskElems), never n × n.
template <typename State, typename Mat, typename Fn>
void for_each_distance_row(const Mat& Xc, Fn&& fn) {
  using Scalar = typename Mat::Scalar;
  const int64_t n = Xc.rows();
  const Eigen::Matrix<Scalar, Eigen::Dynamic, 1> norms = Xc.rowwise().squaredNorm();
  const int64_t R = std::clamp<int64_t>(kTaskElems / std::max<int64_t>(n, 1), 8, 256);
  const int64_t tasks = (n + R - 1) / R;
#pragma omp parallel
  {
    State state;
    Mat D;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t r0 = t * R, b = std::min(R, n - r0);
      D.resize(b, n);
      D.noalias() = Xc.middleRows(r0, b) * Xc.transpose();
      for (int64_t r = 0; r < b; ++r) {
        const Scalar ni = norms[r0 + r];
        Scalar* row = D.data() + r * n;
        for (int64_t j = 0; j < n; ++j) {
          const Scalar v = ni + norms[j] - 2 * row[j];
          row[j] = v > 0 ? v : Scalar(0);
        }
        fn(r0 + r, static_cast<const Scalar*>(row), state);
      }
    }
  }
}

// Rows and columns of one tile of for_each_distance_tile: a 128 × 2048 float tile (1 MiB) stays
// in cache between the GEMM that writes it and the scan that reads it, and packing the 2048
// column points for the GEMM costs 1/128 of its arithmetic.
constexpr int64_t kTileRows = 128;
constexpr int64_t kTileCols = 2048;

// Streams the squared Euclidean distances of every point of Xc [n, d] (float, centred) to all
// points, tile by tile: for each point i, on_tile(i, j0, dist, len, state) is called for the
// column ranges [j0, j0 + len) in increasing order (j0 = 0 first: reset `state` then), then
// on_done(i, state). Distances are ‖a‖² + ‖b‖² − 2a·b clamped at 0 (dist[i − j0] is the point
// itself). Row blocks of kTileRows run in parallel (OpenMP), each tile by a single-threaded Eigen
// GEMM; one RowState per row of a block and thread. Tile shapes depend on n only, so the
// distances do not depend on the thread count. Memory O(threads · tile), never n × n.
template <typename RowState, typename OnTile, typename OnDone>
void for_each_distance_tile(const RowMatF& Xc, OnTile&& on_tile, OnDone&& on_done) {
  const int64_t n = Xc.rows();
  const Eigen::VectorXf norms = Xc.rowwise().squaredNorm();
  const int64_t blocks = (n + kTileRows - 1) / kTileRows;
#pragma omp parallel
  {
    std::vector<RowState> st(static_cast<size_t>(kTileRows));
    RowMatF D;
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t r0 = blk * kTileRows, b = std::min(kTileRows, n - r0);
      for (int64_t j0 = 0; j0 < n; j0 += kTileCols) {
        const int64_t c = std::min(kTileCols, n - j0);
        D.resize(b, c);
        D.noalias() = Xc.middleRows(r0, b) * Xc.middleRows(j0, c).transpose();
        for (int64_t r = 0; r < b; ++r) {
          const float ni = norms[r0 + r];
          float* row = D.data() + r * c;
          for (int64_t t = 0; t < c; ++t) {
            const float v = ni + norms[j0 + t] - 2 * row[t];
            row[t] = v > 0 ? v : 0.0f;
          }
          on_tile(r0 + r, j0, static_cast<const float*>(row), c, st[static_cast<size_t>(r)]);
        }
      }
      for (int64_t r = 0; r < b; ++r) on_done(r0 + r, st[static_cast<size_t>(r)]);
    }
  }
}

// Keeps the k smallest (distance, index) pairs seen (a max-heap on the pair, so equal
// distances prefer the lower index), then sorts them ascending.
template <typename D>
class TopK {
 public:
  TopK() = default;
  explicit TopK(int k) { clear(k); }
  // Empties the set and keeps the k smallest from now on.
  void clear(int k) {
    k_ = static_cast<size_t>(k);
    heap_.clear();
    heap_.reserve(k_);
  }
  bool full() const { return heap_.size() == k_; }
  D worst() const { return heap_.front().first; }
  void push(D d, int64_t j) {
    if (heap_.size() < k_) {
      heap_.emplace_back(d, j);
      if (heap_.size() == k_) std::make_heap(heap_.begin(), heap_.end());
    } else if (std::make_pair(d, j) < heap_.front()) {
      std::pop_heap(heap_.begin(), heap_.end());
      heap_.back() = {d, j};
      std::push_heap(heap_.begin(), heap_.end());
    }
  }
  // Sorted ascending; valid until the next push/clear.
  const std::vector<std::pair<D, int64_t>>& sorted() {
    if (full()) std::sort_heap(heap_.begin(), heap_.end());
    else std::sort(heap_.begin(), heap_.end());
    return heap_;
  }

 private:
  size_t k_ = 0;
  std::vector<std::pair<D, int64_t>> heap_;
};

void check_knn_args(const float* x, int64_t n, int64_t d, int k, const char* what) {
  CUVAE_CHECK(x != nullptr && d >= 1, what << ": need points x [n, d] with d >= 1, got d = " << d);
  CUVAE_CHECK(k >= 1 && k < n, what << ": k = " << k << " nearest neighbours need 1 <= k < n = " << n);
}

// ---- perplexity calibration ---------------------------------------------------------------

// Scratch of calibrate_row. Eigen-allocated (aligned) arrays: Eigen's vectorised sums over an
// unaligned buffer start with a scalar prologue whose length depends on the address, which
// would make the rounding, and so the map, differ from run to run.
struct CalibScratch {
  Eigen::ArrayXd dd, e;
};

// One row of tsne_conditional_p: writes p [m], returns β.
double calibrate_row(const double* dist2, int64_t m, double log_perp, int max_steps, double tol,
                     double* p, CalibScratch& s) {
  s.dd = Eigen::Map<const Eigen::ArrayXd>(dist2, m);
  // Shifting by the smallest distance changes neither p nor the entropy, and keeps the
  // largest term at exp(0) = 1, so the sum never underflows.
  s.dd -= s.dd.minCoeff();
  double beta = 1.0, lo = -std::numeric_limits<double>::infinity(),
         hi = std::numeric_limits<double>::infinity();
  double used = beta, sum = 1.0;
  for (int step = 0; step < max_steps; ++step) {
    used = beta;
    s.e = (-beta * s.dd).exp();
    sum = s.e.sum();
    const double sdp = (s.dd * s.e).sum();
    const double entropy = std::log(sum) + beta * sdp / sum;
    const double diff = entropy - log_perp;
    if (std::fabs(diff) <= tol) break;
    if (diff > 0) {  // too flat: sharpen
      lo = beta;
      beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
    } else {
      hi = beta;
      beta = std::isinf(lo) ? beta / 2 : (beta + lo) / 2;
    }
  }
  Eigen::Map<Eigen::ArrayXd>(p, m) = s.e / sum;
  return used;
}

void check_perplexity(double perplexity, int64_t n) {
  const double maxp = static_cast<double>(n - 1) / 3.0;
  CUVAE_REQUIRE(n >= 4, "t-SNE needs at least 4 points, got " << n);
  if (!(perplexity > 0 && perplexity <= maxp))
    CUVAE_FAIL(option("perplexity") << " must be in (0, (n-1)/3] = (0, " << maxp << "] for n = " << n
                                                            << " points, got " << perplexity);
}

// Dense symmetric P [n, n] (storage T) from x: conditional rows over all other points in
// blocks (double GEMM on the centred data), then P = (C + Cᵀ) / ΣC.
template <typename T>
std::vector<T> joint_p_dense(const float* x, int64_t n, int64_t d, double perplexity) {
  CUVAE_CHECK(x != nullptr && d >= 1, "t-SNE: need points x [n, d] with d >= 1, got d = " << d);
  check_perplexity(perplexity, n);
  RowMatD Xc = Eigen::Map<const RowMatF>(x, n, d).cast<double>();
  const Eigen::RowVectorXd mean = Xc.colwise().mean();
  Xc.rowwise() -= mean;
  std::vector<T> P(static_cast<size_t>(n * n));
  const double log_perp = std::log(perplexity);
  struct Scratch {
    std::vector<double> row, p;
    CalibScratch c;
  };
  for_each_distance_row<Scratch>(Xc, [&](int64_t i, const double* Dr, Scratch& s) {
    s.row.resize(static_cast<size_t>(n - 1));
    s.p.resize(static_cast<size_t>(n - 1));
    std::copy(Dr, Dr + i, s.row.begin());
    std::copy(Dr + i + 1, Dr + n, s.row.begin() + i);
    calibrate_row(s.row.data(), n - 1, log_perp, 200, 1e-5, s.p.data(), s.c);
    T* Pi = P.data() + i * n;
    for (int64_t j = 0; j < i; ++j) Pi[j] = static_cast<T>(s.p[static_cast<size_t>(j)]);
    Pi[i] = T(0);
    for (int64_t j = i + 1; j < n; ++j) Pi[j] = static_cast<T>(s.p[static_cast<size_t>(j - 1)]);
  });
  // Symmetrise in place; the sum in double, row by row in a fixed order.
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      const double s = static_cast<double>(P[i * n + j]) + static_cast<double>(P[j * n + i]);
      P[i * n + j] = P[j * n + i] = static_cast<T>(s);
    }
  }
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += static_cast<double>(P[i * n + j]);
    total += s;
  }
  const double inv = 1.0 / std::max(total, std::numeric_limits<double>::min());
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < n * n; ++k) P[k] = static_cast<T>(static_cast<double>(P[k]) * inv);
  return P;
}

// ---- Barnes–Hut quadtree --------------------------------------------------------------------

// One cell of the quadtree. Every cell covers a contiguous range [begin, end) of the points
// in tree order; cells are stored in depth-first pre-order, so a cell's subtree is the cells
// up to `next` and a traversal needs no stack.
struct QtNode {
  double cx, cy;      // centre of mass
  double side2;       // (cell side)²
  int32_t begin, end; // points in tree order
  int32_t next;       // first cell after this subtree
  int32_t leaf;       // 1 for a leaf
};

class QuadTree {
 public:
  static constexpr int32_t kLeafSize = 16;  // most points of a leaf (unless kMaxDepth)
  static constexpr int kMaxDepth = 48;      // coincident points end in one leaf

  void build(const double* Y, int64_t n) {
    const auto nn = static_cast<int32_t>(n);
    if (perm_.size() != static_cast<size_t>(n)) {
      perm_.resize(static_cast<size_t>(n));
      std::iota(perm_.begin(), perm_.end(), 0);
    }
    double x0 = Y[0], x1 = Y[0], y0 = Y[1], y1 = Y[1];
    for (int64_t i = 1; i < n; ++i) {
      x0 = std::min(x0, Y[2 * i]);
      x1 = std::max(x1, Y[2 * i]);
      y0 = std::min(y0, Y[2 * i + 1]);
      y1 = std::max(y1, Y[2 * i + 1]);
    }
    const double half = std::max(x1 - x0, y1 - y0) * 0.5 * (1 + 1e-9) + 1e-300;
    y_ = Y;
    nodes.clear();
    build_node(0, nn, (x0 + x1) / 2, (y0 + y1) / 2, half, 0);
    px.resize(static_cast<size_t>(n));
    py.resize(static_cast<size_t>(n));
    pos.resize(static_cast<size_t>(n));
    for (int32_t t = 0; t < nn; ++t) {
      const int32_t i = perm_[static_cast<size_t>(t)];
      px[static_cast<size_t>(t)] = Y[2 * i];
      py[static_cast<size_t>(t)] = Y[2 * i + 1];
      pos[static_cast<size_t>(i)] = t;
    }
  }

  // Repulsion on the point at tree position t: z = Σ_j q̃_tj and f = Σ_j q̃_tj² (y_t − y_j),
  // cells accepted whole when side² < θ²·d² and they do not hold the point itself.
  void repulsion(int32_t t, double theta2, double& z, double& fx, double& fy) const {
    const double x = px[static_cast<size_t>(t)], y = py[static_cast<size_t>(t)];
    double zs = 0, ax = 0, ay = 0;
    const auto nn = static_cast<int32_t>(nodes.size());
    const QtNode* nd = nodes.data();
    int32_t v = 0;
    while (v < nn) {
      const QtNode& c = nd[v];
      const bool self = c.begin <= t && t < c.end;
      const double dx = x - c.cx, dy = y - c.cy, d2 = dx * dx + dy * dy;
      if (!self && c.side2 < theta2 * d2) {
        const double q = 1.0 / (1.0 + d2);
        const double m = static_cast<double>(c.end - c.begin) * q;
        zs += m;
        ax += m * q * dx;
        ay += m * q * dy;
        v = c.next;
      } else if (c.leaf) {
        for (int32_t s = c.begin; s < c.end; ++s) {
          if (s == t) continue;
          const double ex = x - px[static_cast<size_t>(s)], ey = y - py[static_cast<size_t>(s)];
          const double q = 1.0 / (1.0 + ex * ex + ey * ey);
          zs += q;
          ax += q * q * ex;
          ay += q * q * ey;
        }
        v = c.next;
      } else {
        ++v;
      }
    }
    z = zs;
    fx = ax;
    fy = ay;
  }

  std::vector<QtNode> nodes;
  std::vector<double> px, py;  // positions in tree order
  std::vector<int32_t> pos;    // point → tree position

  int32_t point_at(int32_t t) const { return perm_[static_cast<size_t>(t)]; }

 private:
  const double* y_ = nullptr;
  std::vector<int32_t> perm_;  // tree position → point (kept between builds)

  int32_t build_node(int32_t b, int32_t e, double cx, double cy, double half, int depth) {
    const auto id = static_cast<int32_t>(nodes.size());
    nodes.push_back(QtNode{0, 0, 4 * half * half, b, e, 0, 0});
    if (e - b <= kLeafSize || depth >= kMaxDepth) {
      double sx = 0, sy = 0;
      for (int32_t t = b; t < e; ++t) {
        const int32_t i = perm_[static_cast<size_t>(t)];
        sx += y_[2 * i];
        sy += y_[2 * i + 1];
      }
      QtNode& c = nodes[static_cast<size_t>(id)];
      c.cx = sx / (e - b);
      c.cy = sy / (e - b);
      c.leaf = 1;
      c.next = id + 1;
      return id;
    }
    const double* Y = y_;
    int32_t* p = perm_.data();
    const int32_t mid = static_cast<int32_t>(
        std::partition(p + b, p + e, [&](int32_t i) { return Y[2 * i + 1] < cy; }) - p);
    const int32_t m1 = static_cast<int32_t>(
        std::partition(p + b, p + mid, [&](int32_t i) { return Y[2 * i] < cx; }) - p);
    const int32_t m2 = static_cast<int32_t>(
        std::partition(p + mid, p + e, [&](int32_t i) { return Y[2 * i] < cx; }) - p);
    const double h = half / 2;
    const int32_t lo[4] = {b, m1, mid, m2}, hi[4] = {m1, mid, m2, e};
    const double ox[4] = {-h, h, -h, h}, oy[4] = {-h, -h, h, h};
    double sx = 0, sy = 0;
    for (int q = 0; q < 4; ++q) {
      if (hi[q] == lo[q]) continue;
      const int32_t c = build_node(lo[q], hi[q], cx + ox[q], cy + oy[q], h, depth + 1);
      const double cnt = hi[q] - lo[q];
      sx += nodes[static_cast<size_t>(c)].cx * cnt;
      sy += nodes[static_cast<size_t>(c)].cy * cnt;
    }
    QtNode& c = nodes[static_cast<size_t>(id)];
    c.cx = sx / (e - b);
    c.cy = sy / (e - b);
    c.next = static_cast<int32_t>(nodes.size());
    return id;
  }
};

// The Barnes–Hut gradient with its tree and scratch kept between iterations.
class BhGradient {
 public:
  // grad = 4 (α·attractive − repulsive / Z); returns Z.
  double operator()(const TsneSparseP& P, const double* Y, int64_t n, double alpha, double theta,
                    double* grad) {
    tree_.build(Y, n);
    z_.resize(static_cast<size_t>(n));
    rep_.resize(static_cast<size_t>(2 * n));
    const double theta2 = theta * theta;
    const auto nn = static_cast<int32_t>(n);
#pragma omp parallel for schedule(dynamic, 64)
    for (int32_t t = 0; t < nn; ++t) {
      const int32_t i = tree_.point_at(t);
      double z, fx, fy;
      tree_.repulsion(t, theta2, z, fx, fy);
      z_[static_cast<size_t>(i)] = z;
      rep_[static_cast<size_t>(2 * i)] = fx;
      rep_[static_cast<size_t>(2 * i + 1)] = fy;
    }
    double Z = 0;
    for (int64_t i = 0; i < n; ++i) Z += z_[static_cast<size_t>(i)];
    const double inv_z = 1.0 / Z;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const double xi = Y[2 * i], yi = Y[2 * i + 1];
      double ax = 0, ay = 0;
      for (int64_t e = P.row_ptr[static_cast<size_t>(i)]; e < P.row_ptr[static_cast<size_t>(i + 1)];
           ++e) {
        const int64_t j = P.col[static_cast<size_t>(e)];
        const double dx = xi - Y[2 * j], dy = yi - Y[2 * j + 1];
        const double pq = P.val[static_cast<size_t>(e)] / (1.0 + dx * dx + dy * dy);
        ax += pq * dx;
        ay += pq * dy;
      }
      grad[2 * i] = 4.0 * (alpha * ax - rep_[static_cast<size_t>(2 * i)] * inv_z);
      grad[2 * i + 1] = 4.0 * (alpha * ay - rep_[static_cast<size_t>(2 * i + 1)] * inv_z);
    }
    return Z;
  }

 private:
  QuadTree tree_;
  std::vector<double> z_, rep_;
};

// KL(P‖Q) over the sparse P with normaliser Z: Σ p log p + Σ p log(1 + d²) + (Σ p) log Z.
double sparse_kl(const TsneSparseP& P, const double* Y, double Z) {
  const int64_t n = P.n;
  std::vector<double> part(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double h = 0, s = 0;
    for (int64_t e = P.row_ptr[static_cast<size_t>(i)]; e < P.row_ptr[static_cast<size_t>(i + 1)];
         ++e) {
      const double p = P.val[static_cast<size_t>(e)];
      if (!(p > 0)) continue;
      const int64_t j = P.col[static_cast<size_t>(e)];
      const double dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1];
      h += p * (std::log(p) + std::log1p(dx * dx + dy * dy));
      s += p;
    }
    part[static_cast<size_t>(i)] = h + s * std::log(Z);
  }
  double kl = 0;
  for (double v : part) kl += v;
  return kl;
}

// The optimiser's phases, shared by every method.
struct Schedule {
  int iters, exag_iters;
  double exaggeration, lr;
  double alpha(int it) const { return it < exag_iters ? exaggeration : 1.0; }
  double momentum(int it) const { return it < exag_iters ? 0.5 : 0.8; }
  // Gains and momentum restart when the second phase begins (scikit-learn's second
  // _gradient_descent call starts from update = 0, gains = 1).
  bool restart(int it) const { return it == exag_iters && it > 0; }
};

constexpr double kMinGain = 0.01;

}  // namespace

// ---- PCA -------------------------------------------------------------------------------------

PcaResult pca_2d(const float* x, int64_t n, int64_t d) {
  CUVAE_CHECK(x != nullptr, "pca_2d: null input");
  if (n < 2) CUVAE_FAIL("PCA needs at least 2 points, got " << n);
  if (d < 1) CUVAE_FAIL("PCA needs at least 1 feature, got d = " << d);
  RowMatD Xc = Eigen::Map<const RowMatF>(x, n, d).cast<double>();
  const Eigen::RowVectorXd mean = Xc.colwise().mean();
  Xc.rowwise() -= mean;
  Eigen::MatrixXd C = Eigen::MatrixXd::Zero(d, d);
  C.selfadjointView<Eigen::Lower>().rankUpdate(Xc.transpose(), 1.0 / static_cast<double>(n - 1));
  C = C.selfadjointView<Eigen::Lower>();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(C);
  CUVAE_CHECK(eig.info() == Eigen::Success, "pca_2d: eigen decomposition failed");
  const Eigen::VectorXd lam = eig.eigenvalues().cwiseMax(0.0);  // ascending
  const double total = lam.sum();
  PcaResult r;
  r.components.assign(static_cast<size_t>(2 * d), 0.0);
  r.explained_variance_ratio.assign(2, 0.0);
  for (int c = 0; c < 2 && c < d; ++c) {
    Eigen::VectorXd v = eig.eigenvectors().col(d - 1 - c);
    Eigen::Index arg = 0;
    for (Eigen::Index k = 1; k < v.size(); ++k)
      if (std::fabs(v[k]) > std::fabs(v[arg])) arg = k;
    if (v[arg] < 0) v = -v;
    for (int64_t k = 0; k < d; ++k) r.components[static_cast<size_t>(c * d + k)] = v[k];
    r.explained_variance_ratio[static_cast<size_t>(c)] = total > 0 ? lam[d - 1 - c] / total : 0.0;
  }
  const RowMatD W = Eigen::Map<const RowMatD>(r.components.data(), 2, d);  // owned: aligned
  const RowMatD Y = Xc * W.transpose();
  r.y.resize(static_cast<size_t>(2 * n));
  for (int64_t k = 0; k < 2 * n; ++k) r.y[static_cast<size_t>(k)] = static_cast<float>(Y.data()[k]);
  return r;
}

// ---- t-SNE building blocks ------------------------------------------------------------------

std::vector<double> tsne_conditional_p(const double* dist2, int64_t rows, int64_t m,
                                       double perplexity, double* beta, int max_steps, double tol) {
  CUVAE_CHECK(dist2 != nullptr && rows >= 0 && m >= 1,
              "tsne_conditional_p: need rows >= 0 rows of m >= 1 distances, got m = " << m);
  CUVAE_REQUIRE(perplexity > 0 && std::isfinite(perplexity),
              "tsne_conditional_p: perplexity must be > 0, got " << perplexity);
  std::vector<double> p(static_cast<size_t>(rows * m));
  const double log_perp = std::log(perplexity);
#pragma omp parallel
  {
    CalibScratch scratch;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const double b = calibrate_row(dist2 + i * m, m, log_perp, max_steps, tol,
                                     p.data() + i * m, scratch);
      if (beta != nullptr) beta[i] = b;
    }
  }
  return p;
}

TsneSparseP tsne_joint_p_sparse(const float* x, int64_t n, int64_t d, double perplexity) {
  CUVAE_CHECK(x != nullptr && d >= 1, "t-SNE: need points x [n, d] with d >= 1, got d = " << d);
  check_perplexity(perplexity, n);
  const int k = static_cast<int>(std::min<int64_t>(n - 1, static_cast<int64_t>(std::floor(3 * perplexity)) + 1));
  std::vector<int64_t> idx;
  std::vector<float> d2f;
  knn_euclidean(x, n, d, k, idx, d2f);
  // Squared distances of the chosen neighbours again, exactly (in double).
  std::vector<double> d2(static_cast<size_t>(n * k));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    for (int m = 0; m < k; ++m) {
      const int64_t j = idx[static_cast<size_t>(i * k + m)];
      double s = 0;
      for (int64_t c = 0; c < d; ++c) {
        const double t = static_cast<double>(x[i * d + c]) - static_cast<double>(x[j * d + c]);
        s += t * t;
      }
      d2[static_cast<size_t>(i * k + m)] = s;
    }
  }
  const std::vector<double> cp = tsne_conditional_p(d2.data(), n, k, perplexity);
  // C + Cᵀ in CSR: row i holds its own neighbours and every point that has i as a neighbour.
  std::vector<int64_t> cnt(static_cast<size_t>(n + 1), 0);
  for (int64_t i = 0; i < n; ++i) {
    cnt[static_cast<size_t>(i + 1)] += k;
    for (int m = 0; m < k; ++m) ++cnt[static_cast<size_t>(idx[static_cast<size_t>(i * k + m)] + 1)];
  }
  for (int64_t i = 0; i < n; ++i) cnt[static_cast<size_t>(i + 1)] += cnt[static_cast<size_t>(i)];
  std::vector<std::pair<int32_t, double>> ent(static_cast<size_t>(cnt[static_cast<size_t>(n)]));
  std::vector<int64_t> fill(cnt.begin(), cnt.end() - 1);
  for (int64_t i = 0; i < n; ++i) {
    for (int m = 0; m < k; ++m) {
      const int64_t j = idx[static_cast<size_t>(i * k + m)];
      const double v = cp[static_cast<size_t>(i * k + m)];
      ent[static_cast<size_t>(fill[static_cast<size_t>(i)]++)] = {static_cast<int32_t>(j), v};
      ent[static_cast<size_t>(fill[static_cast<size_t>(j)]++)] = {static_cast<int32_t>(i), v};
    }
  }
  TsneSparseP P;
  P.n = n;
  P.row_ptr.assign(static_cast<size_t>(n + 1), 0);
  std::vector<int64_t> len(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    auto b = ent.begin() + cnt[static_cast<size_t>(i)], e = ent.begin() + cnt[static_cast<size_t>(i + 1)];
    std::sort(b, e, [](const auto& a, const auto& c) { return a.first < c.first; });
    // Merge duplicate columns in place (values added in sorted order: deterministic).
    auto w = b;
    for (auto r = b; r != e; ++r) {
      if (w != b && (w - 1)->first == r->first) (w - 1)->second += r->second;
      else *w++ = *r;
    }
    len[static_cast<size_t>(i)] = w - b;
  }
  for (int64_t i = 0; i < n; ++i)
    P.row_ptr[static_cast<size_t>(i + 1)] = P.row_ptr[static_cast<size_t>(i)] + len[static_cast<size_t>(i)];
  P.col.resize(static_cast<size_t>(P.row_ptr[static_cast<size_t>(n)]));
  P.val.resize(P.col.size());
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto* src = ent.data() + cnt[static_cast<size_t>(i)];
    const int64_t o = P.row_ptr[static_cast<size_t>(i)];
    for (int64_t t = 0; t < len[static_cast<size_t>(i)]; ++t) {
      P.col[static_cast<size_t>(o + t)] = src[t].first;
      P.val[static_cast<size_t>(o + t)] = src[t].second;
      total += src[t].second;
    }
  }
  const double inv = 1.0 / std::max(total, std::numeric_limits<double>::min());
  for (double& v : P.val) v *= inv;
  return P;
}

std::vector<double> tsne_joint_p_dense(const float* x, int64_t n, int64_t d, double perplexity) {
  return joint_p_dense<double>(x, n, d, perplexity);
}

void tsne_grad_barnes_hut(const TsneSparseP& P, const double* Y, int64_t n, double exaggeration,
                          double theta, double* grad, double* z_out) {
  CUVAE_CHECK(n >= 2 && P.n == n && static_cast<int64_t>(P.row_ptr.size()) == n + 1,
              "tsne_grad_barnes_hut: P is for " << P.n << " points, Y for " << n);
  CUVAE_CHECK(theta >= 0 && std::isfinite(theta), "tsne_grad_barnes_hut: theta must be >= 0, got " << theta);
  BhGradient g;
  const double Z = g(P, Y, n, exaggeration, theta, grad);
  if (z_out != nullptr) *z_out = Z;
}

// ---- neighbours and map quality -------------------------------------------------------------

void knn_euclidean(const float* x, int64_t n, int64_t d, int k, std::vector<int64_t>& idx,
                   std::vector<float>& dist2) {
  check_knn_args(x, n, d, k, "knn_euclidean");
  idx.assign(static_cast<size_t>(n * k), 0);
  dist2.assign(static_cast<size_t>(n * k), 0.0f);
  auto store = [&](int64_t i, const std::vector<std::pair<double, int64_t>>& s) {
    for (int m = 0; m < k; ++m) {
      idx[static_cast<size_t>(i * k + m)] = s[static_cast<size_t>(m)].second;
      dist2[static_cast<size_t>(i * k + m)] = static_cast<float>(s[static_cast<size_t>(m)].first);
    }
  };
  if (d <= 3) {
    // Sweep outwards from each point in the order of the first coordinate, nearer side
    // first, until the first-coordinate gap alone exceeds the k-th best distance.
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return x[a * d] < x[b * d] || (x[a * d] == x[b * d] && a < b);
    });
    std::vector<double> xs(static_cast<size_t>(n * d));
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < d; ++c)
        xs[static_cast<size_t>(t * d + c)] = static_cast<double>(x[order[static_cast<size_t>(t)] * d + c]);
#pragma omp parallel
    {
      TopK<double> top(k);
#pragma omp for schedule(dynamic, 256)
      for (int64_t t = 0; t < n; ++t) {
        top.clear(k);
        const double* a = xs.data() + t * d;
        int64_t l = t - 1, r = t + 1;
        while (l >= 0 || r < n) {
          const double gl = l >= 0 ? a[0] - xs[static_cast<size_t>(l * d)] : std::numeric_limits<double>::infinity();
          const double gr = r < n ? xs[static_cast<size_t>(r * d)] - a[0] : std::numeric_limits<double>::infinity();
          const bool left = gl <= gr;
          const double g = left ? gl : gr;
          if (top.full() && g * g > top.worst()) break;
          const int64_t s = left ? l-- : r++;
          const double* b = xs.data() + s * d;
          double dd = 0;
          for (int64_t c = 0; c < d; ++c) dd += (a[c] - b[c]) * (a[c] - b[c]);
          top.push(dd, order[static_cast<size_t>(s)]);
        }
        store(order[static_cast<size_t>(t)], top.sorted());
      }
    }
    return;
  }
  for_each_distance_tile<TopK<double>>(
      centred_float(x, n, d),
      [&](int64_t i, int64_t j0, const float* dist, int64_t len, TopK<double>& top) {
        if (j0 == 0) top.clear(k);
        for (int64_t t = 0; t < len; ++t) {
          const int64_t j = j0 + t;
          if (j == i) continue;
          if (top.full() && !(static_cast<double>(dist[t]) < top.worst())) continue;
          top.push(static_cast<double>(dist[t]), j);
        }
      },
      [&](int64_t i, TopK<double>& top) { store(i, top.sorted()); });
}

double trustworthiness(const float* x, int64_t n, int64_t dx, const float* y, int64_t dy, int k) {
  CUVAE_CHECK(x != nullptr && y != nullptr && dx >= 1 && dy >= 1,
              "trustworthiness: need x [n, dx] and y [n, dy], got dx = " << dx << ", dy = " << dy);
  if (n < 3) CUVAE_FAIL("trustworthiness needs at least 3 points, got " << n);
  if (k < 1 || 2 * static_cast<int64_t>(k) >= n)
    CUVAE_FAIL("trustworthiness: n_neighbors = " << k << " must be >= 1 and < n/2 = " << n / 2.0);
  std::vector<int64_t> nbr;
  std::vector<float> nd;
  knn_euclidean(y, n, dy, k, nbr, nd);
  std::vector<int64_t> pen(static_cast<size_t>(n), 0);
  // Per point i and map neighbour j_m: rank = 1 + #{l ≠ i : (d_il, l) < (d_ij, j)} in x-space.
  // The threshold d_ij is known up front only from a direct computation, which may differ from
  // the GEMM's value by rounding; points clearly below it (by a margin) are counted on the fly
  // (a vectorised pass per neighbour), points within the margin are kept and, once the scan has
  // met j_m itself, compared with its GEMM distance, so every comparison uses the same numbers.
  const RowMatF Xc = centred_float(x, n, dx);
  const Eigen::VectorXf norms = Xc.rowwise().squaredNorm();
  struct Near {
    float d;
    int64_t l;
  };
  struct RankState {
    std::vector<float> lo, hi, tg;  // per neighbour: count-below, keep-below, GEMM distance
    std::vector<int64_t> below;
    std::vector<Near> near;
  };
  for_each_distance_tile<RankState>(
      Xc,
      [&](int64_t i, int64_t j0, const float* dist, int64_t len, RankState& s) {
        const int64_t* nb = nbr.data() + i * k;
        if (j0 == 0) {
          s.lo.assign(static_cast<size_t>(k), 0.0f);
          s.hi.assign(static_cast<size_t>(k), 0.0f);
          s.tg.assign(static_cast<size_t>(k), -1.0f);
          s.below.assign(static_cast<size_t>(k), 0);
          s.near.clear();
          for (int m = 0; m < k; ++m) {
            const int64_t j = nb[m];
            const double t = (Xc.row(i) - Xc.row(j)).cast<double>().squaredNorm();
            const double margin = 1e-4 * (norms[i] + norms[j]) + 1e-30;
            s.lo[static_cast<size_t>(m)] = static_cast<float>(std::max(0.0, t - margin));
            s.hi[static_cast<size_t>(m)] = static_cast<float>(t + margin);
          }
        }
        const int64_t self = i - j0;  // the point itself, if in this tile (distance ≈ 0)
        for (int m = 0; m < k; ++m) {
          const float lo = s.lo[static_cast<size_t>(m)];
          int64_t c = 0;
          for (int64_t t = 0; t < len; ++t) c += dist[t] < lo;
          if (self >= 0 && self < len && dist[self] < lo) --c;
          s.below[static_cast<size_t>(m)] += c;
        }
        // Points inside any neighbour's band are kept once each.
        const float bmin = *std::min_element(s.lo.begin(), s.lo.end());
        const float bmax = *std::max_element(s.hi.begin(), s.hi.end());
        for (int64_t t = 0; t < len; ++t) {
          if (!(dist[t] >= bmin && dist[t] <= bmax) || t == self) continue;
          bool in_band = false;
          for (int m = 0; m < k; ++m) {
            if (dist[t] >= s.lo[static_cast<size_t>(m)] && dist[t] <= s.hi[static_cast<size_t>(m)]) in_band = true;
            if (j0 + t == nb[m]) s.tg[static_cast<size_t>(m)] = dist[t];
          }
          if (in_band) s.near.push_back({dist[t], j0 + t});
        }
      },
      [&](int64_t i, RankState& s) {
        const int64_t* nb = nbr.data() + i * k;
        int64_t p = 0;
        for (int m = 0; m < k; ++m) {
          const float tj = s.tg[static_cast<size_t>(m)];
          CUVAE_CHECK(tj >= 0, "trustworthiness: internal error, neighbour outside its margin");
          int64_t rank = 1 + s.below[static_cast<size_t>(m)];
          // near entries were pushed once per neighbour whose band they fell in: count those
          // of this neighbour's band that come before (tj, j)
          const float lo = s.lo[static_cast<size_t>(m)], hi = s.hi[static_cast<size_t>(m)];
          for (const Near& e : s.near)
            if (e.d >= lo && e.d <= hi && (e.d < tj || (e.d == tj && e.l < nb[m]))) ++rank;
          p += std::max<int64_t>(0, rank - k);
        }
        pen[static_cast<size_t>(i)] = p;
      });
  int64_t total = 0;
  for (int64_t v : pen) total += v;
  const double nn = static_cast<double>(n), kk = k;
  return 1.0 - static_cast<double>(total) * (2.0 / (nn * kk * (2.0 * nn - 3.0 * kk - 1.0)));
}

double knn_accuracy(const float* x, int64_t n, int64_t d, const int64_t* labels, int k) {
  CUVAE_CHECK(labels != nullptr, "knn_accuracy: null labels");
  check_knn_args(x, n, d, k, "knn_accuracy");
  std::vector<int64_t> nbr;
  std::vector<float> nd;
  knn_euclidean(x, n, d, k, nbr, nd);
  int64_t correct = 0;
#pragma omp parallel for schedule(static) reduction(+ : correct)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t* nb = nbr.data() + i * k;
    // votes of each neighbour's label (O(k²), k is small)
    int best_votes = 0;
    for (int m = 0; m < k; ++m) {
      int v = 0;
      for (int t = 0; t < k; ++t) v += labels[nb[t]] == labels[nb[m]];
      best_votes = std::max(best_votes, v);
    }
    // the nearest neighbour whose label has the most votes decides
    int64_t pred = labels[nb[0]];
    for (int m = 0; m < k; ++m) {
      int v = 0;
      for (int t = 0; t < k; ++t) v += labels[nb[t]] == labels[nb[m]];
      if (v == best_votes) {
        pred = labels[nb[m]];
        break;
      }
    }
    correct += pred == labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

// ---- t-SNE driver ----------------------------------------------------------------------------

TsneResult tsne_2d(Context& ctx, const float* x, int64_t n, int64_t d, const TsneOptions& opt) {
  CUVAE_CHECK(x != nullptr, "t-SNE: null input");
  if (n < 4) CUVAE_FAIL("t-SNE needs at least 4 points, got " << n);
  if (d < 1) CUVAE_FAIL("t-SNE needs at least 1 input feature, got d = " << d);
  check_perplexity(opt.perplexity, n);
  if (opt.iters < 1) CUVAE_FAIL(option("iters") << " must be >= 1, got " << opt.iters);
  if (opt.exaggeration_iters < 0)
    CUVAE_FAIL(option("exaggeration_iters") << " must be >= 0, got " << opt.exaggeration_iters);
  if (!(opt.early_exaggeration >= 1 && std::isfinite(opt.early_exaggeration)))
    CUVAE_FAIL(option("early_exaggeration") << " must be >= 1, got " << opt.early_exaggeration);
  if (!(opt.learning_rate >= 0 && std::isfinite(opt.learning_rate)))
    CUVAE_FAIL(option("learning_rate") << " must be > 0 (or 0 for auto), got " << opt.learning_rate);
  if (!(opt.theta >= 0 && opt.theta <= 1))
    CUVAE_FAIL(option("theta") << " must be in [0, 1], got " << opt.theta);

  bool exact = false;
  switch (opt.method) {
    case TsneMethod::Exact:
      if (n > kExactMax)
        CUVAE_FAIL(option("exact") << " supports at most " << kExactMax << " points (dense n x n P), got "
                                               << n << "; use " << option("approx"));
      exact = true;
      break;
    case TsneMethod::BarnesHut: exact = false; break;
    case TsneMethod::Auto: exact = n <= (ctx.is_cuda() ? kAutoExactCuda : kAutoExactCpu); break;
  }
  Schedule sch{opt.iters, opt.exaggeration_iters, opt.early_exaggeration,
               opt.learning_rate > 0
                   ? opt.learning_rate
                   : std::max(static_cast<double>(n) / opt.early_exaggeration / 4.0, 50.0)};

  // Initialisation: PCA scaled so that the first coordinate has standard deviation 1e-4.
  std::vector<double> Y(static_cast<size_t>(2 * n));
  {
    const PcaResult pca = pca_2d(x, n, d);
    double m = 0, s = 0;
    for (int64_t i = 0; i < n; ++i) m += pca.y[static_cast<size_t>(2 * i)];
    m /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) {
      const double t = pca.y[static_cast<size_t>(2 * i)] - m;
      s += t * t;
    }
    const double sd = std::sqrt(s / static_cast<double>(n));
    const double scale = sd > 0 ? 1e-4 / sd : 1.0;
    for (int64_t k = 0; k < 2 * n; ++k)
      Y[static_cast<size_t>(k)] = static_cast<double>(pca.y[static_cast<size_t>(k)]) * scale;
  }

  TsneResult res;
  res.iters = opt.iters;
  ProgressBar bar("t-SNE", opt.iters, opt.progress);
  std::vector<double> grad(static_cast<size_t>(2 * n)), update(static_cast<size_t>(2 * n), 0.0),
      gains(static_cast<size_t>(2 * n), 1.0);
  auto restart = [&]() {
    std::fill(update.begin(), update.end(), 0.0);
    std::fill(gains.begin(), gains.end(), 1.0);
  };

  if (exact && ctx.is_cuda()) {
    res.method = "exact-cuda";
    std::vector<float> P = joint_p_dense<float>(x, n, d, opt.perplexity);
    std::vector<float> yf(Y.begin(), Y.end()), ones(static_cast<size_t>(2 * n), 1.0f);
    Tensor dP({n, n}, Device::CUDA), dY({n, 2}, Device::CUDA), dG({n, 2}, Device::CUDA),
        dU({n, 2}, Device::CUDA), dGain({n, 2}, Device::CUDA);
    dP.copy_from(Tensor::view(P.data(), {n, n}, Device::CPU));
    dY.copy_from(Tensor::view(yf.data(), {n, 2}, Device::CPU));
    dGain.copy_from(Tensor::view(ones.data(), {n, 2}, Device::CPU));
    for (int it = 0; it < opt.iters; ++it) {
      if (sch.restart(it)) {
        dU.zero(ctx.stream());
        dGain.copy_from(Tensor::view(ones.data(), {n, 2}, Device::CPU));
      }
      tsne_grad_exact(ctx, dP, dY, static_cast<float>(sch.alpha(it)), dG);
      tsne_update(ctx, dY, dG, dU, dGain, static_cast<float>(sch.momentum(it)),
                  static_cast<float>(sch.lr), static_cast<float>(kMinGain));
      if (opt.progress && (it + 1) % 50 == 0) ctx.synchronize();  // keep the ETA honest
      bar.update(it + 1);
    }
    ctx.synchronize();
    yf = dY.to_vector();
    std::vector<float> gf(static_cast<size_t>(2 * n));
    float kl = 0;
    tsne_grad_exact_cpu<float>(P.data(), yf.data(), n, 1.0f, gf.data(), &kl);
    res.kl = kl;
    res.y = std::move(yf);
  } else if (exact) {
    res.method = "exact-cpu";
    const std::vector<double> P = joint_p_dense<double>(x, n, d, opt.perplexity);
    for (int it = 0; it < opt.iters; ++it) {
      if (sch.restart(it)) restart();
      tsne_grad_exact_cpu<double>(P.data(), Y.data(), n, sch.alpha(it), grad.data(), nullptr);
      tsne_update_cpu<double>(Y.data(), grad.data(), update.data(), gains.data(), 2 * n,
                              sch.momentum(it), sch.lr, kMinGain);
      bar.update(it + 1);
    }
    double kl = 0;
    tsne_grad_exact_cpu<double>(P.data(), Y.data(), n, 1.0, grad.data(), &kl);
    res.kl = kl;
  } else {
    res.method = "barnes-hut";
    const TsneSparseP P = tsne_joint_p_sparse(x, n, d, opt.perplexity);
    BhGradient bh;
    for (int it = 0; it < opt.iters; ++it) {
      if (sch.restart(it)) restart();
      bh(P, Y.data(), n, sch.alpha(it), opt.theta, grad.data());
      tsne_update_cpu<double>(Y.data(), grad.data(), update.data(), gains.data(), 2 * n,
                              sch.momentum(it), sch.lr, kMinGain);
      bar.update(it + 1);
    }
    const double Z = bh(P, Y.data(), n, 1.0, opt.theta, grad.data());
    res.kl = sparse_kl(P, Y.data(), Z);
  }
  if (res.y.empty()) res.y.assign(Y.begin(), Y.end());
  std::ostringstream os;
  os.precision(4);
  os << res.method << "  KL " << res.kl;
  bar.finish(os.str());
  return res;
}

}  // namespace cuvae
