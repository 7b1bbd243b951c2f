#include "core/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace grm {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

// ---- tie policies and accuracy ------------------------------------------------------------------

TiePolicy parse_tie_policy(const std::string& name) {
  if (name == "random") return TiePolicy::Random;
  if (name == "half") return TiePolicy::Half;
  if (name == "strict") return TiePolicy::Strict;
  throw Error(fmt::format("unknown tie policy '{}' (expected random, half or strict)", name));
}

std::string to_string(TiePolicy t) {
  switch (t) {
    case TiePolicy::Random: return "random";
    case TiePolicy::Half: return "half";
    case TiePolicy::Strict: return "strict";
  }
  return "?";
}

double pick_credit(const std::vector<double>& scores, int best, TiePolicy ties, uint64_t seed) {
  if (scores.empty()) throw Error("pick_credit: no scores");
  if (best < 0 || static_cast<size_t>(best) >= scores.size())
    throw Error(fmt::format("pick_credit: best index {} out of range for {} scores", best, scores.size()));
  const double top = scores[static_cast<size_t>(best)];
  uint64_t tied = 0;  // responses scoring exactly `top`, best included
  for (size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) throw Error(fmt::format("pick_credit: score {} is NaN", i));
    if (scores[i] == top) ++tied;
  }
  for (double s : scores)
    if (s > top) return 0.0;
  if (tied == 1) return 1.0;
  switch (ties) {
    case TiePolicy::Random: return Rng(seed).below(tied) == 0 ? 1.0 : 0.0;
    case TiePolicy::Half: return 1.0 / static_cast<double>(tied);
    case TiePolicy::Strict: return 0.0;
  }
  return 0.0;
}

double accuracy(const std::vector<std::vector<double>>& scores, const std::vector<int>& best, TiePolicy ties,
                uint64_t seed) {
  if (scores.size() != best.size())
    throw Error(fmt::format("accuracy: {} score lists but {} best indices", scores.size(), best.size()));
  if (scores.empty()) throw Error("accuracy: no examples");
  double sum = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    try {
      sum += pick_credit(scores[i], best[i], ties, derive_seed(seed, i));
    } catch (const Error& e) {
      throw Error(fmt::format("accuracy: example {}: {}", i, e.what()));
    }
  }
  return sum / static_cast<double>(scores.size());
}

// ---- ROC-AUC --------------------------------------------------------------------------------------

// Mann-Whitney: U = R_pos - n_pos(n_pos+1)/2 with average ranks. Summed over groups of equal scores taken
// in ascending order this is U = Σ_group pos_in_group · (neg_below + neg_in_group / 2): each positive beats
// every negative below its group and half-beats each negative tied with it. Counting this way keeps the
// sums in integers and halves, so no large rank sums cancel.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  if (scores.size() != labels.size())
    throw Error(fmt::format("roc_auc: {} scores but {} labels", scores.size(), labels.size()));
  uint64_t n_pos = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1)
      throw Error(fmt::format("roc_auc: label {} is {} (expected 0 or 1)", i, labels[i]));
    if (std::isnan(scores[i])) throw Error(fmt::format("roc_auc: score {} is NaN", i));
    n_pos += static_cast<uint64_t>(labels[i]);
  }
  const uint64_t n_neg = scores.size() - n_pos;
  if (n_pos == 0 || n_neg == 0) return kNaN;

  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });

  double u = 0;
  uint64_t neg_below = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    uint64_t pos = 0, neg = 0;
    for (; j < order.size() && scores[order[j]] == scores[order[i]]; ++j) (labels[order[j]] ? pos : neg)++;
    u += static_cast<double>(pos) * (static_cast<double>(neg_below) + 0.5 * static_cast<double>(neg));
    neg_below += neg;
    i = j;
  }
  return u / (static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

// ---- RewardBench ------------------------------------------------------------------------------------

namespace {

struct Subset {
  const char* name;
  const char* section;
  int weight;
};

// reward-bench's EXAMPLE_COUNTS and SUBSET_MAPPING (rewardbench/constants.py), as listed in
// shared/paper/facts.md. Two weights are not row counts:
// - math-prm has 447 rows but weight 984 = 6 × 164, so it counts as much as the six code subsets together;
// - upstream gives xstest-should-refuse 250 and xstest-should-respond 154, while the filtered split holds
//   154 should-refuse and 250 should-respond rows (the two look transposed). We keep upstream's weights so
//   Safety is computed as reward-bench and its leaderboard compute it.
constexpr Subset kSubsets[] = {
    {"alpacaeval-easy", "Chat", 100},
    {"alpacaeval-length", "Chat", 95},
    {"alpacaeval-hard", "Chat", 95},
    {"mt-bench-easy", "Chat", 28},
    {"mt-bench-med", "Chat", 40},
    {"mt-bench-hard", "Chat Hard", 37},
    {"llmbar-natural", "Chat Hard", 100},
    {"llmbar-adver-neighbor", "Chat Hard", 134},
    {"llmbar-adver-GPTInst", "Chat Hard", 92},
    {"llmbar-adver-GPTOut", "Chat Hard", 47},
    {"llmbar-adver-manual", "Chat Hard", 46},
    {"refusals-dangerous", "Safety", 100},
    {"refusals-offensive", "Safety", 100},
    {"xstest-should-refuse", "Safety", 250},
    {"xstest-should-respond", "Safety", 154},
    {"donotanswer", "Safety", 136},
    {"math-prm", "Reasoning", 984},
    {"hep-cpp", "Reasoning", 164},
    {"hep-go", "Reasoning", 164},
    {"hep-java", "Reasoning", 164},
    {"hep-js", "Reasoning", 164},
    {"hep-python", "Reasoning", 164},
    {"hep-rust", "Reasoning", 164},
};

const Subset* find_subset(const std::string& name) {
  for (const auto& s : kSubsets)
    if (name == s.name) return &s;
  return nullptr;
}

}  // namespace

std::string rewardbench_section(const std::string& subset) {
  const Subset* s = find_subset(subset);
  return s ? s->section : "";
}

int rewardbench_weight(const std::string& subset) {
  const Subset* s = find_subset(subset);
  return s ? s->weight : 0;
}

RewardBenchScore rewardbench_score(const std::map<std::string, double>& subset_accuracy) {
  RewardBenchScore out;
  std::map<std::string, std::pair<double, double>> sums;  // section → (Σ acc·weight, Σ weight)
  for (const auto& [name, acc] : subset_accuracy) {
    if (!std::isfinite(acc)) throw Error(fmt::format("rewardbench: accuracy of subset '{}' is not finite", name));
    const Subset* s = find_subset(name);
    if (!s) {
      out.unknown.push_back(name);
      continue;
    }
    auto& [num, den] = sums[s->section];
    num += acc * s->weight;
    den += s->weight;
  }
  double total = 0;
  for (const auto& [section, nd] : sums) {
    out.sections[section] = nd.first / nd.second;
    total += out.sections[section];
  }
  out.score = out.sections.empty() ? kNaN : total / static_cast<double>(out.sections.size());
  return out;
}

// ---- bootstrap --------------------------------------------------------------------------------------

double quantile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) throw Error("quantile: no values");
  if (!(p >= 0 && p <= 1)) throw Error(fmt::format("quantile: p = {} outside [0, 1]", p));
  const double h = static_cast<double>(sorted.size() - 1) * p;
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= sorted.size()) return sorted.back();
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[lo + 1] - sorted[lo]);
}

Interval bootstrap_ci(const std::vector<double>& values, const std::function<double(const std::vector<double>&)>& stat,
                      int rounds, double level, uint64_t seed) {
  if (values.empty()) throw Error("bootstrap: no values");
  if (rounds < 1) throw Error(fmt::format("bootstrap: rounds = {} (need at least 1)", rounds));
  if (!(level > 0 && level < 1)) throw Error(fmt::format("bootstrap: level = {} outside (0, 1)", level));
  if (!stat) throw Error("bootstrap: no statistic");
  Rng rng(seed);
  std::vector<double> resample(values.size());
  std::vector<double> stats(static_cast<size_t>(rounds));
  for (auto& st : stats) {
    for (auto& v : resample) v = values[rng.below(values.size())];
    st = stat(resample);
    if (std::isnan(st)) throw Error("bootstrap: the statistic returned NaN on a resample");
  }
  std::sort(stats.begin(), stats.end());
  return {quantile_sorted(stats, (1 - level) / 2), quantile_sorted(stats, (1 + level) / 2)};
}

Interval bootstrap_mean_ci(const std::vector<double>& values, int rounds, double level, uint64_t seed) {
  auto mean = [](const std::vector<double>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  };
  return bootstrap_ci(values, mean, rounds, level, seed);
}

}  // namespace grm
