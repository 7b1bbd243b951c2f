#include "engine/decode_attention.h"

#include <algorithm>
#include <limits>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include "core/error.h"
#include "engine/decode_attention_kernels.h"
#include "engine/worker_pool.h"

namespace grm::engine {

using namespace attention_detail;

namespace {

constexpr int kLanes = 16;  // independent partial sums: the compiler vectorizes them without reassociating
static_assert(kLanes == kDecodeAttentionHeadDimMultiple);  // the portable loops need D % kLanes == 0

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

// Rows [begin, end) of the (kv head, sequence) grid, head-major: consecutive rows of one kv head that share
// an origin re-read the same prefix rows while they are still in cache. One call per thread's range, so the
// per-ISA dispatch happens once, not per cache row.
template <typename T>
inline __attribute__((always_inline)) void heads(const Args<T>& a, int64_t begin, int64_t end) {
  const int64_t L = a.L, D = a.D, G = a.G;
  std::vector<float> scores(static_cast<size_t>(G * L));
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t h = bh / a.B, b = bh % a.B;
    const Own<T> own = own_positions(a, b, h, 0);
    const int64_t* visible = own.pos;
    const int64_t n = own.n;
    const float* m = own.mask;
    const float* qg = a.q + (b * a.H + h * G) * D;  // the G query heads of kv head h
    float* og = a.out + (b * a.H + h * G) * D;
    for (int64_t i = 0; i < G * D; ++i) og[i] = 0.0f;
    if (n == 0) continue;  // nothing visible: zeros (the matmul path would give NaN)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t l = visible[i];
      const T* krow = own.key(l);
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
      const int64_t l = visible[i];
      const T* vrow = own.value(l);
      for (int64_t g = 0; g < G; ++g) axpy(scores[static_cast<size_t>(g * L + i)], vrow, og + g * D, D);
    }
  }
}

}  // namespace

// One copy per x86 ISA level, picked at load time (the loops vectorize wider with AVX-512); elsewhere one.
#if defined(__x86_64__)
#define GRM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GRM_CLONES
#endif

namespace attention_detail {
GRM_CLONES void heads_portable(const Args<c10::BFloat16>& a, int64_t begin, int64_t end) {
  heads(a, begin, end);
}
GRM_CLONES void heads_portable(const Args<c10::Half>& a, int64_t begin, int64_t end) {
  heads(a, begin, end);
}
GRM_CLONES void heads_portable(const Args<float>& a, int64_t begin, int64_t end) {
  heads(a, begin, end);
}
}  // namespace attention_detail

namespace {

template <typename T>
void run(const at::Tensor& qf, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& maskf,
         const DecodeRows& rows, at::Tensor& outf, AttentionKernel kernel) {
  const int64_t B = qf.size(0), L = maskf.size(1);
  const int64_t mask_stride = maskf.size(0) == 1 ? 0 : L;
  // Positions each row reads, found once per row rather than once per (row, kv head).
  std::vector<int64_t> visible, visible_begin{0};
  visible.reserve(static_cast<size_t>(B * L));
  const float* mask = maskf.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const float* m = mask + b * mask_stride;
    for (int64_t l = 0; l < L; ++l)
      if (m[l] != -std::numeric_limits<float>::infinity()) visible.push_back(l);
    visible_begin.push_back(static_cast<int64_t>(visible.size()));
  }
  Args<T> a{keys.data_ptr<T>(),   values.data_ptr<T>(),  keys.stride(0),       keys.stride(1),
            keys.stride(2),       values.stride(0),      values.stride(1),     values.stride(2),
            qf.data_ptr<float>(), mask,                  mask_stride,          outf.data_ptr<float>(),
            B,                    keys.size(1),          qf.size(1),           qf.size(1) / keys.size(1),
            L,                    keys.size(3),          &rows,                visible.data(),
            visible_begin.data()};
  if (kernel != AttentionKernel::portable && avx2_kernel_available() && a.D % 8 == 0) return run_avx2(a);
  parallel_items(a.B * a.Hkv, [&](int64_t i) { heads_portable(a, i, i + 1); });
}

}  // namespace

bool decode_attention_supported(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values) {
  if (!q.defined() || !keys.defined() || !values.defined()) return false;
  const auto t = keys.scalar_type();
  if (t != at::kFloat && t != at::kBFloat16 && t != at::kHalf) return false;
  if (values.scalar_type() != t || (q.scalar_type() != at::kFloat && q.scalar_type() != at::kBFloat16)) return false;
  if (!keys.device().is_cpu() || keys.dim() != 4 || values.sizes() != keys.sizes()) return false;
  if (keys.stride(3) != 1 || values.stride(3) != 1) return false;
  return keys.size(3) % kDecodeAttentionHeadDimMultiple == 0 && q.dim() == 3 && q.size(1) % keys.size(1) == 0 && q.size(2) == keys.size(3);
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                            const at::Tensor& mask, const DecodeRows& rows, AttentionKernel kernel) {
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
    run<c10::BFloat16>(qf, keys, values, maskf, rows, outf, kernel);
  } else if (keys.scalar_type() == at::kHalf) {
    run<c10::Half>(qf, keys, values, maskf, rows, outf, kernel);
  } else {
    run<float>(qf, keys, values, maskf, rows, outf, kernel);
  }
  return outf.view({B, H * D}).to(q.scalar_type());
}

}  // namespace grm::engine
