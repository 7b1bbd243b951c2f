// Evaluation metrics: accuracy with tie policies, best-of-N, ROC-AUC, RewardBench sections, bootstrap CIs.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace grm {

enum class TiePolicy { Random, Half, Strict };
TiePolicy parse_tie_policy(const std::string& name);  // "random" | "half" | "strict"; throws grm::Error

// Credit for one example whose `scores` should put `best` strictly on top:
// 1 if best is the unique max; 0 if some other response is strictly higher;
// with a tie at the top among m responses including best: Random → 1 with prob 1/m (seeded draw),
// Half → 1/m (reward-bench gives 0.5 for a pairwise tie), Strict → 0.
double pick_credit(const std::vector<double>& scores, int best, TiePolicy ties, uint64_t seed);

// Mean pick_credit over examples; example i uses seed derive_seed(seed, i).
double accuracy(const std::vector<std::vector<double>>& scores, const std::vector<int>& best, TiePolicy ties,
                uint64_t seed);

// ROC-AUC of `scores` for binary `labels` (1 positive), ties by average ranks (Mann-Whitney U).
// Returns NaN when one class is absent.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

// RewardBench: per-subset accuracies → section scores (weighted by reward-bench's example counts) and the
// final score (mean of the sections present). Unknown subsets are ignored (reported in `unknown`).
struct RewardBenchScore {
  std::map<std::string, double> sections;  // "Chat", "Chat Hard", "Safety", "Reasoning"
  double score = 0;
  std::vector<std::string> unknown;
};
RewardBenchScore rewardbench_score(const std::map<std::string, double>& subset_accuracy);
// The section a subset belongs to ("" if none).
std::string rewardbench_section(const std::string& subset);

// Percentile bootstrap CI: resample `values` with replacement `rounds` times, apply `stat`, take the
// (1-level)/2 and (1+level)/2 quantiles.
struct Interval {
  double lo = 0, hi = 0;
};
Interval bootstrap_ci(const std::vector<double>& values, const std::function<double(const std::vector<double>&)>& stat,
                      int rounds, double level, uint64_t seed);
// Convenience: CI of the mean.
Interval bootstrap_mean_ci(const std::vector<double>& values, int rounds = 1000, double level = 0.95,
                           uint64_t seed = 0);

}  // namespace grm
