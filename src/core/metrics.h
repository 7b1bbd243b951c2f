// Evaluation metrics: accuracy with tie policies, best-of-N, ROC-AUC, RewardBench sections, bootstrap CIs.
// Pure functions, no I/O; invalid input throws grm::Error. Every random step takes an explicit seed.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace grm {

// How a tie at the top is credited. The paper shuffles and takes the argmax (Random); reward-bench's
// generative scorer gives a pairwise tie 0.5 (Half); Eq. 10 counts a tie as wrong (Strict).
enum class TiePolicy { Random, Half, Strict };
TiePolicy parse_tie_policy(const std::string& name);  // "random" | "half" | "strict"; throws grm::Error
std::string to_string(TiePolicy t);                   // the name parse_tie_policy accepts

// Credit for one example whose `scores` should put `best` strictly on top (pairwise: n = 2; best-of-N:
// any n >= 1):
// 1 if best is the unique max; 0 if some other response is strictly higher;
// with a tie at the top among m responses including best: Random → 1 iff Rng(seed).below(m) == 0
// (probability 1/m, deterministic per seed), Half → 1/m (reward-bench gives 0.5 for a pairwise tie),
// Strict → 0. Throws grm::Error on empty scores, best out of range, or a NaN score. An unparseable
// judgment has no scores: the caller credits it 0 (paper: an unparseable judgment is not correct).
double pick_credit(const std::vector<double>& scores, int best, TiePolicy ties, uint64_t seed);

// Mean pick_credit over examples; example i uses seed derive_seed(seed, i), so an example's draw does not
// depend on the others. Throws grm::Error when there are no examples or the sizes differ.
double accuracy(const std::vector<std::vector<double>>& scores, const std::vector<int>& best, TiePolicy ties,
                uint64_t seed);

// ROC-AUC of `scores` for binary `labels` (1 positive, 0 negative): the Mann-Whitney U statistic with
// average ranks for ties, divided by n_pos·n_neg; equivalently P(pos > neg) + ½·P(pos == neg).
// O(n log n). Returns NaN when one class is absent. Throws grm::Error on a size mismatch, a label other
// than 0/1, or a NaN score.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

// RewardBench: per-subset accuracies → section scores (weighted by reward-bench's EXAMPLE_COUNTS, math-prm
// weighted 984) and the final score (mean of the sections present; NaN when none is). Scores are in the
// units of the input (fractions in, fractions out; reward-bench reports ×100). Unknown subsets (e.g. the
// prior sets) are ignored and listed in `unknown`. Throws grm::Error on a non-finite accuracy.
struct RewardBenchScore {
  std::map<std::string, double> sections;  // "Chat", "Chat Hard", "Safety", "Reasoning" (those present)
  double score = 0;
  std::vector<std::string> unknown;
};
RewardBenchScore rewardbench_score(const std::map<std::string, double>& subset_accuracy);
// The section a subset belongs to ("" if none).
std::string rewardbench_section(const std::string& subset);
// The weight reward-bench gives a subset (0 if unknown).
int rewardbench_weight(const std::string& subset);

// Quantile p in [0, 1] of an ascending, non-empty vector by linear interpolation between order statistics
// (Hyndman-Fan type 7, numpy's default): h = (n-1)·p, q = x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]).
double quantile_sorted(const std::vector<double>& sorted, double p);

// Percentile bootstrap CI: resample `values` with replacement `rounds` times (one grm::Rng(seed) stream),
// apply `stat`, take the (1-level)/2 and (1+level)/2 quantiles of the statistics (quantile_sorted).
// Throws grm::Error on empty values, rounds < 1, level outside (0, 1), or a NaN statistic.
struct Interval {
  double lo = 0, hi = 0;
};
Interval bootstrap_ci(const std::vector<double>& values, const std::function<double(const std::vector<double>&)>& stat,
                      int rounds, double level, uint64_t seed);
// Convenience: CI of the mean.
Interval bootstrap_mean_ci(const std::vector<double>& values, int rounds = 1000, double level = 0.95,
                           uint64_t seed = 0);

}  // namespace grm
