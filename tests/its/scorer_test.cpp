#include "its/scorer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "support/fake_judge.h"

using namespace grm;

namespace {

using test::FakeJudge;

// Fails every request whose prompt contains "too long", like an engine whose context it does not fit.
class ContextLimitedJudge : public FakeJudge {
 public:
  std::vector<std::vector<Completion>> generate(const std::vector<GenerationRequest>& reqs) override {
    auto out = FakeJudge::generate(reqs);
    for (size_t r = 0; r < reqs.size(); ++r)
      if (reqs[r].prompt.find("too long") != std::string::npos)
        for (auto& c : out[r]) c = Completion{"", 0, 0, "error", "prompt does not fit the context"};
    return out;
  }
};

class FakeMeta : public MetaScorer {
 public:
  std::vector<double> score(const std::vector<MetaInput>& in) override {
    std::vector<double> s;
    for (const auto& x : in) s.push_back(static_cast<double>(std::hash<std::string>{}(x.prompt + x.judgment) % 1000));
    return s;
  }
};

Record rec(std::vector<int> qualities, std::string query = "which is better?") {
  Record r;
  r.id = query;
  r.conversation = Conversation::from_query(std::move(query));
  for (int q : qualities) r.responses.push_back("quality=" + std::to_string(q));
  return r;
}

ScorerOptions opts(int k, ScheduleKind kind = ScheduleKind::Balanced) {
  ScorerOptions o;
  o.k = k;
  o.schedule = kind;
  return o;
}

}  // namespace

TEST(Scorer, MapBackIsRightForEverySchedule) {
  for (auto kind : {ScheduleKind::Balanced, ScheduleKind::Random, ScheduleKind::Identity}) {
    FakeJudge judge;
    Scorer scorer(judge, Template::builtin("compact"), opts(6, kind));
    const auto rewards = scorer.score({rec({3, 9, 5}), rec({7, 2})});
    EXPECT_EQ(rewards[0].rewards, (std::vector<double>{18, 54, 30})) << to_string(kind);
    EXPECT_EQ(rewards[0].best, 1);
    EXPECT_EQ(rewards[1].rewards, (std::vector<double>{42, 12}));
    for (const auto& s : rewards[0].samples) {
      EXPECT_TRUE(s.judgment.valid);
      EXPECT_EQ(s.judgment.scores, (std::vector<int>{3, 9, 5}));  // original order in every sample
      EXPECT_EQ(s.judgment.principles.at(0).text, "Quality");
    }
  }
}

TEST(Scorer, BalancedScheduleCancelsPositionBias) {
  FakeJudge judge;
  judge.position_bonus = 1;  // the first shown response gets +1
  Scorer balanced(judge, Template::builtin("compact"), opts(6));
  auto r = balanced.score({rec({4, 4, 4})})[0];
  EXPECT_EQ(r.rewards, (std::vector<double>{26, 26, 26}));  // 6·4 + 2 visits to position 0 each
  Scorer identity(judge, Template::builtin("compact"), opts(6, ScheduleKind::Identity));
  r = identity.score({rec({4, 4, 4})})[0];
  EXPECT_EQ(r.rewards, (std::vector<double>{30, 24, 24}));
}

TEST(Scorer, AbstentionsAreCounted) {
  FakeJudge judge;
  judge.invalid_every = 4;
  Scorer scorer(judge, Template::builtin("compact"), opts(8));
  auto r = scorer.score({rec({2, 8})})[0];
  EXPECT_EQ(r.abstentions, 2);  // samples 3 and 7
  EXPECT_EQ(r.valid_samples, 6);
  EXPECT_EQ(r.rewards, (std::vector<double>{12, 48}));
  EXPECT_FALSE(r.samples[3].judgment.valid);
  EXPECT_EQ(r.samples[3].judgment.error, "no boxed scores");
}

TEST(Scorer, ManyRecordsShareOneGenerationCall) {
  FakeJudge judge;
  Scorer scorer(judge, Template::builtin("compact"), opts(8));
  std::vector<Record> records;
  for (int i = 0; i < 50; ++i) records.push_back(rec({1 + i % 10, 5}, "q" + std::to_string(i)));
  auto rewards = scorer.score(records);
  EXPECT_EQ(judge.calls, 1);
  EXPECT_EQ(judge.completions, 400);
  EXPECT_EQ(rewards.size(), 50u);
}

TEST(Scorer, SingleResponseRewardIsTheSummedScore) {
  FakeJudge judge;
  Scorer scorer(judge, Template::builtin("single-binary"), opts(5));
  // The fake judge answers the 0/1 template with 1 for quality ≥ 5: five samples sum to 5, or to 0.
  const auto r = scorer.score({rec({7}), rec({2})});
  EXPECT_EQ(r[0].rewards, (std::vector<double>{5}));
  EXPECT_EQ(r[0].best, 0);
  EXPECT_EQ(r[1].rewards, (std::vector<double>{0}));
  EXPECT_EQ(r[1].valid_samples, 5);
}

TEST(Scorer, MetaKeepsExactlyKMeta) {
  FakeJudge judge;
  judge.noise = 3;
  FakeMeta meta;
  ScorerOptions o = opts(8);
  o.aggregate = Aggregate::Meta;
  Scorer scorer(judge, Template::builtin("compact"), o, &meta);
  auto r = scorer.score({rec({3, 7})})[0];
  EXPECT_EQ(r.kept, 4);
  int with_meta = 0;
  for (const auto& s : r.samples) with_meta += s.meta.has_value();
  EXPECT_EQ(with_meta, 8);
  o.k_meta = 3;
  EXPECT_EQ(Scorer(judge, Template::builtin("compact"), o, &meta).score({rec({3, 7})})[0].kept, 3);
}

TEST(Scorer, MetaWithoutMetaModelOrWithEarlyStopIsAnError) {
  FakeJudge judge;
  ScorerOptions o = opts(8);
  o.aggregate = Aggregate::Meta;
  EXPECT_THROW(Scorer(judge, Template::builtin("compact"), o), Error);
  FakeMeta meta;
  o.early_stop = true;
  EXPECT_THROW(Scorer(judge, Template::builtin("compact"), o, &meta), Error);
}

// Early stop must decide exactly as full k does, over many randomized vote streams, and save samples on
// lopsided ones.
TEST(Scorer, EarlyStopDecidesLikeFullK) {
  FakeJudge judge;
  judge.noise = 4;
  judge.invalid_every = 7;
  std::vector<Record> records;
  Rng rng(5);
  for (int i = 0; i < 400; ++i) {
    const int n = 2 + static_cast<int>(rng.below(3));
    std::vector<int> q;
    for (int j = 0; j < n; ++j) q.push_back(1 + static_cast<int>(rng.below(10)));
    records.push_back(rec(q, "q" + std::to_string(i)));
  }
  ScorerOptions o = opts(32, ScheduleKind::Random);
  auto full = Scorer(judge, Template::builtin("compact"), o).score(records);
  o.early_stop = true;
  auto early = Scorer(judge, Template::builtin("compact"), o).score(records);
  int64_t used = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(early[i].best, full[i].best) << i;
    EXPECT_LE(early[i].samples_used, 32);
    used += early[i].samples_used;
    EXPECT_EQ(full[i].samples_used, 32);
  }
  EXPECT_LT(used, static_cast<int64_t>(records.size()) * 32) << "some records should stop early";
}

TEST(Scorer, EarlyStopOnALopsidedRecordUsesTheFirstProvableRound) {
  // Scores 1 vs 10 every sample: after u samples the gap is 9u and the rest can close 9(32-u), so the
  // decision is proven once 9u > 9(32-u), i.e. u > 16 → after the first round, which draws 17 at once.
  FakeJudge judge;
  ScorerOptions o = opts(32);
  o.early_stop = true;
  auto r = Scorer(judge, Template::builtin("compact"), o).score({rec({1, 10}), rec({5, 5})});
  EXPECT_EQ(r[0].samples_used, 17);
  EXPECT_EQ(r[0].best, 1);
  EXPECT_EQ(r[1].samples_used, 32);  // a tie never stops early
  EXPECT_EQ(judge.calls, 5);         // rounds ending at 17, 21, 25, 29, 32
}

TEST(Scorer, LargerRoundsMeanFewerCallsAndTheSameDecision) {
  FakeJudge judge;
  judge.noise = 3;
  ScorerOptions o = opts(32);
  o.early_stop = true;
  o.round_size = 8;
  const std::vector<Record> records{rec({4, 6}, "a"), rec({5, 5}, "b"), rec({2, 9}, "c")};
  const auto r = Scorer(judge, Template::builtin("compact"), o).score(records);
  EXPECT_LE(judge.calls, 3);  // rounds ending at 17, 25, 32
  o.early_stop = false;
  FakeJudge full_judge;
  full_judge.noise = 3;
  const auto full = Scorer(full_judge, Template::builtin("compact"), o).score(records);
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(r[i].best, full[i].best) << i;
  EXPECT_EQ(r[1].samples_used, 32);
}

TEST(Scorer, SameSeedSameResultWhereverTheRecordIs) {
  FakeJudge judge;
  judge.noise = 2;
  Scorer scorer(judge, Template::builtin("compact"), opts(8, ScheduleKind::Random));
  auto a = scorer.score({rec({5, 6}, "x"), rec({4, 4}, "y")});
  auto b = scorer.score({rec({4, 4}, "y")});
  EXPECT_EQ(a[1].rewards, b[0].rewards);
  EXPECT_EQ(a[1].best, b[0].best);
}

TEST(Scorer, ARecordTheGeneratorCannotRunFailsAloneWithItsReason) {
  for (bool early : {false, true}) {
    ContextLimitedJudge judge;
    ScorerOptions o = opts(8);
    o.early_stop = early;
    Scorer scorer(judge, Template::builtin("compact"), o);
    const auto out = scorer.score({rec({3, 9}, "fine"), rec({5, 2}, "too long"), rec({8, 1}, "fine too")});
    ASSERT_EQ(out.size(), 3u);
    EXPECT_TRUE(out[0].error.empty());
    EXPECT_EQ(out[0].best, 1);
    EXPECT_EQ(out[1].error, "prompt does not fit the context");
    EXPECT_EQ(out[1].valid_samples, 0);
    ASSERT_EQ(out[1].samples.size(), 8u);  // k abstentions carrying the reason
    for (const auto& s : out[1].samples) EXPECT_EQ(s.judgment.error, "prompt does not fit the context");
    EXPECT_EQ(nlohmann::json(out[1]), nlohmann::json({{"error", "prompt does not fit the context"}}));
    EXPECT_TRUE(out[2].error.empty());
    EXPECT_EQ(out[2].best, 0);
  }
}
