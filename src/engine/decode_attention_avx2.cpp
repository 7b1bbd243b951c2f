// The AVX2 + FMA decode-attention kernel (see decode_attention_kernels.h and the comment below).
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__)
#include "engine/avx2.h"
#endif

#include "core/error.h"
#include "engine/decode_attention_kernels.h"
#include "engine/worker_pool.h"

#if defined(__x86_64__)

namespace grm::engine::attention_detail {

namespace {

// The same computation for AVX2 + FMA, organised around the cache rather than around one row. The forks of one
// prompt read the same prefix rows; reading them once per fork from L2 made the per-row kernel bound by L2
// traffic. Here a group of rows that share an origin walks the common prefix in tiles small enough for L1,
// and every row (and query head) of the group consumes a tile before the next is loaded, with an online
// softmax (running max, running sum, rescaled output) so that no row needs all its scores first. Scores are
// computed 8 positions at a time with one transposing sum per block; the weighted sum of V keeps a chunk of
// the output in registers across the tile.
using avx2::hsum;

GRM_AVX2 __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
GRM_AVX2 __m256 load8(const c10::Half* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
GRM_AVX2 __m256 load8(const c10::BFloat16* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// [Σ a0, Σ a1, ..., Σ a7]
GRM_AVX2 __m256 hsum8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// o[d, d + 8W) = alpha · o[d, d + 8W) + Σ_i w[i] · rows[i][d, d + 8W), with two interleaved accumulator sets
// so that 2W FMA chains are in flight.
template <int W, typename T>
GRM_AVX2 void weighted_sum(const float* w, int64_t n, const T* const* rows, int64_t d, float alpha, float* o) {
  __m256 acc0[W], acc1[W];
  const __m256 al = _mm256_set1_ps(alpha);
  for (int j = 0; j < W; ++j) acc0[j] = _mm256_mul_ps(al, _mm256_loadu_ps(o + d + 8 * j)), acc1[j] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const T* v0 = rows[i] + d;
    const T* v1 = rows[i + 1] + d;
    const __m256 p0 = _mm256_broadcast_ss(w + i), p1 = _mm256_broadcast_ss(w + i + 1);
    for (int j = 0; j < W; ++j) {
      acc0[j] = _mm256_fmadd_ps(p0, load8(v0 + 8 * j), acc0[j]);
      acc1[j] = _mm256_fmadd_ps(p1, load8(v1 + 8 * j), acc1[j]);
    }
  }
  if (i < n) {
    const T* v0 = rows[i] + d;
    const __m256 p0 = _mm256_broadcast_ss(w + i);
    for (int j = 0; j < W; ++j) acc0[j] = _mm256_fmadd_ps(p0, load8(v0 + 8 * j), acc0[j]);
  }
  for (int j = 0; j < W; ++j) _mm256_storeu_ps(o + d + 8 * j, _mm256_add_ps(acc0[j], acc1[j]));
}

// Running softmax state of one (row, query head): max m, sum s of e^(score - m), output o = Σ e^(score - m) v.
struct Online {
  float m, s;
  float* o;
};

// Feeds n ≤ tile positions (key rows k[i], value rows v[i], additive mask bias[i]) to one query q.
template <typename T>
GRM_AVX2_TARGET __attribute__((noinline)) void attend(const float* q, const T* const* k, const T* const* v, const float* bias, int64_t n, int64_t D,
                     float* sc, Online& st) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) {
      const __m256 qv = _mm256_loadu_ps(q + d);
      for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(qv, load8(k[i + j] + d), acc[j]);
    }
    _mm256_storeu_ps(sc + i, _mm256_add_ps(hsum8(acc), _mm256_loadu_ps(bias + i)));
  }
  for (; i < n; ++i) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load8(k[i] + d), acc);
    sc[i] = hsum(acc) + bias[i];
  }
  float top = st.m;
  for (i = 0; i < n; ++i) top = std::max(top, sc[i]);
  const float alpha = exp_nonpositive(st.m - top);  // st.m = -inf at the start: alpha ≈ 0 against s = o = 0
  const __m256 top8 = _mm256_set1_ps(top);
  __m256 sum8 = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = avx2::exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + i), top8));
    _mm256_storeu_ps(sc + i, e);
    sum8 = _mm256_add_ps(sum8, e);
  }
  float sum = hsum(sum8);
  for (; i < n; ++i) sum += (sc[i] = exp_nonpositive(sc[i] - top));
  st.s = st.s * alpha + sum;
  st.m = top;
  int64_t d = 0;
  for (; d + 32 <= D; d += 32) weighted_sum<4, T>(sc, n, v, d, alpha, st.o);
  for (; d < D; d += 8) weighted_sum<1, T>(sc, n, v, d, alpha, st.o);
}

// ---- the common prefix of a large group, queries in lanes ----
//
// A group of many queries (forks × query heads) over one prefix is a small matrix product per tile: scores
// S = K·Qᵀ [n, q] and outputs O += Vᵀ·P [D, q]. Here each AVX2 lane holds one query (8 or 16 queries a pass),
// so the softmax (max, exp, sum, rescale) runs across queries in the lanes and the products are broadcast +
// FMA with no horizontal sums: the tile's K and V rows are converted to float32 once for all the group's
// queries (the per-query kernel above converts and reloads them for every query), and each loaded vector
// feeds 4-8 FMAs. Lane u of chunk c is query c·16 + u of the group (row r = u / G, head g = u % G).
constexpr int64_t kLaneChunk = 16;  // queries per pass (two vectors of lanes)

// v, kept in a register: without this GCC 12 folds the load of a vector used by several FMAs into each of them
// (a load per FMA; measured ~1.5× slower, the loop being bound by loads).
GRM_AVX2 __m256 in_register(__m256 v) {
  asm("" : "+x"(v));
  return v;
}

// sc[i][j] = Σ_d kf[i][d] · qt[d][j] + bias[i] for KB key rows from kf (rows D apart) and QV vectors of lanes.
template <int KB, int QV>
GRM_AVX2 void lane_scores(const float* kf, int64_t D, const float* qt, const float* bias, float* sc) {
  __m256 acc[KB][QV];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 2
    for (int j = 0; j < QV; ++j) acc[k][j] = _mm256_setzero_ps();
  for (int64_t d = 0; d < D; ++d) {
    __m256 q[QV];
#pragma GCC unroll 2
    for (int j = 0; j < QV; ++j) q[j] = in_register(_mm256_loadu_ps(qt + d * 8 * QV + 8 * j));
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k) {
      const __m256 kv = _mm256_broadcast_ss(kf + k * D + d);
#pragma GCC unroll 2
      for (int j = 0; j < QV; ++j) acc[k][j] = _mm256_fmadd_ps(kv, q[j], acc[k][j]);
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k) {
    const __m256 b = _mm256_broadcast_ss(bias + k);
#pragma GCC unroll 2
    for (int j = 0; j < QV; ++j) _mm256_storeu_ps(sc + k * 8 * QV + 8 * j, _mm256_add_ps(acc[k][j], b));
  }
}

// ot[d][j] = alpha[j] · ot[d][j] + Σ_i vf[i][d] · p[i][j] for DB dims from d0, n value rows (D apart).
template <int DB, int QV>
GRM_AVX2 void lane_values(const float* vf, int64_t D, int64_t n, const float* p, const __m256* alpha, int64_t d0,
                          float* ot) {
  __m256 acc[DB][QV];
#pragma GCC unroll 8
  for (int t = 0; t < DB; ++t)
#pragma GCC unroll 2
    for (int j = 0; j < QV; ++j) acc[t][j] = _mm256_mul_ps(alpha[j], _mm256_loadu_ps(ot + (d0 + t) * 8 * QV + 8 * j));
  for (int64_t i = 0; i < n; ++i) {
    __m256 pv[QV];
#pragma GCC unroll 2
    for (int j = 0; j < QV; ++j) pv[j] = in_register(_mm256_loadu_ps(p + i * 8 * QV + 8 * j));
#pragma GCC unroll 8
    for (int t = 0; t < DB; ++t) {
      const __m256 v = _mm256_broadcast_ss(vf + i * D + d0 + t);
#pragma GCC unroll 2
      for (int j = 0; j < QV; ++j) acc[t][j] = _mm256_fmadd_ps(v, pv[j], acc[t][j]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < DB; ++t)
#pragma GCC unroll 2
    for (int j = 0; j < QV; ++j) _mm256_storeu_ps(ot + (d0 + t) * 8 * QV + 8 * j, acc[t][j]);
}

// One tile of n positions (float32 rows kf, vf; biases) for one chunk of 8·QV lanes: scores, the online
// softmax update of m and s (per lane), and the rescaled output accumulation in ot [D][8·QV].
// Not inlined (nor is attend): inlined into groups_avx2, GCC ran out of registers and reloaded row offsets
// from the stack inside the FMA loops; on its own the loops keep them in registers. Measured on the 100 M
// model's shapes (32 rows, 4 kv heads, G = 3, 642 prefix positions), one thread, alternating: 1.29-2.01 ms per
// call against 1.62-2.53 ms; in `grm bench decode --profile` of that model at k = 32, decode attention 2.26 /
// 2.77 s against 2.70 / 3.26 s (0.23 of the products' time against 0.27).
template <int QV>
GRM_AVX2_TARGET __attribute__((noinline)) void lane_tile(const float* kf, const float* vf, const float* bias, int64_t n, int64_t D, const float* qt,
                        float* ot, float* m, float* s, float* sc) {
  constexpr int KB = QV == 1 ? 8 : 4;
  int64_t i = 0;
  for (; i + KB <= n; i += KB) lane_scores<KB, QV>(kf + i * D, D, qt, bias + i, sc + i * 8 * QV);
  for (; i < n; ++i) lane_scores<1, QV>(kf + i * D, D, qt, bias + i, sc + i * 8 * QV);
  __m256 alpha[QV];
  for (int j = 0; j < QV; ++j) {
    const __m256 old = _mm256_loadu_ps(m + 8 * j);
    __m256 top = old;
    for (i = 0; i < n; ++i) top = _mm256_max_ps(top, _mm256_loadu_ps(sc + i * 8 * QV + 8 * j));
    alpha[j] = avx2::exp8(_mm256_sub_ps(old, top));  // m = -inf at the start: alpha ≈ 0 against s = o = 0
    __m256 sum = _mm256_setzero_ps();
    for (i = 0; i < n; ++i) {
      const __m256 e = avx2::exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + i * 8 * QV + 8 * j), top));
      _mm256_storeu_ps(sc + i * 8 * QV + 8 * j, e);
      sum = _mm256_add_ps(sum, e);
    }
    _mm256_storeu_ps(s + 8 * j, _mm256_fmadd_ps(_mm256_loadu_ps(s + 8 * j), alpha[j], sum));
    _mm256_storeu_ps(m + 8 * j, top);
  }
  constexpr int DB = QV == 1 ? 8 : 4;  // D is a multiple of 8 (run_avx2's condition), so both divide it
  for (int64_t d = 0; d < D; d += DB) lane_values<DB, QV>(vf, D, n, sc, alpha, d, ot);
}

// Asks for rows src + pos[i]·stride (i < n, D values each) to be brought into L1: the next tile's, while this
// one computes. Inside a decode step the rest of the step (the weights streaming by) has evicted the cache:
// measured with 16 MB read between calls (32 rows, 4 kv heads, 480 positions, one thread), a call took
// 0.8-1.4 ms against 0.42 ms warm. This prefetch wins back little of that (within the noise with the cache
// flushed; 1.30-1.54 against 1.39-1.91 ms warm at G = 3 and 642 positions, whose 3.8 MB is out of L2 anyway):
// the kernel then waits on DRAM, and the own rows of 32 forks (2.5 MB a call at 75 new tokens) are most of it.
template <typename T>
GRM_AVX2 void prefetch_row(const T* row, int64_t D) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t o = 0; o < D * static_cast<int64_t>(sizeof(T)); o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}
template <typename T>
GRM_AVX2 void prefetch_rows(const int64_t* pos, int64_t n, const T* src, int64_t stride, int64_t D) {
  for (int64_t i = 0; i < n; ++i) prefetch_row(src + pos[i] * stride, D);
}

// Rows src + pos[i]·stride (i < n, D values each) as float32 into dst [n][D].
template <typename T>
GRM_AVX2 void convert_rows(const int64_t* pos, int64_t n, const T* src, int64_t stride, int64_t D, float* dst) {
  for (int64_t i = 0; i < n; ++i, dst += D) {
    const T* row = src + pos[i] * stride;
    for (int64_t d = 0; d < D; d += 8) _mm256_storeu_ps(dst + d, load8(row + d));
  }
}

// The common prefix of a group (positions vis[0, ncommon) at ko / vo, biases from mask row m0) for its nq
// queries, tile by tile; leaves each query's running state in st (its o, m and s), as the per-query kernel
// would, for the rows' own positions to continue from.
template <typename T>
GRM_AVX2 void common_in_lanes(const Args<T>& a, const int64_t* vis, int64_t ncommon, const T* ko, const T* vo,
                              const float* m0, const std::vector<const float*>& queries, int64_t tile,
                              std::vector<Online>& st) {
  const int64_t D = a.D, nq = static_cast<int64_t>(queries.size());
  const int64_t chunks = (nq + kLaneChunk - 1) / kLaneChunk;
  thread_local std::vector<float> kf, vf, bias, qt, ot, ms, sc;
  kf.resize(static_cast<size_t>(tile * D));
  vf.resize(static_cast<size_t>(tile * D));
  bias.resize(static_cast<size_t>(tile));
  sc.resize(static_cast<size_t>(tile * kLaneChunk));
  qt.assign(static_cast<size_t>(chunks * D * kLaneChunk), 0.0f);
  ot.assign(static_cast<size_t>(chunks * D * kLaneChunk), 0.0f);
  ms.assign(static_cast<size_t>(chunks * 2 * kLaneChunk), 0.0f);
  // Chunk c: lanes = min(16, nq - 16c) queries, QV = 1 or 2 vectors; its qt / ot are [D][8·QV].
  auto width = [&](int64_t c) { return std::min(kLaneChunk, nq - c * kLaneChunk) > 8 ? 16 : 8; };
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t w = width(c);
    float* q = qt.data() + c * D * kLaneChunk;
    for (int64_t u = 0; u < w && c * kLaneChunk + u < nq; ++u)
      for (int64_t d = 0; d < D; ++d) q[d * w + u] = queries[static_cast<size_t>(c * kLaneChunk + u)][d];
    std::fill_n(ms.data() + c * 2 * kLaneChunk, kLaneChunk, -std::numeric_limits<float>::infinity());
  }
  for (int64_t t0 = 0; t0 < ncommon; t0 += tile) {
    const int64_t n = std::min(tile, ncommon - t0);
    if (t0 + tile < ncommon) {
      const int64_t next = std::min(tile, ncommon - t0 - tile);
      prefetch_rows(vis + t0 + tile, next, ko, a.ks2, D);
      prefetch_rows(vis + t0 + tile, next, vo, a.vs2, D);
    }
    convert_rows(vis + t0, n, ko, a.ks2, D, kf.data());
    convert_rows(vis + t0, n, vo, a.vs2, D, vf.data());
    for (int64_t i = 0; i < n; ++i) bias[static_cast<size_t>(i)] = m0[vis[t0 + i]];
    for (int64_t c = 0; c < chunks; ++c) {
      float* q = qt.data() + c * D * kLaneChunk;
      float* o = ot.data() + c * D * kLaneChunk;
      float* m = ms.data() + c * 2 * kLaneChunk;
      if (width(c) == 16) {
        lane_tile<2>(kf.data(), vf.data(), bias.data(), n, D, q, o, m, m + kLaneChunk, sc.data());
      } else {
        lane_tile<1>(kf.data(), vf.data(), bias.data(), n, D, q, o, m, m + kLaneChunk, sc.data());
      }
    }
  }
  for (int64_t u = 0; u < nq; ++u) {
    const int64_t c = u / kLaneChunk, lane = u % kLaneChunk, w = width(c);
    Online& x = st[static_cast<size_t>(u)];
    x.m = ms[static_cast<size_t>(c * 2 * kLaneChunk + lane)];
    x.s = ms[static_cast<size_t>(c * 2 * kLaneChunk + kLaneChunk + lane)];
    const float* o = ot.data() + c * D * kLaneChunk;
    for (int64_t d = 0; d < D; ++d) x.o[d] = o[d * w + lane];
  }
}

// Groups of at least this many queries (rows × query heads per kv head) walk their common prefix in lanes
// (common_in_lanes); smaller ones (e.g. k = 1-4 forks of a prompt with G = 1) query by query.
constexpr int64_t kLaneMinQueries = 8;
// At most this many rows per group. Fixed, not sized to the thread count: a group's common prefix is the
// shortest of its rows', so the grouping decides where the arithmetic splits and must not depend on threads
// (the same bits with any count). Measured with `grm bench decode` (bundled model, k = 32, three alternating
// pairs): 1.05 / 1.06 / 1.17 s per request with groups of 16 in lanes against 1.22 / 1.19 / 1.31 s with the
// earlier groups of 8 query by query.
constexpr int64_t kMaxGroupRows = 16;

// Rows rows[begin, end) read the same positions from slot `origin` below `common` (same origin, mask rows
// equal there).
struct Group {
  int64_t begin, end, origin, common;
};

// prefetch_rows for a row's own positions own.pos[from, from + tile) (some at its origin).
template <typename T>
GRM_AVX2 void prefetch_own(const Own<T>& own, int64_t from, int64_t tile, int64_t D) {
  for (int64_t i = from; i < std::min(own.n, from + tile); ++i) {
    prefetch_row(own.key(own.pos[i]), D);
    prefetch_row(own.value(own.pos[i]), D);
  }
}

template <typename T>
GRM_AVX2_TARGET void groups_avx2(const Args<T>& a, const std::vector<int64_t>& members,
                                 const std::vector<Group>& groups, int64_t tile, int64_t item_begin,
                                 int64_t item_end) {
  const int64_t D = a.D, G = a.G;
  const auto ng = static_cast<int64_t>(groups.size());
  // Scratch kept per thread: the pool calls this once per item, several hundred times per request.
  thread_local std::vector<float> sc, bias, obuf;
  thread_local std::vector<const T*> krows, vrows;
  thread_local std::vector<Online> st;
  thread_local std::vector<const float*> queries;
  sc.resize(static_cast<size_t>(tile));
  bias.resize(static_cast<size_t>(tile));
  krows.resize(static_cast<size_t>(tile));
  vrows.resize(static_cast<size_t>(tile));
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t h = item / ng;
    const Group& grp = groups[static_cast<size_t>(item % ng)];
    const int64_t rows = grp.end - grp.begin;
    obuf.assign(static_cast<size_t>(rows * G * D), 0.0f);
    st.assign(static_cast<size_t>(rows * G), Online{-std::numeric_limits<float>::infinity(), 0.0f, nullptr});
    for (size_t u = 0; u < st.size(); ++u) st[u].o = obuf.data() + static_cast<int64_t>(u) * D;
    auto query = [&](int64_t b, int64_t g) { return a.q + (b * a.H + h * G + g) * D; };
    // The common prefix: positions visible in the group's first row below `common`, tile by tile.
    const int64_t first = members[static_cast<size_t>(grp.begin)];
    const int64_t* vis = a.visible + a.visible_begin[first];
    const int64_t nvis = a.visible_begin[first + 1] - a.visible_begin[first];
    const int64_t ncommon = std::lower_bound(vis, vis + nvis, grp.common) - vis;
    const T* ko = a.kp + grp.origin * a.ks0 + h * a.ks1;
    const T* vo = a.vp + grp.origin * a.vs0 + h * a.vs1;
    const float* m0 = a.mask + first * a.mask_stride;
    const bool in_lanes = rows * G >= kLaneMinQueries;
    if (in_lanes && ncommon > 0) {
      queries.clear();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < G; ++g) queries.push_back(query(members[static_cast<size_t>(grp.begin + r)], g));
      common_in_lanes(a, vis, ncommon, ko, vo, m0, queries, tile, st);
    }
    for (int64_t t0 = 0; !in_lanes && t0 < ncommon; t0 += tile) {
      const int64_t n = std::min(tile, ncommon - t0);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t l = vis[t0 + i];
        krows[static_cast<size_t>(i)] = ko + l * a.ks2;
        vrows[static_cast<size_t>(i)] = vo + l * a.vs2;
        bias[static_cast<size_t>(i)] = m0[l];
      }
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < G; ++g)
          attend(query(members[static_cast<size_t>(grp.begin + r)], g), krows.data(), vrows.data(), bias.data(), n,
                 D, sc.data(), st[static_cast<size_t>(r * G + g)]);
    }
    // Each row's own positions from `common` on: its slot, or the origin below its own shared length.
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t b = members[static_cast<size_t>(grp.begin + r)];
      const Own<T> own = own_positions(a, b, h, grp.common);
      for (int64_t t0 = own.from; t0 < own.n; t0 += tile) {
        const int64_t n = std::min(tile, own.n - t0);
        for (int64_t i = 0; i < n; ++i) {
          const int64_t l = own.pos[t0 + i];
          krows[static_cast<size_t>(i)] = own.key(l);
          vrows[static_cast<size_t>(i)] = own.value(l);
          bias[static_cast<size_t>(i)] = own.mask[l];
        }
        if (t0 + tile < own.n) {
          prefetch_own(own, t0 + tile, tile, D);
        } else if (r + 1 < rows) {
          const Own<T> next = own_positions(a, members[static_cast<size_t>(grp.begin + r + 1)], h, grp.common);
          prefetch_own(next, next.from, tile, D);
        }
        for (int64_t g = 0; g < G; ++g)
          attend(query(b, g), krows.data(), vrows.data(), bias.data(), n, D, sc.data(),
                 st[static_cast<size_t>(r * G + g)]);
      }
      for (int64_t g = 0; g < G; ++g) {  // normalise; a row that sees nothing gets zeros
        const Online& s = st[static_cast<size_t>(r * G + g)];
        float* out = a.out + (b * a.H + h * G + g) * D;
        const float inv = s.s > 0 ? 1.0f / s.s : 0.0f;
        for (int64_t d = 0; d < D; ++d) out[d] = s.o[d] * inv;
      }
    }
  }
}

// Groups for groups_avx2: rows by the slot they read a prefix from, at most `max_rows` per group (so that
// there is work for more than one thread). A fork reads its shared length from its origin; the origin's own
// row reads all of its positions there. The common length is the shortest of these, cut where mask rows
// first differ.
template <typename T>
void make_groups(const Args<T>& a, int64_t max_rows, std::vector<int64_t>& members, std::vector<Group>& groups) {
  const DecodeRows& rows = *a.rows;
  auto reach = [&](int64_t b) {
    const auto r = static_cast<size_t>(b);
    return std::min(a.L, rows.slot[r] == rows.origin[r] ? a.L : rows.shared[r]);
  };
  auto key = [&](int64_t b) { return reach(b) > 0 ? rows.origin[static_cast<size_t>(b)] : -1 - b; };
  members.resize(static_cast<size_t>(a.B));
  for (int64_t b = 0; b < a.B; ++b) members[static_cast<size_t>(b)] = b;
  std::stable_sort(members.begin(), members.end(), [&](int64_t x, int64_t y) { return key(x) < key(y); });
  for (int64_t i = 0; i < a.B;) {
    const int64_t first = members[static_cast<size_t>(i)];
    int64_t j = i, common = a.L;
    for (; j < a.B && j - i < max_rows && key(members[static_cast<size_t>(j)]) == key(first); ++j)
      common = std::min(common, reach(members[static_cast<size_t>(j)]));
    const float* m0 = a.mask + first * a.mask_stride;
    for (int64_t x = i + 1; x < j && common > 0; ++x) {
      const float* mx = a.mask + members[static_cast<size_t>(x)] * a.mask_stride;
      int64_t l = 0;
      while (l < common && mx[l] == m0[l]) ++l;
      common = l;
    }
    groups.push_back(Group{i, j, rows.origin[static_cast<size_t>(first)], common});
    i = j;
  }
}

template <typename T>
void run_groups(const Args<T>& a) {
  std::vector<int64_t> members;
  std::vector<Group> groups;
  make_groups(a, kMaxGroupRows, members, groups);
  const int64_t tile = std::clamp<int64_t>(2048 / a.D / 8 * 8, 8, 64);  // K and V tiles of ≤ 16 KB in float32
  const auto items = a.Hkv * static_cast<int64_t>(groups.size());
  parallel_items(items, [&](int64_t i) { groups_avx2(a, members, groups, tile, i, i + 1); });
}

}  // namespace

bool avx2_kernel_available() { return avx2::cpu_has_avx2(); }
void run_avx2(const Args<float>& a) { run_groups(a); }
void run_avx2(const Args<c10::BFloat16>& a) { run_groups(a); }
void run_avx2(const Args<c10::Half>& a) { run_groups(a); }

}  // namespace grm::engine::attention_detail

#else  // not x86-64: the portable kernel only

namespace grm::engine::attention_detail {
bool avx2_kernel_available() { return false; }
void run_avx2(const Args<float>&) { throw Error("decode_attention: no AVX2 kernel on this architecture"); }
void run_avx2(const Args<c10::BFloat16>&) { throw Error("decode_attention: no AVX2 kernel on this architecture"); }
void run_avx2(const Args<c10::Half>&) { throw Error("decode_attention: no AVX2 kernel on this architecture"); }
}  // namespace grm::engine::attention_detail

#endif
