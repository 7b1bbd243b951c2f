#include "synth/draft.h"

#include <algorithm>
#include <numeric>

namespace grm::synth::detail {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string pool_split(const std::string& s, const std::vector<std::string>& train,
                       const std::vector<std::string>& test) {
  if (contains(train, s)) return "train";
  if (contains(test, s)) return "test";
  return "";
}

std::vector<int> draw_weights(Rng& rng, int k, int first_min) {
  // Units of 10%: the first gets at least first_min/10, every other at least 1, the rest spread at random.
  std::vector<int> units(static_cast<size_t>(k), 1);
  units[0] = std::max(1, first_min / 10);
  int left = 10 - std::accumulate(units.begin(), units.end(), 0);
  while (left-- > 0) ++units[rng.below(static_cast<uint64_t>(k))];
  for (int& u : units) u *= 10;
  return units;
}

std::vector<Crit> draw_crits(Rng& rng, const std::vector<int>& dims,
                             const std::vector<std::vector<std::string>>& phrasings, int first_min) {
  const std::vector<int> w = draw_weights(rng, static_cast<int>(dims.size()), first_min);
  std::vector<Crit> out;
  for (size_t i = 0; i < dims.size(); ++i) out.push_back({dims[i], pick(rng, phrasings[dims[i]]), w[i]});
  rng.shuffle(out);
  return out;
}

int crit_count(Rng& rng, int count) { return count >= 4 ? 2 : 2 + static_cast<int>(rng.below(2)); }

bool has_dim(const std::vector<Crit>& crits, int dim) {
  for (const auto& c : crits)
    if (c.dim == dim) return true;
  return false;
}

int weighted_score(const std::vector<Crit>& crits, const Subs& sub) {
  int total = 0;
  for (const auto& c : crits) total += c.weight * sub[c.dim];
  return std::clamp((total + 50) / 100, 1, 10);
}

bool fill(Rng& rng, Draft& d, int count, const std::function<Cand(Rng&)>& make) {
  const int top = weighted_score(d.crits, d.cands[0].sub);
  for (int tries = 0; static_cast<int>(d.cands.size()) < count; ++tries) {
    if (tries >= 300) return false;
    Cand c = make(rng);
    if (weighted_score(d.crits, c.sub) >= top) continue;
    const bool seen = std::any_of(d.cands.begin(), d.cands.end(), [&](const Cand& o) { return o.text == c.text; });
    if (!seen) d.cands.push_back(std::move(c));
  }
  return true;
}

}  // namespace grm::synth::detail
