// Voting@k and MetaRM@k from stored samples: one sampling pass at k_max, then every k is computed by
// averaging over size-k subsets of the stored judgments instead of sampling again.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/metrics.h"
#include "eval/store.h"

namespace grm::eval {

enum class Method { Voting, MetaRM, Greedy };
std::string method_name(Method m);  // "voting" | "metarm" | "greedy"

// 1, 2, 4, ... below k_max, then k_max itself (so a k_max that is not a power of two still appears).
std::vector<int> k_grid(int k_max);

// C(m, k), saturating at UINT64_MAX.
uint64_t binomial(int m, int k);

// The size-k subsets of the sample indices 0..m-1 that stand in for "k samples": every subset when
// C(m, k) <= max_subsets (exact), else `max_subsets` independent uniform subsets drawn with Rng(seed).
// Each subset is sorted ascending.
std::vector<std::vector<int>> draw_subsets(int m, int k, int max_subsets, uint64_t seed);

// The samples one draw keeps: Voting keeps every valid sample of the subset; MetaRM keeps the
// max(1, |subset|/2) valid ones with the highest meta score (ties: lower sample index first), exactly as
// core/vote.h's Meta aggregate does. Greedy behaves as Voting.
std::vector<int> kept_samples(const StoredItem& item, const std::vector<int>& subset, Method m);

// Credit of one draw for an item with n >= 2 (totals = summed scores of the kept samples): 0 when nothing
// was kept (an unparseable judgment is not correct), else pick_credit() — with TiePolicy::Random taken in
// expectation (1/m for an m-way tie at the top, the mean of the paper's shuffle-then-argmax), and
// TiePolicy::Strict for an item marked strict (RMB best-of-N).
double draw_credit(const StoredItem& item, const std::vector<int>& kept, TiePolicy ties);
// Score of one draw for an n = 1 item: the mean score of the kept samples (the sum divided by how many,
// so abstentions do not lower it), or the middle of the score range when nothing was kept.
double draw_score(const StoredItem& item, const std::vector<int>& kept);

// One item's value at one k: n >= 2 → the mean credit over the draws; n = 1 → the distribution of the
// draw scores (for ROC-AUC), as (score, probability) pairs in ascending score order.
struct ItemValue {
  double credit = 0;
  std::vector<std::pair<double, double>> dist;
};

struct DrawOptions {
  int max_subsets = 64;
  uint64_t seed = 0;
  TiePolicy ties = TiePolicy::Random;
};

// `k` is clamped to the item's sample count. The draws depend only on (seed, item bench/key/greedy, k), so
// an item's value does not depend on which other items are evaluated.
ItemValue item_value(const StoredItem& item, int k, Method m, const DrawOptions& opt);

}  // namespace grm::eval
