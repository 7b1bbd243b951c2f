#include "engine/fused_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>

#include "core/error.h"
#include "engine/worker_pool.h"

#if defined(__x86_64__)
#include "engine/avx2.h"
#endif

namespace grm::engine {

#if defined(__x86_64__)

namespace {

using avx2::exp8;
using avx2::hsum;

float silu1(float g) { return g / (1.0f + std::exp(-g)); }

GRM_AVX2_TARGET void rms_rows(const float* x, int64_t rows, int64_t n, int64_t ldx, const float* w, float eps,
                              float* y) {
  const int64_t n8 = n / 8 * 8;
  for (int64_t r = 0; r < rows; ++r, x += ldx, y += n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 16 <= n8; i += 16) {
      const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
      a0 = _mm256_fmadd_ps(v0, v0, a0);
      a1 = _mm256_fmadd_ps(v1, v1, a1);
    }
    for (; i < n8; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(x + i), a0);
    float ss = hsum(_mm256_add_ps(a0, a1));
    for (; i < n; ++i) ss += x[i] * x[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    const __m256 s = _mm256_set1_ps(inv);
    for (i = 0; i < n8; i += 8)
      _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s), _mm256_loadu_ps(w + i)));
    for (; i < n; ++i) y[i] = x[i] * inv * w[i];
  }
}

GRM_AVX2_TARGET void silu_mul_rows(const float* gu, int64_t rows, int64_t inter, int64_t ldgu, float* y) {
  const int64_t n8 = inter / 8 * 8;
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  for (int64_t r = 0; r < rows; ++r, gu += ldgu, y += inter) {
    const float* g = gu;
    const float* u = gu + inter;
    int64_t i = 0;
    for (; i < n8; i += 8) {
      const __m256 gv = _mm256_loadu_ps(g + i);
      const __m256 s = _mm256_div_ps(gv, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, gv))));
      _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < inter; ++i) y[i] = silu1(g[i]) * u[i];
  }
}

// One head: out[d] = x[d]·c[d] + x[(d + D/2) mod D]·s[d], times scale.
GRM_AVX2_TARGET void rotate_head(const float* x, const float* c, const float* s, int64_t D, float scale, float* out) {
  const int64_t half = D / 2;
  if (half % 8 != 0) {
    for (int64_t d = 0; d < D; ++d) out[d] = (x[d] * c[d] + x[(d + half) % D] * s[d]) * scale;
    return;
  }
  const __m256 sc = _mm256_set1_ps(scale);
  for (int64_t d = 0; d < half; d += 8) {
    const __m256 lo = _mm256_loadu_ps(x + d), hi = _mm256_loadu_ps(x + half + d);
    const __m256 a = _mm256_add_ps(_mm256_mul_ps(lo, _mm256_loadu_ps(c + d)), _mm256_mul_ps(hi, _mm256_loadu_ps(s + d)));
    const __m256 b = _mm256_add_ps(_mm256_mul_ps(hi, _mm256_loadu_ps(c + half + d)),
                                   _mm256_mul_ps(lo, _mm256_loadu_ps(s + half + d)));
    _mm256_storeu_ps(out + d, _mm256_mul_ps(a, sc));
    _mm256_storeu_ps(out + half + d, _mm256_mul_ps(b, sc));
  }
}

// The distance between consecutive rows of x [..., n] (the flattened leading dimensions), or -1 when they are
// not evenly spaced.
int64_t row_stride(const at::Tensor& x) {
  int64_t stride = -1, expect = 0;
  for (int64_t d = x.dim() - 2; d >= 0; --d) {
    if (x.size(d) == 1) continue;  // any stride
    if (stride < 0) {
      stride = x.stride(d);
    } else if (x.stride(d) != expect) {
      return -1;
    }
    expect = x.stride(d) * x.size(d);
  }
  return stride < 0 ? x.size(-1) : stride;
}

// fn(begin, end) over [0, rows), split over the worker pool when there is enough work (prefill).
template <typename Fn>
void for_rows(int64_t rows, int64_t row_elements, Fn fn) {
  const int64_t pieces = std::min<int64_t>(rows, 4 * worker_threads());
  if (pieces < 2 || rows * row_elements < (int64_t{1} << 16)) return fn(int64_t{0}, rows);
  parallel_items(pieces, [&](int64_t i) { fn(rows * i / pieces, rows * (i + 1) / pieces); });
}

}  // namespace

bool fused_ops_apply(const at::Tensor& x) {
  return avx2::cpu_has_avx2() && !at::GradMode::is_enabled() && x.defined() && x.scalar_type() == at::kFloat &&
         x.device().is_cpu() && x.layout() == at::kStrided && x.dim() >= 1 && x.stride(-1) == 1;
}

bool fused_rows_apply(const at::Tensor& x) { return fused_ops_apply(x) && x.dim() >= 2 && row_stride(x) >= 0; }

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (!fused_rows_apply(x) || weight.scalar_type() != at::kFloat || !weight.is_contiguous() || weight.dim() != 1 ||
      weight.size(0) != x.size(-1))
    throw Error("rms_norm: needs float32 x [..., n] (last dimension contiguous, rows evenly spaced) and weight [n]");
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1), ldx = row_stride(x);
  at::Tensor y = at::empty(x.sizes(), x.options());
  const float *xp = x.data_ptr<float>(), *wp = weight.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for_rows(rows, n, [&](int64_t r0, int64_t r1) {
    rms_rows(xp + r0 * ldx, r1 - r0, n, ldx, wp, static_cast<float>(eps), yp + r0 * n);
  });
  return y;
}

at::Tensor silu_mul(const at::Tensor& gu, int64_t inter) {
  if (!fused_rows_apply(gu) || gu.size(-1) != 2 * inter)
    throw Error("silu_mul: needs float32 gu [..., 2·inter] (last dimension contiguous, rows evenly spaced)");
  std::vector<int64_t> shape(gu.sizes().begin(), gu.sizes().end());
  shape.back() = inter;
  at::Tensor y = at::empty(shape, gu.options());
  const int64_t rows = gu.numel() / std::max<int64_t>(2 * inter, 1), ld = row_stride(gu);
  const float* gp = gu.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for_rows(rows, 2 * inter, [&](int64_t r0, int64_t r1) {
    silu_mul_rows(gp + r0 * ld, r1 - r0, inter, ld, yp + r0 * inter);
  });
  return y;
}

std::pair<at::Tensor, at::Tensor> rotary_qk(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                            int64_t H, double q_scale) {
  if (!fused_ops_apply(x) || x.dim() != 4 || cos.dim() != 4 || sin.sizes() != cos.sizes() ||
      cos.scalar_type() != at::kFloat || sin.scalar_type() != at::kFloat || cos.stride(-1) != 1 ||
      sin.stride(-1) != 1)
    throw Error("rotary_qk: needs float32 x [B, T, H + Hkv, D] and cos / sin [B|1, T, 1, D]");
  const int64_t B = x.size(0), T = x.size(1), Hx = x.size(2), D = x.size(3), Bc = cos.size(0);
  if (H < 0 || H > Hx || D % 2 != 0 || (Bc != 1 && Bc != B) || cos.size(1) != T || cos.size(3) != D)
    throw Error("rotary_qk: shapes do not fit");
  at::Tensor q = at::empty({B, T, H, D}, x.options()), k = at::empty({B, T, Hx - H, D}, x.options());
  const float* xp = x.data_ptr<float>();
  const float *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>();
  for_rows(B * T, Hx * D, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / T, t = r % T, cb = Bc == 1 ? 0 : b;
      const float* c = cp + cb * cos.stride(0) + t * cos.stride(1);
      const float* s = sp + cb * sin.stride(0) + t * sin.stride(1);
      const float* row = xp + b * x.stride(0) + t * x.stride(1);
      for (int64_t h = 0; h < Hx; ++h) {
        const bool is_q = h < H;
        float* out = is_q ? qp + ((b * T + t) * H + h) * D : kp + ((b * T + t) * (Hx - H) + h - H) * D;
        rotate_head(row + h * x.stride(2), c, s, D, is_q ? static_cast<float>(q_scale) : 1.0f, out);
      }
    }
  });
  return {q, k};
}

#else  // not x86-64: callers keep the ATen path

bool fused_ops_apply(const at::Tensor&) { return false; }
bool fused_rows_apply(const at::Tensor&) { return false; }
at::Tensor rms_norm(const at::Tensor&, const at::Tensor&, double) { throw Error("rms_norm: no fused kernel here"); }
at::Tensor silu_mul(const at::Tensor&, int64_t) { throw Error("silu_mul: no fused kernel here"); }
std::pair<at::Tensor, at::Tensor> rotary_qk(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, double) {
  throw Error("rotary_qk: no fused kernel here");
}

#endif

}  // namespace grm::engine
