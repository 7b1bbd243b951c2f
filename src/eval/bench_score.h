// A benchmark's numbers from per-item values: the headline "score" and named sub-scores
// ("<group>/<name>", e.g. "sections/Chat Hard", "subsets/llmbar-natural", "source_sets/math",
// "categories/Helpfulness BoN", "domains/code"), plus stratified bootstrap CIs. Numbers are fractions.
//
// | bench       | score                                   | sub-scores                                   |
// |-------------|-----------------------------------------|----------------------------------------------|
// | rewardbench | mean of the sections (core rewardbench_score) | sections/*, subsets/*                   |
// | ppe-pref    | accuracy                                | —                                            |
// | ppe-correct | mean accuracy over the source sets      | source_sets/*                                |
// | rmb         | mean of Helpfulness/Harmlessness × BoN/Pairwise present | categories/*                 |
// | realmistake | ROC-AUC (higher score = no_error)       | —                                            |
// | synth       | accuracy of n >= 2 items (ROC-AUC when there are none) | summary/accuracy, summary/auc, domains/*, domains_auc/* |
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "eval/scaling.h"
#include "eval/store.h"

namespace grm::eval {

using Numbers = std::map<std::string, double>;

class BenchScorer {
 public:
  // items[i] has value values[i]; all items belong to `bench`.
  BenchScorer(std::string bench, std::vector<const StoredItem*> items, std::vector<ItemValue> values);

  // The numbers with item i counted weights[i] times (empty: once each). A number whose items all have
  // weight 0, or an ROC-AUC missing a class, is NaN.
  Numbers numbers(const std::vector<double>& weights = {}) const;

  // Item indices grouped by bootstrap stratum (RewardBench subset, PPE source set, RMB category × kind,
  // ReaLMistake label, synth domain × kind/label), so every resample keeps the benchmark's composition.
  const std::vector<std::vector<size_t>>& strata() const { return strata_; }
  size_t size() const { return items_.size(); }

 private:
  struct AucEntry {
    double score, prob;
    size_t item;
  };
  double mean_of(const std::vector<size_t>& idx, const std::vector<double>& w) const;
  double auc_of(const std::vector<AucEntry>& sorted, const std::vector<double>& w) const;

  std::string bench_;
  std::vector<const StoredItem*> items_;
  std::vector<ItemValue> values_;
  std::vector<std::vector<size_t>> strata_;
  std::map<std::string, std::vector<size_t>> mean_groups_;     // number name → items averaged
  std::map<std::string, std::vector<AucEntry>> auc_groups_;    // number name → pooled draw scores, sorted
};

// Resampling weights for bootstrap round r: within each stratum, |stratum| draws with replacement from
// Rng(derive_seed(seed, r)). Rounds with the same seed and strata are identical across k and methods.
std::vector<double> bootstrap_weights(const std::vector<std::vector<size_t>>& strata, size_t n_items, uint64_t seed,
                                      int round);

// Point numbers and the numbers of `rounds` bootstrap resamples.
struct Replicates {
  Numbers point;
  std::vector<Numbers> rounds;
};
Replicates replicate(const BenchScorer& scorer, int rounds, uint64_t seed);

struct Estimate {
  double value = 0, lo = 0, hi = 0;  // NaN when undefined
};
// The 95% percentile interval (core quantile_sorted) of each number over the rounds (NaN rounds skipped).
std::map<std::string, Estimate> estimates(const Replicates& r, double level = 0.95);

}  // namespace grm::eval
