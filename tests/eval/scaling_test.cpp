#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "core/vote.h"
#include "eval/scaling.h"

using namespace grm;
using namespace grm::eval;

namespace {

// An item with m samples of n responses: random scores in 1..10, some invalid, meta scores optional.
StoredItem random_item(int n, int m, uint64_t seed, bool with_meta, int best = 0) {
  StoredItem it;
  it.bench = "synth";
  it.key = "item" + std::to_string(seed);
  it.n = n;
  if (n >= 2) it.best = best;
  else it.label = static_cast<int>(seed % 2);
  Rng rng(seed);
  for (int j = 0; j < m; ++j) {
    StoredSample s;
    s.valid = rng.below(6) != 0;
    if (s.valid)
      for (int i = 0; i < n; ++i) s.scores.push_back(1 + static_cast<int>(rng.below(n == 1 ? 10 : 4)) + (i == best ? 1 : 0));
    if (with_meta) s.meta = static_cast<double>(rng.below(5));  // small range: ties in meta happen
    it.samples.push_back(s);
  }
  return it;
}

// Brute force: every size-k subset, via core's aggregate() (Vote or Meta) and pick_credit().
double brute_credit(const StoredItem& it, int k, Method m, TiePolicy ties) {
  const int mm = static_cast<int>(it.samples.size());
  double sum = 0;
  int count = 0;
  for (uint32_t mask = 0; mask < (1u << mm); ++mask) {
    if (__builtin_popcount(mask) != k) continue;
    std::vector<Sample> samples;
    for (int j = 0; j < mm; ++j)
      if (mask >> j & 1) {
        Sample s;
        s.judgment.valid = it.samples[static_cast<size_t>(j)].valid;
        s.judgment.scores = it.samples[static_cast<size_t>(j)].scores;
        s.meta = it.samples[static_cast<size_t>(j)].meta;
        samples.push_back(s);
      }
    VoteOptions vo;
    vo.aggregate = m == Method::MetaRM ? Aggregate::Meta : Aggregate::Vote;
    vo.k_meta = std::max(1, k / 2);
    const Reward r = aggregate(samples, it.n, vo);
    sum += r.kept == 0 ? 0.0 : pick_credit(r.rewards, it.best, ties == TiePolicy::Random ? TiePolicy::Half : ties, 0);
    ++count;
  }
  return sum / count;
}

}  // namespace

TEST(EvalScaling, KGridAndBinomial) {
  EXPECT_EQ(k_grid(32), (std::vector<int>{1, 2, 4, 8, 16, 32}));
  EXPECT_EQ(k_grid(12), (std::vector<int>{1, 2, 4, 8, 12}));
  EXPECT_EQ(k_grid(1), (std::vector<int>{1}));
  EXPECT_EQ(binomial(5, 2), 10u);
  EXPECT_EQ(binomial(32, 16), 601080390u);
  EXPECT_EQ(binomial(4, 5), 0u);
  EXPECT_EQ(binomial(1000, 500), UINT64_MAX);
}

TEST(EvalScaling, SubsetsAreAllEnumeratedWhenFew) {
  const auto s = draw_subsets(5, 2, 64, 1);
  ASSERT_EQ(s.size(), 10u);
  std::set<std::vector<int>> uniq(s.begin(), s.end());
  EXPECT_EQ(uniq.size(), 10u);
  const auto r = draw_subsets(32, 8, 64, 7);
  ASSERT_EQ(r.size(), 64u);
  for (const auto& x : r) {
    ASSERT_EQ(x.size(), 8u);
    EXPECT_TRUE(std::is_sorted(x.begin(), x.end()));
    EXPECT_EQ(std::set<int>(x.begin(), x.end()).size(), 8u);
  }
  EXPECT_EQ(draw_subsets(32, 8, 64, 7), r);  // seeded
  EXPECT_THROW(draw_subsets(4, 5, 64, 0), Error);
}

// The subset-averaged Voting@k / MetaRM@k equals the brute-force mean over all size-k subsets computed with
// core's aggregate(), for every tie policy, on small random cases.
TEST(EvalScaling, SubsetAverageEqualsBruteForce) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const int n = 2 + static_cast<int>(seed % 3);
    const StoredItem it = random_item(n, 6, seed, true, static_cast<int>(seed % n));
    for (int k = 1; k <= 6; ++k)
      for (Method m : {Method::Voting, Method::MetaRM})
        for (TiePolicy t : {TiePolicy::Random, TiePolicy::Half, TiePolicy::Strict}) {
          DrawOptions o;
          o.ties = t;
          o.max_subsets = 64;  // C(6, k) <= 20: exact enumeration
          EXPECT_NEAR(item_value(it, k, m, o).credit, brute_credit(it, k, m, t), 1e-12)
              << "seed " << seed << " k " << k << " " << method_name(m) << " " << to_string(t);
        }
  }
}

// With more subsets than the budget the estimate is a Monte-Carlo mean close to the exact value.
TEST(EvalScaling, SampledSubsetsApproximateTheExactMean) {
  const StoredItem it = random_item(2, 12, 99, false);
  DrawOptions exact;
  exact.max_subsets = 1000;  // C(12, 6) = 924: exact
  DrawOptions sampled;
  sampled.max_subsets = 400;
  const double e = item_value(it, 6, Method::Voting, exact).credit;
  const double s = item_value(it, 6, Method::Voting, sampled).credit;
  EXPECT_NEAR(s, e, 0.05);
}

TEST(EvalScaling, TiesAndStrictItems) {
  StoredItem it;
  it.key = "t";
  it.bench = "rmb";
  it.n = 4;
  it.best = 1;
  it.samples.push_back({{}, {5, 7, 7, 7}, true, "", std::nullopt});
  DrawOptions o;
  EXPECT_NEAR(item_value(it, 1, Method::Voting, o).credit, 1.0 / 3, 1e-12);  // expected random tie-break
  o.ties = TiePolicy::Strict;
  EXPECT_EQ(item_value(it, 1, Method::Voting, o).credit, 0.0);
  o.ties = TiePolicy::Half;
  it.strict = true;  // RMB best-of-N: a tie is wrong whatever the policy
  EXPECT_EQ(item_value(it, 1, Method::Voting, o).credit, 0.0);
  it.samples[0].valid = false;  // nothing kept: not correct
  it.strict = false;
  EXPECT_EQ(item_value(it, 1, Method::Voting, o).credit, 0.0);
}

TEST(EvalScaling, SingleResponseDistribution) {
  StoredItem it;
  it.key = "s";
  it.bench = "realmistake";
  it.n = 1;
  it.label = 1;
  for (int s : {2, 4, 6}) it.samples.push_back({{0}, {s}, true, "", std::nullopt});
  it.samples.push_back({{0}, {}, false, "no boxed scores", std::nullopt});
  DrawOptions o;
  // k = 1: four draws: 2, 4, 6 and an abstention (the middle of 1..10 = 5.5).
  const auto v1 = item_value(it, 1, Method::Voting, o);
  ASSERT_EQ(v1.dist.size(), 4u);
  EXPECT_EQ(v1.dist[0].first, 2);
  EXPECT_EQ(v1.dist[3].first, 6);
  EXPECT_DOUBLE_EQ(v1.dist[2].first, 5.5);
  EXPECT_DOUBLE_EQ(v1.dist[0].second, 0.25);
  // k = 4: one draw; the abstention does not lower the mean of the valid scores.
  const auto v4 = item_value(it, 4, Method::Voting, o);
  ASSERT_EQ(v4.dist.size(), 1u);
  EXPECT_DOUBLE_EQ(v4.dist[0].first, 4.0);
}

TEST(EvalScaling, MetaNeedsMetaScores) {
  StoredItem it = random_item(2, 4, 3, false);
  DrawOptions o;
  EXPECT_THROW(item_value(it, 2, Method::MetaRM, o), Error);
}
