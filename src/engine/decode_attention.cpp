#include "engine/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "core/error.h"

namespace grm::engine {

namespace {

constexpr int kLanes = 16;  // independent partial sums: the compiler vectorizes them without reassociating

inline float to_float(float x) { return x; }
inline float to_float(c10::BFloat16 x) {
  uint32_t bits = static_cast<uint32_t>(x.x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// e^x for x ≤ 0 (softmax after subtracting the max), branch-free so that loops over it vectorize: x = n·ln2 + r
// with |r| ≤ ln2/2 (ln2 split in two parts), e^r by its degree-6 Taylor polynomial (relative error < 2e-7),
// 2^n through the exponent bits. libm's expf is a call per element and was half of the kernel's time.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);  // keeps 2^n a normal float; e^-87 is below anything a softmax sum notices
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 · 2^23 trick)
  const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Σ q[d] · k[d] for d < D, D a multiple of kLanes.
template <typename T>
inline __attribute__((always_inline)) float dot(const float* q, const T* k, int64_t D) {
  float acc[kLanes] = {};
  for (int64_t d = 0; d < D; d += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += q[d + j] * to_float(k[d + j]);
  float s = 0;
  for (float a : acc) s += a;
  return s;
}

// out[d] += p · v[d]
template <typename T>
inline __attribute__((always_inline)) void axpy(float p, const T* v, float* out, int64_t D) {
  for (int64_t d = 0; d < D; ++d) out[d] += p * to_float(v[d]);
}

template <typename T>
struct Args {
  const T *kp, *vp;
  int64_t ks0, ks1, ks2, vs0, vs1, vs2;
  const float *q, *mask;
  int64_t mask_stride;
  float* out;
  int64_t B, Hkv, H, G, L, D;
  const DecodeRows* rows;
};

// Rows [begin, end) of the (kv head, sequence) grid, head-major: consecutive rows of one kv head that share
// an origin re-read the same prefix rows while they are still in cache. One call per thread's range, so the
// per-ISA dispatch happens once, not per cache row.
template <typename T>
inline __attribute__((always_inline)) void heads(const Args<T>& a, int64_t begin, int64_t end) {
  const int64_t L = a.L, D = a.D, G = a.G;
  std::vector<float> scores(static_cast<size_t>(G * L));
  std::vector<int64_t> visible;
  visible.reserve(static_cast<size_t>(L));
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t h = bh / a.B, b = bh % a.B;
    const float* m = a.mask + b * a.mask_stride;
    visible.clear();
    for (int64_t l = 0; l < L; ++l)
      if (m[l] != -std::numeric_limits<float>::infinity()) visible.push_back(l);
    const auto r = static_cast<size_t>(b);
    const int64_t shared = a.rows->shared[r];
    const T* kb = a.kp + a.rows->slot[r] * a.ks0 + h * a.ks1;
    const T* vb = a.vp + a.rows->slot[r] * a.vs0 + h * a.vs1;
    const T* kb_shared = a.kp + a.rows->origin[r] * a.ks0 + h * a.ks1;
    const T* vb_shared = a.vp + a.rows->origin[r] * a.vs0 + h * a.vs1;
    const float* qg = a.q + (b * a.H + h * G) * D;  // the G query heads of kv head h
    float* og = a.out + (b * a.H + h * G) * D;
    for (int64_t i = 0; i < G * D; ++i) og[i] = 0.0f;
    const auto n = static_cast<int64_t>(visible.size());
    if (n == 0) continue;  // nothing visible: zeros (the matmul path would give NaN)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t l = visible[static_cast<size_t>(i)];
      const T* krow = (l < shared ? kb_shared : kb) + l * a.ks2;
      for (int64_t g = 0; g < G; ++g) scores[static_cast<size_t>(g * L + i)] = dot(qg + g * D, krow, D) + m[l];
    }
    for (int64_t g = 0; g < G; ++g) {
      float* sc = scores.data() + g * L;
      float top = sc[0];
      for (int64_t i = 1; i < n; ++i) top = std::max(top, sc[i]);
      for (int64_t i = 0; i < n; ++i) sc[i] = exp_nonpositive(sc[i] - top);
      float part[kLanes] = {};
      int64_t i = 0;
      for (; i + kLanes <= n; i += kLanes)
        for (int u = 0; u < kLanes; ++u) part[u] += sc[i + u];
      float sum = 0;
      for (; i < n; ++i) sum += sc[i];
      for (float p : part) sum += p;
      const float inv = 1.0f / sum;
      for (int64_t i = 0; i < n; ++i) sc[i] *= inv;
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t l = visible[static_cast<size_t>(i)];
      const T* vrow = (l < shared ? vb_shared : vb) + l * a.vs2;
      for (int64_t g = 0; g < G; ++g) axpy(scores[static_cast<size_t>(g * L + i)], vrow, og + g * D, D);
    }
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void heads_bf16(const Args<c10::BFloat16>& a,
                                                                             int64_t begin, int64_t end) {
  heads(a, begin, end);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void heads_f32(const Args<float>& a, int64_t begin,
                                                                            int64_t end) {
  heads(a, begin, end);
}

template <typename T>
void run(const at::Tensor& qf, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& maskf,
         const DecodeRows& rows, at::Tensor& outf) {
  Args<T> a{keys.data_ptr<T>(), values.data_ptr<T>(),
            keys.stride(0),     keys.stride(1),
            keys.stride(2),     values.stride(0),
            values.stride(1),   values.stride(2),
            qf.data_ptr<float>(), maskf.data_ptr<float>(),
            maskf.size(0) == 1 ? 0 : maskf.size(1), outf.data_ptr<float>(),
            qf.size(0),         keys.size(1),
            qf.size(1),         qf.size(1) / keys.size(1),
            maskf.size(1),      keys.size(3),
            &rows};
  at::parallel_for(0, a.B * a.Hkv, 1, [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, float>) {
      heads_f32(a, begin, end);
    } else {
      heads_bf16(a, begin, end);
    }
  });
}

}  // namespace

bool decode_attention_supported(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values) {
  if (!q.defined() || !keys.defined() || !values.defined()) return false;
  const auto t = keys.scalar_type();
  if (t != at::kFloat && t != at::kBFloat16) return false;
  if (q.scalar_type() != t || values.scalar_type() != t) return false;
  if (!keys.device().is_cpu() || keys.dim() != 4 || values.sizes() != keys.sizes()) return false;
  if (keys.stride(3) != 1 || values.stride(3) != 1) return false;
  return keys.size(3) % kLanes == 0 && q.dim() == 3 && q.size(1) % keys.size(1) == 0 && q.size(2) == keys.size(3);
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                            const at::Tensor& mask, const DecodeRows& rows) {
  RECORD_FUNCTION("grm::decode_attention", std::vector<c10::IValue>());  // named in `grm bench decode --profile`
  if (!decode_attention_supported(q, keys, values)) throw Error("decode_attention: unsupported tensors");
  const int64_t B = q.size(0), L = mask.size(-1), H = q.size(1), D = q.size(2), Bc = keys.size(0);
  if (L > keys.size(2)) throw Error("decode_attention: mask is longer than the cache");
  const auto n = static_cast<size_t>(B);
  if (rows.slot.size() != n || rows.origin.size() != n || rows.shared.size() != n)
    throw Error("decode_attention: one slot, origin and shared length per row");
  for (size_t r = 0; r < n; ++r)
    if (rows.slot[r] < 0 || rows.slot[r] >= Bc || rows.origin[r] < 0 || rows.origin[r] >= Bc || rows.shared[r] < 0)
      throw Error("decode_attention: row " + std::to_string(r) + " names a slot outside the cache");
  const at::Tensor qf = q.to(at::kFloat).contiguous();
  const at::Tensor maskf = mask.to(at::kFloat).contiguous().view({-1, L});
  if (maskf.size(0) != 1 && maskf.size(0) != B) throw Error("decode_attention: mask batch must be 1 or B");
  at::Tensor outf = at::empty({B, H, D}, at::kFloat);
  if (keys.scalar_type() == at::kBFloat16) {
    run<c10::BFloat16>(qf, keys, values, maskf, rows, outf);
  } else {
    run<float>(qf, keys, values, maskf, rows, outf);
  }
  return outf.view({B, H * D}).to(q.scalar_type());
}

}  // namespace grm::engine
