#include "eval/results.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/rng.h"

namespace grm::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

uint64_t text_hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

bool all_meta(const std::vector<const StoredItem*>& items) {
  bool any_valid = false;
  for (const auto* it : items)
    for (const auto& s : it->samples) {
      if (!s.valid) continue;
      any_valid = true;
      if (!s.meta) return false;
    }
  return any_valid;
}

// The headline of one benchmark at one (method, k): its point value and its bootstrap rounds.
struct Headline {
  double point = kNaN;
  std::vector<double> rounds;
};

Estimate overall_estimate(const std::vector<Headline>& hs) {
  Estimate e{0, kNaN, kNaN};
  for (const auto& h : hs) e.value += h.point;
  e.value /= static_cast<double>(hs.size());
  const size_t rounds = hs.front().rounds.size();
  std::vector<double> xs;
  for (size_t r = 0; r < rounds; ++r) {
    double s = 0;
    for (const auto& h : hs) s += h.rounds[r];
    if (std::isfinite(s)) xs.push_back(s / static_cast<double>(hs.size()));
  }
  if (!xs.empty() && std::isfinite(e.value)) {
    std::sort(xs.begin(), xs.end());
    e.lo = quantile_sorted(xs, 0.025);
    e.hi = quantile_sorted(xs, 0.975);
  }
  return e;
}

}  // namespace

EvalResults aggregate_results(const std::vector<StoredItem>& items, const std::vector<StoredSource>& sources,
                              const AggregateOptions& opt) {
  EvalResults res;
  int k_min = INT_MAX, k_top = 0;
  for (const auto& it : items)
    if (!it.greedy && !it.samples.empty()) {
      k_min = std::min(k_min, static_cast<int>(it.samples.size()));
      k_top = std::max(k_top, static_cast<int>(it.samples.size()));
    }
  res.k_max = k_top ? k_min : 0;
  if (k_top && k_top != k_min)
    res.warnings.push_back("items hold between " + std::to_string(k_min) + " and " + std::to_string(k_top) +
                           " samples; k is evaluated up to " + std::to_string(k_min));
  res.ks = k_grid(res.k_max);
  if (res.k_max == 0) res.ks.clear();

  std::map<Method, std::map<int, std::vector<Headline>>> heads;  // main benchmarks only
  for (const std::string& bench : bench_names()) {
    std::vector<const StoredItem*> sampled, greedy;
    for (const auto& it : items) {
      if (it.bench != bench || it.samples.empty()) continue;
      (it.greedy ? greedy : sampled).push_back(&it);
    }
    if (sampled.empty() && greedy.empty()) continue;
    BenchResult br;
    br.bench = bench;
    br.n = sampled.empty() ? greedy.size() : sampled.size();
    for (const auto& s : sources)
      if (s.bench == bench) {
        br.rows += s.rows;
        br.excluded += s.excluded;
        br.malformed += s.malformed;
      }
    for (const auto* it : sampled)
      for (const auto& s : it->samples) {
        ++br.samples;
        br.invalid += s.valid ? 0 : 1;
        for (const auto& [group, name] : it->groups) {
          auto& counts = br.validity[group][name];
          ++counts.first;
          counts.second += s.valid ? 0 : 1;
        }
      }
    std::vector<Method> methods;
    if (!sampled.empty()) methods.push_back(Method::Voting);
    if (!sampled.empty() && all_meta(sampled)) methods.push_back(Method::MetaRM);
    if (!greedy.empty()) methods.push_back(Method::Greedy);
    const uint64_t boot_seed = derive_seed(opt.seed, text_hash(bench));
    const DrawOptions draw{opt.max_subsets, opt.seed, opt.ties};
    for (Method m : methods) {
      const auto& its = m == Method::Greedy ? greedy : sampled;
      const std::vector<int> ks = m == Method::Greedy ? std::vector<int>{1} : res.ks;
      for (int k : ks) {
        std::vector<ItemValue> values;
        values.reserve(its.size());
        for (const auto* it : its) values.push_back(item_value(*it, k, m, draw));
        const BenchScorer scorer(bench, its, std::move(values));
        const Replicates rep = replicate(scorer, opt.bootstrap, boot_seed);
        br.curves[m][k] = estimates(rep);
        if (in_overall(bench)) {
          Headline h;
          h.point = rep.point.at("score");
          for (const auto& r : rep.rounds) h.rounds.push_back(r.at("score"));
          heads[m][k].push_back(std::move(h));
        }
      }
    }
    if (in_overall(bench)) res.overall_benches.push_back(bench);
    res.benches.push_back(std::move(br));
  }
  const size_t n_main = res.overall_benches.size();
  for (const auto& [m, by_k] : heads)
    for (const auto& [k, hs] : by_k)
      if (hs.size() == n_main && n_main > 0) res.overall[m][k] = overall_estimate(hs);
  return res;
}

}  // namespace grm::eval
