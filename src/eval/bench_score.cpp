#include "eval/bench_score.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/metrics.h"
#include "core/rng.h"

namespace grm::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string group_of(const StoredItem& it, const std::string& name) {
  const auto g = it.groups.find(name);
  return g == it.groups.end() ? std::string("unknown") : g->second;
}

double mean_finite(const std::vector<double>& v) {
  double s = 0;
  size_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) {
      s += x;
      ++n;
    }
  return n ? s / static_cast<double>(n) : kNaN;
}

}  // namespace

BenchScorer::BenchScorer(std::string bench, std::vector<const StoredItem*> items, std::vector<ItemValue> values)
    : bench_(std::move(bench)), items_(std::move(items)), values_(std::move(values)) {
  if (items_.size() != values_.size()) throw Error("BenchScorer: items and values differ in size");
  std::map<std::string, std::vector<size_t>> strata;
  for (size_t i = 0; i < items_.size(); ++i) {
    const StoredItem& it = *items_[i];
    const bool single = it.n == 1;
    std::string stratum;
    if (bench_ == kRewardBench) {
      stratum = group_of(it, "subset");
      mean_groups_["subsets/" + stratum].push_back(i);
    } else if (bench_ == kPpeCorrect) {
      stratum = group_of(it, "source");
      mean_groups_["source_sets/" + stratum].push_back(i);
    } else if (bench_ == kRmb) {
      stratum = group_of(it, "category") + " " + group_of(it, "kind");
      mean_groups_["categories/" + stratum].push_back(i);
    } else if (bench_ == kSynth) {
      const std::string d = group_of(it, "domain");
      stratum = d + (single ? "/label" + std::to_string(it.label) : "/choice");
      if (single) {
        auc_groups_["summary/auc"];
        auc_groups_["domains_auc/" + d];
      } else {
        mean_groups_["summary/accuracy"].push_back(i);
        mean_groups_["domains/" + d].push_back(i);
      }
    } else if (bench_ == kReaLMistake) {
      stratum = std::to_string(it.label);
      auc_groups_["score"];
    } else {
      mean_groups_["score"].push_back(i);
    }
    strata[stratum].push_back(i);
  }
  for (auto& [_, idx] : strata) strata_.push_back(std::move(idx));
  // Pool the draw-score distributions of the n = 1 items of each AUC group, sorted once.
  for (auto& [name, entries] : auc_groups_) {
    const std::string domain = name.rfind("domains_auc/", 0) == 0 ? name.substr(12) : "";
    for (size_t i = 0; i < items_.size(); ++i) {
      if (items_[i]->n != 1 || (!domain.empty() && group_of(*items_[i], "domain") != domain)) continue;
      for (const auto& [score, prob] : values_[i].dist) entries.push_back({score, prob, i});
    }
    std::sort(entries.begin(), entries.end(), [](const AucEntry& a, const AucEntry& b) { return a.score < b.score; });
  }
}

double BenchScorer::mean_of(const std::vector<size_t>& idx, const std::vector<double>& w) const {
  double num = 0, den = 0;
  for (size_t i : idx) {
    const double wi = w.empty() ? 1.0 : w[i];
    num += wi * values_[i].credit;
    den += wi;
  }
  return den > 0 ? num / den : kNaN;
}

// Mann-Whitney over pooled draws: P(score_pos > score_neg) + ½ P(equal), each item's draws weighted by its
// probability times the item's weight (core roc_auc's counting, with masses instead of counts).
double BenchScorer::auc_of(const std::vector<AucEntry>& sorted, const std::vector<double>& w) const {
  double u = 0, neg_below = 0, pos_total = 0;
  for (size_t i = 0; i < sorted.size();) {
    double pos = 0, neg = 0;
    size_t j = i;
    for (; j < sorted.size() && sorted[j].score == sorted[i].score; ++j) {
      const double m = sorted[j].prob * (w.empty() ? 1.0 : w[sorted[j].item]);
      (items_[sorted[j].item]->label == 1 ? pos : neg) += m;
    }
    u += pos * (neg_below + 0.5 * neg);
    neg_below += neg;
    pos_total += pos;
    i = j;
  }
  return pos_total > 0 && neg_below > 0 ? u / (pos_total * neg_below) : kNaN;
}

Numbers BenchScorer::numbers(const std::vector<double>& w) const {
  Numbers out;
  for (const auto& [name, idx] : mean_groups_) out[name] = mean_of(idx, w);
  for (const auto& [name, entries] : auc_groups_) out[name] = auc_of(entries, w);
  if (bench_ == kRewardBench) {
    std::map<std::string, double> subsets;
    for (const auto& [name, v] : out)
      if (std::isfinite(v)) subsets[name.substr(8)] = v;  // strip "subsets/"
    const RewardBenchScore rb = rewardbench_score(subsets);
    for (const auto& [section, v] : rb.sections) out["sections/" + section] = v;
    out["score"] = rb.score;
  } else if (bench_ == kPpeCorrect) {
    std::vector<double> sets;
    for (const auto& [name, v] : out) sets.push_back(v);
    out["score"] = mean_finite(sets);
  } else if (bench_ == kRmb) {
    std::vector<double> four;
    for (const char* c : {"Helpfulness BoN", "Helpfulness Pairwise", "Harmlessness BoN", "Harmlessness Pairwise"})
      if (const auto it = out.find(std::string("categories/") + c); it != out.end()) four.push_back(it->second);
    out["score"] = mean_finite(four);
  } else if (bench_ == kSynth) {
    const auto acc = out.find("summary/accuracy");
    out["score"] = acc != out.end() ? acc->second : (out.count("summary/auc") ? out["summary/auc"] : kNaN);
  }
  if (!out.count("score")) out["score"] = kNaN;
  return out;
}

std::vector<double> bootstrap_weights(const std::vector<std::vector<size_t>>& strata, size_t n_items, uint64_t seed,
                                      int round) {
  std::vector<double> w(n_items, 0.0);
  Rng rng(derive_seed(seed, static_cast<uint64_t>(round)));
  for (const auto& s : strata)
    for (size_t d = 0; d < s.size(); ++d) w[s[rng.below(s.size())]] += 1.0;
  return w;
}

Replicates replicate(const BenchScorer& scorer, int rounds, uint64_t seed) {
  Replicates r;
  r.point = scorer.numbers();
  r.rounds.reserve(static_cast<size_t>(std::max(0, rounds)));
  for (int b = 0; b < rounds; ++b) r.rounds.push_back(scorer.numbers(bootstrap_weights(scorer.strata(), scorer.size(), seed, b)));
  return r;
}

std::map<std::string, Estimate> estimates(const Replicates& r, double level) {
  std::map<std::string, Estimate> out;
  for (const auto& [name, value] : r.point) {
    Estimate e{value, kNaN, kNaN};
    std::vector<double> xs;
    for (const auto& round : r.rounds)
      if (const auto it = round.find(name); it != round.end() && std::isfinite(it->second)) xs.push_back(it->second);
    if (!xs.empty() && std::isfinite(value)) {
      std::sort(xs.begin(), xs.end());
      e.lo = quantile_sorted(xs, (1 - level) / 2);
      e.hi = quantile_sorted(xs, (1 + level) / 2);
    }
    out[name] = e;
  }
  return out;
}

}  // namespace grm::eval
