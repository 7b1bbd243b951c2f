#include "core/vote.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "core/schedule.h"

using namespace grm;

namespace {

Sample make(std::vector<int> original_scores, std::optional<double> meta = std::nullopt, bool valid = true) {
  Sample s;
  s.judgment.valid = valid;
  if (valid) s.judgment.scores = std::move(original_scores);
  else s.judgment.error = "no boxed scores";
  s.meta = meta;
  return s;
}

}  // namespace

TEST(Vote, PaperWorkedExample) {
  std::vector<Sample> samples = {make(map_back({0, 1}, {8, 8})), make(map_back({1, 0}, {9, 5})),
                                 make(map_back({1, 0}, {10, 7}))};
  Reward r = aggregate(samples, 2, {});
  EXPECT_EQ(r.rewards, (std::vector<double>{20, 27}));
  EXPECT_EQ(r.best, 1);
  EXPECT_EQ(r.valid_samples, 3);
  EXPECT_EQ(r.abstentions, 0);
  EXPECT_EQ(r.kept, 3);
  EXPECT_EQ(r.histogram[1][9 - 1], 1);  // one 9 for response 1
  EXPECT_EQ(r.histogram[1][10 - 1], 1);
  EXPECT_EQ(r.histogram[0][8 - 1], 1);
}

TEST(Vote, AbstentionsAreCountedNotScoredAsZero) {
  std::vector<Sample> samples = {make({3, 9}), make({}, std::nullopt, false), make({4, 8})};
  Reward r = aggregate(samples, 2, {});
  EXPECT_EQ(r.abstentions, 1);
  EXPECT_EQ(r.valid_samples, 2);
  EXPECT_EQ(r.rewards, (std::vector<double>{7, 17}));
  EXPECT_DOUBLE_EQ(r.mean_scores[0], 3.5);  // over the 2 valid samples, not 3
  EXPECT_EQ(r.samples_used, 3);
}

TEST(Vote, AllInvalidGivesNoBest) {
  Reward r = aggregate({make({}, std::nullopt, false)}, 2, {});
  EXPECT_EQ(r.best, -1);
  EXPECT_EQ(r.abstentions, 1);
}

TEST(Vote, MetaKeepsExactlyKMetaHighestMeta) {
  Rng rng(4);
  for (int trial = 0; trial < 100; ++trial) {
    const int k = 2 + static_cast<int>(rng.below(30));
    std::vector<Sample> samples;
    for (int j = 0; j < k; ++j)
      samples.push_back(make({1 + (int)rng.below(10), 1 + (int)rng.below(10)}, rng.uniform() * 10 - 5));
    VoteOptions opt;
    opt.aggregate = Aggregate::Meta;
    opt.k_meta = 1 + static_cast<int>(rng.below(k));
    Reward r = aggregate(samples, 2, opt);
    EXPECT_EQ(r.kept, opt.k_meta);
    // Brute force: sort by meta and sum the top k_meta.
    std::vector<size_t> idx(k);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return *samples[a].meta > *samples[b].meta; });
    std::vector<double> want(2, 0);
    for (int i = 0; i < opt.k_meta; ++i)
      for (int c = 0; c < 2; ++c) want[c] += samples[idx[i]].judgment.scores[c];
    EXPECT_EQ(r.rewards, want);
  }
}

TEST(Vote, MetaDefaultsToHalfAndSkipsInvalid) {
  std::vector<Sample> samples = {make({1, 10}, -15.78), make({9, 2}, 1.31), make({}, std::nullopt, false),
                                 make({8, 3}, 1.67)};
  VoteOptions opt;
  opt.aggregate = Aggregate::Meta;
  Reward r = aggregate(samples, 2, opt);  // k = 4 → k_meta = 2: the samples with meta 1.67 and 1.31
  EXPECT_EQ(r.kept, 2);
  EXPECT_EQ(r.rewards, (std::vector<double>{17, 5}));
  EXPECT_EQ(r.best, 0);
}

TEST(Vote, MetaWeightedVariant) {
  std::vector<Sample> samples = {make({2, 4}, 0.5), make({6, 2}, 1.0)};
  VoteOptions opt;
  opt.aggregate = Aggregate::MetaWeighted;
  opt.k_meta = 2;
  Reward r = aggregate(samples, 2, opt);
  EXPECT_DOUBLE_EQ(r.rewards[0], (2 * 0.5 + 6 * 1.0) / 2);
  EXPECT_DOUBLE_EQ(r.rewards[1], (4 * 0.5 + 2 * 1.0) / 2);
}

TEST(Vote, MetaWithoutMetaScoreThrows) {
  VoteOptions opt;
  opt.aggregate = Aggregate::Meta;
  EXPECT_THROW(aggregate({make({1, 2})}, 2, opt), Error);
}

TEST(Vote, WrongCountAndOutOfRangeThrow) {
  EXPECT_THROW(aggregate({make({1, 2, 3})}, 2, {}), Error);
  EXPECT_THROW(aggregate({make({0, 2})}, 2, {}), Error);
  EXPECT_THROW(parse_aggregate("mean"), Error);
}

TEST(Vote, TieBreakIsSeededAndFair) {
  std::vector<double> tied = {5, 7, 7, 7};
  int counts[4] = {0, 0, 0, 0};
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    const int b = argmax_tiebreak(tied, seed);
    ASSERT_GE(b, 1);
    ++counts[b];
    EXPECT_EQ(argmax_tiebreak(tied, seed), b);
  }
  for (int i = 1; i < 4; ++i) EXPECT_NEAR(counts[i], 1000, 120);
  EXPECT_EQ(argmax_tiebreak({1, 3, 2}, 0), 1);
  EXPECT_EQ(argmax_tiebreak({}, 0), -1);
}

// The early-stop test must be exact: whenever it says "decided", no continuation of the vote stream can
// change the winner; and it must fire on lopsided streams.
TEST(Vote, EarlyStopNeverChangesTheDecision) {
  Rng rng(8);
  const ScoreRange range{1, 10};
  int stopped_early = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int n = 2 + static_cast<int>(rng.below(3));
    const int k = 1 + static_cast<int>(rng.below(32));
    const int bias = static_cast<int>(rng.below(6));  // lopsided streams: response 0 gets + bias
    std::vector<std::vector<int>> stream(k, std::vector<int>(n));
    std::vector<bool> valid(k);
    for (int j = 0; j < k; ++j) {
      valid[j] = rng.below(10) != 0;
      for (int i = 0; i < n; ++i) stream[j][i] = std::min(10, 1 + static_cast<int>(rng.below(10)) + (i == 0 ? bias : 0));
    }
    auto final_best = [&](int upto) {
      std::vector<double> t(n, 0);
      for (int j = 0; j < upto; ++j)
        if (valid[j])
          for (int i = 0; i < n; ++i) t[i] += stream[j][i];
      return std::make_pair(t, argmax_tiebreak(t, 77));
    };
    const int full_best = final_best(k).second;
    for (int used = 0; used <= k; used += 4) {
      auto [t, b] = final_best(used);
      if (argmax_decided(t, k - used, range)) {
        EXPECT_EQ(b, full_best) << "trial " << trial;
        if (used < k) ++stopped_early;
        break;
      }
    }
  }
  EXPECT_GT(stopped_early, 300);
}

TEST(Vote, EarlyStopBoundIsTight) {
  // Gap 9 with one sample left in 1..10: the rival can gain 9 → tie → not decided. Gap 10 → decided.
  EXPECT_FALSE(argmax_decided({19, 10}, 1, {1, 10}));
  EXPECT_TRUE(argmax_decided({20, 10}, 1, {1, 10}));
  EXPECT_FALSE(argmax_decided({10, 10}, 0 + 1, {1, 10}));
  EXPECT_TRUE(argmax_decided({10, 10}, 0, {1, 10}));
  EXPECT_TRUE(argmax_decided({3}, 5, {1, 10}));
}
