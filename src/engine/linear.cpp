#include "engine/linear.h"

#include <algorithm>
#include <vector>

#include <ATen/ATen.h>

#include "engine/worker_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace grm::engine {

namespace {

#define GRM_AVX2 __attribute__((target("avx2,fma"), always_inline)) inline

bool avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// The operands of one product: rows x[r] (stride K), output rows y[r] (stride N); W's rows are ldw apart
// (k-rows when transposed, n-rows otherwise).
struct Operands {
  const float* x;
  const float* w;
  const float* bias;  // or nullptr
  float* y;
  int64_t rows, K, N, ldw;
};

GRM_AVX2 float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// W stored transposed: row k of W holds the k-th input's weight for every output (w[k * N + n]). R rows ×
// 8·V output columns from n on, accumulated in registers while W's rows stream by once.
template <int R, int V>
GRM_AVX2 void columns_transposed(const Operands& o, int64_t n) {
  __m256 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j) acc[r][j] = _mm256_setzero_ps();
  const float* w = o.w + n;
  for (int64_t k = 0; k < o.K; ++k, w += o.ldw) {
    __m256 wv[V];
    for (int j = 0; j < V; ++j) wv[j] = _mm256_loadu_ps(w + 8 * j);
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(o.x + r * o.K + k);
      for (int j = 0; j < V; ++j) acc[r][j] = _mm256_fmadd_ps(a, wv[j], acc[r][j]);
    }
  }
  for (int j = 0; j < V; ++j) {
    const __m256 b = o.bias ? _mm256_loadu_ps(o.bias + n + 8 * j) : _mm256_setzero_ps();
    for (int r = 0; r < R; ++r) _mm256_storeu_ps(o.y + r * o.N + n + 8 * j, _mm256_add_ps(acc[r][j], b));
  }
}

// W as loaded: row n of W is output n's weights (w[n * K + k]). R rows × C outputs from n on, as dot products.
template <int R, int C>
GRM_AVX2 void columns_rowmajor(const Operands& o, int64_t n) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  const int64_t K8 = o.K / 8 * 8;
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 xv[R];
    for (int r = 0; r < R; ++r) xv[r] = _mm256_loadu_ps(o.x + r * o.K + k);
    for (int c = 0; c < C; ++c) {
      const __m256 wv = _mm256_loadu_ps(o.w + (n + c) * o.ldw + k);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = hsum(acc[r][c]);
      for (int64_t k = K8; k < o.K; ++k) s += o.x[r * o.K + k] * o.w[(n + c) * o.ldw + k];
      o.y[r * o.N + n + c] = s + (o.bias ? o.bias[n + c] : 0.0f);
    }
}

template <int R>
__attribute__((target("avx2,fma"))) void span_transposed(const Operands& o, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 24 <= n1; n += 24) columns_transposed<R, 3>(o, n);
  for (; n + 8 <= n1; n += 8) columns_transposed<R, 1>(o, n);
  for (; n < n1; ++n)  // fewer than 8 columns left (N not a multiple of 8)
    for (int r = 0; r < R; ++r) {
      float s = o.bias ? o.bias[n] : 0.0f;
      for (int64_t k = 0; k < o.K; ++k) s += o.x[r * o.K + k] * o.w[k * o.ldw + n];
      o.y[r * o.N + n] = s;
    }
}

template <int R>
__attribute__((target("avx2,fma"))) void span_rowmajor(const Operands& o, int64_t n0, int64_t n1) {
  int64_t n = n0;
  constexpr int C = R <= 2 ? 4 : 2;
  for (; n + C <= n1; n += C) columns_rowmajor<R, C>(o, n);
  for (; n < n1; ++n) columns_rowmajor<R, 1>(o, n);
}

template <int R>
void span(const Operands& o, bool transposed, int64_t n0, int64_t n1) {
  if (transposed) {
    span_transposed<R>(o, n0, n1);
  } else {
    span_rowmajor<R>(o, n0, n1);
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
    switch (o.rows) {
      case 1: return span<1>(o, transposed, n0, n1);
      case 2: return span<2>(o, transposed, n0, n1);
      case 3: return span<3>(o, transposed, n0, n1);
      default: return span<4>(o, transposed, n0, n1);
    }
  };
  if (threads > 1) {
    parallel_items(items, item);
  } else {
    for (int64_t i = 0; i < items; ++i) item(i);
  }
}

}  // namespace

bool small_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  if (!avx2_fma() || at::GradMode::is_enabled()) return false;
  if (x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || !x.device().is_cpu() || !w.device().is_cpu())
    return false;
  if (w.dim() != 2 || x.dim() < 1 || x.size(-1) != w.size(1) || x.numel() == 0) return false;
  if (x.numel() / x.size(-1) > kSmallRows) return false;
  if (w.stride(1) != 1 && w.stride(0) != 1) return false;  // rows of W, one way or the other
  if (bias.defined() && (bias.scalar_type() != at::kFloat || bias.dim() != 1 || bias.size(0) != w.size(0) ||
                         !bias.is_contiguous()))
    return false;
  return true;
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  if (!small_linear_applies(x, w, bias)) return at::linear(x, w, bias);
  const int64_t K = w.size(1), N = w.size(0);
  const at::Tensor xc = x.contiguous();
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = N;
  at::Tensor y = at::empty(shape, x.options());
  const bool transposed = w.stride(1) != 1 || (w.stride(0) == 1 && N > 1);  // w[n][k] at n + k·ldw
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
