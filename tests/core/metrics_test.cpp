#include "core/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace grm {
namespace {

// ---- tie policies --------------------------------------------------------------------------------

TEST(MetricsTiePolicy, ParsesNamesAndRoundTrips) {
  EXPECT_EQ(parse_tie_policy("random"), TiePolicy::Random);
  EXPECT_EQ(parse_tie_policy("half"), TiePolicy::Half);
  EXPECT_EQ(parse_tie_policy("strict"), TiePolicy::Strict);
  for (auto t : {TiePolicy::Random, TiePolicy::Half, TiePolicy::Strict}) EXPECT_EQ(parse_tie_policy(to_string(t)), t);
  EXPECT_THROW(parse_tie_policy("Half"), Error);
  EXPECT_THROW(parse_tie_policy(""), Error);
  EXPECT_THROW(parse_tie_policy("argmax"), Error);
}

// ---- pick_credit / accuracy -----------------------------------------------------------------------

TEST(MetricsPickCredit, UniqueWinnerAndLoserIgnoreThePolicy) {
  for (auto t : {TiePolicy::Random, TiePolicy::Half, TiePolicy::Strict}) {
    EXPECT_EQ(pick_credit({3, 1}, 0, t, 7), 1.0);
    EXPECT_EQ(pick_credit({1, 3}, 0, t, 7), 0.0);
    EXPECT_EQ(pick_credit({4}, 0, t, 7), 1.0);            // n = 1: trivially on top
    EXPECT_EQ(pick_credit({9, 4, 4}, 0, t, 7), 1.0);      // a tie below the top does not matter
    EXPECT_EQ(pick_credit({5, 7, 7, 7, 1}, 0, t, 7), 0.0);  // others tie above best: still a loss
    EXPECT_EQ(pick_credit({5, 7, 7, 7, 1}, 4, t, 7), 0.0);
  }
}

TEST(MetricsPickCredit, PairwiseTie) {
  EXPECT_EQ(pick_credit({2, 2}, 0, TiePolicy::Half, 0), 0.5);  // reward-bench's 0.5
  EXPECT_EQ(pick_credit({2, 2}, 1, TiePolicy::Strict, 0), 0.0);  // Eq. 10: a tie is not correct
  const double r = pick_credit({2, 2}, 0, TiePolicy::Random, 0);
  EXPECT_TRUE(r == 0.0 || r == 1.0);
}

TEST(MetricsPickCredit, BestOfNTieAtTheTop) {
  // best = 1 ties with responses 2 and 3 at 7: m = 3.
  const std::vector<double> s{5, 7, 7, 7, 1};
  EXPECT_DOUBLE_EQ(pick_credit(s, 1, TiePolicy::Half, 0), 1.0 / 3);
  EXPECT_EQ(pick_credit(s, 1, TiePolicy::Strict, 0), 0.0);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    // The documented draw: credit 1 iff Rng(seed).below(m) == 0.
    const double expected = Rng(seed).below(3) == 0 ? 1.0 : 0.0;
    EXPECT_EQ(pick_credit(s, 1, TiePolicy::Random, seed), expected) << "seed " << seed;
  }
}

TEST(MetricsPickCredit, RandomIsDeterministicPerSeedAndVariesAcrossSeeds) {
  const std::vector<double> s{1, 1};
  int ones = 0;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    const double a = pick_credit(s, 0, TiePolicy::Random, seed);
    EXPECT_EQ(a, pick_credit(s, 0, TiePolicy::Random, seed));
    ones += a == 1.0;
  }
  EXPECT_GT(ones, 0);
  EXPECT_LT(ones, 64);
}

TEST(MetricsPickCredit, RandomAveragesToOneOverM) {
  // Bernoulli(1/m) over N seeds: the mean has sd sqrt(p(1-p)/N) <= 0.005 for N = 10000; allow 0.03 (6 sd).
  constexpr int kSeeds = 10000;
  for (int m : {2, 3, 4}) {
    const std::vector<double> s(static_cast<size_t>(m), 5.0);
    double sum = 0;
    for (uint64_t seed = 0; seed < kSeeds; ++seed) sum += pick_credit(s, m - 1, TiePolicy::Random, seed);
    EXPECT_NEAR(sum / kSeeds, 1.0 / m, 0.03) << "m = " << m;
  }
}

TEST(MetricsPickCredit, ValidatesInput) {
  EXPECT_THROW(pick_credit({}, 0, TiePolicy::Half, 0), Error);
  EXPECT_THROW(pick_credit({1, 2}, -1, TiePolicy::Half, 0), Error);
  EXPECT_THROW(pick_credit({1, 2}, 2, TiePolicy::Half, 0), Error);
  EXPECT_THROW(pick_credit({1, NAN}, 0, TiePolicy::Half, 0), Error);
  EXPECT_THROW(pick_credit({NAN, 1}, 1, TiePolicy::Half, 0), Error);
}

TEST(MetricsAccuracy, PoliciesOnSmallSet) {
  // Credits with best = 0: [3,1] → 1; [1,3] → 0; [2,2] → tie of 2; [5,5,5,1] → tie of 3.
  const std::vector<std::vector<double>> s{{3, 1}, {1, 3}, {2, 2}, {5, 5, 5, 1}};
  const std::vector<int> best{0, 0, 0, 0};
  // Half: (1 + 0 + 1/2 + 1/3) / 4 = (11/6) / 4 = 11/24.
  EXPECT_DOUBLE_EQ(accuracy(s, best, TiePolicy::Half, 0), 11.0 / 24);
  // Strict: 1/4.
  EXPECT_DOUBLE_EQ(accuracy(s, best, TiePolicy::Strict, 0), 0.25);
  // Random: (1 + 0 + {0,1} + {0,1}) / 4, example i drawn with derive_seed(seed, i).
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const double expected = (1.0 + pick_credit(s[2], 0, TiePolicy::Random, derive_seed(seed, 2)) +
                             pick_credit(s[3], 0, TiePolicy::Random, derive_seed(seed, 3))) / 4;
    EXPECT_DOUBLE_EQ(accuracy(s, best, TiePolicy::Random, seed), expected);
    EXPECT_EQ(accuracy(s, best, TiePolicy::Random, seed), accuracy(s, best, TiePolicy::Random, seed));
  }
}

TEST(MetricsAccuracy, RandomOverManyTiedExamplesIsNearOneOverM) {
  // 10000 pairwise ties, one seed: per-example seeds make them independent draws → ≈ 0.5 (sd 0.005).
  const std::vector<std::vector<double>> s(10000, std::vector<double>{1, 1});
  const std::vector<int> best(s.size(), 1);
  EXPECT_NEAR(accuracy(s, best, TiePolicy::Random, 42), 0.5, 0.03);
  EXPECT_DOUBLE_EQ(accuracy(s, best, TiePolicy::Half, 42), 0.5);
}

TEST(MetricsAccuracy, ValidatesInput) {
  EXPECT_THROW(accuracy({}, {}, TiePolicy::Half, 0), Error);
  EXPECT_THROW(accuracy({{1, 2}}, {0, 1}, TiePolicy::Half, 0), Error);
  EXPECT_THROW(accuracy({{1, 2}, {}}, {0, 0}, TiePolicy::Half, 0), Error);
  EXPECT_THROW(accuracy({{1, 2}, {1, 2}}, {0, 5}, TiePolicy::Half, 0), Error);
}

// ---- ROC-AUC ----------------------------------------------------------------------------------------

TEST(MetricsRocAuc, SimpleCase) {
  // Positives {0.35, 0.8}, negatives {0.1, 0.4}: of the 4 (pos, neg) pairs, only 0.35 < 0.4 is misordered.
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
}

TEST(MetricsRocAuc, TiesUseAverageRanks) {
  // scores  0.2  0.5  0.5  0.5  0.9  0.2
  // labels   0    0    1    1    1    1        n_pos = 4, n_neg = 2
  // Ascending: 0.2 ×2 take ranks 1,2 → 1.5 each; 0.5 ×3 take ranks 3,4,5 → 4 each; 0.9 → rank 6.
  // Positive rank sum R = 4 + 4 + 6 + 1.5 = 15.5; U = R - n_pos(n_pos+1)/2 = 15.5 - 10 = 5.5;
  // AUC = U / (n_pos·n_neg) = 5.5 / 8 = 0.6875.
  // Pairwise check: each pos 0.5 beats neg 0.2 and ties neg 0.5 (1.5 each, 3 total); pos 0.9 beats both (2);
  // pos 0.2 ties neg 0.2 (0.5) → 5.5.
  const std::vector<double> s{0.2, 0.5, 0.5, 0.5, 0.9, 0.2};
  EXPECT_DOUBLE_EQ(roc_auc(s, {0, 0, 1, 1, 1, 1}), 0.6875);
  // Swapping the classes gives 1 - AUC: ties count ½ both ways.
  EXPECT_DOUBLE_EQ(roc_auc(s, {1, 1, 0, 0, 0, 0}), 1 - 0.6875);
}

TEST(MetricsRocAuc, DegenerateCases) {
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5, 0.5, 0.5}, {1, 0, 1, 0}), 0.5);  // all tied
  EXPECT_DOUBLE_EQ(roc_auc({1, 2, 3, 4}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({1, 2, 3, 4}, {1, 1, 0, 0}), 0.0);
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.9}, {1, 1})));  // one class
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.9}, {0, 0})));
  EXPECT_TRUE(std::isnan(roc_auc({}, {})));
}

TEST(MetricsRocAuc, MatchesPairwiseCountOnRandomData) {
  // Small integer scores force many ties; compare with the O(n²) definition P(pos > neg) + ½ P(pos == neg).
  Rng rng(3);
  std::vector<double> s(300);
  std::vector<int> y(300);
  for (size_t i = 0; i < s.size(); ++i) {
    s[i] = static_cast<double>(rng.below(10));
    y[i] = static_cast<int>(rng.below(2));
  }
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; j < s.size(); ++j)
      if (y[i] == 1 && y[j] == 0) {
        wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
        pairs += 1;
      }
  EXPECT_NEAR(roc_auc(s, y), wins / pairs, 1e-12);
}

TEST(MetricsRocAuc, LargeInputIsFast) {
  // A million points: an O(n²) implementation would not finish; perfectly separated → 1.
  const size_t n = 1'000'000;
  std::vector<double> s(n);
  std::vector<int> y(n);
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<double>((i * 7919) % n);
    y[i] = s[i] >= n / 2.0 ? 1 : 0;
  }
  EXPECT_DOUBLE_EQ(roc_auc(s, y), 1.0);
}

TEST(MetricsRocAuc, ValidatesInput) {
  EXPECT_THROW(roc_auc({0.1, 0.2}, {0}), Error);
  EXPECT_THROW(roc_auc({0.1, 0.2}, {0, 2}), Error);
  EXPECT_THROW(roc_auc({0.1, NAN}, {0, 1}), Error);
}

// ---- RewardBench ------------------------------------------------------------------------------------

TEST(MetricsRewardBench, SectionsOfSubsets) {
  EXPECT_EQ(rewardbench_section("alpacaeval-easy"), "Chat");
  EXPECT_EQ(rewardbench_section("llmbar-natural"), "Chat Hard");
  EXPECT_EQ(rewardbench_section("xstest-should-respond"), "Safety");
  EXPECT_EQ(rewardbench_section("math-prm"), "Reasoning");
  EXPECT_EQ(rewardbench_section("hep-rust"), "Reasoning");
  EXPECT_EQ(rewardbench_section("anthropic_hhh"), "");
  EXPECT_EQ(rewardbench_weight("math-prm"), 984);
  EXPECT_EQ(rewardbench_weight("shp"), 0);
}

TEST(MetricsRewardBench, HandComputedTwoSections) {
  // Chat: alpacaeval-easy 0.9 (weight 100), mt-bench-easy 0.5 (28) → (90 + 14) / 128 = 0.8125.
  // Reasoning: math-prm 0.6 (984), hep-python 0.8 (164); 984 : 164 = 6 : 1 → (6·0.6 + 0.8) / 7 = 4.4/7 = 22/35.
  // Score = mean of the two present sections = (0.8125 + 22/35) / 2.
  // A prior set (anthropic_hhh) is unknown: listed, not scored.
  const auto r = rewardbench_score({{"alpacaeval-easy", 0.9},
                                    {"mt-bench-easy", 0.5},
                                    {"math-prm", 0.6},
                                    {"hep-python", 0.8},
                                    {"anthropic_hhh", 0.0}});
  ASSERT_EQ(r.sections.size(), 2u);
  EXPECT_DOUBLE_EQ(r.sections.at("Chat"), 0.8125);
  EXPECT_DOUBLE_EQ(r.sections.at("Reasoning"), 22.0 / 35);
  EXPECT_DOUBLE_EQ(r.score, (0.8125 + 22.0 / 35) / 2);
  EXPECT_EQ(r.unknown, std::vector<std::string>{"anthropic_hhh"});
}

TEST(MetricsRewardBench, WeightsOfEverySection) {
  std::map<std::string, double> all;
  for (const char* s : {"alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med",
                        "mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                        "llmbar-adver-GPTOut", "llmbar-adver-manual", "refusals-dangerous", "refusals-offensive",
                        "xstest-should-refuse", "xstest-should-respond", "donotanswer", "math-prm", "hep-cpp",
                        "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"})
    all[s] = 0.0;
  // One subset right, the rest of the full set wrong: each section score is that subset's share of its
  // section's weight. Section totals: Chat 358, Chat Hard 456, Safety 740, Reasoning 1968 (984 + 6·164).
  auto with = [&](std::map<std::string, double> m) {
    for (auto& [k, v] : m) all.at(k) = v;
    auto r = rewardbench_score(all);
    for (auto& [k, v] : m) all.at(k) = 0.0;
    return r;
  };
  EXPECT_DOUBLE_EQ(with({{"mt-bench-med", 1}}).sections.at("Chat"), 40.0 / 358);
  EXPECT_DOUBLE_EQ(with({{"llmbar-adver-neighbor", 1}}).sections.at("Chat Hard"), 134.0 / 456);
  EXPECT_DOUBLE_EQ(with({{"xstest-should-refuse", 1}}).sections.at("Safety"), 250.0 / 740);  // upstream's weight
  // math-prm is upweighted to equal the six code subsets together: half of Reasoning.
  const auto r = with({{"math-prm", 1}});
  EXPECT_DOUBLE_EQ(r.sections.at("Reasoning"), 0.5);
  EXPECT_DOUBLE_EQ(r.score, 0.5 / 4);
  EXPECT_TRUE(r.unknown.empty());
  // Everything right: every section 1, score 1.
  for (auto& [k, v] : all) v = 1.0;
  const auto perfect = rewardbench_score(all);
  EXPECT_EQ(perfect.sections.size(), 4u);
  EXPECT_DOUBLE_EQ(perfect.score, 1.0);
}

TEST(MetricsRewardBench, EmptyAndInvalid) {
  const auto r = rewardbench_score({{"shp", 0.7}});
  EXPECT_TRUE(r.sections.empty());
  EXPECT_TRUE(std::isnan(r.score));
  EXPECT_EQ(r.unknown, std::vector<std::string>{"shp"});
  EXPECT_THROW(rewardbench_score({{"math-prm", NAN}}), Error);
}

// ---- bootstrap --------------------------------------------------------------------------------------

TEST(MetricsBootstrap, QuantileInterpolatesLinearly) {
  const std::vector<double> x{1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(quantile_sorted(x, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile_sorted(x, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(quantile_sorted(x, 0.5), 2.5);    // h = 1.5
  EXPECT_DOUBLE_EQ(quantile_sorted(x, 0.25), 1.75);  // h = 0.75
  EXPECT_DOUBLE_EQ(quantile_sorted({10}, 0.3), 10.0);
  EXPECT_THROW(quantile_sorted({}, 0.5), Error);
  EXPECT_THROW(quantile_sorted(x, 1.5), Error);
}

std::vector<double> coin_flips(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = static_cast<double>(rng.below(2));
  return v;
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }

TEST(MetricsBootstrap, MeanCiContainsTheMeanAndShrinksWithData) {
  const auto small = coin_flips(40, 1), large = coin_flips(4000, 2);
  const Interval a = bootstrap_mean_ci(small, 2000, 0.95, 9);
  const Interval b = bootstrap_mean_ci(large, 2000, 0.95, 9);
  EXPECT_LE(a.lo, mean(small));
  EXPECT_GE(a.hi, mean(small));
  EXPECT_LE(b.lo, mean(large));
  EXPECT_GE(b.hi, mean(large));
  // Width scales like 1/sqrt(n): 100× the data → about 10× narrower; ask for 3×.
  EXPECT_LT(b.hi - b.lo, (a.hi - a.lo) / 3);
  // Normal approximation for p ≈ 0.5, n = 4000: 2·1.96·sqrt(0.25/4000) ≈ 0.031.
  EXPECT_NEAR(b.hi - b.lo, 0.031, 0.008);
}

TEST(MetricsBootstrap, DeterministicPerSeed) {
  const auto v = coin_flips(100, 5);
  const Interval a = bootstrap_mean_ci(v, 500, 0.9, 11), b = bootstrap_mean_ci(v, 500, 0.9, 11);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
  const Interval c = bootstrap_mean_ci(v, 500, 0.9, 12);
  EXPECT_TRUE(a.lo != c.lo || a.hi != c.hi);
}

TEST(MetricsBootstrap, CustomStatisticAndConstantData) {
  const Interval k = bootstrap_mean_ci({3, 3, 3}, 100, 0.95, 0);
  EXPECT_EQ(k.lo, 3.0);
  EXPECT_EQ(k.hi, 3.0);
  // The max of a resample never exceeds the max of the data, nor falls below its min.
  const std::vector<double> v{1, 2, 3, 4, 5, 6, 7, 8};
  auto max = [](const std::vector<double>& x) { return *std::max_element(x.begin(), x.end()); };
  const Interval m = bootstrap_ci(v, max, 1000, 0.95, 4);
  EXPECT_GE(m.lo, 1.0);
  EXPECT_LE(m.lo, m.hi);
  EXPECT_EQ(m.hi, 8.0);  // P(resample misses 8) = (7/8)^8 ≈ 0.34 < 0.975
}

TEST(MetricsBootstrap, ValidatesInput) {
  EXPECT_THROW(bootstrap_mean_ci({}, 100, 0.95, 0), Error);
  EXPECT_THROW(bootstrap_mean_ci({1, 2}, 0, 0.95, 0), Error);
  EXPECT_THROW(bootstrap_mean_ci({1, 2}, 100, 0.0, 0), Error);
  EXPECT_THROW(bootstrap_mean_ci({1, 2}, 100, 1.0, 0), Error);
  auto nan = [](const std::vector<double>&) { return static_cast<double>(NAN); };
  EXPECT_THROW(bootstrap_ci({1, 2}, nan, 10, 0.95, 0), Error);
}

}  // namespace
}  // namespace grm
