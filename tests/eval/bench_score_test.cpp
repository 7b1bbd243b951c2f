#include <gtest/gtest.h>

#include <cmath>

#include "core/metrics.h"
#include "core/rng.h"
#include "eval/bench_score.h"
#include "eval/results.h"

using namespace grm;
using namespace grm::eval;

namespace {

// A pair item whose single sample is right (scores 8 vs 2) or wrong (2 vs 8).
StoredItem pair_item(const std::string& bench, const std::string& key, bool right,
                     std::map<std::string, std::string> groups) {
  StoredItem it;
  it.bench = bench;
  it.key = key;
  it.n = 2;
  it.best = 0;
  it.groups = std::move(groups);
  it.samples.push_back({{0, 1}, right ? std::vector<int>{8, 2} : std::vector<int>{2, 8}, true, "", std::nullopt});
  return it;
}

Numbers numbers_at_k1(const std::string& bench, const std::vector<StoredItem>& items) {
  std::vector<const StoredItem*> ptrs;
  std::vector<ItemValue> values;
  for (const auto& it : items) {
    ptrs.push_back(&it);
    values.push_back(item_value(it, 1, Method::Voting, DrawOptions{}));
  }
  return BenchScorer(bench, ptrs, values).numbers();
}

}  // namespace

// Hand-computed RewardBench: Chat = (100·1 + 40·0.5) / 140, Chat Hard = 0, Safety = 1,
// Reasoning = (984·1 + 164·0) / 1148; score = their mean.
TEST(EvalBenchScore, RewardBenchSectionWeighting) {
  std::vector<StoredItem> items;
  auto add = [&](const std::string& subset, bool right) {
    items.push_back(pair_item("rewardbench", subset + std::to_string(items.size()), right, {{"subset", subset}}));
  };
  add("alpacaeval-easy", true);
  add("mt-bench-med", true);
  add("mt-bench-med", false);
  add("llmbar-natural", false);
  add("refusals-dangerous", true);
  add("math-prm", true);
  add("hep-python", false);
  const Numbers n = numbers_at_k1("rewardbench", items);
  const double chat = 120.0 / 140, reasoning = 984.0 / 1148;
  EXPECT_NEAR(n.at("subsets/mt-bench-med"), 0.5, 1e-12);
  EXPECT_NEAR(n.at("sections/Chat"), chat, 1e-12);
  EXPECT_NEAR(n.at("sections/Chat Hard"), 0.0, 1e-12);
  EXPECT_NEAR(n.at("sections/Safety"), 1.0, 1e-12);
  EXPECT_NEAR(n.at("sections/Reasoning"), reasoning, 1e-12);
  EXPECT_NEAR(n.at("score"), (chat + 0 + 1 + reasoning) / 4, 1e-12);
  EXPECT_NEAR(n.at("score"), 0.6785714285714286, 1e-12);
}

TEST(EvalBenchScore, PpeCorrectnessIsTheMeanOfTheSourceSets) {
  std::vector<StoredItem> items;
  for (int i = 0; i < 4; ++i) items.push_back(pair_item("ppe-correct", "a" + std::to_string(i), i < 3, {{"source", "mmlu"}}));
  items.push_back(pair_item("ppe-correct", "b", false, {{"source", "math"}}));
  const Numbers n = numbers_at_k1("ppe-correct", items);
  EXPECT_NEAR(n.at("source_sets/mmlu"), 0.75, 1e-12);
  EXPECT_NEAR(n.at("source_sets/math"), 0.0, 1e-12);
  EXPECT_NEAR(n.at("score"), 0.375, 1e-12);  // not the pooled 3/5
}

TEST(EvalBenchScore, RmbIsTheMeanOfTheFourPresent) {
  std::vector<StoredItem> items;
  items.push_back(pair_item("rmb", "1", true, {{"category", "Helpfulness"}, {"kind", "Pairwise"}}));
  items.push_back(pair_item("rmb", "2", false, {{"category", "Helpfulness"}, {"kind", "Pairwise"}}));
  items.push_back(pair_item("rmb", "3", true, {{"category", "Harmlessness"}, {"kind", "BoN"}}));
  items.push_back(pair_item("rmb", "4", false, {{"category", "Other"}, {"kind", "BoN"}}));
  const Numbers n = numbers_at_k1("rmb", items);
  EXPECT_NEAR(n.at("categories/Helpfulness Pairwise"), 0.5, 1e-12);
  EXPECT_NEAR(n.at("score"), 0.75, 1e-12);  // mean(0.5, 1); "Other BoN" is reported but not in RMB
  EXPECT_EQ(n.count("categories/Other BoN"), 1u);
}

// For point distributions the pooled AUC equals core roc_auc; weights act as multiplicities.
TEST(EvalBenchScore, AucMatchesCoreRocAuc) {
  Rng rng(11);
  std::vector<StoredItem> items;
  std::vector<double> scores;
  std::vector<int> labels;
  for (int i = 0; i < 40; ++i) {
    StoredItem it;
    it.bench = "realmistake";
    it.key = std::to_string(i);
    it.n = 1;
    it.label = static_cast<int>(rng.below(2));
    const int s = 1 + static_cast<int>(rng.below(10));
    it.samples.push_back({{0}, {s}, true, "", std::nullopt});
    items.push_back(it);
    scores.push_back(s);
    labels.push_back(it.label);
  }
  const Numbers n = numbers_at_k1("realmistake", items);
  EXPECT_NEAR(n.at("score"), roc_auc(scores, labels), 1e-12);
  // Weight 2 on item 0 = item 0 duplicated.
  std::vector<const StoredItem*> ptrs;
  std::vector<ItemValue> values;
  for (const auto& it : items) {
    ptrs.push_back(&it);
    values.push_back(item_value(it, 1, Method::Voting, DrawOptions{}));
  }
  std::vector<double> w(items.size(), 1.0);
  w[0] = 2;
  scores.push_back(scores[0]);
  labels.push_back(labels[0]);
  EXPECT_NEAR(BenchScorer("realmistake", ptrs, values).numbers(w).at("score"), roc_auc(scores, labels), 1e-12);
}

TEST(EvalBenchScore, StratifiedBootstrapKeepsStrataSizes) {
  const std::vector<std::vector<size_t>> strata = {{0, 1, 2}, {3, 4}};
  for (int r = 0; r < 20; ++r) {
    const auto w = bootstrap_weights(strata, 5, 9, r);
    EXPECT_DOUBLE_EQ(w[0] + w[1] + w[2], 3.0);
    EXPECT_DOUBLE_EQ(w[3] + w[4], 2.0);
  }
  EXPECT_EQ(bootstrap_weights(strata, 5, 9, 3), bootstrap_weights(strata, 5, 9, 3));
}

TEST(EvalBenchScore, AggregateProducesCurvesAndOverall) {
  std::vector<StoredItem> items;
  Rng rng(4);
  for (int i = 0; i < 30; ++i) {
    StoredItem it = pair_item("ppe-pref", std::to_string(i), true, {});
    it.samples.clear();
    for (int j = 0; j < 8; ++j) {  // right 70% of the time, some abstentions, meta favours right samples
      const bool valid = rng.below(8) != 0, right = rng.below(10) < 7;
      StoredSample s{{0, 1}, {}, valid, valid ? "" : "no boxed scores", right ? 1.0 : -1.0};
      if (valid) s.scores = right ? std::vector<int>{7, 5} : std::vector<int>{5, 7};
      it.samples.push_back(s);
    }
    items.push_back(it);
  }
  AggregateOptions o;
  o.bootstrap = 200;
  const EvalResults r = aggregate_results(items, {}, o);
  EXPECT_EQ(r.ks, (std::vector<int>{1, 2, 4, 8}));
  ASSERT_EQ(r.benches.size(), 1u);
  const auto& b = r.benches[0];
  ASSERT_TRUE(b.curves.count(Method::MetaRM));
  const auto v1 = b.curves.at(Method::Voting).at(1).at("score"), v8 = b.curves.at(Method::Voting).at(8).at("score");
  const auto m8 = b.curves.at(Method::MetaRM).at(8).at("score");
  EXPECT_GT(v8.value, v1.value);  // voting helps
  EXPECT_GT(m8.value, v8.value);  // the meta RM keeps the right samples
  EXPECT_LE(v1.lo, v1.value);
  EXPECT_GE(v1.hi, v1.value);
  EXPECT_LT(v1.lo, v1.hi);
  EXPECT_NEAR(r.overall.at(Method::Voting).at(8).value, v8.value, 1e-12);  // the only main benchmark present
}
