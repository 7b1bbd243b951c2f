// Internals shared by the two decode-attention kernels (decode_attention.cpp: dispatch and the portable
// kernel; decode_attention_avx2.cpp: the AVX2 + FMA kernel). Not part of the engine's interface.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "engine/decode_attention.h"

namespace grm::engine::attention_detail {

inline float to_float(float x) { return x; }
inline float to_float(c10::BFloat16 x) {
  uint32_t bits = static_cast<uint32_t>(x.x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline float to_float(c10::Half x) { return static_cast<float>(x); }

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

// What a kernel reads: the layer's cache (strides of [Bc, Hkv, C, D]), the queries [B, H, D] in float32 and
// already scaled, the additive mask [B|1, L], the rows' slots, and the positions each row reads.
template <typename T>
struct Args {
  const T *kp, *vp;
  int64_t ks0, ks1, ks2, vs0, vs1, vs2;
  const float *q, *mask;
  int64_t mask_stride;
  float* out;
  int64_t B, Hkv, H, G, L, D;
  const DecodeRows* rows;
  const int64_t* visible;        // the positions each row reads (mask not -inf), rows one after another
  const int64_t* visible_begin;  // row b's positions: visible[visible_begin[b] .. visible_begin[b + 1])
};

// The positions row b reads from `common` on (pos[from, n)) and where their K/V rows are, for kv head h:
// its own slot, or its origin below its shared length.
template <typename T>
struct Own {
  const int64_t* pos;
  int64_t from, n, shared;
  const T *k, *v, *k_shared, *v_shared;
  const float* mask;
  int64_t ks2, vs2;
  const T* key(int64_t l) const { return (l < shared ? k_shared : k) + l * ks2; }
  const T* value(int64_t l) const { return (l < shared ? v_shared : v) + l * vs2; }
};

template <typename T>
Own<T> own_positions(const Args<T>& a, int64_t b, int64_t h, int64_t common) {
  const auto rb = static_cast<size_t>(b);
  Own<T> o;
  o.pos = a.visible + a.visible_begin[b];
  o.n = a.visible_begin[b + 1] - a.visible_begin[b];
  o.from = std::lower_bound(o.pos, o.pos + o.n, common) - o.pos;
  o.shared = a.rows->shared[rb];
  o.k = a.kp + a.rows->slot[rb] * a.ks0 + h * a.ks1;
  o.v = a.vp + a.rows->slot[rb] * a.vs0 + h * a.vs1;
  o.k_shared = a.kp + a.rows->origin[rb] * a.ks0 + h * a.ks1;
  o.v_shared = a.vp + a.rows->origin[rb] * a.vs0 + h * a.vs1;
  o.mask = a.mask + b * a.mask_stride;
  o.ks2 = a.ks2;
  o.vs2 = a.vs2;
  return o;
}

// The portable kernel over rows [begin, end) of the (kv head, row) grid, head-major.
void heads_portable(const Args<float>& a, int64_t begin, int64_t end);
void heads_portable(const Args<c10::BFloat16>& a, int64_t begin, int64_t end);
void heads_portable(const Args<c10::Half>& a, int64_t begin, int64_t end);

// The AVX2 kernel (AVX2 + FMA + F16C, avx2.h): true where the CPU has them (x86-64 only). run_avx2 needs a.D % 8 == 0.
bool avx2_kernel_available();
void run_avx2(const Args<float>& a);
void run_avx2(const Args<c10::BFloat16>& a);
void run_avx2(const Args<c10::Half>& a);

}  // namespace grm::engine::attention_detail
