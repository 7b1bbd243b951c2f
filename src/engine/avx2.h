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

// e^x on 8 lanes for x clamped to [-87, 88] (2^n stays a normal float; e^-87 is below anything a softmax sum
// notices): x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two parts), e^r by its degree-6 Taylor polynomial
// (relative error < 2e-7), 2^n through the exponent bits. libm's expf is a call per element.
GRM_AVX2 __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r =
      _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x));
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

}  // namespace grm::engine::avx2
