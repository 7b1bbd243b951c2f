#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/error.h"
#include "eval/item.h"
#include "eval/rows.h"

using namespace grm;
using namespace grm::eval;

namespace {

std::string data(const std::string& name) { return std::string(GRM_TEST_DATA) + "/bench/" + name; }

const EvalItem& find(const LoadResult& r, const std::string& key) {
  for (const auto& it : r.items)
    if (it.key == key) return it;
  throw std::runtime_error("no item " + key);
}

// The best response of a fixture item is the one the fixture wrote as chosen / best.
std::string best_text(const EvalItem& it) { return it.record.responses.at(static_cast<size_t>(it.best)); }

}  // namespace

TEST(EvalLoaders, RewardBenchJsonl) {
  const LoadResult r = load_bench("rewardbench", data("rewardbench.jsonl"));
  EXPECT_EQ(r.source, "rewardbench.jsonl");
  EXPECT_EQ(r.rows, 10u);
  EXPECT_EQ(r.items.size(), 7u);
  EXPECT_EQ(r.excluded, 1u);   // anthropic_helpful (a prior set)
  EXPECT_EQ(r.malformed, 2u);  // a cut-off JSON line and a row without 'rejected'
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_NE(r.errors[0].find("rewardbench.jsonl:8:"), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[1].find("rewardbench.jsonl:9:"), std::string::npos) << r.errors[1];
  EXPECT_NE(r.errors[1].find("'rejected'"), std::string::npos) << r.errors[1];
  const EvalItem& a = find(r, "rewardbench.jsonl:1");
  EXPECT_EQ(a.record.conversation.query(), "Write a haiku about rain.");
  EXPECT_EQ(best_text(a), "quality=8");
  EXPECT_EQ(a.groups.at("subset"), "alpacaeval-easy");
  EXPECT_EQ(a.groups.at("section"), "Chat");
  // The best response is not always first: the order is seeded by content.
  int best_first = 0;
  for (const auto& it : r.items) best_first += it.best == 0;
  EXPECT_GT(best_first, 0);
  EXPECT_LT(best_first, 7);
  // Loading twice gives the same order.
  EXPECT_EQ(load_bench("rewardbench", data("rewardbench.jsonl")).items[3].best, r.items[3].best);
}

TEST(EvalLoaders, JsonArrayForm) {
  const LoadResult r = load_bench("rewardbench", data("rewardbench.json"));
  EXPECT_EQ(r.rows, 3u);
  EXPECT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.malformed, 1u);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("rewardbench.json: row 2"), std::string::npos) << r.errors[0];
  EXPECT_EQ(find(r, "rewardbench.json:a2").groups.at("section"), "Safety");
}

TEST(EvalLoaders, PpePreferenceExcludesTies) {
  const LoadResult r = load_bench("ppe-pref", data("ppe_pref.jsonl"));
  EXPECT_EQ(r.items.size(), 3u);
  EXPECT_EQ(r.excluded, 1u);   // the tie
  EXPECT_EQ(r.malformed, 1u);  // winner model_c
  EXPECT_NE(r.errors.at(0).find("model_c"), std::string::npos);
  EXPECT_EQ(best_text(find(r, "ppe_pref.jsonl:p1")), "quality=8");
  EXPECT_EQ(best_text(find(r, "ppe_pref.jsonl:p2")), "quality=7");
  const EvalItem& multi = find(r, "ppe_pref.jsonl:p5");
  EXPECT_EQ(multi.record.conversation.messages.size(), 3u);
  EXPECT_EQ(multi.record.conversation.query(), "Name a planet.");
}

TEST(EvalLoaders, PpeCorrectnessConflictPairs) {
  const LoadResult r = load_bench("ppe-correct", data("mmlu_pro.jsonl"));
  EXPECT_EQ(r.items.size(), 3u);  // m1: [0,1] [2,3]; m2: [0,1]
  EXPECT_EQ(r.excluded, 2u);      // m1 [0,3] and m2 [1,2] are not conflicts
  EXPECT_EQ(r.malformed, 1u);     // m3: index 9 out of range
  for (const auto& it : r.items) {
    EXPECT_EQ(it.groups.at("source"), "mmlu_pro");  // from the file name
    EXPECT_EQ(best_text(it), "quality=7");          // the correct response
  }
  EXPECT_NO_THROW(find(r, "mmlu_pro.jsonl:m1/2-3"));
  const LoadResult m = load_bench("ppe-correct", data("math.json"));
  EXPECT_EQ(m.items.size(), 3u);
  for (const auto& it : m.items) EXPECT_EQ(it.groups.at("source"), "MATH");  // the 'benchmark' field wins
  EXPECT_EQ(best_text(find(m, "math.json:x1/2-0")), "quality=7");
}

TEST(EvalLoaders, RmbPairwiseAndBestOfN) {
  const LoadResult p = load_bench("rmb", data("rmb_pairwise.jsonl"));
  EXPECT_EQ(p.items.size(), 3u);
  EXPECT_EQ(p.malformed, 1u);  // r3 has no category_path
  EXPECT_EQ(find(p, "rmb_pairwise.jsonl:r1").groups.at("category"), "Helpfulness");
  EXPECT_EQ(find(p, "rmb_pairwise.jsonl:r2").groups.at("category"), "Harmlessness");
  EXPECT_EQ(find(p, "rmb_pairwise.jsonl:r2").groups.at("kind"), "Pairwise");
  EXPECT_FALSE(find(p, "rmb_pairwise.jsonl:r2").strict);
  EXPECT_EQ(find(p, "rmb_pairwise.jsonl:r4").record.conversation.messages.size(), 3u);
  const LoadResult b = load_bench("rmb", data("rmb_bon.json"));
  ASSERT_EQ(b.items.size(), 2u);
  const EvalItem& five = find(b, "rmb_bon.json:b1");
  EXPECT_EQ(five.record.responses.size(), 5u);  // the best and 4 losers in one list
  EXPECT_EQ(best_text(five), "quality=9");
  EXPECT_TRUE(five.strict);
  EXPECT_EQ(five.groups.at("kind"), "BoN");
  EXPECT_EQ(five.groups.at("category"), "Harmlessness");
}

TEST(EvalLoaders, ReaLMistakeLabels) {
  const LoadResult r = load_bench("realmistake", data("realmistake.jsonl"));
  EXPECT_EQ(r.items.size(), 8u);
  EXPECT_EQ(r.malformed, 1u);  // label "maybe"
  EXPECT_EQ(r.errors.at(0).find("realmistake.jsonl:4:") != std::string::npos, true) << r.errors.at(0);
  int pos = 0;
  for (const auto& it : r.items) {
    EXPECT_EQ(it.record.responses.size(), 1u);
    EXPECT_EQ(it.best, -1);
    pos += it.label;
  }
  EXPECT_EQ(pos, 4);
  EXPECT_EQ(r.items[0].key, "realmistake.jsonl:#1");  // no id field: the row number
  EXPECT_EQ(r.items[0].label, 1);
}

TEST(EvalLoaders, SynthRows) {
  const LoadResult r = load_bench("synth", data("synth.jsonl"));
  EXPECT_EQ(r.items.size(), 7u);
  EXPECT_EQ(r.malformed, 1u);  // best out of range
  const EvalItem& s2 = find(r, "synth.jsonl:s2");
  EXPECT_EQ(best_text(s2), "quality=9");
  EXPECT_EQ(s2.tmpl, "compact");
  EXPECT_EQ(s2.groups.at("domain"), "math");
  const EvalItem& s5 = find(r, "synth.jsonl:s5");
  EXPECT_EQ(s5.label, 0);
  EXPECT_EQ(s5.tmpl, "single-binary");
  // Without a 'template' field: compact for n >= 2, single-binary for n = 1 (as grm synth writes).
  const std::string path = testing::TempDir() + "/grm_eval_synth_notemplate.jsonl";
  std::ofstream(path) << R"({"id": "a", "domain": "arith", "query": "q", "responses": ["x"], "label": 1})" "\n"
                      << R"({"id": "b", "domain": "arith", "query": "q", "responses": ["x", "y"], "best": 1})" "\n";
  const LoadResult d = load_bench("synth", path);
  ASSERT_EQ(d.items.size(), 2u);
  EXPECT_EQ(d.items[0].tmpl, "single-binary");
  EXPECT_EQ(d.items[1].tmpl, "compact");
}

TEST(EvalLoaders, LimitAndErrors) {
  EXPECT_EQ(load_bench("rewardbench", data("rewardbench.jsonl"), 3).items.size(), 3u);
  EXPECT_EQ(load_bench("ppe-correct", data("mmlu_pro.jsonl"), 1).items.size(), 1u);
  EXPECT_THROW(load_bench("nosuch", data("rewardbench.jsonl")), Error);
  EXPECT_THROW(load_bench("rewardbench", data("missing.jsonl")), Error);
  const std::string bad = testing::TempDir() + "/bad_array.json";
  std::ofstream(bad) << "[{\"id\": 1}, {";
  EXPECT_THROW(read_rows(bad), Error);
}

TEST(EvalLoaders, ConversationFrom) {
  EXPECT_EQ(conversation_from("hi", "prompt").query(), "hi");
  EXPECT_THROW(conversation_from(nlohmann::json::array(), "prompt"), Error);
  EXPECT_THROW(conversation_from(nlohmann::json::parse(R"([{"role":"assistant","content":"x"}])"), "prompt"), Error);
  EXPECT_THROW(conversation_from(nlohmann::json::parse(R"([{"role":"robot","content":"x"}])"), "prompt"), Error);
}
