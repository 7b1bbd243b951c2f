#include "engine/linear.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include "core/error.h"
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
  const float* w;         // float32 weights: as loaded, transposed or packed
  const uint16_t* w_bf16;  // bfloat16 packed panels (Storage::packed_bf16)
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

// Rows xk[0], xk[K], xk[2K], xk[3K] (R of them) times one k-row of a 24-column strip (w0, w1, w2), into the
// accumulators.
template <int R>
GRM_AVX2 void fma_rows(const float* xk, int64_t K, __m256 w0, __m256 w1, __m256 w2, __m256& c00, __m256& c01,
                       __m256& c02, __m256& c10, __m256& c11, __m256& c12, __m256& c20, __m256& c21, __m256& c22,
                       __m256& c30, __m256& c31, __m256& c32) {
  __m256 a = _mm256_broadcast_ss(xk);
  c00 = _mm256_fmadd_ps(a, w0, c00), c01 = _mm256_fmadd_ps(a, w1, c01), c02 = _mm256_fmadd_ps(a, w2, c02);
  if constexpr (R > 1) {
    a = _mm256_broadcast_ss(xk + K);
    c10 = _mm256_fmadd_ps(a, w0, c10), c11 = _mm256_fmadd_ps(a, w1, c11), c12 = _mm256_fmadd_ps(a, w2, c12);
  }
  if constexpr (R > 2) {
    a = _mm256_broadcast_ss(xk + 2 * K);
    c20 = _mm256_fmadd_ps(a, w0, c20), c21 = _mm256_fmadd_ps(a, w1, c21), c22 = _mm256_fmadd_ps(a, w2, c22);
  }
  if constexpr (R > 3) {
    a = _mm256_broadcast_ss(xk + 3 * K);
    c30 = _mm256_fmadd_ps(a, w0, c30), c31 = _mm256_fmadd_ps(a, w1, c31), c32 = _mm256_fmadd_ps(a, w2, c32);
  }
}

// The R accumulated output rows plus the strip's biases (or none) to y (rows ldy apart).
template <int R>
GRM_AVX2 void store_rows(float* y, int64_t ldy, const float* bias, __m256 c00, __m256 c01, __m256 c02, __m256 c10,
                         __m256 c11, __m256 c12, __m256 c20, __m256 c21, __m256 c22, __m256 c30, __m256 c31,
                         __m256 c32) {
  const __m256 b0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  const __m256 b1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
  const __m256 b2 = bias ? _mm256_loadu_ps(bias + 16) : _mm256_setzero_ps();
  store3(y, c00, c01, c02, b0, b1, b2);
  if constexpr (R > 1) store3(y + ldy, c10, c11, c12, b0, b1, b2);
  if constexpr (R > 2) store3(y + 2 * ldy, c20, c21, c22, b0, b1, b2);
  if constexpr (R > 3) store3(y + 3 * ldy, c30, c31, c32, b0, b1, b2);
}

// Rows x[0..R) (R <= 4, row stride K) times a strip of 24 output columns whose k-th row of weights is at
// w + k·ldw (transposed storage: ldw = N; a packed panel: ldw = 24), accumulated in 12 registers while the strip
// streams by once; y holds the R output rows (stride ldy), bias the strip's 24 biases or nullptr. With Prefetch,
// step k also asks for the cache line at pf + k·pf_step (span_packed: part of the next panel).
template <int R, bool Prefetch = false>
GRM_AVX2 void block24(const float* w, int64_t ldw, const float* x, int64_t K, const float* bias, float* y,
                      int64_t ldy, const char* pf = nullptr, int64_t pf_step = 0) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  for (int64_t k = 0; k < K; ++k, w += ldw, pf += pf_step) {
    if constexpr (Prefetch) _mm_prefetch(pf, _MM_HINT_T0);
    fma_rows<R>(x + k, K, _mm256_loadu_ps(w), _mm256_loadu_ps(w + 8), _mm256_loadu_ps(w + 16), c00, c01, c02, c10,
                c11, c12, c20, c21, c22, c30, c31, c32);
  }
  store_rows<R>(y, ldy, bias, c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32);
}

// The float32 values of the low / high bfloat16 halves of 8 32-bit words at p.
GRM_AVX2 __m256 bf16_low(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), 16));
}
GRM_AVX2 __m256 bf16_high(const uint16_t* p, __m256i high) {
  return _mm256_castsi256_ps(_mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), high));
}

// block24 for a bfloat16 panel (pack_weight): pair j of k-rows (2j, 2j + 1) is 24 32-bit words, word c holding
// column c's weight at k = 2j in its low half and at 2j + 1 in its high half, so that a shift and a mask turn
// one load into both rows' float32 values (bfloat16 is float32's upper half). Each accumulator takes the same
// FMAs in the same order as in block24: a float32 panel of the same values gives the same bits.
template <int R>
GRM_AVX2 void block24_bf16(const uint16_t* w, const float* x, int64_t K, const float* bias, float* y, int64_t ldy) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  int64_t k = 0;
  for (; k + 2 <= K; k += 2, w += 2 * kPanelWidth) {
#define GRM_ROWS(xk, w0, w1, w2)                                                                                \
  fma_rows<R>(xk, K, w0, w1, w2, c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32)
    GRM_ROWS(x + k, bf16_low(w), bf16_low(w + 16), bf16_low(w + 32));
    GRM_ROWS(x + k + 1, bf16_high(w, high), bf16_high(w + 16, high), bf16_high(w + 32, high));
  }
  if (k < K) GRM_ROWS(x + k, bf16_low(w), bf16_low(w + 16), bf16_low(w + 32));  // K odd: high halves are padding
#undef GRM_ROWS
  store_rows<R>(y, ldy, bias, c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32);
}

// The same for a strip of 8 columns (the tail of N after the 24-column strips, transposed storage).
template <int R>
GRM_AVX2 void block8(const float* w, int64_t ldw, const float* x, int64_t K, const float* bias, float* y,
                     int64_t ldy) {
  __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
  for (int64_t k = 0; k < K; ++k, w += ldw) {
    const __m256 w0 = _mm256_loadu_ps(w);
    c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + k), w0, c0);
    if constexpr (R > 1) c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + K + k), w0, c1);
    if constexpr (R > 2) c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 2 * K + k), w0, c2);
    if constexpr (R > 3) c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 3 * K + k), w0, c3);
  }
  const __m256 b = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  _mm256_storeu_ps(y, _mm256_add_ps(c0, b));
  if constexpr (R > 1) _mm256_storeu_ps(y + ldy, _mm256_add_ps(c1, b));
  if constexpr (R > 2) _mm256_storeu_ps(y + 2 * ldy, _mm256_add_ps(c2, b));
  if constexpr (R > 3) _mm256_storeu_ps(y + 3 * ldy, _mm256_add_ps(c3, b));
}

// All rows times one strip (24 columns when Wide, else 8): every row block runs before the next strip, so the
// strip (K × 96 bytes) comes from memory once and from L1/L2 for the other row blocks. x has `rows` rows of K,
// y rows of ldy.
template <bool Wide, int R>
GRM_AVX2 void block(const float* w, int64_t ldw, const float* x, int64_t K, const float* bias, float* y, int64_t ldy) {
  if constexpr (Wide) {
    block24<R>(w, ldw, x, K, bias, y, ldy);
  } else {
    block8<R>(w, ldw, x, K, bias, y, ldy);
  }
}
template <bool Wide>
GRM_AVX2 void row_blocks(const float* w, int64_t ldw, const float* x, int64_t rows, int64_t K, const float* bias,
                         float* y, int64_t ldy) {
  int64_t m = 0;
  for (; m + 4 <= rows; m += 4) block<Wide, 4>(w, ldw, x + m * K, K, bias, y + m * ldy, ldy);
  switch (rows - m) {
    case 3: return block<Wide, 3>(w, ldw, x + m * K, K, bias, y + m * ldy, ldy);
    case 2: return block<Wide, 2>(w, ldw, x + m * K, K, bias, y + m * ldy, ldy);
    case 1: return block<Wide, 1>(w, ldw, x + m * K, K, bias, y + m * ldy, ldy);
    default: return;
  }
}

GRM_AVX2_TARGET void span_transposed(const Operands& o, int64_t n0, int64_t n1) {
  int64_t n = n0;
  auto bias = [&](int64_t c) { return o.bias ? o.bias + c : nullptr; };
  for (; n + 24 <= n1; n += 24) row_blocks<true>(o.w + n, o.ldw, o.x, o.rows, o.K, bias(n), o.y + n, o.N);
  for (; n + 8 <= n1; n += 8) row_blocks<false>(o.w + n, o.ldw, o.x, o.rows, o.K, bias(n), o.y + n, o.N);
  for (; n < n1; ++n)  // fewer than 8 columns left (N not a multiple of 8)
    for (int64_t r = 0; r < o.rows; ++r) {
      float s = o.bias ? o.bias[n] : 0.0f;
      for (int64_t k = 0; k < o.K; ++k) s += o.x[r * o.K + k] * o.w[k * o.ldw + n];
      o.y[r * o.N + n] = s;
    }
}

// While the row blocks of one panel run (from L2 after the first), the thread's next panel is prefetched,
// spread over the first kPrefetchBlocks blocks of 4 rows. Without it each panel's first block waited on DRAM and
// the others on nothing, so memory and arithmetic took turns: measured on the 100 M model's weights (12 layers,
// out of cache), 32 rows, one thread: 58 against 76 GFLOP/s; `grm bench decode` of that model at k = 32: 15.9 /
// 16.3 s against 17.8 / 18.7 s. Under two blocks (fewer than 8 rows) the product is bound by memory and the
// hardware prefetcher streams the panels.
constexpr int64_t kPrefetchBlocks = 8;
// Below this many rows a bfloat16 panel is read directly, 2 rows at a time (span_packed). Measured on the bundled
// model's products (17 weights per step, 1 / 2 threads, alternating builds, 3 runs each): 4 rows 0.62-0.63 /
// 0.61-0.83x the time of blocks of 4 rows on the panel, 5-7 rows 0.71-0.80 / 0.63-1.0x, 8-12 rows (before:
// widened) 0.61-0.93 / 0.43-0.93x.
constexpr int64_t kDirectBf16Rows = 16;

// One block of R ≤ 4 rows against one packed panel: P = float (block24) or uint16_t (bfloat16, block24_bf16).
template <typename P, int R>
GRM_AVX2 void panel_block(const P* panel, const float* x, int64_t K, const float* bias, float* y, int64_t ldy) {
  if constexpr (std::is_same_v<P, float>) {
    block24<R>(panel, kPanelWidth, x, K, bias, y, ldy);
  } else {
    block24_bf16<R>(panel, x, K, bias, y, ldy);
  }
}
// All rows against one packed panel: blocks of 4 rows for float32, of 2 for bfloat16 (whose widened weights and
// 4 rows' accumulators would not fit in the 16 vector registers).
template <typename P>
GRM_AVX2 void panel_rows(const P* panel, const float* x, int64_t rows, int64_t K, const float* bias, float* y,
                         int64_t ldy) {
  int64_t m = 0;
  if constexpr (!std::is_same_v<P, float>) {
    for (; m + 2 <= rows; m += 2) panel_block<P, 2>(panel, x + m * K, K, bias, y + m * ldy, ldy);
    if (m < rows) panel_block<P, 1>(panel, x + m * K, K, bias, y + m * ldy, ldy);
    return;
  }
  for (; m + 4 <= rows; m += 4) panel_block<P, 4>(panel, x + m * K, K, bias, y + m * ldy, ldy);
  switch (rows - m) {
    case 3: return panel_block<P, 3>(panel, x + m * K, K, bias, y + m * ldy, ldy);
    case 2: return panel_block<P, 2>(panel, x + m * K, K, bias, y + m * ldy, ldy);
    case 1: return panel_block<P, 1>(panel, x + m * K, K, bias, y + m * ldy, ldy);
    default: return;
  }
}

// A bfloat16 panel (block24_bf16's layout) as [K, 24] float32.
GRM_AVX2 void widen_panel(const uint16_t* w, int64_t K, float* out) {
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  int64_t k = 0;
  for (; k + 2 <= K; k += 2, w += 2 * kPanelWidth, out += 2 * kPanelWidth)
    for (int v = 0; v < 3; ++v) {
      _mm256_storeu_ps(out + 8 * v, bf16_low(w + 16 * v));
      _mm256_storeu_ps(out + kPanelWidth + 8 * v, bf16_high(w + 16 * v, high));
    }
  if (k < K)
    for (int v = 0; v < 3; ++v) _mm256_storeu_ps(out + 8 * v, bf16_low(w + 16 * v));
}

// W packed (pack_weight): panel p holds columns 24p .. 24p+23, as [K, 24] float32 or as K / 2 (rounded up)
// interleaved pairs of k-rows of bfloat16 (block24_bf16), zero-padded past N. n0 is a multiple of 24. The last
// panel of an N that is not a multiple of 24 is computed into a scratch block and its real columns copied out.
// A bfloat16 panel serves fewer than kDirectBf16Rows rows directly, in blocks of 2 rows (panel_rows): at 1-2
// rows the product is bound by memory, and half the bytes made the bundled model's products (4 layers and the
// LM head, two threads, weights out of cache) 0.58-0.64x as long as float32 panels. With more rows it is bound
// by arithmetic: the widening (a shift or a mask per weight vector) then costs, and blocks of 4 rows ran out of
// registers (12 accumulators and 6 widened vectors). So from kDirectBf16Rows rows on the panel is widened once
// into float32 scratch, which every block of 4 rows reads from L1 / L2 (16 rows: as fast as blocks of 2; 32
// rows: blocks of 2 or of 4 widened inline took 1.3-1.6x as long).
template <typename P>
GRM_AVX2_TARGET void span_packed(const Operands& o, const P* w, int64_t n0, int64_t n1) {
  constexpr bool pairs = !std::is_same_v<P, float>;
  const int64_t panel_size = (pairs ? (o.K + 1) / 2 * 2 : o.K) * kPanelWidth;  // elements
  const int64_t full = o.rows / 4, spread = std::min(full, kPrefetchBlocks);
  thread_local std::vector<float> widened;
  for (int64_t n = n0; n < n1; n += kPanelWidth) {
    const P* panel = w + (n / kPanelWidth) * panel_size;
    if (n + kPanelWidth <= o.N) {
      const float* bias = o.bias ? o.bias + n : nullptr;
      const float* wide;
      if constexpr (pairs) {
        if (o.rows < kDirectBf16Rows) {
          panel_rows(panel, o.x, o.rows, o.K, bias, o.y + n, o.N);
          continue;
        }
        widened.resize(static_cast<size_t>(o.K * kPanelWidth));
        widen_panel(panel, o.K, widened.data());
        wide = widened.data();
      } else {
        wide = panel;
      }
      if (spread < 2 || n + kPanelWidth >= n1) {
        row_blocks<true>(wide, kPanelWidth, o.x, o.rows, o.K, bias, o.y + n, o.N);
        continue;
      }
      // Block j asks for bytes [j·chunk, (j+1)·chunk) of the next panel (stored: 24 · sizeof(P) bytes a k-row),
      // step bytes per k: all of it when spread divides 24 · sizeof(P), else all but the last few bytes of each
      // k-row's worth (the hardware prefetcher's), never past it.
      const char* next = reinterpret_cast<const char*>(panel + panel_size);
      const int64_t step = kPanelWidth * static_cast<int64_t>(sizeof(P)) / spread, chunk = step * o.K;
      for (int64_t j = 0; j < full; ++j) {
        const float* x = o.x + 4 * j * o.K;
        float* y = o.y + n + 4 * j * o.N;
        if (j < spread) {
          block24<4, true>(wide, kPanelWidth, x, o.K, bias, y, o.N, next + j * chunk, step);
        } else {
          block24<4>(wide, kPanelWidth, x, o.K, bias, y, o.N);
        }
      }
      if (o.rows > 4 * full)
        row_blocks<true>(wide, kPanelWidth, o.x + 4 * full * o.K, o.rows - 4 * full, o.K, bias,
                         o.y + n + 4 * full * o.N, o.N);
      continue;
    }
    const int64_t cols = o.N - n;
    float scratch[4 * kPanelWidth];
    for (int64_t m = 0; m < o.rows; m += 4) {
      const int64_t r = std::min<int64_t>(4, o.rows - m);
      panel_rows(panel, o.x + m * o.K, r, o.K, nullptr, scratch, kPanelWidth);
      for (int64_t i = 0; i < r; ++i)
        for (int64_t c = 0; c < cols; ++c)
          o.y[(m + i) * o.N + n + c] = scratch[i * kPanelWidth + c] + (o.bias ? o.bias[n + c] : 0.0f);
    }
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

enum class Storage { row_major, transposed, packed, packed_bf16 };

void run(const Operands& o, Storage storage) {
  // Below ~2^17 multiply-adds (~10 µs on one core) a second thread costs more than it saves.
  const int threads = o.rows * o.K * o.N >= (int64_t{1} << 17) ? worker_threads() : 1;
  const int64_t pieces = std::max<int64_t>(1, std::min<int64_t>(4 * threads, o.N / 48));
  const int64_t width = ((o.N + pieces - 1) / pieces + 23) / 24 * 24;  // whole 24-column strips (panels)
  const int64_t items = (o.N + width - 1) / width;
  auto item = [&](int64_t i) {
    const int64_t n0 = i * width, n1 = std::min(o.N, n0 + width);
    switch (storage) {
      case Storage::packed: return span_packed(o, o.w, n0, n1);
      case Storage::packed_bf16: return span_packed(o, o.w_bf16, n0, n1);
      case Storage::transposed: return span_transposed(o, n0, n1);
      case Storage::row_major: return span_rowmajor(o, n0, n1);
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

bool float_cpu_strided(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat && t.device().is_cpu() && t.layout() == at::kStrided;
}

// Whether x and bias suit the kernels here for a weight of N outputs and K inputs (rows not checked).
bool operands_fit(const at::Tensor& x, const at::Tensor& bias, int64_t N, int64_t K) {
  if (!avx2::cpu_has_avx2() || at::GradMode::is_enabled() || !float_cpu_strided(x)) return false;
  if (x.dim() < 1 || x.size(-1) != K || x.numel() == 0 || N == 0) return false;
  return !bias.defined() ||
         (float_cpu_strided(bias) && bias.dim() == 1 && bias.size(0) == N && bias.is_contiguous());
}

}  // namespace

bool small_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  if (!float_cpu_strided(w) || w.dim() != 2 || !operands_fit(x, bias, w.size(0), w.size(1))) return false;
  if (w.stride(1) != 1 && w.stride(0) != 1) return false;  // rows of W, one way or the other
  const int64_t rows = x.numel() / x.size(-1);
  const bool cached = w.numel() * static_cast<int64_t>(sizeof(float)) <= kCachedWeightBytes;
  return stored_transposed(w) ? rows <= (cached ? kMaxRowsTransposed : 4) : rows <= (cached ? kMaxRowsRowMajor : 2);
}

bool packed_kernel_available() { return avx2::cpu_has_avx2(); }

namespace {

// True when every value of w [N, K] is a bfloat16 value: its low 16 bits are zero, so that its high half alone
// gives back its bits. One pass, no temporaries.
bool all_bfloat16(const float* w, int64_t N, int64_t K, int64_t s0, int64_t s1) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const float v = w[n * s0 + k * s1];
      uint32_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      if ((bits & 0xFFFFu) != 0) return false;
    }
  return true;
}

}  // namespace

PackedWeight pack_weight(const at::Tensor& w, PanelFormat format) {
  if (!w.defined() || w.dim() != 2 || !float_cpu_strided(w))
    throw Error("pack_weight: needs a float32 CPU matrix [N, K]");
  at::NoGradGuard no_grad;
  const int64_t N = w.size(0), K = w.size(1), panels = (N + kPanelWidth - 1) / kPanelWidth;
  const int64_t s0 = w.stride(0), s1 = w.stride(1);
  const float* src = w.data_ptr<float>();
  // The panels are written value by value from w (any strides): no padded or transposed copies of the weight,
  // which for a large tied embedding were 2.5 times its size in temporaries at load.
  auto at_nk = [&](int64_t n, int64_t k) { return n < N && k < K ? src[n * s0 + k * s1] : 0.0f; };
  const bool bf16 = format == PanelFormat::automatic && all_bfloat16(src, N, K, s0, s1);
  PackedWeight p;
  if (bf16) {  // [panels, Kp / 2, 24, 2]: (p, j, c, e) = W[24p + c][2j + e], zero past N and K (block24_bf16's layout)
    const int64_t pairs = (K + 1) / 2;
    p.panels = at::empty({panels, pairs, kPanelWidth, 2}, w.options().dtype(at::kBFloat16));
    auto* out = reinterpret_cast<uint16_t*>(p.panels.data_ptr<at::BFloat16>());
    for (int64_t q = 0; q < panels; ++q)
      for (int64_t j = 0; j < pairs; ++j)
        for (int64_t c = 0; c < kPanelWidth; ++c)
          for (int64_t e = 0; e < 2; ++e) {
            const float v = at_nk(q * kPanelWidth + c, 2 * j + e);
            uint32_t bits;
            std::memcpy(&bits, &v, sizeof bits);
            *out++ = static_cast<uint16_t>(bits >> 16);  // exact: the low half is zero
          }
  } else {  // [panels, K, 24]: (p, k, c) = W[24p + c][k], zero past N
    p.panels = at::empty({panels, K, kPanelWidth}, w.options());
    float* out = p.panels.data_ptr<float>();
    for (int64_t q = 0; q < panels; ++q)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t c = 0; c < kPanelWidth; ++c) *out++ = at_nk(q * kPanelWidth + c, k);
  }
  p.n = N;
  p.k = K;
  p.source = w.alias();
  p.version = w.is_inference() ? 0 : w._version();
  return p;
}

bool PackedWeight::matches(const at::Tensor& w) const {
  return panels.defined() && !standalone && w.dim() == 2 && w.size(0) == n && w.size(1) == k &&
         w.is_alias_of(source) && w.storage_offset() == source.storage_offset() && w.sizes() == source.sizes() &&
         w.strides() == source.strides() && w.scalar_type() == source.scalar_type() &&
         (w.is_inference() ? 0 : w._version()) == version;
}

bool packed_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                           const PackedWeight& packed) {
  return packed.matches(w) && operands_fit(x, bias, w.size(0), w.size(1));
}

namespace {

// y = x·Wᵀ + b on grm's kernels, W given by `storage` (packed: `packed`'s panels; else w).
at::Tensor product(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const PackedWeight* packed,
                   Storage storage, int64_t N, int64_t K) {
  RECORD_FUNCTION("grm::linear", std::vector<c10::IValue>());  // named in `grm bench decode --profile`
  const at::Tensor xc = x.contiguous();
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = N;
  at::Tensor y = at::empty(shape, x.options());
  if (storage == Storage::packed && packed->bf16()) storage = Storage::packed_bf16;
  const float* wp = storage == Storage::packed ? packed->panels.data_ptr<float>()
                    : storage == Storage::packed_bf16 ? nullptr
                                                      : w.data_ptr<float>();
  const auto* wb = storage == Storage::packed_bf16
                       ? reinterpret_cast<const uint16_t*>(packed->panels.data_ptr<at::BFloat16>())
                       : nullptr;
  const int64_t ldw = storage == Storage::packed || storage == Storage::packed_bf16 ? kPanelWidth
                      : storage == Storage::transposed                             ? w.stride(1)
                                                                                   : w.stride(0);
  run(Operands{xc.data_ptr<float>(), wp, wb, bias.defined() ? bias.data_ptr<float>() : nullptr,
               y.data_ptr<float>(), xc.numel() / K, K, N, ldw},
      storage);
  return y;
}

}  // namespace

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const PackedWeight* packed) {
  if (packed != nullptr && packed->standalone) return packed_linear(x, *packed, bias);
  Storage storage;
  if (packed != nullptr && packed_linear_applies(x, w, bias, *packed)) {
    storage = Storage::packed;
  } else if (small_linear_applies(x, w, bias)) {
    storage = stored_transposed(w) ? Storage::transposed : Storage::row_major;
  } else {
    return at::linear(x, w, bias);
  }
  return product(x, w, bias, packed, storage, w.size(0), w.size(1));
}

void release_source(PackedWeight& p, at::Tensor& w) {
  if (!p.defined()) throw Error("release_source: no packed copy");
  if (!p.standalone && !p.matches(w)) throw Error("release_source: the packed copy was not made from this weight");
  at::NoGradGuard no_grad;
  p.source = at::Tensor();
  p.standalone = true;
  w.set_data(at::empty({0}, w.options()));
}

at::Tensor unpack_weight(const PackedWeight& packed) {
  if (!packed.defined()) throw Error("unpack_weight: no packed copy");
  const at::Tensor& p = packed.panels;
  const int64_t rows = p.size(0) * kPanelWidth;
  const at::Tensor w = packed.bf16() ? p.permute({0, 2, 1, 3}).reshape({rows, -1}).to(at::kFloat)  // [rows, Kp]
                                     : p.transpose(1, 2).reshape({rows, -1});                       // [rows, K]
  return w.narrow(0, 0, packed.n).narrow(1, 0, packed.k).contiguous();
}

at::Tensor packed_rows(const PackedWeight& packed, const at::Tensor& ids) {
  if (!packed.defined()) throw Error("packed_rows: no packed copy");
  if (ids.scalar_type() != at::kLong) throw Error("packed_rows: ids must be int64");
  const at::Tensor flat = ids.reshape({-1});
  if (flat.numel() > 0) {
    const auto [lo, hi] = at::aminmax(flat);
    if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= packed.n) throw Error("packed_rows: id out of range");
  }
  using at::indexing::Slice;
  const at::Tensor panel = flat.div(kPanelWidth, "floor"), col = flat.remainder(kPanelWidth);
  // float32 [P, K, 24] → [n, K]; bfloat16 [P, Kp / 2, 24, 2] → [n, Kp / 2, 2] → [n, Kp]
  const at::Tensor rows = packed.bf16()
                              ? packed.panels.index({panel, Slice(), col}).reshape({flat.numel(), -1}).to(at::kFloat)
                              : packed.panels.index({panel, Slice(), col});
  std::vector<int64_t> shape(ids.sizes().begin(), ids.sizes().end());
  shape.push_back(packed.k);
  return rows.narrow(1, 0, packed.k).reshape(shape);
}

at::Tensor packed_linear(const at::Tensor& x, const PackedWeight& packed, const at::Tensor& bias) {
  if (!packed.defined()) throw Error("packed_linear: no packed copy");
  if (!operands_fit(x, bias, packed.n, packed.k))
    return at::linear(x, unpack_weight(packed).to(x.scalar_type()),
                      bias.defined() ? bias.to(x.scalar_type()) : bias);
  return product(x, at::Tensor(), bias, &packed, Storage::packed, packed.n, packed.k);
}

}  // namespace grm::engine

#else  // not x86-64: at::linear everywhere

namespace grm::engine {
bool small_linear_applies(const at::Tensor&, const at::Tensor&, const at::Tensor&) { return false; }
bool packed_kernel_available() { return false; }
PackedWeight pack_weight(const at::Tensor&, PanelFormat) { throw Error("pack_weight: no packed kernel on this architecture"); }
bool PackedWeight::matches(const at::Tensor&) const { return false; }
bool packed_linear_applies(const at::Tensor&, const at::Tensor&, const at::Tensor&, const PackedWeight&) { return false; }
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const PackedWeight*) {
  return at::linear(x, w, bias);
}
void release_source(PackedWeight&, at::Tensor&) { throw Error("release_source: no packed kernel on this architecture"); }
at::Tensor unpack_weight(const PackedWeight&) { throw Error("unpack_weight: no packed kernel on this architecture"); }
at::Tensor packed_rows(const PackedWeight&, const at::Tensor&) {
  throw Error("packed_rows: no packed kernel on this architecture");
}
at::Tensor packed_linear(const at::Tensor&, const PackedWeight&, const at::Tensor&) {
  throw Error("packed_linear: no packed kernel on this architecture");
}
}  // namespace grm::engine

#endif
