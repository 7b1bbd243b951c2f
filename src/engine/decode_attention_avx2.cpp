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

// exp_nonpositive on 8 lanes.
GRM_AVX2 __m256 exp8_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
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
GRM_AVX2 void attend(const float* q, const T* const* k, const T* const* v, const float* bias, int64_t n, int64_t D,
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
    const __m256 e = exp8_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(sc + i), top8));
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

// Rows rows[begin, end) read the same positions from slot `origin` below `common` (same origin, mask rows
// equal there).
struct Group {
  int64_t begin, end, origin, common;
};

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
    for (int64_t t0 = 0; t0 < ncommon; t0 += tile) {
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

// Groups for groups_avx2: rows by the slot they read a prefix from, at most `max_rows` per group (so that there
// is work for every thread). A fork reads its shared length from its origin; the origin's own row reads all
// of its positions there. The common length is the shortest of these, cut where mask rows first differ.
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
  make_groups(a, 8, members, groups);
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
