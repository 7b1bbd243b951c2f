#include "eval/scaling.h"

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace grm::eval {

std::string method_name(Method m) {
  switch (m) {
    case Method::Voting: return "voting";
    case Method::MetaRM: return "metarm";
    case Method::Greedy: return "greedy";
  }
  return "?";
}

std::vector<int> k_grid(int k_max) {
  std::vector<int> ks;
  for (int k = 1; k < k_max; k *= 2) ks.push_back(k);
  if (k_max >= 1) ks.push_back(k_max);
  return ks;
}

uint64_t binomial(int m, int k) {
  if (k < 0 || k > m) return 0;
  k = std::min(k, m - k);
  unsigned __int128 c = 1;
  for (int i = 1; i <= k; ++i) {
    c = c * static_cast<unsigned>(m - k + i) / static_cast<unsigned>(i);  // exact: C(m-k+i, i) at each step
    if (c > std::numeric_limits<uint64_t>::max()) return std::numeric_limits<uint64_t>::max();
  }
  return static_cast<uint64_t>(c);
}

std::vector<std::vector<int>> draw_subsets(int m, int k, int max_subsets, uint64_t seed) {
  if (m < 1 || k < 1 || k > m) throw Error("draw_subsets: need 1 <= k <= m");
  if (max_subsets < 1) throw Error("draw_subsets: need at least one subset");
  std::vector<std::vector<int>> out;
  if (binomial(m, k) <= static_cast<uint64_t>(max_subsets)) {
    std::vector<int> s(static_cast<size_t>(k));
    std::iota(s.begin(), s.end(), 0);
    for (;;) {  // lexicographic enumeration
      out.push_back(s);
      int i = k - 1;
      while (i >= 0 && s[static_cast<size_t>(i)] == m - k + i) --i;
      if (i < 0) break;
      ++s[static_cast<size_t>(i)];
      for (int j = i + 1; j < k; ++j) s[static_cast<size_t>(j)] = s[static_cast<size_t>(j - 1)] + 1;
    }
    return out;
  }
  Rng rng(seed);
  std::vector<int> pool(static_cast<size_t>(m));
  for (int d = 0; d < max_subsets; ++d) {
    std::iota(pool.begin(), pool.end(), 0);
    for (int i = 0; i < k; ++i)  // partial Fisher-Yates: the first k of a uniform shuffle
      std::swap(pool[static_cast<size_t>(i)], pool[static_cast<size_t>(i) + rng.below(static_cast<uint64_t>(m - i))]);
    std::vector<int> s(pool.begin(), pool.begin() + k);
    std::sort(s.begin(), s.end());
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<int> kept_samples(const StoredItem& item, const std::vector<int>& subset, Method m) {
  std::vector<int> kept;
  for (int i : subset)
    if (item.samples[static_cast<size_t>(i)].valid) kept.push_back(i);
  if (m != Method::MetaRM) return kept;
  for (int i : kept)
    if (!item.samples[static_cast<size_t>(i)].meta)
      throw Error("MetaRM: item '" + item.key + "' sample " + std::to_string(i) + " has no meta score");
  const size_t k_meta = static_cast<size_t>(std::max(1, static_cast<int>(subset.size()) / 2));
  std::stable_sort(kept.begin(), kept.end(), [&](int a, int b) {
    return *item.samples[static_cast<size_t>(a)].meta > *item.samples[static_cast<size_t>(b)].meta;
  });
  if (kept.size() > k_meta) kept.resize(k_meta);
  std::sort(kept.begin(), kept.end());
  return kept;
}

double draw_credit(const StoredItem& item, const std::vector<int>& kept, TiePolicy ties) {
  if (kept.empty()) return 0.0;
  std::vector<double> totals(static_cast<size_t>(item.n), 0.0);
  for (int i : kept) {
    const auto& s = item.samples[static_cast<size_t>(i)].scores;
    for (size_t r = 0; r < totals.size(); ++r) totals[r] += s[r];
  }
  TiePolicy t = ties == TiePolicy::Random ? TiePolicy::Half : ties;  // the expectation of a random tie-break
  if (item.strict) t = TiePolicy::Strict;
  return pick_credit(totals, item.best, t, 0);
}

double draw_score(const StoredItem& item, const std::vector<int>& kept) {
  if (kept.empty()) return 0.5 * (item.range.lo + item.range.hi);
  double sum = 0;
  for (int i : kept) sum += item.samples[static_cast<size_t>(i)].scores.at(0);
  return sum / static_cast<double>(kept.size());
}

ItemValue item_value(const StoredItem& item, int k, Method m, const DrawOptions& opt) {
  const int have = static_cast<int>(item.samples.size());
  if (have == 0) throw Error("item '" + item.key + "' has no stored samples");
  k = std::clamp(k, 1, have);
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the item's identity
  for (unsigned char c : store_id(item.bench, item.key, item.greedy)) h = (h ^ c) * 0x100000001b3ull;
  const auto subsets = draw_subsets(have, k, opt.max_subsets, derive_seed(derive_seed(opt.seed, h), static_cast<uint64_t>(k)));
  ItemValue v;
  const double w = 1.0 / static_cast<double>(subsets.size());
  if (item.n >= 2) {
    for (const auto& s : subsets) v.credit += draw_credit(item, kept_samples(item, s, m), opt.ties);
    v.credit *= w;
    return v;
  }
  std::map<double, double> dist;
  for (const auto& s : subsets) dist[draw_score(item, kept_samples(item, s, m))] += w;
  v.dist.assign(dist.begin(), dist.end());
  return v;
}

}  // namespace grm::eval
