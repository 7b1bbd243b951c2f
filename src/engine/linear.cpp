#include "engine/linear.h"

#include <algorithm>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include "engine/worker_pool.h"

#if defined(__x86_64__)
#include "engine/avx2.h"

namespace grm::engine {

namespace {

using avx2::hsum;

// The operands of one product: rows x[r] (stride K), output rows y[r] (stride N); W's rows are ldw apart
// (k-rows when transposed, n-rows otherwise).
struct Operands {
  const float* x;
  const float* w;
  const float* bias;  // or nullptr
  float* y;
  int64_t rows, K, N, ldw;
};

// The accumulators below are named variables, not arrays: with `__m256 acc[R][V]` GCC 12 stored every
// accumulator to the stack after each FMA, which halved the kernel's speed (measured: 31 against 62-78
// GFLOP/s on one core).

GRM_AVX2 void store3(float* y, __m256 v0, __m256 v1, __m256 v2, __m256 b0, __m256 b1, __m256 b2) {
  _mm256_storeu_ps(y, _mm256_add_ps(v0, b0));
  _mm256_storeu_ps(y + 8, _mm256_add_ps(v1, b1));
  _mm256_storeu_ps(y + 16, _mm256_add_ps(v2, b2));
}

// W stored transposed: row k of W holds the k-th input's weight for every output (w[k * ldw + n]). Rows x[0..R)
// (R <= 4) times 24 output columns from n on, accumulated in 12 registers while W's rows stream by once.
template <int R>
GRM_AVX2 void block24_transposed(const Operands& o, const float* x, float* y, int64_t n) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  const float* w = o.w + n;
  const int64_t K = o.K;
  for (int64_t k = 0; k < K; ++k, w += o.ldw) {
    const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8), w2 = _mm256_loadu_ps(w + 16);
    __m256 a = _mm256_broadcast_ss(x + k);
    c00 = _mm256_fmadd_ps(a, w0, c00), c01 = _mm256_fmadd_ps(a, w1, c01), c02 = _mm256_fmadd_ps(a, w2, c02);
    if constexpr (R > 1) {
      a = _mm256_broadcast_ss(x + K + k);
      c10 = _mm256_fmadd_ps(a, w0, c10), c11 = _mm256_fmadd_ps(a, w1, c11), c12 = _mm256_fmadd_ps(a, w2, c12);
    }
    if constexpr (R > 2) {
      a = _mm256_broadcast_ss(x + 2 * K + k);
      c20 = _mm256_fmadd_ps(a, w0, c20), c21 = _mm256_fmadd_ps(a, w1, c21), c22 = _mm256_fmadd_ps(a, w2, c22);
    }
    if constexpr (R > 3) {
      a = _mm256_broadcast_ss(x + 3 * K + k);
      c30 = _mm256_fmadd_ps(a, w0, c30), c31 = _mm256_fmadd_ps(a, w1, c31), c32 = _mm256_fmadd_ps(a, w2, c32);
    }
  }
  const __m256 b0 = o.bias ? _mm256_loadu_ps(o.bias + n) : _mm256_setzero_ps();
  const __m256 b1 = o.bias ? _mm256_loadu_ps(o.bias + n + 8) : _mm256_setzero_ps();
  const __m256 b2 = o.bias ? _mm256_loadu_ps(o.bias + n + 16) : _mm256_setzero_ps();
  store3(y + n, c00, c01, c02, b0, b1, b2);
  if constexpr (R > 1) store3(y + o.N + n, c10, c11, c12, b0, b1, b2);
  if constexpr (R > 2) store3(y + 2 * o.N + n, c20, c21, c22, b0, b1, b2);
  if constexpr (R > 3) store3(y + 3 * o.N + n, c30, c31, c32, b0, b1, b2);
}

// The same for 8 columns (the tail of N after the 24-column blocks).
template <int R>
GRM_AVX2 void block8_transposed(const Operands& o, const float* x, float* y, int64_t n) {
  __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
  const float* w = o.w + n;
  const int64_t K = o.K;
  for (int64_t k = 0; k < K; ++k, w += o.ldw) {
    const __m256 w0 = _mm256_loadu_ps(w);
    c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + k), w0, c0);
    if constexpr (R > 1) c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + K + k), w0, c1);
    if constexpr (R > 2) c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 2 * K + k), w0, c2);
    if constexpr (R > 3) c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 3 * K + k), w0, c3);
  }
  const __m256 b = o.bias ? _mm256_loadu_ps(o.bias + n) : _mm256_setzero_ps();
  _mm256_storeu_ps(y + n, _mm256_add_ps(c0, b));
  if constexpr (R > 1) _mm256_storeu_ps(y + o.N + n, _mm256_add_ps(c1, b));
  if constexpr (R > 2) _mm256_storeu_ps(y + 2 * o.N + n, _mm256_add_ps(c2, b));
  if constexpr (R > 3) _mm256_storeu_ps(y + 3 * o.N + n, _mm256_add_ps(c3, b));
}

// All rows, 24 (Wide) or 8 columns from n on. Within a strip of columns all row blocks run before the next
// strip, so the strip of W (K × 96 bytes) comes from memory once and from L1/L2 for the other row blocks.
template <bool Wide, int R>
GRM_AVX2 void block(const Operands& o, int64_t m, int64_t n) {
  if constexpr (Wide) {
    block24_transposed<R>(o, o.x + m * o.K, o.y + m * o.N, n);
  } else {
    block8_transposed<R>(o, o.x + m * o.K, o.y + m * o.N, n);
  }
}
template <bool Wide>
GRM_AVX2 void row_blocks(const Operands& o, int64_t n) {
  int64_t m = 0;
  for (; m + 4 <= o.rows; m += 4) block<Wide, 4>(o, m, n);
  switch (o.rows - m) {
    case 3: return block<Wide, 3>(o, m, n);
    case 2: return block<Wide, 2>(o, m, n);
    case 1: return block<Wide, 1>(o, m, n);
    default: return;
  }
}

GRM_AVX2_TARGET void span_transposed(const Operands& o, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 24 <= n1; n += 24) row_blocks<true>(o, n);
  for (; n + 8 <= n1; n += 8) row_blocks<false>(o, n);
  for (; n < n1; ++n)  // fewer than 8 columns left (N not a multiple of 8)
    for (int64_t r = 0; r < o.rows; ++r) {
      float s = o.bias ? o.bias[n] : 0.0f;
      for (int64_t k = 0; k < o.K; ++k) s += o.x[r * o.K + k] * o.w[k * o.ldw + n];
      o.y[r * o.N + n] = s;
    }
}

// W as loaded: row n of W is output n's weights (w[n * ldw + k]). Rows x[0..R) (R <= 2) times 4 outputs from n
// on, as dot products; each 8-float chunk of W serves both rows.
template <int R>
GRM_AVX2 void dot4_rowmajor(const Operands& o, const float* x, float* y, int64_t n) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  const float *w0 = o.w + n * o.ldw, *w1 = w0 + o.ldw, *w2 = w1 + o.ldw, *w3 = w2 + o.ldw;
  const int64_t K = o.K, K8 = K / 8 * 8;
  for (int64_t k = 0; k < K8; k += 8) {
    const __m256 v0 = _mm256_loadu_ps(w0 + k), v1 = _mm256_loadu_ps(w1 + k), v2 = _mm256_loadu_ps(w2 + k),
                 v3 = _mm256_loadu_ps(w3 + k);
    const __m256 a = _mm256_loadu_ps(x + k);
    c00 = _mm256_fmadd_ps(a, v0, c00), c01 = _mm256_fmadd_ps(a, v1, c01);
    c02 = _mm256_fmadd_ps(a, v2, c02), c03 = _mm256_fmadd_ps(a, v3, c03);
    if constexpr (R > 1) {
      const __m256 b = _mm256_loadu_ps(x + K + k);
      c10 = _mm256_fmadd_ps(b, v0, c10), c11 = _mm256_fmadd_ps(b, v1, c11);
      c12 = _mm256_fmadd_ps(b, v2, c12), c13 = _mm256_fmadd_ps(b, v3, c13);
    }
  }
  const float* w[4] = {w0, w1, w2, w3};
  const __m256 sums[2][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}};
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < 4; ++c) {
      float s = hsum(sums[r][c]);
      for (int64_t k = K8; k < K; ++k) s += x[r * K + k] * w[c][k];
      y[r * o.N + n + c] = s + (o.bias ? o.bias[n + c] : 0.0f);
    }
}

GRM_AVX2_TARGET void span_rowmajor(const Operands& o, int64_t n0, int64_t n1) {
  for (int64_t r = 0; r < o.rows; r += 2) {
    const float* x = o.x + r * o.K;
    float* y = o.y + r * o.N;
    const bool pair = r + 1 < o.rows;
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4) pair ? dot4_rowmajor<2>(o, x, y, n) : dot4_rowmajor<1>(o, x, y, n);
    for (; n < n1; ++n)
      for (int64_t i = 0; i < (pair ? 2 : 1); ++i) {
        float s = o.bias ? o.bias[n] : 0.0f;
        for (int64_t k = 0; k < o.K; ++k) s += x[i * o.K + k] * o.w[n * o.ldw + k];
        y[i * o.N + n] = s;
      }
  }
}

void run(const Operands& o, bool transposed) {
  // Below ~2^17 multiply-adds (~10 µs on one core) a second thread costs more than it saves.
  const int threads = o.rows * o.K * o.N >= (int64_t{1} << 17) ? worker_threads() : 1;
  const int64_t pieces = std::max<int64_t>(1, std::min<int64_t>(4 * threads, o.N / 48));
  const int64_t width = ((o.N + pieces - 1) / pieces + 23) / 24 * 24;  // whole 24-column blocks
  const int64_t items = (o.N + width - 1) / width;
  auto item = [&](int64_t i) {
    const int64_t n0 = i * width, n1 = std::min(o.N, n0 + width);
    if (transposed) {
      span_transposed(o, n0, n1);
    } else {
      span_rowmajor(o, n0, n1);
    }
  };
  if (threads > 1) {
    parallel_items(items, item);
  } else {
    for (int64_t i = 0; i < items; ++i) item(i);
  }
}

// w[n][k] at n + k·ldw (transposed storage) rather than at n·ldw + k.
bool stored_transposed(const at::Tensor& w) { return w.stride(1) != 1 || (w.stride(0) == 1 && w.size(0) > 1); }

}  // namespace

bool small_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  if (!avx2::cpu_has_avx2() || at::GradMode::is_enabled()) return false;
  if (x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || !x.device().is_cpu() || !w.device().is_cpu())
    return false;
  if (x.layout() != at::kStrided || w.layout() != at::kStrided) return false;
  if (w.dim() != 2 || x.dim() < 1 || x.size(-1) != w.size(1) || x.numel() == 0 || w.numel() == 0) return false;
  if (w.stride(1) != 1 && w.stride(0) != 1) return false;  // rows of W, one way or the other
  const int64_t rows = x.numel() / x.size(-1);
  const bool cached = w.numel() * static_cast<int64_t>(sizeof(float)) <= kCachedWeightBytes;
  if (stored_transposed(w) ? rows > (cached ? kMaxRowsTransposed : 4) : rows > (cached ? kMaxRowsRowMajor : 2))
    return false;
  if (bias.defined() && (bias.scalar_type() != at::kFloat || !bias.device().is_cpu() ||
                         bias.layout() != at::kStrided || bias.dim() != 1 || bias.size(0) != w.size(0) ||
                         !bias.is_contiguous()))
    return false;
  return true;
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  if (!small_linear_applies(x, w, bias)) return at::linear(x, w, bias);
  RECORD_FUNCTION("grm::linear", std::vector<c10::IValue>());  // named in `grm bench decode --profile`
  const int64_t K = w.size(1), N = w.size(0);
  const at::Tensor xc = x.contiguous();
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = N;
  at::Tensor y = at::empty(shape, x.options());
  const bool transposed = stored_transposed(w);
  run(Operands{xc.data_ptr<float>(), w.data_ptr<float>(), bias.defined() ? bias.data_ptr<float>() : nullptr,
               y.data_ptr<float>(), xc.numel() / K, K, N, transposed ? w.stride(1) : w.stride(0)},
      transposed);
  return y;
}

}  // namespace grm::engine

#else  // not x86-64: at::linear everywhere

namespace grm::engine {
bool small_linear_applies(const at::Tensor&, const at::Tensor&, const at::Tensor&) { return false; }
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) { return at::linear(x, w, bias); }
}  // namespace grm::engine

#endif
