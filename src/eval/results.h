// From stored samples to every reported number: per benchmark and method (Voting, MetaRM, greedy), the
// headline and sub-scores at each k with 95% bootstrap CIs, and Overall.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "eval/bench_score.h"
#include "eval/scaling.h"
#include "eval/store.h"

namespace grm::eval {

struct AggregateOptions {
  TiePolicy ties = TiePolicy::Random;
  int max_subsets = 64;  // size-k subsets averaged per item and k (all of them when C(k_max, k) is smaller)
  int bootstrap = 1000;  // bootstrap rounds
  uint64_t seed = 0;
};

// One method's numbers: by_k[k][name] (greedy has k = 1 only).
using Curve = std::map<int, std::map<std::string, Estimate>>;

struct BenchResult {
  std::string bench;
  size_t n = 0;  // items evaluated
  size_t rows = 0, excluded = 0, malformed = 0;  // from the source lines
  size_t samples = 0, invalid = 0;               // stored sampled judgments and those that did not parse
  // The same two counts per item group: validity["domain"]["arith"] = {samples, invalid}.
  std::map<std::string, std::map<std::string, std::pair<size_t, size_t>>> validity;
  std::map<Method, Curve> curves;                // the methods with data
};

struct EvalResults {
  int k_max = 0;
  std::vector<int> ks;
  std::vector<BenchResult> benches;  // in bench_names() order
  std::vector<std::string> overall_benches;  // the paper's four that are present
  std::map<Method, std::map<int, Estimate>> overall;  // mean of their headlines (a method only if all have it)
  std::vector<std::string> warnings;
};

// `items` holds sampled and greedy items (greedy ones are matched to their benchmark by bench name).
// MetaRM is computed for a benchmark when every valid sample of its items carries a meta score.
// k_max is the smallest sample count of the sampled items (a warning when they differ).
EvalResults aggregate_results(const std::vector<StoredItem>& items, const std::vector<StoredSource>& sources,
                              const AggregateOptions& opt);

}  // namespace grm::eval
