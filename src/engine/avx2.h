// Pieces shared by the engine's AVX2 kernels (decode attention, engine::linear, the KV cache's row writes).
// x86-64 only: include inside `#if defined(__x86_64__)`. "AVX2" here means AVX2 + FMA + F16C (every CPU with
// AVX2 so far has the other two; a VM that hides F16C loses these kernels, not correctness). Functions marked
// GRM_AVX2 are compiled for that ISA whatever the TU's flags, so callers must check cpu_has_avx2() first (or
// be GRM_AVX2 / GRM_AVX2_TARGET themselves).
#pragma once
#include <immintrin.h>

#define GRM_AVX2_TARGET __attribute__((target("avx2,fma,f16c")))
#define GRM_AVX2 __attribute__((target("avx2,fma,f16c"), always_inline)) inline

namespace grm::engine::avx2 {

// Whether this CPU runs AVX2, FMA and F16C (checked once).
inline bool cpu_has_avx2() {
  static const bool yes =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return yes;
}

// v[0] + v[1] + ... + v[7]
GRM_AVX2 float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace grm::engine::avx2
